//! Per-link sysctls of the namespace the calling thread is in (`/proc/sys/net` resolves
//! against the opener's network namespace).

use std::io;
use std::path::PathBuf;

/// Turn IPv6 off on link `name`, before it is brought up. A kernel without IPv6 has nothing
/// to turn off.
///
/// ENIs are IPv4-only (the firewall drops a task's IPv6). Left on, every host-side veth
/// would get a link-local address, a `fe80::/64` route and an `ff00::/8` route when it comes
/// up; the kernel keeps routes of one prefix on many links in a list at one node, so each
/// new ENI's bring-up walks all the others'. Off, bring-up costs the same at 1 ENI as at 1000.
pub fn disable_ipv6(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a link name"),
        ));
    }
    let path = PathBuf::from("/proc/sys/net/ipv6/conf")
        .join(name)
        .join("disable_ipv6");
    match std::fs::write(&path, "1") {
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && !std::path::Path::new("/proc/sys/net/ipv6").exists() =>
        {
            Ok(())
        }
        other => other,
    }
}
