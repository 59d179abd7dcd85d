//! What every process berth-runtime starts in a container needs (init and exec alike),
//! prepared in the runtime before anything is created, so that a bad profile, capability or
//! rlimit fails the command at once.

use crate::capabilities::{self, CapPlan};
use crate::error::RuntimeError;
use crate::rlimits::{self, Limit};
use crate::{seccomp, tty};
use libseccomp::ScmpFilterContext;
use oci_spec::runtime::{Linux, Process};
use std::os::fd::OwnedFd;
use std::path::Path;

/// The process's seccomp filter, capability sets, rlimits and console.
pub struct ProcessSecurity {
    /// The compiled `linux.seccomp` profile.
    pub seccomp: Option<ScmpFilterContext>,
    /// The five capability sets.
    pub caps: Option<CapPlan>,
    /// The rlimits.
    pub rlimits: Vec<Limit>,
    /// A connected console socket when `process.terminal` is set.
    pub console: Option<OwnedFd>,
}

/// Check and convert the security settings of `process` in a container with `linux`.
pub fn prepare(
    linux: &Linux,
    process: &Process,
    console_socket: Option<&Path>,
) -> Result<ProcessSecurity, RuntimeError> {
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(seccomp::compile)
        .transpose()
        .map_err(|e| RuntimeError::spec("linux.seccomp", e.to_string()))?;
    let caps = process
        .capabilities()
        .as_ref()
        .map(capabilities::plan)
        .transpose()
        .map_err(|e| RuntimeError::spec("process.capabilities", e))?;
    let rlimits = rlimits::plan(&process.rlimits().clone().unwrap_or_default())
        .map_err(|e| RuntimeError::spec("process.rlimits", e))?;
    let console = match (process.terminal().unwrap_or(false), console_socket) {
        (true, Some(path)) => {
            Some(
                tty::connect_console_socket(path).map_err(|e| RuntimeError::Usage {
                    flag: "--console-socket",
                    reason: e,
                })?,
            )
        }
        (true, None) => {
            return Err(RuntimeError::Usage {
                flag: "--console-socket",
                reason: "process.terminal is set: a console socket is required".into(),
            })
        }
        (false, _) => None,
    };
    Ok(ProcessSecurity {
        seccomp,
        caps,
        rlimits,
        console,
    })
}
