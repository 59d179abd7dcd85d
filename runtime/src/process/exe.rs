//! CVE-2019-5736: a container process must never be able to reach the runtime's binary
//! through /proc/PID/exe and overwrite it. Commands that enter a container first re-execute
//! the runtime from a sealed memfd copy, so /proc/PID/exe is that copy, which cannot be
//! written.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;

const MEMFD_NAME: &str = "berth-runtime";

/// Whether this process already runs from the sealed copy.
pub fn is_cloned() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| {
            p.to_string_lossy()
                .starts_with(&format!("/memfd:{MEMFD_NAME}"))
        })
        .unwrap_or(false)
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
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_encoded_bytes()).map_err(io::Error::other))
        .collect::<io::Result<_>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_encoded_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_encoded_bytes());
            CString::new(kv).map_err(io::Error::other)
        })
        .collect::<io::Result<_>>()?;
    let e = nix::unistd::fexecve(&dst, &args, &env)
        .err()
        .map(io::Error::from);
    Err(e.unwrap_or_else(|| io::Error::other("fexecve returned")))
}
