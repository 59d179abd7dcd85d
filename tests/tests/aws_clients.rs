//! Issue 7 end to end with the real clients: the pinned aws CLI (v1) and boto3 from PyPI, in a
//! venv the test support makes once (`berth_tests::aws::venv`), drive berth-agent's SigV4
//! endpoint on 127.0.0.1 with real netd, images and runtime underneath. Nothing is mocked.
//!
//! The agent and netd run in a throwaway "host" network namespace (see agent_support); its
//! loopback carries the ECS endpoint, so the clients run in that namespace too and reach
//! nothing but 127.0.0.1 there. Their keys and config come from the test's own files.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use berth_tests::aws::{run_bounded, Clients, KeyPair};
use berth_tests::{bin_path, require_root, unique, wait_until, Cleanup};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PORT: u16 = 8080;
const REGION: &str = "us-east-1";

fn key() -> KeyPair {
    KeyPair {
        id: "AKIDBERTHTEST0001".into(),
        secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYBERTHTESTKEY".into(),
    }
}

/// netd + agent (with `--ecs-listen` and a root-only credentials file) + the clients.
fn start(guard: &mut Cleanup, role: &str, cidr: &str) -> (agent_support::Env, Clients) {
    let venv = berth_tests::aws::venv();
    let mut env = agent_support::start(guard, role, cidr);
    let lo = Command::new("ip")
        .args(["-n", &env.netns, "link", "set", "lo", "up"])
        .output()
        .unwrap();
    assert!(
        lo.status.success(),
        "lo up: {}",
        String::from_utf8_lossy(&lo.stderr)
    );
    let creds = env.dir.join("agent-credentials");
    let k = key();
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n[other]\naws_access_key_id = AKIDBERTHTEST0002\naws_secret_access_key = another-secret\n\n[temporary]\naws_access_key_id = ASIABERTHTEST0003\naws_secret_access_key = temp-secret\naws_session_token = FQoGZXIvYXdzEXAMPLETOKEN==\n",
            k.id, k.secret
        ),
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Restart the agent with the SigV4 endpoint on (same root, nothing running yet).
    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    env.agent_args.extend([
        "--ecs-listen".into(),
        format!("127.0.0.1:{PORT}"),
        "--credentials".into(),
        creds.to_str().unwrap().into(),
    ]);
    env.agent = env.spawn_agent("agent-ecs.log");
    // The TCP listener is bound before the unix socket.
    let sock = env.agent_sock.clone();
    wait_until(
        Duration::from_secs(20),
        "the agent with --ecs-listen",
        || std::os::unix::net::UnixStream::connect(&sock).ok(),
    );
    let clients = Clients::new(
        venv,
        &env.dir,
        &format!("http://127.0.0.1:{PORT}"),
        REGION,
        &k,
        Some(&env.netns),
    );
    (env, clients)
}

/// A Fargate task definition as a user would paste it (two containers, roles, awslogs,
/// runtimePlatform, health check, dependsOn), with the locally loaded busybox image.
fn pasted_definition(image: &str) -> Value {
    json!({
      "family": "web-app",
      "taskRoleArn": "arn:aws:iam::123456789012:role/webTaskRole",
      "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
      "networkMode": "awsvpc",
      "requiresCompatibilities": ["FARGATE"],
      "cpu": "512",
      "memory": "1024",
      "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
      "ephemeralStorage": {"sizeInGiB": 30},
      "containerDefinitions": [
        {
          "name": "web",
          "image": image,
          "essential": true,
          "cpu": 256,
          "memoryReservation": 256,
          "portMappings": [{"containerPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"}],
          "environment": [{"name": "GREETING", "value": "hello-from-definition"}],
          "command": ["sh", "-c", "mkdir -p /www && echo \"$GREETING\" > /www/index.html && exec httpd -f -p 8080 -h /www"],
          "healthCheck": {"command": ["CMD-SHELL", "wget -qO- http://localhost:8080/ || exit 1"], "interval": 5, "timeout": 2, "retries": 3, "startPeriod": 1},
          "dependsOn": [{"containerName": "sidecar", "condition": "START"}],
          "stopTimeout": 2,
          "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web-app", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}}
        },
        {
          "name": "sidecar",
          "image": image,
          "essential": false,
          "memory": 128,
          "command": ["sh", "-c", "until wget -qO- http://localhost:8080/; do sleep 0.2; done; trap 'exit 0' TERM; while true; do sleep 0.2; done"],
          "workingDirectory": "/tmp",
          "stopTimeout": 5,
          "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]
        }
      ],
      "volumes": [{"name": "scratch"}],
      "tags": [{"key": "team", "value": "platform"}]
    })
}

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    format!("file://{}", p.display())
}

fn ip_of(task: &Value) -> String {
    task["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .and_then(|d| d["value"].as_str())
        .unwrap_or_else(|| panic!("no privateIPv4Address in {task}"))
        .to_owned()
}

#[test]
fn aws_cli_drives_a_two_container_fargate_task_and_unsigned_requests_run_nothing() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (env, aws) = start(&mut guard, "aw", "10.233.7.0/24");
    let dir = env.dir.clone();

    let c = aws
        .aws(&["ecs", "create-cluster", "--cluster-name", "demo"])
        .json();
    assert_eq!(
        c["cluster"]["clusterArn"],
        "arn:aws:ecs:us-east-1:123456789012:cluster/demo"
    );

    let td_file = write(&dir, "taskdef.json", &pasted_definition(&env.image.name));
    let td = aws
        .aws(&[
            "ecs",
            "register-task-definition",
            "--cli-input-json",
            &td_file,
        ])
        .json();
    assert_eq!(
        td["taskDefinition"]["taskDefinitionArn"],
        "arn:aws:ecs:us-east-1:123456789012:task-definition/web-app:1"
    );
    assert_eq!(
        td["taskDefinition"]["containerDefinitions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Acceptance 3: unsigned, wrong secret, unknown key id — each refused with AWS's type, and
    // nothing behind them runs (the definition is ACTIVE, so a run-task that got through
    // would create a task).
    let run_refused = [
        "ecs",
        "run-task",
        "--cluster",
        "demo",
        "--task-definition",
        "web-app:1",
        "--started-by",
        "refused",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[private]}",
    ];
    let mut unsigned = vec!["--no-sign-request"];
    unsigned.extend(run_refused);
    let e = aws.aws(&unsigned);
    let text = e.error("MissingAuthenticationTokenException", "RunTask");
    assert!(text.contains("Missing Authentication Token"), "{text}");
    let k = key();
    let e = aws.aws_with(
        &run_refused,
        &[
            ("AWS_ACCESS_KEY_ID", &k.id),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ],
    );
    let text = e.error("InvalidSignatureException", "RunTask");
    assert!(
        text.contains("The request signature we calculated does not match"),
        "{text}"
    );
    let e = aws.aws_with(
        &run_refused,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDNOSUCHKEY0000"),
            ("AWS_SECRET_ACCESS_KEY", &k.secret),
        ],
    );
    let text = e.error("UnrecognizedClientException", "RunTask");
    assert!(
        text.contains("The security token included in the request is invalid."),
        "{text}"
    );
    let e = aws.aws_with(
        &[
            "ecs",
            "register-task-definition",
            "--cli-input-json",
            &td_file,
            "--family",
            "refused-family",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", &k.id),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        ],
    );
    e.error("InvalidSignatureException", "RegisterTaskDefinition");
    let listed = aws
        .aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            "demo",
            "--started-by",
            "refused",
        ])
        .json();
    assert_eq!(
        listed["taskArns"],
        json!([]),
        "a refused run-task created nothing"
    );
    let families = aws
        .aws(&["ecs", "list-task-definition-families", "--status", "ALL"])
        .json();
    assert_eq!(
        families["families"],
        json!(["web-app"]),
        "a refused register created nothing"
    );
    // The second key pair of the credentials file works too.
    let other = aws.aws_with(
        &["ecs", "list-clusters"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDBERTHTEST0002"),
            ("AWS_SECRET_ACCESS_KEY", "another-secret"),
        ],
    );
    assert!(other.json()["clusterArns"]
        .to_string()
        .contains("cluster/demo"));
    // A key with a session token: signed with it, accepted; without it or with another,
    // refused as AWS refuses an unknown token.
    let temp = [
        ("AWS_ACCESS_KEY_ID", "ASIABERTHTEST0003"),
        ("AWS_SECRET_ACCESS_KEY", "temp-secret"),
    ];
    let mut with_token = temp.to_vec();
    with_token.push(("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLETOKEN=="));
    aws.aws_with(&["ecs", "list-clusters"], &with_token).json();
    aws.aws_with(&["ecs", "list-clusters"], &temp)
        .error("UnrecognizedClientException", "ListClusters");
    with_token[2].1 = "AnotherToken";
    aws.aws_with(&["ecs", "list-clusters"], &with_token)
        .error("UnrecognizedClientException", "ListClusters");

    // Acceptance 1: run-task with --network-configuration and --overrides, the waiters, describe.
    let overrides = json!({"containerOverrides": [{"name": "web",
        "environment": [{"name": "GREETING", "value": "hello-from-override"}]}]});
    let run = aws
        .aws(&[
            "ecs", "run-task", "--cluster", "demo", "--task-definition", "web-app:1",
            "--launch-type", "FARGATE", "--started-by", "aws-cli-test",
            "--network-configuration",
            "awsvpcConfiguration={subnets=[private],securityGroups=[default],assignPublicIp=DISABLED}",
            "--overrides", &overrides.to_string(),
            "--tags", "key=env,value=dev",
        ])
        .json();
    let task = &run["tasks"][0];
    assert_eq!(task["lastStatus"], "PROVISIONING", "{run}");
    assert_eq!(task["desiredStatus"], "RUNNING");
    let arn = task["taskArn"].as_str().unwrap().to_owned();
    let id = arn.rsplit('/').next().unwrap().to_owned();
    assert!(
        arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/demo/"),
        "{arn}"
    );

    let w = aws.aws(&[
        "ecs",
        "wait",
        "tasks-running",
        "--cluster",
        "demo",
        "--tasks",
        &arn,
    ]);
    if w.code != 0 {
        let d = aws.aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "demo",
            "--tasks",
            &arn,
        ]);
        panic!("wait tasks-running: {w:?}\n{}", d.stdout);
    }
    let d = aws
        .aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "demo",
            "--tasks",
            &id,
            "--include",
            "TAGS",
        ])
        .json();
    let t = &d["tasks"][0];
    assert_eq!(t["lastStatus"], "RUNNING", "{d}");
    let ip = ip_of(t);
    assert!(
        ip.starts_with("10.233.7."),
        "the ENI's IP in attachments: {t}"
    );
    assert_eq!(
        t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"],
        ip.as_str()
    );
    assert_eq!(t["tags"], json!([{"key": "env", "value": "dev"}]));
    assert_eq!(
        t["overrides"]["containerOverrides"][0]["environment"][0]["value"],
        "hello-from-override"
    );
    // The override reached the container: the sidecar fetched it over localhost.
    let side_log = env.root.join("tasks").join(&id).join("sidecar/output.log");
    wait_until(
        Duration::from_secs(30),
        "the sidecar to fetch the overridden page",
        || {
            std::fs::read_to_string(&side_log)
                .ok()
                .filter(|l| l.contains("hello-from-override"))
        },
    );

    // list-tasks with filters.
    let has = |args: &[&str]| -> bool {
        let mut a = vec!["ecs", "list-tasks", "--cluster", "demo"];
        a.extend(args);
        aws.aws(&a).json()["taskArns"].to_string().contains(&id)
    };
    assert!(has(&["--family", "web-app", "--desired-status", "RUNNING"]));
    assert!(has(&["--started-by", "aws-cli-test"]));
    assert!(!has(&["--desired-status", "STOPPED"]));
    assert!(!has(&["--family", "other"]));

    // Tags on the task, the definition and the cluster.
    let td_arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web-app:1";
    let cluster_arn = "arn:aws:ecs:us-east-1:123456789012:cluster/demo";
    for r in [arn.as_str(), td_arn, cluster_arn] {
        aws.aws(&[
            "ecs",
            "tag-resource",
            "--resource-arn",
            r,
            "--tags",
            "key=cost,value=42",
        ])
        .json();
        let tags = aws
            .aws(&["ecs", "list-tags-for-resource", "--resource-arn", r])
            .json();
        assert!(
            tags["tags"]
                .as_array()
                .unwrap()
                .contains(&json!({"key": "cost", "value": "42"})),
            "{r}: {tags}"
        );
        aws.aws(&[
            "ecs",
            "untag-resource",
            "--resource-arn",
            r,
            "--tag-keys",
            "cost",
        ])
        .json();
        let tags = aws
            .aws(&["ecs", "list-tags-for-resource", "--resource-arn", r])
            .json();
        assert!(!tags.to_string().contains("cost"), "{r}: {tags}");
    }

    // stop-task, the tasks-stopped waiter, exit codes and the reason.
    let s = aws
        .aws(&[
            "ecs",
            "stop-task",
            "--cluster",
            "demo",
            "--task",
            &arn,
            "--reason",
            "done by the aws cli",
        ])
        .json();
    assert_eq!(s["task"]["desiredStatus"], "STOPPED");
    aws.aws(&[
        "ecs",
        "wait",
        "tasks-stopped",
        "--cluster",
        "demo",
        "--tasks",
        &arn,
    ])
    .json();
    let d = aws
        .aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "demo",
            "--tasks",
            &arn,
        ])
        .json();
    let t = &d["tasks"][0];
    assert_eq!(t["lastStatus"], "STOPPED", "{d}");
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "done by the aws cli");
    assert!(t["stoppedAt"].is_number(), "{t}");
    let codes: Vec<(Value, Value)> = t["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].clone(), c["exitCode"].clone()))
        .collect();
    assert!(codes.contains(&(json!("sidecar"), json!(0))), "{codes:?}");
    let web = &codes.iter().find(|(n, _)| n == "web").unwrap().1;
    assert!(
        *web == json!(137) || *web == json!(143),
        "web's exit code: {codes:?}"
    );

    // The tasks-running waiter fails as against AWS: on a STOPPED task, on an unknown one.
    let e = aws.aws(&[
        "ecs",
        "wait",
        "tasks-running",
        "--cluster",
        "demo",
        "--tasks",
        &arn,
    ]);
    assert!(
        e.code == 255 && e.stderr.contains("matched expected path: \"STOPPED\""),
        "{e:?}"
    );
    let e = aws.aws(&[
        "ecs",
        "wait",
        "tasks-running",
        "--cluster",
        "demo",
        "--tasks",
        "0123456789abcdef0123456789abcdef",
    ]);
    assert!(
        e.code == 255 && e.stderr.contains("matched expected path: \"MISSING\""),
        "{e:?}"
    );

    let dereg = aws
        .aws(&[
            "ecs",
            "deregister-task-definition",
            "--task-definition",
            "web-app:1",
        ])
        .json();
    assert_eq!(dereg["taskDefinition"]["status"], "INACTIVE");

    // Acceptance 4: issue 6's bad input through the CLI: its usual error line and type.
    let bad = |name: &str, edit: &dyn Fn(&mut Value), code: &str, fragment: &str| {
        let mut def = pasted_definition(&env.image.name);
        edit(&mut def);
        let file = write(&dir, &format!("{name}.json"), &def);
        let e = aws.aws(&["ecs", "register-task-definition", "--cli-input-json", &file]);
        let text = e.error(code, "RegisterTaskDefinition");
        assert!(text.contains(fragment), "{name}: `{fragment}` in {text}");
    };
    bad(
        "size",
        &|d| d["memory"] = json!("8192"),
        "ClientException",
        "Invalid 'cpu' setting for task.",
    );
    bad(
        "cycle",
        &|d| {
            d["containerDefinitions"][1]["dependsOn"] =
                json!([{"containerName": "web", "condition": "START"}])
        },
        "ClientException",
        "dependency cycle",
    );
    bad(
        "missing-dep",
        &|d| d["containerDefinitions"][0]["dependsOn"][0]["containerName"] = json!("db"),
        "ClientException",
        "containerDefinitions[0].dependsOn[0].containerName",
    );
    bad(
        "no-image",
        &|d| {
            d["containerDefinitions"][1]
                .as_object_mut()
                .unwrap()
                .remove("image");
        },
        "ClientException",
        "containerDefinitions[1].image",
    );
    bad(
        "privileged",
        &|d| d["containerDefinitions"][0]["privileged"] = json!(true),
        "ClientException",
        "containerDefinitions[0].privileged",
    );
    let e = aws.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "nope",
        "--task-definition",
        "web-app",
    ]);
    assert!(e
        .error("ClusterNotFoundException", "RunTask")
        .contains("Cluster not found."));
    let e = aws.aws(&[
        "ecs",
        "run-task",
        "--cluster",
        "demo",
        "--task-definition",
        "web-app:1",
    ]);
    e.error("ClientException", "RunTask");
    let e = aws.aws(&[
        "ecs",
        "describe-task-definition",
        "--task-definition",
        "nope:1",
    ]);
    e.error("ClientException", "DescribeTaskDefinition");
    // Missing required fields and malformed JSON never leave the CLI (its own checks).
    let e = aws.aws(&["ecs", "run-task", "--cluster", "demo"]);
    assert_eq!(
        e.code, 2,
        "argparse refuses a missing --task-definition: {e:?}"
    );
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"family\": ").unwrap();
    let e = aws.aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &format!("file://{}", broken.display()),
    ]);
    assert_ne!(e.code, 0, "{e:?}");
    let mut ghost = pasted_definition("bt-no-such-image:1");
    ghost["family"] = json!("ghost");
    ghost["containerDefinitions"] = json!([ghost["containerDefinitions"][1].clone()]);
    ghost["containerDefinitions"][0]["essential"] = json!(true);
    let file = write(&dir, "ghost.json", &ghost);
    aws.aws(&["ecs", "register-task-definition", "--cli-input-json", &file])
        .json();
    let ghost_run = aws
        .aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "demo",
            "--task-definition",
            "ghost",
            "--network-configuration",
            "awsvpcConfiguration={subnets=[private]}",
        ])
        .json();
    // An unknown subnet or security group is refused before any task is made, as on ECS.
    for (net, what) in [
        (
            "awsvpcConfiguration={subnets=[no-such-subnet]}",
            "The subnet ID 'no-such-subnet' does not exist",
        ),
        (
            "awsvpcConfiguration={subnets=[private],securityGroups=[sg-nope]}",
            "The security group 'sg-nope' does not exist",
        ),
    ] {
        let e = aws.aws(&[
            "ecs",
            "run-task",
            "--cluster",
            "demo",
            "--task-definition",
            "ghost",
            "--started-by",
            "bad-network",
            "--network-configuration",
            net,
        ]);
        let text = e.error("InvalidParameterException", "RunTask");
        assert!(text.contains(what), "{text}");
    }
    let listed = aws
        .aws(&[
            "ecs",
            "list-tasks",
            "--cluster",
            "demo",
            "--started-by",
            "bad-network",
        ])
        .json();
    assert_eq!(listed["taskArns"], json!([]), "no task for a bad network");
    // An image that does not exist fails the task after RunTask answered (as on ECS): the
    // tasks-running waiter fails on STOPPED, and the reason names the pull.
    let ghost_arn = ghost_run["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let e = aws.aws(&[
        "ecs",
        "wait",
        "tasks-running",
        "--cluster",
        "demo",
        "--tasks",
        &ghost_arn,
    ]);
    assert!(
        e.code == 255 && e.stderr.contains("matched expected path: \"STOPPED\""),
        "{e:?}"
    );
    let d = aws
        .aws(&[
            "ecs",
            "describe-tasks",
            "--cluster",
            "demo",
            "--tasks",
            &ghost_arn,
        ])
        .json();
    let reason = d["tasks"][0]["stoppedReason"].as_str().unwrap_or("");
    assert!(reason.starts_with("CannotPullContainerError"), "{d}");
    // Refusals were logged, but never a signature or a secret.
    let log = std::fs::read_to_string(dir.join("agent-ecs.log")).unwrap();
    assert!(log.contains("ECS request refused"), "{log}");
    for secret in [
        "Signature=",
        &k.secret,
        "temp-secret",
        "FQoGZXIvYXdzEXAMPLETOKEN",
    ] {
        assert!(!log.contains(secret), "the agent log shows `{secret}`");
    }
    drop(env);
}

#[test]
fn boto3_runs_tasks_pages_through_them_and_skewed_clocks_are_refused() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let (env, clients) = start(&mut guard, "ab3", "10.233.8.0/24");
    let script = env.dir.join("boto3_flow.py");
    std::fs::write(&script, include_str!("aws_support/boto3_flow.py")).unwrap();
    let mut cmd = clients.command("python");
    cmd.arg(&script)
        .env("BERTH_IMAGE", &env.image.name)
        .env("BERTH_SUBNET", "private")
        .env("BERTH_IP_PREFIX", "10.233.8.");
    let out = run_bounded(&mut cmd, Duration::from_secs(240), "boto3_flow.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "boto3_flow.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
    assert!(summary["pages"].as_array().unwrap().len() >= 2, "{summary}");
    assert_eq!(summary["exit_codes"], json!([7, 7, 7]), "{summary}");
    drop(env);
}

/// A credentials file that group or others may read, or a non-loopback address, is refused at
/// start with a clear error, before anything is created.
#[test]
fn unsafe_credentials_and_public_addresses_are_refused() {
    if !require_root() {
        return;
    }
    let dir = berth_tests::env::test_dir(&unique("ac"));
    let mut guard = Cleanup::new();
    let d = dir.clone();
    guard.defer(format!("remove {}", dir.display()), move || {
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
    });
    let creds = dir.join("credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = A\naws_secret_access_key = B\n",
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let agent = |addr: &str| {
        let out = run_bounded(
            Command::new(bin_path("berth-agent"))
                .arg("--root")
                .arg(dir.join("root"))
                .arg("--socket")
                .arg(dir.join("agent.sock"))
                .args(["--ecs-listen", addr, "--credentials"])
                .arg(&creds),
            Duration::from_secs(20),
            "berth-agent",
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = agent("127.0.0.1:8080");
    assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
    assert!(!dir.join("root").exists(), "nothing created");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = agent("0.0.0.0:8080");
    assert!(e.contains("only loopback"), "{e}");
    assert!(!dir.join("agent.sock").exists() && !dir.join("root").exists());
}
