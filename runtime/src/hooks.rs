//! OCI hooks: run with the container state on stdin, killed at their timeout.

use oci_spec::runtime::Hook;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The state document hooks read on stdin (runtime-spec "State").
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookState {
    /// Spec version.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// creating, created, running, stopped.
    pub status: String,
    /// Init's pid (absent for poststop after it died).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Bundle path.
    pub bundle: PathBuf,
    /// Annotations.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
}

/// Why a hook failed.
#[derive(Debug)]
pub struct HookFailure {
    /// The hook's path.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// Run `hooks` in order; the first failure stops the list.
pub fn run_all(hooks: &[Hook], state: &HookState) -> Result<(), HookFailure> {
    let stdin = serde_json::to_vec(state).unwrap_or_default();
    for hook in hooks {
        run_one(hook, &stdin).map_err(|reason| HookFailure {
            path: hook.path().clone(),
            reason,
        })?;
    }
    Ok(())
}

fn run_one(hook: &Hook, stdin: &[u8]) -> Result<(), String> {
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some(argv0) = args.first() {
        cmd.arg0(argv0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .stdin(Stdio::piped());
    for kv in hook.env().clone().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut pipe) = child.stdin.take() {
        // A hook that does not read its stdin must not fail the write.
        let _ = pipe.write_all(stdin);
    }
    let timeout = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(u64::try_from(t).unwrap_or(0)));
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "timed out after {}s",
                timeout.map(|t| t.as_secs()).unwrap_or(0)
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
