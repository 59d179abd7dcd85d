//! CVE-2019-5736: a container process must never be able to reach the runtime's binary
//! through /proc/PID/exe and overwrite it. Commands that enter a container first re-execute
//! the runtime from a file that cannot be written:
//!
//! 1. preferably the binary as seen through a read-only overlayfs that is never attached to any
//!    mount tree (fsopen/fsmount: nothing to propagate or clean up, gone with its last user),
//!    which costs no copy;
//! 2. else a sealed memfd copy (F_SEAL_WRITE and friends).

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;

const MEMFD_NAME: &str = "berth-runtime";
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Whether this process already runs from a file that cannot be written.
pub fn is_cloned() -> bool {
    let from_memfd = std::fs::read_link("/proc/self/exe")
        .map(|p| {
            p.to_string_lossy()
                .starts_with(&format!("/memfd:{MEMFD_NAME}"))
        })
        .unwrap_or(false);
    from_memfd || runs_from_readonly_overlay()
}

fn runs_from_readonly_overlay() -> bool {
    let Ok(st) = nix::sys::statfs::statfs("/proc/self/exe") else {
        return false;
    };
    let Ok(vfs) = nix::sys::statvfs::statvfs("/proc/self/exe") else {
        return false;
    };
    st.filesystem_type().0 == OVERLAYFS_SUPER_MAGIC
        && vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
}

/// Re-execute from a read-only view of the binary (returns only on failure).
pub fn reexec_sealed() -> io::Result<()> {
    match readonly_overlay_exe() {
        Ok(fd) => exec_fd(&fd),
        Err(_) => reexec_from_sealed_copy(),
    }
}

fn readonly_overlay_exe() -> io::Result<std::os::fd::OwnedFd> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
        MountAttrFlags,
    };
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(io::Error::other("the runtime binary has no directory"));
    };
    // The second, empty layer: a tmpfs that is never attached anywhere either.
    let tmp = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_create(&tmp)?;
    let empty = fsmount(
        &tmp,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )?;
    let e = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&empty));
    // ':' separates layers and ',' separates options: such paths take the memfd route.
    let d = dir.to_string_lossy();
    if d.contains([':', ',']) {
        return Err(io::Error::other("path not usable as an overlay layer"));
    }
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_set_string(&fs, "lowerdir", format!("{d}:{e}"))?;
    fsconfig_create(&fs)?;
    let mnt = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )?;
    Ok(rustix::fs::openat(
        &mnt,
        name,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

fn exec_fd(fd: &impl std::os::fd::AsFd) -> io::Result<()> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_encoded_bytes()).map_err(io::Error::other))
        .collect::<io::Result<_>>()?;
    let warmup = crate::sys::attach_warmup::env_for_reexec()
        .map(|(k, v)| (std::ffi::OsString::from(k), std::ffi::OsString::from(v)));
    let env: Vec<CString> = std::env::vars_os()
        .chain(warmup)
        .map(|(k, v)| {
            let mut kv = k.as_encoded_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_encoded_bytes());
            CString::new(kv).map_err(io::Error::other)
        })
        .collect::<io::Result<_>>()?;
    let e = nix::unistd::fexecve(fd, &args, &env)
        .err()
        .map(io::Error::from);
    Err(e.unwrap_or_else(|| io::Error::other("fexecve returned")))
}

/// Re-execute from a sealed memfd copy of /proc/self/exe (returns only on failure).
pub fn reexec_from_sealed_copy() -> io::Result<()> {
    let name = CString::new(MEMFD_NAME).map_err(io::Error::other)?;
    let mem = nix::sys::memfd::memfd_create(
        name.as_c_str(),
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(io::Error::from)?;
    let mut src = std::fs::File::open("/proc/self/exe")?;
    let mut dst = std::fs::File::from(mem);
    // Plain read/write, not sendfile: splice keeps page references for a moment, and
    // F_SEAL_WRITE refuses (EBUSY) while a page of the memfd is pinned.
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = io::Read::read(&mut src, &mut buf)?;
        if n == 0 {
            break;
        }
        io::Write::write_all(&mut dst, &buf[..n])?;
    }
    drop(buf);
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    let mut tries = 0;
    // SAFETY: F_ADD_SEALS on a memfd we own; integer argument.
    while unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        let e = io::Error::last_os_error();
        tries += 1;
        if e.raw_os_error() != Some(libc::EBUSY) || tries > 50 {
            return Err(e);
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    exec_fd(&dst)
}
