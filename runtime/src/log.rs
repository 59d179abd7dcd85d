//! berth-runtime's log: runc's format, because podman and containerd read it.
//!
//! With `--log FILE` lines go to FILE, else to stderr; with `--log-format json` each line is
//! `{"level":"error","msg":"...","time":"..."}`, and podman and containerd show the last error
//! line to their users. Debug lines appear only with `--debug`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where and how to log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `--log`.
    pub file: Option<PathBuf>,
    /// `--log-format json`.
    pub json: bool,
    /// `--debug`.
    pub debug: bool,
}

static CONFIG: OnceLock<LogConfig> = OnceLock::new();

/// Set the log configuration once, from the global flags.
pub fn init(config: LogConfig) {
    let _ = CONFIG.set(config);
}

/// An error line.
pub fn error(msg: &str) {
    write("error", msg);
}

/// A warning line.
pub fn warn(msg: &str) {
    write("warning", msg);
}

/// A debug line (only with `--debug`).
pub fn debug(msg: &str) {
    if CONFIG.get().is_some_and(|c| c.debug) {
        write("debug", msg);
    }
}

fn write(level: &str, msg: &str) {
    let Some(config) = CONFIG.get() else { return };
    let line = if config.json {
        let mut s = serde_json::json!({ "level": level, "msg": msg, "time": crate::sys::time::now_rfc3339() }).to_string();
        s.push('\n');
        s
    } else {
        format!(
            "time=\"{}\" level={level} msg={msg:?}\n",
            crate::sys::time::now_rfc3339()
        )
    };
    match &config.file {
        Some(path) => {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = f.write_all(line.as_bytes());
            }
        }
        // Without --log, errors are printed by main; only other levels go to stderr here.
        None if level != "error" => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        None => {}
    }
}
