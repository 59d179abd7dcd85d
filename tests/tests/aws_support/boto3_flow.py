"""Issue 7, acceptance 2 and the skewed-clock half of 3, through the real boto3.

Run by tests/tests/aws_clients.rs with the pinned boto3 in the test venv; the endpoint, the
family's image and the subnet come from the environment. Every check is an assert: a failure
prints its traceback and exits non-zero. On success one JSON line summarises what was seen.
"""

import datetime
import json
import os
import sys

import boto3
import botocore.auth
from botocore.exceptions import ClientError, WaiterError

endpoint = os.environ["BERTH_ECS_ENDPOINT"]
image = os.environ["BERTH_IMAGE"]
subnet = os.environ["BERTH_SUBNET"]
ip_prefix = os.environ["BERTH_IP_PREFIX"]
ecs = boto3.client("ecs", endpoint_url=endpoint)
summary = {}

cluster = ecs.create_cluster(clusterName="boto", tags=[{"key": "by", "value": "boto3"}])["cluster"]
assert cluster["clusterArn"].endswith(":cluster/boto"), cluster

td = ecs.register_task_definition(
    family="boto-job",
    networkMode="awsvpc",
    requiresCompatibilities=["FARGATE"],
    cpu="256",
    memory="512",
    executionRoleArn="arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    containerDefinitions=[
        {
            "name": "job",
            "image": image,
            "essential": True,
            "stopTimeout": 5,
            "command": ["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.2; done"],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/boto"}},
        }
    ],
    tags=[{"key": "team", "value": "platform"}],
)
td_arn = td["taskDefinition"]["taskDefinitionArn"]
assert td_arn.endswith(":task-definition/boto-job:1"), td_arn
assert td["tags"] == [{"key": "team", "value": "platform"}], td

run = ecs.run_task(
    cluster="boto",
    taskDefinition="boto-job",
    count=3,
    launchType="FARGATE",
    startedBy="boto3-test",
    networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": ["default"]}},
    tags=[{"key": "env", "value": "ci"}],
)
assert run["failures"] == [], run["failures"]
arns = [t["taskArn"] for t in run["tasks"]]
assert len(arns) == 3, arns
assert all(t["lastStatus"] == "PROVISIONING" for t in run["tasks"]), run["tasks"]
assert isinstance(run["tasks"][0]["createdAt"], datetime.datetime)
summary["request_id"] = run["ResponseMetadata"]["RequestId"]

ecs.get_waiter("tasks_running").wait(cluster="boto", tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
described = ecs.describe_tasks(cluster="boto", tasks=[a.rsplit("/", 1)[1] for a in arns], include=["TAGS"])
assert described["failures"] == [], described["failures"]
ips = []
for t in described["tasks"]:
    assert t["lastStatus"] == "RUNNING", t
    details = {d["name"]: d["value"] for d in t["attachments"][0]["details"]}
    assert details["privateIPv4Address"].startswith(ip_prefix), details
    ips.append(details["privateIPv4Address"])
    assert {"key": "env", "value": "ci"} in t["tags"], t["tags"]
assert len(set(ips)) == 3, ips
summary["ips"] = ips

# A paginator over list-tasks, two per page: more than one page, every task once.
pages = list(
    ecs.get_paginator("list_tasks").paginate(
        cluster="boto", family="boto-job", desiredStatus="RUNNING", PaginationConfig={"PageSize": 2}
    )
)
listed = [a for p in pages for a in p["taskArns"]]
assert len(pages) >= 2, pages
assert sorted(listed) == sorted(arns), (listed, arns)
summary["pages"] = [len(p["taskArns"]) for p in pages]

# Tags through the tagging actions.
ecs.tag_resource(resourceArn=td_arn, tags=[{"key": "stage", "value": "caf\u00e9 \u6771\u4eac"}])
tags = ecs.list_tags_for_resource(resourceArn=td_arn)["tags"]
assert {"key": "stage", "value": "caf\u00e9 \u6771\u4eac"} in tags, tags
ecs.untag_resource(resourceArn=td_arn, tagKeys=["stage"])
assert ecs.list_tags_for_resource(resourceArn=td_arn)["tags"] == [{"key": "team", "value": "platform"}]

# A clock 10 minutes off either way: refused with AWS's type and text, and nothing runs.
real_now = botocore.auth.get_current_datetime
for shift, text in ((-10, "Signature expired"), (10, "Signature not yet current")):
    botocore.auth.get_current_datetime = lambda shift=shift: real_now() + datetime.timedelta(minutes=shift)
    try:
        ecs.run_task(cluster="boto", taskDefinition="boto-job", startedBy="skewed",
                     networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}})
        raise AssertionError("a skewed request was accepted")
    except ClientError as e:
        err = e.response["Error"]
        assert err["Code"] == "InvalidSignatureException", e.response
        assert err["Message"].startswith(text), err
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.response
    finally:
        botocore.auth.get_current_datetime = real_now
assert ecs.list_tasks(cluster="boto", startedBy="skewed")["taskArns"] == []
assert len(ecs.list_tasks(cluster="boto", desiredStatus="RUNNING")["taskArns"]) == 3

for a in arns:
    stopped = ecs.stop_task(cluster="boto", task=a, reason="boto3 says stop")["task"]
    assert stopped["desiredStatus"] == "STOPPED", stopped
ecs.get_waiter("tasks_stopped").wait(cluster="boto", tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 90})
final = ecs.describe_tasks(cluster="boto", tasks=arns)["tasks"]
for t in final:
    assert t["lastStatus"] == "STOPPED", t
    assert t["stopCode"] == "UserInitiated", t
    assert t["stoppedReason"] == "boto3 says stop", t
    assert t["containers"][0]["exitCode"] == 7, t["containers"]
    assert isinstance(t["stoppedAt"], datetime.datetime), t
summary["exit_codes"] = [t["containers"][0]["exitCode"] for t in final]

# The tasks-running waiter fails at once on a stopped task, as against AWS.
try:
    ecs.get_waiter("tasks_running").wait(cluster="boto", tasks=arns[:1], WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    raise AssertionError("tasks_running succeeded on a stopped task")
except WaiterError as e:
    assert "STOPPED" in str(e), str(e)

dereg = ecs.deregister_task_definition(taskDefinition="boto-job:1")["taskDefinition"]
assert dereg["status"] == "INACTIVE", dereg
try:
    ecs.describe_tasks(cluster="nope", tasks=arns)
    raise AssertionError("unknown cluster accepted")
except ecs.exceptions.ClusterNotFoundException as e:
    assert str(e).endswith("Cluster not found."), str(e)

print(json.dumps(summary))
sys.stdout.flush()
