//! The bpf(2) calls the cgroup v2 device controller needs, each a thin wrapper named after its
//! command that returns the bare errno; [`crate::v2`] adds the context.
//!
//! Layouts follow `union bpf_attr` in linux/bpf.h: each command reads its own leading struct,
//! and the size passed tells the kernel how much of the union we filled (the rest is zero).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

/// BPF_PROG_TYPE_CGROUP_DEVICE.
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// BPF_CGROUP_DEVICE attach type.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// BPF_F_ALLOW_MULTI: several programs per cgroup, so a new one can go in before the old one
/// comes out and there is no moment without a device filter.
pub const F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, size_of(attr)).
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr points to a live, properly laid out (repr(C)) bpf_attr prefix of exactly
    // size_of::<T>() bytes for this command; every pointer it carries (insns, license, log,
    // prog_ids) is set by the caller to a buffer that outlives this call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned_fd(rc: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(rc).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    fd.as_raw_fd().unsigned_abs()
}

/// BPF_PROG_LOAD of a BPF_PROG_TYPE_CGROUP_DEVICE program (`insns` encoded, license GPL
/// not needed: the program calls no helpers). The verifier's log goes into `log`.
pub fn bpf_prog_load_cgroup_device(insns: &[u64], log: &mut [u8]) -> io::Result<OwnedFd> {
    const LICENSE: &CStr = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"berth_devcg");
    let mut attr = ProgLoadAttr {
        prog_type: PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: u32::try_from(log.len()).unwrap_or(u32::MAX),
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name,
        ..ProgLoadAttr::default()
    };
    bpf(BPF_PROG_LOAD, &mut attr).and_then(owned_fd)
}

/// BPF_PROG_ATTACH of `prog` to the cgroup directory `cgroup`.
pub fn bpf_prog_attach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type,
        attach_flags: flags,
        ..AttachAttr::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}

/// BPF_PROG_DETACH of `prog` from `cgroup`.
pub fn bpf_prog_detach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type,
        ..AttachAttr::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(|_| ())
}

/// BPF_PROG_QUERY: the ids of the programs attached to `cgroup` itself (not inherited).
pub fn bpf_prog_query(cgroup: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: fd_u32(cgroup),
        attach_type,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: 64,
        ..QueryAttr::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(usize::try_from(attr.prog_cnt).unwrap_or(0).min(64));
    Ok(ids)
}

/// BPF_PROG_GET_FD_BY_ID.
pub fn bpf_prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetIdAttr {
        prog_id: id,
        ..GetIdAttr::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).and_then(owned_fd)
}
