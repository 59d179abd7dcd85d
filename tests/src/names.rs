//! Unique, recognisable names for everything a test creates.
//!
//! Interface names are at most 15 bytes and pids here go up to 32768, so names come from a
//! short hash of (pid, sequence, clock) rather than from the pid itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The prefix every test object carries; the leak check looks for it.
pub const PREFIX: &str = "bt";

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// `bt` + 8 lowercase hex digits + `role` (1–3 letters), unique across concurrent test
/// processes. With a role of at most 3 bytes the name fits an interface name (15 bytes).
pub fn unique(role: &str) -> String {
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() << 30 ^ u64::from(d.subsec_nanos()))
        .unwrap_or_default();
    let mixed = splitmix(u64::from(std::process::id()) << 32 ^ seq ^ clock);
    format!("{PREFIX}{:08x}{role}", mixed & 0xffff_ffff)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Whether `s` contains a test name: `bt` followed by 8 lowercase hex digits.
pub fn contains_test_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(10).enumerate().any(|(i, w)| {
        w.starts_with(b"bt")
            && w[2..]
                .iter()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
    })
}

/// Whether a single name (a link, a cgroup, a table) is a test or product object.
pub fn is_ours(name: &str) -> bool {
    name.starts_with("berth") || (name.len() >= 10 && contains_test_name(&name[..10]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_short_and_recognisable() {
        let a = unique("v");
        let b = unique("v");
        assert_ne!(a, b);
        assert_eq!(a.len(), 11);
        assert!(is_ours(&a) && contains_test_name(&a));
        assert!(unique("abc").len() <= 15);
    }

    #[test]
    fn host_names_are_not_ours() {
        for n in [
            "eth0",
            "lo",
            "docker0",
            "btrfs-control",
            "bt",
            "subtle",
            "system.slice",
        ] {
            assert!(!is_ours(n), "{n}");
        }
        assert!(!contains_test_name("/sys/fs/cgroup/xbt12345678"));
        assert!(contains_test_name("/tmp/bt12345678x/rootfs"));
        assert!(is_ours("berth"));
    }
}
