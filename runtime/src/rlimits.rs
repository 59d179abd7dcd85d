//! process.rlimits through setrlimit (prlimit on self).

use oci_spec::runtime::PosixRlimit;

/// One rlimit, converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The RLIMIT_* resource.
    pub resource: libc::__rlimit_resource_t,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The libc resource for an `RLIMIT_*` name.
pub fn resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

/// Convert the spec's rlimits, naming a bad entry.
pub fn plan(rlimits: &[PosixRlimit]) -> Result<Vec<Limit>, String> {
    rlimits
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = serde_json::to_value(r.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let resource = resource(&name)
                .ok_or_else(|| format!("process.rlimits[{i}].type: unknown {name}"))?;
            Ok(Limit {
                resource,
                soft: r.soft(),
                hard: r.hard(),
            })
        })
        .collect()
}

/// Apply each limit; raising a hard limit needs CAP_SYS_RESOURCE, and the error says so.
pub fn apply(limits: &[Limit]) -> Result<(), String> {
    for l in limits {
        let lim = libc::rlimit {
            rlim_cur: l.soft,
            rlim_max: l.hard,
        };
        // SAFETY: setrlimit only reads the struct, which lives across the call.
        if unsafe { libc::setrlimit(l.resource, &lim) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "setrlimit resource {} to {}/{}: {e}",
                l.resource, l.soft, l.hard
            ));
        }
    }
    Ok(())
}
