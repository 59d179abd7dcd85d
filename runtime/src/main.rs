//! berth-runtime: a runc-compatible OCI runtime. podman, containerd's shim and conmon drive
//! it exactly as they drive runc. The binary is single-threaded on purpose: it forks and
//! clones, and only a single-threaded process may run ordinary code in the child.

mod capabilities;
mod cli;
mod container;
mod devices_cgroup;
mod error;
mod hooks;
mod log;
mod lsm;
mod namespaces;
mod process;
mod process_extras;
mod rlimits;
mod rollback;
mod rootfs;
mod seccomp;
mod spec;
mod sys;
mod tty;

use clap::Parser;
use cli::{Cli, Cmd, LogFormat};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::init(log::LogConfig {
        file: cli.log.clone(),
        json: cli.log_format == LogFormat::Json,
        debug: cli.debug,
    });
    let enters_container = matches!(cli.cmd, Cmd::Create(_) | Cmd::Run(_) | Cmd::Exec(_));
    let cloned = enters_container && process::exe::is_cloned();
    if enters_container {
        sys::attach_warmup::adopt_from_env();
        if !cloned {
            // SAFETY: berth-runtime is single-threaded (see above), and nothing has started yet.
            unsafe { sys::attach_warmup::start() };
        }
    }
    if enters_container && !cloned {
        // Returns only if the re-exec failed.
        let e = process::exe::reexec_sealed();
        sys::attach_warmup::reap();
        return fail(&format!(
            "re-execute from a sealed copy of the runtime (CVE-2019-5736 protection): {}",
            e.err().map(|e| e.to_string()).unwrap_or_default()
        ));
    }
    let result = cli::dispatch(cli);
    // On paths that failed before the container's cgroup move, the warm-up child may still be
    // waiting in the kernel: it carries the runtime's command line (the container id), so it
    // must be gone before the runtime is.
    sys::attach_warmup::reap();
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1)),
        Err(e) => fail(&error_line(&e)),
    }
}

/// The error and its causes on one line.
fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !line.ends_with(&s) {
            line.push_str(": ");
            line.push_str(&s);
        }
        cause = c.source();
    }
    line
}

fn fail(line: &str) -> ExitCode {
    log::error(line);
    eprintln!("berth-runtime: {line}");
    ExitCode::FAILURE
}
