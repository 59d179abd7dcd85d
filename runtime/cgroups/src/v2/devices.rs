//! Install the device program on a v2 cgroup: load the new program, attach it beside the old
//! one(s) (BPF_F_ALLOW_MULTI), then detach the old ones, so the cgroup is never unfiltered.

use crate::bpf;
use crate::devices::{assemble_program, DeviceRule};
use crate::error::CgroupError;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replace the device program of the cgroup at `dir` with one for `rules`.
pub(super) fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let insns: Vec<u64> = assemble_program(rules).iter().map(|i| i.encode()).collect();
    // Load without a log first: a verifier log that does not fit its buffer fails the load
    // with ENOSPC even for a valid program. Only a refused program is loaded again for its log.
    let prog = match bpf::bpf_prog_load_cgroup_device(&insns, &mut []) {
        Ok(fd) => fd,
        Err(first) => {
            let mut log = vec![0u8; 256 * 1024];
            let retry = bpf::bpf_prog_load_cgroup_device(&insns, &mut log);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            return Err(CgroupError::BpfLoad {
                path: dir.to_path_buf(),
                insns: insns.len(),
                log: String::from_utf8_lossy(&log[..end]).trim().to_string(),
                source: retry.err().unwrap_or(first),
            });
        }
    };
    let cgroup: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| CgroupError::OpenDir {
            path: dir.to_path_buf(),
            source,
        })?
        .into();
    let bpf_err = |op| {
        move |source| CgroupError::Bpf {
            op,
            path: dir.to_path_buf(),
            source,
        }
    };
    let old = bpf::bpf_prog_query(cgroup.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
        .map_err(bpf_err("BPF_PROG_QUERY"))?;
    bpf::bpf_prog_attach(
        cgroup.as_fd(),
        prog.as_fd(),
        bpf::ATTACH_CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .map_err(bpf_err("BPF_PROG_ATTACH"))?;
    for id in old {
        let old_prog = bpf::bpf_prog_get_fd_by_id(id).map_err(bpf_err("BPF_PROG_GET_FD_BY_ID"))?;
        bpf::bpf_prog_detach(cgroup.as_fd(), old_prog.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
            .map_err(bpf_err("BPF_PROG_DETACH"))?;
    }
    Ok(())
}

/// The ids of the device programs attached to the cgroup at `dir` (for tests and checks).
pub fn attached_programs(dir: &Path) -> Result<Vec<u32>, CgroupError> {
    let cgroup: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| CgroupError::OpenDir {
            path: dir.to_path_buf(),
            source,
        })?
        .into();
    bpf::bpf_prog_query(cgroup.as_fd(), bpf::ATTACH_CGROUP_DEVICE).map_err(|source| {
        CgroupError::Bpf {
            op: "BPF_PROG_QUERY",
            path: dir.to_path_buf(),
            source,
        }
    })
}
