//! Prometheus metrics and `berth stats` (issue 10, acceptance 4): with `--metrics-listen` on a
//! loopback address, `/metrics` of an agent running a task parses with the Prometheus project's
//! own Python text-format parser (`prometheus_client.parser`, from PyPI, in a cached venv) and
//! carries every series docs/observability.md lists, with sane values (the task's memory in
//! use > 0, its limit = the task definition's 512 MiB, tasks RUNNING >= 1, the histograms
//! counted). `berth stats --no-stream` shows the task and its container; an unknown task is
//! one clear error; a non-loopback `--metrics-listen` is refused.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use berth_tests::aws::{python_venv, run_bounded};
use berth_tests::{bin_path, require_root, wait_until, Cleanup};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PORT: u16 = 19464;
const PROMETHEUS_CLIENT: &str = "prometheus-client==0.26.0";

fn parser_venv() -> PathBuf {
    python_venv(
        "prometheus-client-0.26.0",
        &[PROMETHEUS_CLIENT.to_owned()],
        |dir| {
            let out = run_bounded(
                Command::new(dir.join("bin/python"))
                    .args(["-c", "import prometheus_client.parser"]),
                Duration::from_secs(60),
                "import prometheus_client.parser",
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        },
    )
}

/// Parse exposition text with prometheus_client's parser: families as JSON.
fn parse(venv: &Path, text_file: &Path) -> Vec<Value> {
    let script = concat!(
        "import json, sys\n",
        "from prometheus_client.parser import text_string_to_metric_families as parse\n",
        "fams = parse(open(sys.argv[1]).read())\n",
        "print(json.dumps([{'name': f.name, 'type': f.type, 'samples': [",
        "{'name': s.name, 'labels': s.labels, 'value': s.value} for s in f.samples]} for f in fams]))\n",
    );
    let out = run_bounded(
        Command::new(venv.join("bin/python"))
            .args(["-c", script])
            .arg(text_file),
        Duration::from_secs(60),
        "the Prometheus text parser",
    );
    assert!(
        out.status.success(),
        "prometheus_client refused /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn family<'a>(families: &'a [Value], name: &str, kind: &str) -> &'a Value {
    let f = families
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no family {name}"));
    assert_eq!(f["type"], kind, "{name}");
    f
}

/// The value of sample `sample` of family `name` whose labels include `labels`.
fn value(families: &[Value], name: &str, kind: &str, sample: &str, labels: &Value) -> f64 {
    let f = family(families, name, kind);
    let found = f["samples"].as_array().unwrap().iter().find(|s| {
        s["name"] == sample
            && labels
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| s["labels"][k] == *v)
    });
    found.unwrap_or_else(|| panic!("no {sample}{labels} in {f}"))["value"]
        .as_f64()
        .unwrap()
}

#[test]
fn metrics_parse_with_prometheus_and_stats_show_the_task() {
    if !require_root() {
        return;
    }
    let venv = parser_venv();
    let mut guard = Cleanup::new();
    let mut env = agent_support::start(&mut guard, "me", "10.233.31.0/24");

    // A public address is refused before anything starts.
    let refused = run_bounded(
        Command::new(bin_path("berth-agent"))
            .arg("--root")
            .arg(env.dir.join("refused-root"))
            .arg("--socket")
            .arg(env.dir.join("refused.sock"))
            .args(["--metrics-listen", "0.0.0.0:19465"]),
        Duration::from_secs(20),
        "berth-agent --metrics-listen 0.0.0.0",
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("metrics_listen 0.0.0.0:19465: only loopback"),
        "{err}"
    );
    assert!(!env.dir.join("refused-root").exists(), "nothing made");

    // The agent again, with /metrics on the host netns' loopback.
    let lo = Command::new("ip")
        .args(["-n", &env.netns, "link", "set", "lo", "up"])
        .output()
        .unwrap();
    assert!(lo.status.success());
    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    env.agent_args
        .extend(["--metrics-listen".to_owned(), format!("127.0.0.1:{PORT}")]);
    env.agent = env.spawn_agent("agent-metrics.log");
    let sock = env.agent_sock.clone();
    wait_until(Duration::from_secs(20), "the agent's socket", || {
        std::os::unix::net::UnixStream::connect(&sock).ok()
    });

    let td = json!({"family": "bt-metrics", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512", "containerDefinitions": [
            {"name": "app", "image": env.image.name, "stopTimeout": 5,
             "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]}]});
    std::fs::write(env.dir.join("td.json"), td.to_string()).unwrap();
    env.berth(&["register", env.dir.join("td.json").to_str().unwrap()]);
    let task = env
        .berth(&["run", "bt-metrics", "--subnet", "private"])
        .trim()
        .to_owned();
    wait_until(Duration::from_secs(60), "the task RUNNING", || {
        (env.describe(&task)["lastStatus"] == "RUNNING").then_some(())
    });

    let scrape = run_bounded(
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", env.netns))
            .args(["curl", "-sS", "--max-time", "20"])
            .arg(format!("http://127.0.0.1:{PORT}/metrics")),
        Duration::from_secs(30),
        "curl /metrics",
    );
    assert!(
        scrape.status.success(),
        "{}",
        String::from_utf8_lossy(&scrape.stderr)
    );
    let text_file = env.dir.join("metrics.txt");
    std::fs::write(&text_file, &scrape.stdout).unwrap();
    let f = parse(&venv, &text_file);
    let t = json!({"task": task});
    let c = json!({"task": task, "container": "app"});
    let mib512 = 512.0 * 1024.0 * 1024.0;

    let used = value(
        &f,
        "berth_task_memory_usage_bytes",
        "gauge",
        "berth_task_memory_usage_bytes",
        &t,
    );
    assert!(used > 0.0 && used < mib512, "{used}");
    let limit = value(
        &f,
        "berth_task_memory_limit_bytes",
        "gauge",
        "berth_task_memory_limit_bytes",
        &t,
    );
    assert_eq!(limit, mib512, "the task definition's memory");
    assert!(
        value(
            &f,
            "berth_container_memory_usage_bytes",
            "gauge",
            "berth_container_memory_usage_bytes",
            &c
        ) > 0.0
    );
    assert!(
        value(
            &f,
            "berth_task_cpu_seconds",
            "counter",
            "berth_task_cpu_seconds_total",
            &t
        ) >= 0.0
    );
    assert!(
        value(
            &f,
            "berth_container_cpu_seconds",
            "counter",
            "berth_container_cpu_seconds_total",
            &c
        ) >= 0.0
    );
    assert!(value(&f, "berth_task_pids", "gauge", "berth_task_pids", &t) >= 1.0);
    assert!(
        value(
            &f,
            "berth_container_pids",
            "gauge",
            "berth_container_pids",
            &c
        ) >= 1.0
    );
    // The ENI's counters exist (the task has sent nothing yet: zero is a fine value).
    assert!(
        value(
            &f,
            "berth_task_network_receive_bytes",
            "counter",
            "berth_task_network_receive_bytes_total",
            &t
        ) >= 0.0
    );
    assert!(
        value(
            &f,
            "berth_task_network_transmit_bytes",
            "counter",
            "berth_task_network_transmit_bytes_total",
            &t
        ) >= 0.0
    );
    assert!(
        value(
            &f,
            "berth_tasks",
            "gauge",
            "berth_tasks",
            &json!({"status": "RUNNING"})
        ) >= 1.0
    );
    let none = json!({});
    assert!(
        value(
            &f,
            "berth_runtask_to_running_seconds",
            "histogram",
            "berth_runtask_to_running_seconds_count",
            &none
        ) >= 1.0
    );
    let buckets = family(&f, "berth_runtask_to_running_seconds", "histogram")["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "berth_runtask_to_running_seconds_bucket")
        .count();
    assert!(buckets >= 1, "histogram buckets");
    assert!(
        value(
            &f,
            "berth_eni_attach_seconds",
            "histogram",
            "berth_eni_attach_seconds_count",
            &none
        ) >= 1.0
    );
    // The image was loaded before: its "pull" is a local hit, timed, with no bytes fetched.
    assert!(
        value(
            &f,
            "berth_image_pull_seconds",
            "histogram",
            "berth_image_pull_seconds_count",
            &json!({"source": "local"})
        ) >= 1.0
    );
    assert!(
        value(
            &f,
            "berth_image_pull_bytes",
            "counter",
            "berth_image_pull_bytes_total",
            &none
        ) >= 0.0
    );

    // berth stats: the task and its container, memory against the task's 512 MiB.
    let table = env.berth(&["stats", "--no-stream", &task]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("TASK") && lines[0].contains("CPU %"),
        "{table}"
    );
    let task_row = lines.iter().find(|l| l.contains("(task)")).unwrap();
    assert!(
        task_row.starts_with(&task) && task_row.contains("/ 512.0MiB"),
        "{table}"
    );
    assert!(task_row.contains("RUNNING"), "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&task) && l.contains(" app ")),
        "{table}"
    );
    let all = env.berth(&["stats", "--no-stream"]);
    assert!(all.contains(&task), "{all}");
    let unknown = env.berth_output(&["stats", "--no-stream", "0123456789abcdef0123456789abcdef"]);
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success(), "{err}");
    assert!(
        err.contains("is not known to this agent") && err.lines().count() == 1,
        "{err}"
    );

    env.berth(&["stop", &task]);
    wait_until(Duration::from_secs(60), "the task STOPPED", || {
        (env.describe(&task)["lastStatus"] == "STOPPED").then_some(())
    });
}
