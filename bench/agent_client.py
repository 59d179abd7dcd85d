"""The ECS client of bench/agent.sh, over berth-agent's unix socket (one kept-alive HTTP/1.1
connection, as the aws CLI keeps one).

  agent_client.py SOCK call ACTION JSON      one action; prints the answer
  agent_client.py SOCK run FAMILY SUBNET SG  RunTask, then DescribeTasks every POLL_MS until
                                             lastStatus is RUNNING; prints "MS TASK_ID"
  agent_client.py SOCK stop TASK_ID          StopTask, then waits for STOPPED

"RUNNING" is measured from just before RunTask is sent to the arrival of the first
DescribeTasks answer that reports lastStatus RUNNING (the agent has no event stream), so the
figure includes up to one polling interval plus one DescribeTasks round trip.
"""
import http.client, json, os, socket, sys, time

POLL_MS = float(os.environ.get("POLL_MS", "1"))
TIMEOUT_S = 60


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("ecs", timeout=TIMEOUT_S)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT_S)
        self.sock.connect(self.path)


def call(conn, action, body):
    conn.request("POST", "/", json.dumps(body), {
        "X-Amz-Target": "AmazonEC2ContainerServiceV20141113." + action,
        "Content-Type": "application/x-amz-json-1.1"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"{action}: HTTP {r.status}: {data.decode()}")
    return json.loads(data)


def status(conn, task):
    v = call(conn, "DescribeTasks", {"tasks": [task]})
    return v["tasks"][0]


def main():
    sock, verb = sys.argv[1], sys.argv[2]
    conn = UnixConnection(sock)
    if verb == "call":
        print(json.dumps(call(conn, sys.argv[3], json.loads(sys.argv[4]))))
    elif verb == "run":
        family, subnet, group = sys.argv[3:6]
        body = {"taskDefinition": family, "count": 1, "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}}
        conn.connect()  # connected beforehand, as a client with a kept-alive connection is
        t0 = time.perf_counter()
        task = call(conn, "RunTask", body)["tasks"][0]["taskArn"].rsplit("/", 1)[1]
        deadline = t0 + TIMEOUT_S
        while True:
            t = status(conn, task)
            if t["lastStatus"] == "RUNNING":
                break
            if t["lastStatus"] == "STOPPED" or time.perf_counter() > deadline:
                raise SystemExit(f"task {task} did not reach RUNNING: {json.dumps(t)}")
            time.sleep(POLL_MS / 1000)
        print(f"{(time.perf_counter() - t0) * 1000:.3f} {task}")
    elif verb == "stop":
        task = sys.argv[3]
        call(conn, "StopTask", {"task": task, "reason": "bench"})
        deadline = time.perf_counter() + TIMEOUT_S
        while status(conn, task)["lastStatus"] != "STOPPED":
            if time.perf_counter() > deadline:
                raise SystemExit(f"task {task} did not reach STOPPED")
            time.sleep(0.01)
    else:
        raise SystemExit(f"unknown verb {verb}")


main()
