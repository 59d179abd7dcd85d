//! Issue 11: the conformance box must not rot. `vagrant validate` accepts vagrant/Vagrantfile
//! (and refuses a broken copy), and `vagrant/provision.sh --prebuilt` runs to completion in a
//! Debian 12 root made with debootstrap (vagrant/test-in-debootstrap.sh: real apt installs in
//! the root, the binaries under test, configs and systemd units installed, enabled and
//! verified, the quickstart's demo and --down in a network namespace of its own), while a
//! broken copy of the provisioning script fails.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::{require_root, unique, workspace_root, Cleanup};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(guard: &mut Cleanup, role: &str) -> PathBuf {
    let dir = berth_tests::env::test_dir(&unique(role));
    let d = dir.clone();
    guard.defer(format!("remove {}", dir.display()), move || {
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
    });
    dir
}

/// `vagrant validate` in `dir` (offline, libvirt provider, no plugin install): (ok, output).
fn validate(dir: &Path) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["120", "vagrant", "validate"])
        .current_dir(dir)
        .env("VAGRANT_DEFAULT_PROVIDER", "libvirt")
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .expect("vagrant (Debian's vagrant and vagrant-libvirt packages) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn vagrant_validate_accepts_the_vagrantfile_and_refuses_a_broken_one() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let dir = scratch(&mut guard, "vv");
    let src = workspace_root().join("vagrant");
    let text = std::fs::read_to_string(src.join("Vagrantfile")).unwrap();
    for (what, line) in [
        ("a Debian 12 box", "\"debian/bookworm64\""),
        ("2 CPUs", "\"BERTH_VM_CPUS\", \"2\""),
        ("4 GiB", "\"BERTH_VM_MEMORY\", \"4096\""),
        ("the libvirt provider", "config.vm.provider :libvirt"),
        ("provision.sh", "path: \"provision.sh\""),
    ] {
        assert!(text.contains(line), "Vagrantfile: {what} ({line})");
    }
    // A copy, so that vagrant's .vagrant/ lands in the scratch directory.
    std::fs::write(dir.join("Vagrantfile"), &text).unwrap();
    std::fs::copy(src.join("provision.sh"), dir.join("provision.sh")).unwrap();
    let (ok, out) = validate(&dir);
    assert!(ok && out.contains("validated successfully"), "{out}");

    std::fs::write(
        dir.join("Vagrantfile"),
        text.replace("lv.cpus = cpus", "lv.cpuss = cpus"),
    )
    .unwrap();
    let (ok, out) = validate(&dir);
    assert!(!ok && out.contains("cpuss"), "a broken Vagrantfile: {out}");
}

/// Run vagrant/test-in-debootstrap.sh with `script` as provision.sh: (exit ok, output).
fn provision_in_debootstrap(work: &Path, script: &Path, reuse: bool) -> (bool, String) {
    let out = Command::new("timeout")
        .env("BERTH_DEBOOTSTRAP_REUSE", if reuse { "1" } else { "0" })
        .args(["-s", "KILL", "1200"])
        .arg(workspace_root().join("vagrant/test-in-debootstrap.sh"))
        .arg(berth_tests::env::bin_path("berth").parent().unwrap())
        .arg(work)
        .arg(script)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn provisioning_runs_in_a_debian_12_root_and_a_broken_step_fails() {
    if !require_root() {
        return;
    }
    let mut guard = Cleanup::new();
    let work = scratch(&mut guard, "pv");
    // Task cgroups live in the host's tree: if --down failed to remove them, remove them here.
    let w = work.clone();
    guard.defer("the demo task's cgroups", move || {
        let log = std::fs::read_to_string(w.join("tasks")).unwrap_or_default();
        for task in log.split_whitespace() {
            for h in std::fs::read_dir("/sys/fs/cgroup").map_err(|e| e.to_string())? {
                let cg = h
                    .map_err(|e| e.to_string())?
                    .path()
                    .join("berth")
                    .join(task);
                if cg.exists() {
                    let _ = Command::new("find")
                        .arg(&cg)
                        .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
                        .status();
                }
            }
        }
        Ok(())
    });
    let script = workspace_root().join("vagrant/provision.sh");
    let (ok, out) = provision_in_debootstrap(&work, &script, false);
    let tasks: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("task "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    std::fs::write(work.join("tasks"), tasks.join(" ")).unwrap();
    assert!(
        ok,
        "provision.sh --prebuilt in the debootstrap root:\n{}",
        tail(&out, 80)
    );
    for line in [
        "ok      system packages",
        "ok      installed:",
        "ok      quickstart: task ",
        "ok      quickstart --down: nothing left",
    ] {
        assert!(
            out.contains(line),
            "summary line {line:?}:\n{}",
            tail(&out, 30)
        );
    }
    assert!(!out.contains("FAILED"), "{}", tail(&out, 30));
    if let Some(at) = out.find("== berth box summary") {
        eprintln!(
            "{}",
            out[at..].lines().take(6).collect::<Vec<_>>().join("\n")
        );
    }
    assert!(out.contains("hello from berth httpd"), "the demo page");

    // What the box got, read from outside the root.
    let root = work.join("root");
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    for pkg in [
        "nftables",
        "iproute2",
        "busybox-static",
        "systemd",
        "libseccomp2",
        "jq",
    ] {
        assert!(
            status.contains(&format!("Package: {pkg}\nStatus: install ok installed")),
            "{pkg} installed in the root"
        );
    }
    for f in [
        "usr/local/bin/berth-agent",
        "usr/local/bin/berth-netd",
        "usr/local/bin/berth-runtime",
        "usr/local/bin/berth",
    ] {
        let (a, b) = (
            std::fs::read(root.join(f)).unwrap(),
            std::fs::read(berth_tests::env::bin_path(
                Path::new(f).file_name().unwrap().to_str().unwrap(),
            ))
            .unwrap(),
        );
        assert!(a == b, "{f} is the binary under test");
    }
    for (installed, shipped) in [
        ("etc/berth/netd.toml", "packaging/config/netd.toml"),
        ("etc/berth/agent.toml", "packaging/config/agent.toml"),
        (
            "etc/systemd/system/berth-netd.service",
            "packaging/systemd/berth-netd.service",
        ),
        (
            "etc/systemd/system/berth-agent.service",
            "packaging/systemd/berth-agent.service",
        ),
    ] {
        assert_eq!(
            std::fs::read_to_string(root.join(installed)).unwrap(),
            std::fs::read_to_string(workspace_root().join(shipped)).unwrap(),
            "{installed}"
        );
    }
    for unit in ["berth-netd.service", "berth-agent.service"] {
        let link = root
            .join("etc/systemd/system/multi-user.target.wants")
            .join(unit);
        assert!(link.symlink_metadata().is_ok(), "{unit} enabled");
    }
    // The quickstart's own state went with --down; the box's install stays.
    assert!(
        !root.join("var/lib/berth/quickstart").exists(),
        "quickstart state removed"
    );

    // A broken provisioning step (the unit file's source path mistyped) must fail the run.
    let text = std::fs::read_to_string(&script).unwrap();
    let broken = text.replace(
        "\"packaging/systemd/$u.service\"",
        "\"packaging/systemd/$u.servce\"",
    );
    assert_ne!(broken, text, "the step to break is in provision.sh");
    let broken_path = work.join("provision-broken.sh");
    std::fs::write(&broken_path, broken).unwrap();
    let (ok, out) = provision_in_debootstrap(&work, &broken_path, true);
    assert!(
        !ok,
        "a broken provisioning step must fail:\n{}",
        tail(&out, 30)
    );
    assert!(
        out.contains("FAILED"),
        "the summary says so:\n{}",
        tail(&out, 30)
    );
    assert!(
        out.contains("berth-netd.servce") && !out.contains("ok      quickstart"),
        "it failed at the broken step, before the quickstart:\n{}",
        tail(&out, 30)
    );
}
