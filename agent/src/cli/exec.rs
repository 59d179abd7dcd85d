//! `berth exec TASK [CONTAINER] [-i] [-t] -- CMD...`: what ECS Exec does, with no cloud in the
//! way. The agent's DescribeTasks names the container (`runtimeId`) and where its runtime
//! keeps it (`berthRuntime`); the CLI then runs `berth-runtime exec` itself, so the process
//! joins every namespace and the cgroup of the container and gets its seccomp filter,
//! capabilities and user, as the container's own process has them. stdio is attached and the
//! process's exit status is the command's exit code.

use super::client::AgentClient;
use super::console;
use super::{CliError, Ctx};
use clap::Args;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// `berth exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Task id or ARN.
    pub task: String,
    /// The container (may be left out when the task has one).
    pub container: Option<String>,
    /// Keep stdin attached (otherwise the process reads /dev/null).
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the process a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// The cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Where to run the command: the container's runtime id and its runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The container's name.
    pub name: String,
    /// berth-runtime's container id.
    pub runtime_id: String,
    /// The runtime binary.
    pub binary: PathBuf,
    /// The runtime's `--root`.
    pub root: PathBuf,
}

fn names(containers: &[Value]) -> String {
    containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Pick the container of a described task (pure: tested without an agent).
pub fn pick(task: &Value, id: &str, container: Option<&str>) -> Result<Target, String> {
    let status = task["lastStatus"].as_str().unwrap_or("");
    if status != "RUNNING" || task["desiredStatus"] != "RUNNING" {
        return Err(format!(
            "task {id} is {status} (desired {}): exec needs a RUNNING task",
            task["desiredStatus"].as_str().unwrap_or("")
        ));
    }
    let containers = task["containers"].as_array().cloned().unwrap_or_default();
    let c = match container {
        Some(name) => containers
            .iter()
            .find(|c| c["name"] == name)
            .ok_or_else(|| {
                format!(
                    "task {id} has no container '{name}' (its containers: {})",
                    names(&containers)
                )
            })?,
        None if containers.len() == 1 => &containers[0],
        None => {
            return Err(format!(
                "task {id} has {} containers; name one of: {}",
                containers.len(),
                names(&containers)
            ))
        }
    };
    let name = c["name"].as_str().unwrap_or("").to_owned();
    if c["lastStatus"] != "RUNNING" {
        return Err(format!(
            "container '{name}' of task {id} is {}: exec needs it RUNNING",
            c["lastStatus"].as_str().unwrap_or("")
        ));
    }
    let (Some(runtime_id), Some(binary), Some(root)) = (
        c["runtimeId"].as_str(),
        c["berthRuntime"]["binary"].as_str(),
        c["berthRuntime"]["root"].as_str(),
    ) else {
        return Err(format!(
            "the agent did not say where container '{name}' of task {id} runs (runtimeId, berthRuntime)"
        ));
    };
    Ok(Target {
        name,
        runtime_id: runtime_id.to_owned(),
        binary: binary.into(),
        root: root.into(),
    })
}

/// The last error the runtime wrote to its `--log` (JSON lines), if it failed itself.
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        (v["level"] == "error").then(|| v["msg"].as_str().unwrap_or("").to_owned())
    })
}

/// A private temp dir for the runtime's log and the console socket, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, CliError> {
        let dir = std::env::temp_dir().join(format!(
            "berth-exec-{}-{}",
            std::process::id(),
            crate::model::random_hex(4)?
        ));
        std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `berth exec TASK [CONTAINER] -- CMD...`.
pub fn exec(a: ExecArgs, ctx: &Ctx) -> Result<ExitCode, CliError> {
    if a.command.first().is_none_or(|c| c.is_empty()) {
        return Err("exec needs a command after `--`".into());
    }
    let mut body = json!({"tasks": [a.task]});
    if let Some(c) = &a.cluster {
        body["cluster"] = json!(c);
    }
    let d = AgentClient::new(&ctx.agent_socket).call("DescribeTasks", &body)?;
    let Some(task) = d["tasks"].get(0) else {
        return Err(format!("no task {}", a.task).into());
    };
    let target = pick(task, &a.task, a.container.as_deref())?;
    let scratch = Scratch::new()?;
    let log = scratch.0.join("runtime.log");
    let mut cmd = Command::new(&target.binary);
    cmd.arg("--root")
        .arg(&target.root)
        .arg("--log")
        .arg(&log)
        .args(["--log-format", "json", "exec"]);
    let socket = scratch.0.join("console.sock");
    if a.tty {
        cmd.arg("--tty").arg("--console-socket").arg(&socket);
    }
    cmd.arg(&target.runtime_id).arg("--").args(&a.command);
    // With a terminal, the process's stdio is the pty (the runtime never reads ours).
    cmd.stdin(if a.interactive && !a.tty {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    let code = if a.tty {
        console::run_with_console(cmd, &socket, a.interactive)?
    } else {
        let status = cmd
            .status()
            .map_err(|e| format!("running {}: {e}", target.binary.display()))?;
        console::exit_code(status)
    };
    if code != 0 {
        if let Some(msg) = runtime_error(&log) {
            // The runtime already printed its one line; say which container it was.
            eprintln!(
                "berth: exec in container '{}' of task {} failed",
                target.name, a.task
            );
            let msg = msg.to_ascii_lowercase();
            let not_found = ["enoent", "no such file", "not found"]
                .iter()
                .any(|m| msg.contains(m));
            return Ok(ExitCode::from(if not_found { 127 } else { 126 }));
        }
    }
    Ok(ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(status: &str, containers: Value) -> Value {
        json!({"lastStatus": status, "desiredStatus": "RUNNING", "containers": containers})
    }

    fn c(name: &str, status: &str) -> Value {
        json!({"name": name, "lastStatus": status, "runtimeId": format!("berth-t-{name}"),
            "berthRuntime": {"binary": "/bin/rt", "root": "/run/rt"}})
    }

    #[test]
    fn picks_the_only_container_or_the_named_one() {
        let one = task("RUNNING", json!([c("web", "RUNNING")]));
        let t = pick(&one, "t1", None).unwrap();
        assert_eq!(
            t,
            Target {
                name: "web".into(),
                runtime_id: "berth-t-web".into(),
                binary: "/bin/rt".into(),
                root: "/run/rt".into()
            }
        );
        let two = task(
            "RUNNING",
            json!([c("web", "RUNNING"), c("side", "RUNNING")]),
        );
        assert_eq!(pick(&two, "t1", Some("side")).unwrap().name, "side");
        let e = pick(&two, "t1", None).unwrap_err();
        assert!(e.contains("name one of: web, side"), "{e}");
        let e = pick(&two, "t1", Some("db")).unwrap_err();
        assert!(
            e.contains("no container 'db' (its containers: web, side)"),
            "{e}"
        );
    }

    #[test]
    fn refuses_tasks_and_containers_that_do_not_run() {
        let e = pick(&task("STOPPED", json!([c("web", "STOPPED")])), "t1", None).unwrap_err();
        assert!(e.contains("task t1 is STOPPED"), "{e}");
        let e = pick(&task("PENDING", json!([c("web", "PENDING")])), "t1", None).unwrap_err();
        assert!(e.contains("is PENDING"), "{e}");
        let mut stopping = task("RUNNING", json!([c("web", "RUNNING")]));
        stopping["desiredStatus"] = json!("STOPPED");
        assert!(pick(&stopping, "t1", None).is_err());
        let two = task("RUNNING", json!([c("web", "RUNNING"), c("job", "STOPPED")]));
        let e = pick(&two, "t1", Some("job")).unwrap_err();
        assert!(e.contains("container 'job' of task t1 is STOPPED"), "{e}");
        let bare = task("RUNNING", json!([{"name": "web", "lastStatus": "RUNNING"}]));
        assert!(pick(&bare, "t1", None).unwrap_err().contains("runtimeId"));
    }

    #[test]
    fn runtime_errors_come_from_its_json_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("l");
        assert_eq!(runtime_error(&log), None);
        std::fs::write(&log, "{\"level\":\"info\",\"msg\":\"x\"}\n").unwrap();
        assert_eq!(runtime_error(&log), None);
        std::fs::write(
            &log,
            "{\"level\":\"error\",\"msg\":\"exec \\\"nope\\\": ENOENT\"}\n",
        )
        .unwrap();
        assert_eq!(runtime_error(&log).unwrap(), "exec \"nope\": ENOENT");
    }
}
