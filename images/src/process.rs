//! Image config → the OCI `process` pieces berth-runtime consumes, merged with the ECS container
//! definition's overrides the way ECS (through Docker) merges them:
//!
//! - `entryPoint` replaces the image's Entrypoint *and* drops the image's Cmd; `command` replaces
//!   Cmd. args = entrypoint ++ cmd.
//! - `environment` entries override image Env entries of the same name; PATH gets Docker's default
//!   when neither sets it; HOME comes from the user's passwd entry when unset.
//! - `workingDirectory` replaces WorkingDir; default `/`.
//! - `user` replaces User: `name`, `uid`, `name:group`, `uid:gid`, resolved through the image's
//!   `/etc/passwd` and `/etc/group` (read beneath the rootfs, no symlink followed out of it);
//!   supplementary groups come from `/etc/group` membership, as Docker does.

use crate::error::ImageError;
use crate::oci::ImageConfigFile;
use crate::safefs;
use rustix::fs::OFlags;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Docker's default PATH.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The ECS container definition fields that override the image config.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `entryPoint`.
    pub entry_point: Option<Vec<String>>,
    /// `command`.
    pub command: Option<Vec<String>>,
    /// `environment` (name, value), in definition order.
    pub environment: Vec<(String, String)>,
    /// `workingDirectory`.
    pub working_directory: Option<String>,
    /// `user`.
    pub user: Option<String>,
}

/// The merged process, ready for the OCI config's `process` (see [`ProcessPieces::to_oci_process`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessPieces {
    /// argv.
    pub args: Vec<String>,
    /// `KEY=value`.
    pub env: Vec<String>,
    /// Working directory.
    pub cwd: String,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary gids.
    pub additional_gids: Vec<u32>,
    /// The image's StopSignal, if any.
    pub stop_signal: Option<String>,
    /// The image's ExposedPorts (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// The image's Labels.
    pub labels: BTreeMap<String, String>,
}

impl ProcessPieces {
    /// The OCI runtime-spec `process` object (args, env, cwd, user) as JSON.
    pub fn to_oci_process(&self) -> serde_json::Value {
        serde_json::json!({
            "args": self.args,
            "env": self.env,
            "cwd": self.cwd,
            "user": {"uid": self.uid, "gid": self.gid, "additionalGids": self.additional_gids},
        })
    }
}

/// Merge `config` with `overrides`, resolving the user in the rootfs at `rootfs`.
pub fn resolve_process(
    config: &ImageConfigFile,
    overrides: &Overrides,
    rootfs: &Path,
) -> Result<ProcessPieces, ImageError> {
    let c = config.config.clone().unwrap_or_default();
    let (entrypoint, cmd) = match &overrides.entry_point {
        Some(ep) => (ep.clone(), overrides.command.clone().unwrap_or_default()),
        None => (
            c.entrypoint.clone().unwrap_or_default(),
            overrides
                .command
                .clone()
                .or(c.cmd.clone())
                .unwrap_or_default(),
        ),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(ImageError::BadImage {
            image: "config".to_string(),
            reason: "no command: the image has neither Entrypoint nor Cmd and none was given"
                .to_string(),
        });
    }
    let user_spec = overrides
        .user
        .clone()
        .or(c.user.clone())
        .filter(|u| !u.is_empty());
    let user = match &user_spec {
        Some(spec) => resolve_user(spec, rootfs)?,
        None => resolve_user("0", rootfs)?,
    };
    let mut env = merge_env(c.env.as_deref().unwrap_or_default(), &overrides.environment);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", user.home));
    }
    let cwd = overrides
        .working_directory
        .clone()
        .or(c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_string());
    if !cwd.starts_with('/') {
        return Err(ImageError::BadImage {
            image: "config".to_string(),
            reason: format!("working directory {cwd:?} is not absolute"),
        });
    }
    Ok(ProcessPieces {
        args,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.groups,
        stop_signal: c.stop_signal.clone(),
        exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
        labels: c.labels.unwrap_or_default(),
    })
}

/// Image env, then overrides: a later `NAME=` replaces an earlier one in place.
fn merge_env(image: &[String], overrides: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let key = |e: &str| e.split('=').next().unwrap_or(e).to_string();
    let mut put = |entry: String| {
        let k = key(&entry);
        match out.iter_mut().find(|e| key(e) == k) {
            Some(slot) => *slot = entry,
            None => out.push(entry),
        }
    };
    for e in image {
        put(e.clone());
    }
    for (k, v) in overrides {
        put(format!("{k}={v}"));
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
struct User {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    home: String,
}

fn resolve_user(spec: &str, rootfs: &Path) -> Result<User, ImageError> {
    let passwd = read_in_rootfs(rootfs, "etc/passwd");
    let group = read_in_rootfs(rootfs, "etc/group");
    user_from(spec, passwd.as_deref(), group.as_deref())
}

/// Pure: resolve `spec` against passwd and group contents (None: the file is absent).
fn user_from(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<User, ImageError> {
    let bad = |reason: String| ImageError::User {
        user: spec.to_string(),
        reason,
    };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let pw_entries: Vec<Vec<&str>> = passwd
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let by_name = pw_entries.iter().find(|f| f[0] == u);
    let (uid, mut gid, name, home) = match (u.parse::<u32>(), by_name) {
        (Ok(uid), _) => {
            let entry = pw_entries.iter().find(|f| f[2].parse::<u32>() == Ok(uid));
            (
                uid,
                entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
                entry.map(|f| f[0].to_string()),
                entry.map_or("/".to_string(), |f| f[5].to_string()),
            )
        }
        (Err(_), Some(f)) => (
            f[2].parse()
                .map_err(|_| bad(format!("bad uid in /etc/passwd: {:?}", f[2])))?,
            f[3].parse()
                .map_err(|_| bad(format!("bad gid in /etc/passwd: {:?}", f[3])))?,
            Some(f[0].to_string()),
            f[5].to_string(),
        ),
        (Err(_), None) => {
            return Err(bad(match passwd {
                Some(_) => format!("no user {u:?} in the image's /etc/passwd"),
                None => "the image has no /etc/passwd to resolve a user name".to_string(),
            }))
        }
    };
    let gr_entries: Vec<Vec<&str>> = group
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => gr_entries
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| bad(format!("no group {g:?} in the image's /etc/group")))?,
        };
    }
    let mut groups: Vec<u32> = match (&name, g) {
        (Some(n), None) => gr_entries
            .iter()
            .filter(|f| f[3].split(',').any(|m| m == n))
            .filter_map(|f| f[2].parse().ok())
            .filter(|x| *x != gid)
            .collect(),
        _ => Vec::new(),
    };
    groups.sort_unstable();
    groups.dedup();
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}

/// Read a small file of the image without following any symlink out of (or within) the rootfs.
fn read_in_rootfs(rootfs: &Path, rel: &str) -> Option<String> {
    let root = safefs::open_dir(rootfs).ok()?;
    let fd = safefs::openat2_beneath(&root, Path::new(rel), OFlags::RDONLY).ok()?;
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::ContainerConfig;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/home/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:web\nweb:x:1000:\nstaff:x:50:other,web\n";

    fn image(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfigFile {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ImageConfigFile {
            config: Some(ContainerConfig {
                entrypoint: ep.map(v),
                cmd: cmd.map(v),
                env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
                working_dir: Some("/srv".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn merges_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = image(Some(&["/ep"]), Some(&["a", "b"]));
        let p = resolve_process(&cfg, &Overrides::default(), dir.path()).unwrap();
        assert_eq!(p.args, ["/ep", "a", "b"]);
        assert_eq!(p.cwd, "/srv");
        let o = Overrides {
            command: Some(vec!["c".into()]),
            ..Default::default()
        };
        assert_eq!(
            resolve_process(&cfg, &o, dir.path()).unwrap().args,
            ["/ep", "c"]
        );
        let o = Overrides {
            entry_point: Some(vec!["/new".into()]),
            environment: vec![("A".into(), "task".into()), ("B".into(), "1".into())],
            working_directory: Some("/w".into()),
            ..Default::default()
        };
        let p = resolve_process(&cfg, &o, dir.path()).unwrap();
        assert_eq!(
            p.args,
            ["/new"],
            "an entryPoint override drops the image's Cmd"
        );
        assert_eq!(p.env, ["PATH=/bin", "A=task", "B=1", "HOME=/"]);
        assert_eq!(p.cwd, "/w");
        assert!(resolve_process(&image(None, None), &Overrides::default(), dir.path()).is_err());
    }

    #[test]
    fn passwd_is_read_beneath_the_rootfs_never_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("etc/passwd")).unwrap();
        let e = resolve_user("root", dir.path()).unwrap_err().to_string();
        assert!(e.contains("no /etc/passwd"), "{e}");
        std::fs::remove_file(dir.path().join("etc/passwd")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        assert_eq!(resolve_user("web", dir.path()).unwrap().uid, 1000);
    }

    #[test]
    fn resolves_users_and_groups() {
        let u = user_from("web", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone(), u.home.as_str()),
            (1000, 1000, vec![10, 50], "/home/web")
        );
        let u = user_from("web:wheel", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        let u = user_from("4242:7", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 7, "/"));
        let e = user_from("nobody", Some(PASSWD), Some(GROUP))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no user \"nobody\""), "{e}");
        assert!(user_from("web:nogroup", Some(PASSWD), Some(GROUP)).is_err());
        assert!(user_from("web", None, None).is_err());
    }
}
