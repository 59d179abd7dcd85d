//! Pure parsers of the kernel's /proc text (`status`, `ns/*` links, `cgroup`, `mountinfo`), so
//! `berth inspect`'s reading of each fact is unit-tested on fixture text without root.

use serde::Serialize;
use std::collections::BTreeMap;

/// The namespaces `berth inspect` shows, in the order it shows them.
pub const NAMESPACES: [&str; 7] = ["net", "mnt", "pid", "uts", "ipc", "cgroup", "user"];

/// The inode in a `/proc/PID/ns/*` link's text (`net:[4026531840]`), if it is one of `kind`.
pub fn parse_ns_link(kind: &str, link: &str) -> Option<u64> {
    link.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The names of the bits set in a capability mask, lowest bit first (the `caps` crate's
/// names, as in /proc and capability.h); bits it does not know show as `cap_<n>`.
pub fn cap_names(mask: u64) -> Vec<String> {
    let known: std::collections::HashMap<u8, String> = caps::all()
        .into_iter()
        .map(|c| (c.index(), c.to_string()))
        .collect();
    (0..64u8)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| {
            known
                .get(&bit)
                .cloned()
                .unwrap_or_else(|| format!("cap_{bit}"))
        })
        .collect()
}

/// One capability set: the kernel's hex mask and its names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapSet {
    /// As /proc/PID/status prints it (16 hex digits).
    pub hex: String,
    /// The capabilities it holds.
    pub names: Vec<String>,
}

/// What /proc/PID/status says about a process's confinement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Confinement {
    /// `Seccomp:` 0 (disabled), 1 (strict) or 2 (filter).
    pub seccomp_mode: u8,
    /// `disabled`, `strict` or `filter`.
    pub seccomp: String,
    /// `Seccomp_filters:` (how many filters are attached), when the kernel shows it.
    pub seccomp_filters: Option<u64>,
    /// `NoNewPrivs:`.
    pub no_new_privs: bool,
    /// `CapEff:`.
    pub cap_eff: CapSet,
    /// `CapPrm:`.
    pub cap_prm: CapSet,
    /// `CapBnd:`.
    pub cap_bnd: CapSet,
}

/// The `Key:\tvalue` fields of /proc/PID/status.
pub fn status_fields(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// Parse a process's confinement from its /proc/PID/status; `Err` names the missing field.
pub fn parse_confinement(text: &str) -> Result<Confinement, String> {
    let f = status_fields(text);
    let get = |key: &str| f.get(key).copied().ok_or_else(|| format!("no {key}: line"));
    let cap = |key: &str| -> Result<CapSet, String> {
        let hex = get(key)?;
        let mask =
            u64::from_str_radix(hex, 16).map_err(|_| format!("{key}: {hex:?} is not hex"))?;
        Ok(CapSet {
            hex: hex.to_owned(),
            names: cap_names(mask),
        })
    };
    let mode: u8 = get("Seccomp")?
        .parse()
        .map_err(|_| "Seccomp: not a number".to_owned())?;
    Ok(Confinement {
        seccomp_mode: mode,
        seccomp: match mode {
            0 => "disabled",
            1 => "strict",
            2 => "filter",
            _ => "unknown",
        }
        .to_owned(),
        seccomp_filters: f.get("Seccomp_filters").and_then(|v| v.parse().ok()),
        no_new_privs: get("NoNewPrivs")? == "1",
        cap_eff: cap("CapEff")?,
        cap_prm: cap("CapPrm")?,
        cap_bnd: cap("CapBnd")?,
    })
}

/// A process's cgroup per hierarchy from /proc/PID/cgroup: v1 lines `N:ctrl,ctrl:/path` give
/// one entry per controller (named hierarchies as `name=systemd`), the v2 line `0::/path`
/// the entry `""`.
pub fn parse_proc_cgroup(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            out.insert(String::new(), path.to_owned());
        } else {
            for c in ctrls.split(',') {
                out.insert(c.to_owned(), path.to_owned());
            }
        }
    }
    out
}

/// The mount at `/` as a process sees it, from its /proc/PID/mountinfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootMount {
    /// The filesystem type (`overlay` for an image rootfs).
    pub fstype: String,
    /// The mount source field.
    pub source: String,
    /// overlayfs lower directories, top first, as the kernel shows them.
    pub lowerdirs: Vec<String>,
    /// overlayfs upper directory.
    pub upperdir: Option<String>,
    /// overlayfs work directory.
    pub workdir: Option<String>,
    /// The whole super-block options field.
    pub options: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Split on `sep` where it is not escaped with `\` (overlayfs escapes `:` in lower
/// directory paths), dropping the escapes.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ (',' | ':' | '\\')) => push_char(&mut parts, n),
                Some(n) => {
                    push_char(&mut parts, '\\');
                    push_char(&mut parts, n);
                }
                None => push_char(&mut parts, '\\'),
            }
        } else if c == sep {
            parts.push(String::new());
        } else {
            push_char(&mut parts, c);
        }
    }
    parts
}

fn push_char(parts: &mut [String], c: char) {
    if let Some(last) = parts.last_mut() {
        last.push(c);
    }
}

/// The mount that is the process's `/` (the last one mounted there wins), with overlayfs's
/// layers split out. Lower directories may be shown as one `lowerdir=a:b` (mount(2)) or as
/// repeated `lowerdir+=a` (fsconfig); both are read.
pub fn parse_root_mount(mountinfo: &str) -> Option<RootMount> {
    let line = mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some("/"))?;
    // id parent major:minor root mountpoint options [optional fields...] - fstype source superopts
    let (_, after) = line.split_once(" - ")?;
    let mut rest = after.splitn(3, ' ');
    let fstype = rest.next()?.to_owned();
    let source = unescape_octal(rest.next()?);
    let raw_options = rest.next().unwrap_or("");
    let mut m = RootMount {
        fstype,
        source,
        lowerdirs: Vec::new(),
        upperdir: None,
        workdir: None,
        options: unescape_octal(raw_options),
    };
    if m.fstype == "overlay" {
        // The kernel escapes `,` inside values as `\054`: split first, then unescape.
        for opt in raw_options.split(',').map(unescape_octal) {
            if let Some(v) = opt.strip_prefix("lowerdir+=") {
                m.lowerdirs.push(v.to_owned());
            } else if let Some(v) = opt.strip_prefix("lowerdir=") {
                m.lowerdirs.extend(split_unescaped(v, ':'));
            } else if let Some(v) = opt.strip_prefix("upperdir=") {
                m.upperdir = Some(v.to_owned());
            } else if let Some(v) = opt.strip_prefix("workdir=") {
                m.workdir = Some(v.to_owned());
            }
        }
    }
    Some(m)
}

/// The image store's layer a lower directory is (`…/layers/<sha256 hex>/diff` →
/// `sha256:<hex>`, the layer's diff-id), if it is one.
pub fn layer_digest(lowerdir: &str) -> Option<String> {
    let mut parts = lowerdir.rsplit('/');
    let (diff, hex, layers) = (parts.next()?, parts.next()?, parts.next()?);
    let is_hex = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    (diff == "diff" && layers == "layers" && is_hex).then(|| format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t4242\n\
        CapInh:\t0000000000000000\nCapPrm:\t00000000a80405fb\nCapEff:\t00000000a80405fb\n\
        CapBnd:\t00000000a80405fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n\
        Seccomp_filters:\t1\nSpeculation_Store_Bypass:\tthread vulnerable\n";

    #[test]
    fn namespace_links_give_their_inode_for_their_kind_only() {
        assert_eq!(
            parse_ns_link("net", "net:[4026531840]"),
            Some(4_026_531_840)
        );
        assert_eq!(parse_ns_link("mnt", "net:[4026531840]"), None);
        assert_eq!(parse_ns_link("net", "net:4026531840"), None);
    }

    #[test]
    fn status_gives_seccomp_no_new_privs_and_named_capabilities() {
        let c = parse_confinement(STATUS).unwrap();
        assert_eq!(c.seccomp_mode, 2);
        assert_eq!(c.seccomp, "filter");
        assert_eq!(c.seccomp_filters, Some(1));
        assert!(c.no_new_privs);
        assert_eq!(c.cap_eff.hex, "00000000a80405fb");
        // Docker's default set without NET_RAW: 13 capabilities.
        assert_eq!(c.cap_eff.names.len(), 13);
        assert!(c.cap_eff.names.contains(&"CAP_NET_BIND_SERVICE".to_owned()));
        assert!(!c.cap_eff.names.contains(&"CAP_NET_RAW".to_owned()));
        assert_eq!(c.cap_eff.names[0], "CAP_CHOWN");
        assert_eq!(c.cap_eff.names[12], "CAP_SETFCAP");
    }

    #[test]
    fn status_without_a_field_names_it() {
        let e = parse_confinement("Seccomp:\t0\nNoNewPrivs:\t0\n").unwrap_err();
        assert!(e.contains("CapEff"), "{e}");
    }

    #[test]
    fn unknown_capability_bits_are_numbered() {
        assert_eq!(cap_names(1 << 45), vec!["cap_45"]);
        assert_eq!(cap_names(0), Vec::<String>::new());
    }

    #[test]
    fn proc_cgroup_maps_each_controller_and_the_unified_entry() {
        let text = "12:pids:/berth/t1/web\n5:cpu:/berth/t1/web\n4:cpuacct:/berth/t1/web\n\
                    3:memory:/berth/t1/web\n1:name=systemd:/user.slice\n0::/berth/t1/web\n";
        let m = parse_proc_cgroup(text);
        assert_eq!(m["memory"], "/berth/t1/web");
        assert_eq!(m["name=systemd"], "/user.slice");
        assert_eq!(m[""], "/berth/t1/web");
        let joined = parse_proc_cgroup("7:cpu,cpuacct:/a\n");
        assert_eq!(joined["cpu"], "/a");
        assert_eq!(joined["cpuacct"], "/a");
    }

    #[test]
    fn root_mount_splits_overlay_layers_upper_and_work() {
        let text = "1500 1400 0:77 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/berth/images/layers/\
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/diff:/x/b\\:c,upperdir=/r/up\\054per,workdir=/r/work,uuid=on\n\
1501 1500 0:5 / /proc rw - proc proc rw\n";
        let m = parse_root_mount(text).unwrap();
        assert_eq!(m.fstype, "overlay");
        assert_eq!(m.lowerdirs.len(), 2);
        assert_eq!(m.lowerdirs[1], "/x/b:c");
        assert_eq!(m.upperdir.as_deref(), Some("/r/up,per"));
        assert_eq!(m.workdir.as_deref(), Some("/r/work"));
        assert_eq!(
            layer_digest(&m.lowerdirs[0]).unwrap(),
            format!("sha256:{}", "a".repeat(64))
        );
        assert_eq!(layer_digest(&m.lowerdirs[1]), None);
    }

    #[test]
    fn root_mount_reads_fsconfig_style_lowerdirs_and_escapes() {
        let text = "20 1 0:30 / / rw - overlay overlay rw,lowerdir+=/l/2,lowerdir+=/l/1,upperdir=/u\\040x,workdir=/w\n";
        let m = parse_root_mount(text).unwrap();
        assert_eq!(m.lowerdirs, vec!["/l/2", "/l/1"]);
        assert_eq!(m.upperdir.as_deref(), Some("/u x"));
    }

    #[test]
    fn a_plain_root_has_no_layers() {
        let m = parse_root_mount("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n").unwrap();
        assert_eq!(m.fstype, "ext4");
        assert!(m.lowerdirs.is_empty() && m.upperdir.is_none());
        assert!(parse_root_mount("").is_none());
    }
}
