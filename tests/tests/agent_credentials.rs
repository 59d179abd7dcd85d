//! Issue 10, acceptance 2: task role credentials. The agent reads a root-only
//! `--task-credentials` file (role ARN → keys). A task whose definition names one of its
//! roles gets `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, and its 169.254.170.2 answers that URI
//! with the JSON the SDKs read: busybox wget inside the task shows it, and real boto3 (the
//! pinned venv of the aws tests, run in the task's network namespace with the container's
//! variable and nothing else to find keys in) resolves the role's keys through its container
//! credential provider. A task without a role gets no variable and a clear error; a wrong id
//! gets an error; a role not in the file is refused by RunTask with nothing created; a file
//! that group or others may read stops the agent at start.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_support;

use agent_support::{runtime_ids, Env};
use berth_tests::aws::run_bounded;
use berth_tests::{bin_path, require_root, wait_until, Cleanup};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const ROLE: &str = "arn:aws:iam::123456789012:role/bt-app";
const KEY_ID: &str = "ASIABERTHROLE0001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYROLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEBERTHROLETOKEN==";

/// `berth exec TASK -- sh -c SCRIPT`: (exit code, stdout).
fn sh(env: &Env, task: &str, script: &str) -> (i32, String) {
    let out = env.berth_output(&["exec", task, "--", "sh", "-c", script]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

fn wait_running(env: &Env, task: &str) {
    wait_until(Duration::from_secs(120), "a task to reach RUNNING", || {
        let t = env.describe(task);
        assert_ne!(t["lastStatus"], "STOPPED", "stopped early: {t}");
        (t["lastStatus"] == "RUNNING").then_some(())
    });
}

fn netns_of(env: &Env, task: &str) -> String {
    let enis: Value = serde_json::from_str(&env.net(&["enis", "--output", "json"])).unwrap();
    enis.as_array()
        .unwrap()
        .iter()
        .find(|e| e["task"] == task)
        .and_then(|e| e["netnsPath"].as_str())
        .unwrap_or_else(|| panic!("no ENI of {task} in {enis}"))
        .to_owned()
}

/// curl in the network namespace at `netns`: (HTTP status, body).
fn curl_in(netns: &str, url: &str) -> (String, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .args(["curl", "-s", "--max-time", "3", "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_owned(), body.to_owned())
}

/// boto3's default credential chain, run in `netns` with only `relative_uri` to go on (no
/// files, no other keys, instance metadata off): what it resolved, as JSON.
fn boto3_in(env: &Env, netns: &str, relative_uri: Option<&str>) -> Value {
    let venv = berth_tests::aws::venv();
    let home = env.dir.join("boto3-home");
    std::fs::create_dir_all(&home).unwrap();
    let script = "import boto3, json\n\
        c = boto3.Session(region_name='us-east-1').get_credentials()\n\
        if c is None:\n    print(json.dumps(None))\n\
        else:\n    f = c.get_frozen_credentials()\n    \
        print(json.dumps({'method': c.method, 'access_key': f.access_key, 'secret_key': f.secret_key, 'token': f.token}))\n";
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={netns}"))
        .arg(venv.join("bin/python"))
        .args(["-c", script])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", home.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if let Some(uri) = relative_uri {
        cmd.env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", uri);
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(60), "boto3 in the task netns");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_task_with_a_role_gets_its_keys_from_the_credentials_endpoint() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let mut env = agent_support::start(&mut guard, "ac", "10.233.11.0/24");

    // A file group or others may read stops the agent before it makes anything.
    let creds = env.dir.join("task-credentials");
    std::fs::write(
        &creds,
        format!("[{ROLE}]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let other_root = env.dir.join("refused-root");
    let refused = Command::new(bin_path("berth-agent"))
        .arg("--root")
        .arg(&other_root)
        .arg("--socket")
        .arg(env.dir.join("refused.sock"))
        .arg("--task-credentials")
        .arg(&creds)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("task-credentials") && stderr.contains("mode 0644"),
        "{stderr}"
    );
    assert!(!other_root.exists(), "nothing is created");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The agent again, with the task roles.
    env.agent.0.kill().unwrap();
    env.agent.0.wait().unwrap();
    env.agent_args
        .extend(["--task-credentials".into(), creds.to_str().unwrap().into()]);
    env.agent = env.spawn_agent("agent-roles.log");
    let sock = env.agent_sock.clone();
    wait_until(Duration::from_secs(20), "the agent with task roles", || {
        std::os::unix::net::UnixStream::connect(&sock).ok()
    });

    let def = |family: &str, role: Option<&str>| {
        let mut td = json!({"family": family, "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "app", "image": env.image.name,
                "stopTimeout": 2, "command": ["sleep", "1000"]}]});
        if let Some(r) = role {
            td["taskRoleArn"] = json!(r);
        }
        let path = env.dir.join(format!("{family}.json"));
        std::fs::write(&path, td.to_string()).unwrap();
        env.berth(&["register", path.to_str().unwrap()]);
    };
    def("bt-role", Some(ROLE));
    def("bt-norole", None);
    def(
        "bt-badrole",
        Some("arn:aws:iam::123456789012:role/bt-missing"),
    );

    // A role the file does not hold: RunTask refuses it by name, and no task exists.
    let out = env.berth_output(&["run", "bt-badrole", "--subnet", "private"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("role/bt-missing is not in the task credentials file"),
        "{stderr}"
    );
    assert_eq!(
        env.berth(&["ps", "-a", "-o", "json"])
            .matches("bt-badrole")
            .count(),
        0,
        "no task of the refused definition"
    );

    let with = env
        .berth(&["run", "bt-role", "--subnet", "private"])
        .trim()
        .to_owned();
    let without = env
        .berth(&["run", "bt-norole", "--subnet", "private"])
        .trim()
        .to_owned();
    wait_running(&env, &with);
    wait_running(&env, &without);

    // Inside the task: the relative URI, and the keys behind it.
    let (rc, uri) = sh(&env, &with, "echo $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    assert_eq!(rc, 0);
    let id = uri
        .strip_prefix("/v2/credentials/")
        .unwrap_or_else(|| panic!("{uri}"));
    assert_eq!(id.len(), 32, "an unguessable id: {uri}");
    assert!(!id.contains(&with), "{uri}");
    let (rc, body) = sh(
        &env,
        &with,
        "timeout 5 wget -qO- \"http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\"",
    );
    assert_eq!(rc, 0, "{body}");
    let keys: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(keys["AccessKeyId"], KEY_ID);
    assert_eq!(keys["SecretAccessKey"], SECRET);
    assert_eq!(keys["Token"], TOKEN);
    assert_eq!(keys["RoleArn"], ROLE);
    assert!(
        keys["Expiration"].as_str().unwrap().ends_with('Z'),
        "{keys}"
    );

    // boto3's container provider in the task's namespace, with the container's variable.
    let with_ns = netns_of(&env, &with);
    let got = boto3_in(&env, &with_ns, Some(&uri));
    println!("boto3 in task {with}: method {}", got["method"]);
    assert_eq!(got["method"], "container-role", "{got}");
    assert_eq!(got["access_key"], KEY_ID);
    assert_eq!(got["secret_key"], SECRET);
    assert_eq!(got["token"], TOKEN);

    // A wrong id in the same task: an error, no keys.
    let (code, body) = curl_in(
        &with_ns,
        "http://169.254.170.2/v2/credentials/0123456789abcdef0123456789abcdef",
    );
    assert_eq!(code, "400", "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "InvalidIdInRequest"
    );
    assert!(!body.contains(KEY_ID), "{body}");

    // Without a role: no variable, and the role task's URI gets an error there.
    let (rc, none) = sh(
        &env,
        &without,
        "echo \"[$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI]\"",
    );
    assert_eq!((rc, none.as_str()), (0, "[]"));
    let without_ns = netns_of(&env, &without);
    let (code, body) = curl_in(&without_ns, &format!("http://169.254.170.2{uri}"));
    assert_eq!(code, "404", "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["code"], "NoTaskRole", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("no task role"),
        "{err}"
    );
    assert!(!body.contains(KEY_ID), "{body}");
    assert_eq!(
        boto3_in(&env, &without_ns, None),
        Value::Null,
        "boto3 finds no keys"
    );

    for t in [&with, &without] {
        env.berth(&["stop", t]);
    }
    for t in [&with, &without] {
        wait_until(Duration::from_secs(60), "a task to reach STOPPED", || {
            (env.describe(t)["lastStatus"] == "STOPPED").then_some(())
        });
    }
    assert_eq!(runtime_ids(&env.runtime_root), Vec::<String>::new());
    drop(env);
}
