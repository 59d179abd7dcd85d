//! Where the binaries under test are, and whether this run may touch the kernel.

use std::path::{Path, PathBuf};

/// The workspace root (the folder holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Root tests call this first. It fails the test when not root, unless the run opted out with
/// `BERTH_SKIP_ROOT_TESTS=1`, in which case it returns `false` and the test returns early.
/// Skipping is never silent: the opt-out is printed.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    if std::env::var_os("BERTH_SKIP_ROOT_TESTS").is_some_and(|v| v == "1") {
        eprintln!("berth-tests: not root and BERTH_SKIP_ROOT_TESTS=1: skipping a root test");
        return false;
    }
    panic!("this test needs root (run `sudo ./scripts/test`, or set BERTH_SKIP_ROOT_TESTS=1 to opt out)");
}

/// The path of a binary built by `scripts/test`: `$BERTH_BIN_DIR/NAME`, else
/// `target/release/NAME` in the workspace. Panics naming the path when it is missing.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("BERTH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/release"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first (./scripts/test does)",
        path.display()
    );
    path
}

/// The static probe binary that tests run inside containers (`$BERTH_PROBE`, else the path
/// `scripts/test` builds it at).
pub fn probe_path() -> PathBuf {
    let path = std::env::var_os("BERTH_PROBE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root().join("target/probe/x86_64-unknown-linux-gnu/release/berth-probe")
        });
    assert!(
        path.is_file(),
        "probe {} is missing: build it first (./scripts/test does)",
        path.display()
    );
    path
}

/// A directory for this test's files, named `name` under the temp dir; created fresh.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}
