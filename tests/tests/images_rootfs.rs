//! Root tests of container root filesystems and of loading: two rootfs of one image share the
//! unpacked layers and isolate their writes; removal leaves only the shared layers, which gc
//! removes once the image is gone; whiteouts and opaque directories in overlay and copy mode;
//! oci-archive and docker-save loads of the offline recipe images. Issue 4, acceptance 4.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod images_support;

use images_support::layout::{dir, file, Compression, Entry, Layout};
use images_support::{entries, run, World};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes used by the regular files below `dir` (symlinks not followed).
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.path().symlink_metadata().unwrap();
        if m.is_dir() {
            total += du(&e.path());
        } else if m.is_file() {
            total += m.len();
        }
    }
    total
}

fn mounted(p: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
}

/// Build the offline recipe images into `w.dir/recipes` (busybox and httpd layouts).
fn recipes(w: &World) -> PathBuf {
    let out = w.dir.join("recipes");
    run(Command::new(berth_tests::workspace_root().join("images/recipes/build.sh")).arg(&out));
    out
}

#[test]
fn two_rootfs_share_layers_isolate_writes_and_gc_cleans_up() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("rfs");
    let r = recipes(&w);
    w.ok(&["image", "load", r.join("httpd").to_str().unwrap()]);
    let layers_before = du(&w.store().join("layers"));
    let a = PathBuf::from(
        w.ok(&["image", "rootfs", "create", "localhost/httpd", "ca"])
            .stdout
            .trim(),
    );
    let b = PathBuf::from(
        w.ok(&["image", "rootfs", "create", "localhost/httpd", "cb"])
            .stdout
            .trim(),
    );
    assert!(mounted(&a) && mounted(&b));
    assert!(a.join("www/index.html").is_file() && b.join("bin/busybox").is_file());
    // Both rootfs are overlays over the same layer directories.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let lower = |p: &Path| {
        info.lines()
            .find(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
            .and_then(|l| l.split("lowerdir=").nth(1))
            .map(|s| s.split(',').next().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(lower(&a), lower(&b));
    assert!(lower(&a).contains(w.store().join("layers").to_str().unwrap()));

    std::fs::write(a.join("www/written-by-a"), vec![7u8; 100_000]).unwrap();
    std::fs::write(a.join("etc/passwd"), "changed\n").unwrap();
    assert!(
        !b.join("www/written-by-a").exists(),
        "a write in one rootfs is invisible to the other"
    );
    assert!(std::fs::read_to_string(b.join("etc/passwd"))
        .unwrap()
        .starts_with("root:"));
    assert_eq!(
        du(&w.store().join("layers")),
        layers_before,
        "the image's layers are unchanged"
    );
    let upper_a = w.store().join("rootfs/ca/upper");
    assert!(
        du(&upper_a) >= 100_000 && du(&upper_a) < 200_000,
        "disk grows only by the upper dir"
    );
    assert_eq!(du(&w.store().join("rootfs/cb/upper")), 0);

    let e = w.fails(&["image", "rm", "localhost/httpd"]);
    assert!(e.contains("in use by rootfs"), "{e}");
    w.ok(&["image", "rootfs", "rm", "ca", "cb"]);
    assert!(!mounted(&a) && !mounted(&b));
    assert!(
        entries(&w.store().join("rootfs")).is_empty(),
        "removal leaves nothing"
    );
    assert_eq!(
        du(&w.store().join("layers")),
        layers_before,
        "only the shared layers remain"
    );
    w.ok(&["image", "rootfs", "rm", "ca"]); // idempotent

    w.ok(&["image", "rm", "localhost/httpd"]);
    assert_eq!(w.layers().len(), 2, "layers stay until gc");
    let out = w.ok(&["image", "gc"]);
    assert!(out.stdout.contains("2 layers"), "{}", out.stdout);
    assert!(w.layers().is_empty() && w.blobs().is_empty());
}

fn whiteout_image(w: &World) -> PathBuf {
    let path = w.dir.join("wh");
    let mut l = Layout::new(&path);
    let lower: Vec<Entry> = vec![
        dir("d/"),
        file("d/x", b"x"),
        file("d/y", b"y"),
        file("gone", b"g"),
        dir("o/"),
        file("o/old", b"old"),
    ];
    l.layer(&lower, Compression::Gzip);
    l.layer(
        &[
            file("d/.wh.x", b""),
            file(".wh.gone", b""),
            dir("o/"),
            file("o/.wh..wh..opq", b""),
            file("o/new", b"new"),
        ],
        Compression::Gzip,
    );
    l.finish("v1");
    path
}

#[test]
fn whiteouts_and_opaque_directories_apply_in_overlay_and_copy_mode() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("rwh");
    let path = whiteout_image(&w);
    w.ok(&["image", "load", path.to_str().unwrap(), "--name", "wh:v1"]);
    for mode in ["overlay", "copy"] {
        let root = PathBuf::from(
            w.ok(&["image", "rootfs", "create", "wh:v1", mode, "--mode", mode])
                .stdout
                .trim(),
        );
        assert!(root.join("d/y").is_file(), "{mode}");
        assert!(!root.join("d/x").exists(), "{mode}: whiteout hides d/x");
        assert!(!root.join("gone").exists(), "{mode}: whiteout hides gone");
        assert!(
            !root.join("o/old").exists(),
            "{mode}: opaque dir hides o/old"
        );
        assert_eq!(std::fs::read_to_string(root.join("o/new")).unwrap(), "new");
    }
    let ls = w.ok(&["image", "rootfs", "ls", "-o", "json"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&ls.stdout).unwrap();
    assert_eq!(list.len(), 2);
    w.ok(&["image", "rootfs", "rm", "overlay", "copy"]);
    assert!(entries(&w.store().join("rootfs")).is_empty());
}

#[test]
fn oci_archive_and_docker_save_tars_load() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("rld");
    let r = recipes(&w);
    let archive = w.dir.join("busybox.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(r.join("busybox"))
        .arg("-cf")
        .arg(&archive)
        .arg("."));
    let out = w.ok(&[
        "image",
        "load",
        archive.to_str().unwrap(),
        "--name",
        "bb:arch",
    ]);
    assert!(
        out.stdout.contains("docker.io/library/bb:arch"),
        "{}",
        out.stdout
    );

    // A docker-save archive: manifest.json, the config, and layer.tar files.
    let save = w.dir.join("save");
    std::fs::create_dir_all(save.join("l1")).unwrap();
    let layer = images_support::layout::tar_of(&[dir("etc/"), file("etc/saved", b"docker save")]);
    std::fs::write(save.join("l1/layer.tar"), &layer).unwrap();
    let cfg = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [images_support::layout::digest(&layer)]}});
    std::fs::write(save.join("cfg.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    std::fs::write(
        save.join("manifest.json"),
        r#"[{"Config":"cfg.json","RepoTags":["saved/app:1"],"Layers":["l1/layer.tar"]}]"#,
    )
    .unwrap();
    let save_tar = w.dir.join("save.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&save)
        .arg("-cf")
        .arg(&save_tar)
        .arg("."));
    let out = w.ok(&["image", "load", save_tar.to_str().unwrap()]);
    assert!(
        out.stdout.contains("docker.io/saved/app:1"),
        "{}",
        out.stdout
    );
    let root = PathBuf::from(
        w.ok(&["image", "rootfs", "create", "saved/app:1", "s1"])
            .stdout
            .trim(),
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/saved")).unwrap(),
        "docker save"
    );
    w.ok(&["image", "rootfs", "rm", "s1"]);

    let e = w.fails(&[
        "image",
        "load",
        w.dir.join("nothing-here").to_str().unwrap(),
    ]);
    assert!(e.contains("nothing-here"), "{e}");
    let e = w.fails(&["image", "load", save.join("cfg.json").to_str().unwrap()]);
    assert!(
        e.contains("cfg.json") && e.contains("not a tar archive"),
        "{e}"
    );
    assert!(w.temps().is_empty());
}

#[test]
fn xattrs_are_kept_and_overlay_xattrs_from_a_layer_are_dropped() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("rxa");
    let path = w.dir.join("xa");
    let mut l = Layout::new(&path);
    l.layer(&[dir("d/"), file("d/keep", b"k")], Compression::Gzip);
    // A layer claiming d/ is opaque through a raw overlay xattr would hide d/keep: dropped.
    l.layer(
        &[
            dir("d/").xattr("trusted.overlay.opaque", b"y"),
            file("f", b"f").xattr("user.berth", b"kept"),
        ],
        Compression::Gzip,
    );
    l.finish("v1");
    w.ok(&["image", "load", path.to_str().unwrap(), "--name", "xa:v1"]);
    for mode in ["overlay", "copy"] {
        let root = PathBuf::from(
            w.ok(&["image", "rootfs", "create", "xa:v1", mode, "--mode", mode])
                .stdout
                .trim(),
        );
        assert!(
            root.join("d/keep").is_file(),
            "{mode}: a layer's trusted.overlay.* is not applied"
        );
        let mut buf = [0u8; 16];
        let p = std::ffi::CString::new(root.join("f").to_str().unwrap()).unwrap();
        // SAFETY: p is a valid C string, the name is NUL-terminated, buf is writable for its length.
        let n = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                c"user.berth".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(n, 4, "{mode}: user.berth kept");
        assert_eq!(&buf[..4], b"kept");
    }
    w.ok(&["image", "rootfs", "rm", "overlay", "copy"]);
}
