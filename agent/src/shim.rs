//! `berth-agent shim`: the per-container holder that outlives the agent (the role conmon plays
//! for podman). It runs `berth-runtime create` as its child while being a child subreaper, so
//! the container's init is re-parented to it when `create` exits; it reports the create result
//! on stdout (`ok PID` or `error: MESSAGE`), then waits for init and writes its exit status to
//! `<bundle>/exit.json` (temp file + rename). The container's stdout and stderr are pipes the
//! shim reads: each line becomes a timestamped record in `<bundle>/output.log`, rotated by
//! size (see [`crate::logs`]). exit.json is written only once both pipes are drained, so a
//! reader that sees it has seen the whole log.
//!
//! Because the shim runs in its own session, killing the agent (even with SIGKILL) leaves it,
//! and the exit code it records, in place for the restarted agent.

use crate::logs::{
    format_record, rfc3339_nanos, LineSplitter, LogLimits, RotatingWriter, Stream, LIVE_LOG,
};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What the shim needs.
#[derive(Debug, Clone, clap::Args)]
pub struct ShimArgs {
    /// The runtime binary.
    #[arg(long)]
    pub runtime: PathBuf,
    /// The runtime's --root.
    #[arg(long)]
    pub runtime_root: PathBuf,
    /// The bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The container id.
    #[arg(long)]
    pub id: String,
    /// The most one log file holds before it rotates, bytes.
    #[arg(long, default_value_t = LogLimits::default().max_bytes)]
    pub log_max_bytes: u64,
    /// How many log files are kept, the live one included.
    #[arg(long, default_value_t = LogLimits::default().max_files)]
    pub log_max_files: u32,
}

/// The file the shim writes when init exits.
pub const EXIT_FILE: &str = "exit.json";

/// What the shim recorded about init's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRecord {
    /// The exit code (128 + signal for a signal), when known.
    pub code: Option<i32>,
    /// The container's memory cgroup counted an OOM kill.
    pub is_oom: bool,
}

/// Read `<bundle>/exit.json` once init exited. A file left by an earlier shim of the same
/// bundle (a create retried after an agent crash) names another init pid than
/// `<bundle>/init.pid` and is ignored.
pub fn read_exit(bundle: &Path) -> Option<ExitRecord> {
    let text = std::fs::read_to_string(bundle.join(EXIT_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let current = std::fs::read_to_string(bundle.join("init.pid")).ok()?;
    let current: i64 = current.trim().parse().ok()?;
    if v["pid"].as_i64() != Some(current) {
        return None;
    }
    Some(ExitRecord {
        code: v["exitCode"].as_i64().and_then(|c| i32::try_from(c).ok()),
        is_oom: v["isOom"].as_bool().unwrap_or(false),
    })
}

/// The `oom_kill` counter of cgroup v1's `memory.oom_control` or v2's `memory.events`.
pub fn oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the container of `bundle` (its config.json's `linux.cgroupsPath`, e.g.
/// `/berth/<task>/<container>`) was OOM-killed.
fn was_oom_killed(bundle: &Path) -> bool {
    let Some(cg) = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["linux"]["cgroupsPath"].as_str().map(str::to_owned))
    else {
        return false;
    };
    let cg = cg.trim_start_matches('/');
    [
        format!("/sys/fs/cgroup/memory/{cg}/memory.oom_control"),
        format!("/sys/fs/cgroup/{cg}/memory.events"),
    ]
    .iter()
    .filter_map(|f| std::fs::read_to_string(f).ok())
    .any(|t| oom_kills(&t) > 0)
}

fn write_exit(bundle: &Path, pid: i32, code: Option<i32>, is_oom: bool) -> std::io::Result<()> {
    let tmp = bundle.join(format!(".exit.json.{pid}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(
        serde_json::json!({ "exitCode": code, "pid": pid, "isOom": is_oom })
            .to_string()
            .as_bytes(),
    )?;
    f.sync_all()?;
    std::fs::rename(&tmp, bundle.join(EXIT_FILE))
}

/// The last message of the runtime's JSON log.
fn last_log_message(bundle: &Path) -> String {
    let log = std::fs::read_to_string(bundle.join("runtime.log")).unwrap_or_default();
    log.lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["msg"].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| log.lines().last().unwrap_or("").to_owned())
}

fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Copy one stream into the log, a record per line, until every writer of it is gone.
fn pump(from: OwnedFd, stream: Stream, log: Arc<Mutex<RotatingWriter>>, done: mpsc::Sender<()>) {
    let mut from = std::fs::File::from(from);
    let mut splitter = LineSplitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    let write = |parts: Vec<(bool, Vec<u8>)>| {
        let now = rfc3339_nanos(SystemTime::now());
        if let Ok(mut w) = log.lock() {
            for (is_partial, content) in parts {
                // A full disk loses lines; the container must not block on its output.
                let _ = w.write_record(&format_record(&now, stream, is_partial, &content));
            }
        }
    };
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => write(splitter.push(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    write(splitter.finish().into_iter().collect());
    let _ = done.send(());
}

/// Pipes for the container's stdout and stderr, each read by a [`pump`] thread. Returns the
/// write ends (for the runtime's `create`) and the receiver the pumps signal when done.
fn start_pumps(
    log: &Arc<Mutex<RotatingWriter>>,
) -> Result<(OwnedFd, OwnedFd, mpsc::Receiver<()>), String> {
    let (tx, rx) = mpsc::channel();
    let mut writers = Vec::new();
    for stream in [Stream::Stdout, Stream::Stderr] {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| format!("creating the {} pipe: {e}", stream.as_str()))?;
        let (log, tx) = (log.clone(), tx.clone());
        std::thread::spawn(move || pump(r, stream, log, tx));
        writers.push(w);
    }
    let err = writers.pop().ok_or("no stderr pipe")?;
    let out = writers.pop().ok_or("no stdout pipe")?;
    Ok((out, err, rx))
}

/// Wait for both pumps, but not forever (the agent waits about as long for the exit file): a
/// process that escaped the container's pid namespace could hold a pipe open.
fn drain(done: &mpsc::Receiver<()>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done.recv_timeout(left).is_err() {
            return;
        }
    }
}

/// Run the shim (the `berth-agent shim` subcommand).
pub fn run(a: &ShimArgs) -> ExitCode {
    // Its own session: signals to the agent's process group or terminal do not reach it.
    let _ = nix::unistd::setsid();
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        say(&format!("error: becoming a child subreaper: {e}"));
        return ExitCode::FAILURE;
    }
    let limits = LogLimits {
        max_bytes: a.log_max_bytes,
        max_files: a.log_max_files,
    };
    let log = match RotatingWriter::open(&a.bundle, LIVE_LOG, limits) {
        Ok(w) => Arc::new(Mutex::new(w)),
        Err(e) => {
            say(&format!("error: opening {LIVE_LOG}: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let (out, err, pumps) = match start_pumps(&log) {
        Ok(p) => p,
        Err(e) => {
            say(&format!("error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let pid_file = a.bundle.join("init.pid");
    // The Command (and with it the shim's copies of the write ends) is gone after this
    // statement: only the container holds them, so the pumps see EOF when it is gone.
    let status = Command::new(&a.runtime)
        .arg("--root")
        .arg(&a.runtime_root)
        .arg("--log")
        .arg(a.bundle.join("runtime.log"))
        .args(["--log-format", "json", "create", "--bundle"])
        .arg(&a.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&a.id)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .status();
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            say(&format!("error: running {}: {e}", a.runtime.display()));
            return ExitCode::FAILURE;
        }
    };
    if !status.success() {
        say(&format!(
            "error: {} ({status})",
            last_log_message(&a.bundle)
        ));
        return ExitCode::FAILURE;
    }
    let init = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok());
    let Some(init) = init else {
        say(&format!("error: no pid in {}", pid_file.display()));
        return ExitCode::FAILURE;
    };
    say(&format!("ok {init}"));
    let code = wait_for(Pid::from_raw(init));
    drain(&pumps);
    let is_oom = code == Some(137) && was_oom_killed(&a.bundle);
    if write_exit(&a.bundle, init, code, is_oom).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Reap children until `init` exits; its exit code (128 + signal for a signal).
fn wait_for(init: Pid) -> Option<i32> {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == init => return Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => return Some(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => {}
            // No child left: init was never re-parented to us (it is not ours to wait for).
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_exit_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("init.pid"), "42").unwrap();
        assert_eq!(read_exit(dir.path()), None);
        write_exit(dir.path(), 41, Some(1), false).unwrap();
        assert_eq!(read_exit(dir.path()), None, "another init's exit");
        write_exit(dir.path(), 42, Some(137), true).unwrap();
        assert_eq!(
            read_exit(dir.path()),
            Some(ExitRecord {
                code: Some(137),
                is_oom: true
            })
        );
        write_exit(dir.path(), 42, None, false).unwrap();
        assert_eq!(
            read_exit(dir.path()),
            Some(ExitRecord {
                code: None,
                is_oom: false
            })
        );
    }

    #[test]
    fn oom_counters() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 2\noom_group_kill 0\n";
        assert_eq!((oom_kills(v1), oom_kills(v2), oom_kills("")), (1, 2, 0));
    }
}
