//! A small container root filesystem built offline: Debian's busybox-static plus the probe.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// Where busybox-static installs its binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Fill `dir` with a busybox rootfs: `/bin/busybox` and a link per applet, `/probe`,
/// `/etc/passwd` and `/etc/group` (root, user 1000, nobody), `/tmp` mode 1777 and empty
/// `/proc`, `/sys`, `/dev`. The binaries are copied, never hard-linked, so that a test
/// attacking the container's binaries cannot reach the host's.
pub fn busybox(dir: &Path) {
    for d in [
        "bin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "home/user",
        "var/tmp",
    ] {
        fs::create_dir_all(dir.join(d))
            .unwrap_or_else(|e| panic!("mkdir {}/{d}: {e}", dir.display()));
    }
    for d in ["tmp", "var/tmp"] {
        fs::set_permissions(dir.join(d), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
    }
    copy_exec(Path::new(BUSYBOX), &dir.join("bin/busybox"));
    copy_exec(&crate::env::probe_path(), &dir.join("probe"));
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("run busybox --list (package busybox-static)");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = symlink("busybox", dir.join("bin").join(applet));
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("write passwd");
    fs::write(
        dir.join("etc/group"),
        "root:x:0:\nwheel:x:10:user\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .expect("write group");
}

fn copy_exec(from: &Path, to: &Path) {
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).expect("chmod");
}
