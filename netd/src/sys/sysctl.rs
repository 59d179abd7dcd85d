//! Per-link sysctls of the namespace the calling thread is in (`/proc/sys/net` resolves
//! against the opener's network namespace).

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::AsFd;
use std::path::Path;

const IPV6_CONF: &str = "/proc/sys/net/ipv6/conf";

/// `/proc/sys/net/ipv6/conf` of one namespace, opened once.
///
/// A path from `/proc/sys` walks the kernel's cached entries named `net`, one per network
/// namespace alive, to find this namespace's: a cost that grows with the number of tasks.
/// Writes relative to this directory start past that step.
pub struct Ipv6Conf {
    /// None: the kernel has no IPv6.
    dir: Option<File>,
}

impl Ipv6Conf {
    /// The directory of the calling thread's namespace.
    pub fn open() -> io::Result<Ipv6Conf> {
        match File::open(IPV6_CONF) {
            Ok(dir) => Ok(Ipv6Conf { dir: Some(dir) }),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !Path::new(IPV6_CONF).exists() => {
                Ok(Ipv6Conf { dir: None })
            }
            Err(e) => Err(e),
        }
    }

    /// Turn IPv6 off on link `name`, before it is brought up. A kernel without IPv6 has
    /// nothing to turn off.
    ///
    /// ENIs are IPv4-only (the firewall drops a task's IPv6). Left on, every host-side veth
    /// would get a link-local address, a `fe80::/64` route and an `ff00::/8` route when it
    /// comes up; the kernel keeps routes of one prefix on many links in a list at one node,
    /// so each new ENI's bring-up walks all the others'. Off, bring-up costs the same at 1
    /// ENI as at 1000.
    pub fn disable(&self, name: &str) -> io::Result<()> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a link name"),
            ));
        }
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let fd = openat(
            dir.as_fd(),
            format!("{name}/disable_ipv6").as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        File::from(fd).write_all(b"1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_that_would_leave_the_directory_are_refused() {
        let conf = Ipv6Conf { dir: None };
        for bad in ["", "a/b", ".", "..", "../all"] {
            assert_eq!(
                conf.disable(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
        assert!(conf.disable("berth0").is_ok(), "no IPv6: nothing to do");
    }
}
