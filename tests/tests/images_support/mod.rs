//! Support for the images root tests: a store root per test, the `berth` CLI, OCI layouts built
//! in Rust (including hostile layers), and a real `docker-registry` on a loopback port.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod layout;
pub mod registry;

use berth_tests::Cleanup;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One test's world: a temp dir (`/tmp/bt…`) holding the state root and scratch files.
pub struct World {
    /// The temp dir.
    pub dir: PathBuf,
    /// `--root` for berth.
    pub root: PathBuf,
    /// Cleanup steps (registries, rootfs, the temp dir), run on drop.
    pub cleanup: Cleanup,
}

impl World {
    /// A fresh world named after `role`.
    pub fn new(role: &str) -> Self {
        let dir = std::env::temp_dir().join(berth_tests::unique(role));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cleanup = Cleanup::new();
        let d = dir.clone();
        cleanup.defer(format!("temp dir {}", dir.display()), move || {
            // Unmount any rootfs a failed test left before removing the tree.
            if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
                for point in info.lines().filter_map(|l| l.split(' ').nth(4)) {
                    if Path::new(point).starts_with(&d) {
                        let _ = Command::new("umount").arg("-l").arg(point).status();
                    }
                }
            }
            match std::fs::remove_dir_all(&d) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        });
        let root = dir.join("state");
        Self { dir, root, cleanup }
    }

    /// Run `berth --root ROOT args…` with a timeout.
    pub fn berth(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new("timeout");
        cmd.arg("120")
            .arg(berth_tests::bin_path("berth"))
            .arg("--root")
            .arg(&self.root)
            .args(args);
        Out::from(cmd.output().unwrap())
    }

    /// `berth` that must succeed.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.berth(args);
        assert!(out.ok, "berth {args:?} failed: {}", out.stderr);
        out
    }

    /// `berth` that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(!out.ok, "berth {args:?} succeeded: {}", out.stdout);
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "one error line: {}",
            out.stderr
        );
        eprintln!("berth {} -> {}", args.join(" "), out.stderr.trim());
        out.stderr
    }

    /// The store dir.
    pub fn store(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Committed layer dirs (diff-id hex).
    pub fn layers(&self) -> Vec<String> {
        entries(&self.store().join("layers"))
            .into_iter()
            .filter(|n| !n.ends_with(".lock"))
            .collect()
    }

    /// Entries of the store's tmp dir.
    pub fn temps(&self) -> Vec<String> {
        entries(&self.store().join("tmp"))
    }

    /// Names of the blobs.
    pub fn blobs(&self) -> Vec<String> {
        entries(&self.store().join("blobs/sha256"))
    }

    /// `image ls -o json`.
    pub fn images(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["image", "ls", "-o", "json"]);
        serde_json::from_str(&out.stdout).unwrap()
    }
}

/// Sorted names in a dir (empty when it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A finished command.
#[derive(Debug)]
pub struct Out {
    /// Exit status was 0.
    pub ok: bool,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Self {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Run a helper command that must succeed.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
