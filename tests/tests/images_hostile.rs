//! Root tests: hostile layers are refused with one clear error, nothing is written outside the
//! layer directory, and nothing stays in the store. Issue 4, acceptance 3. The layers are loaded
//! from OCI layouts with `berth image load` (the same unpacker a pull streams into).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod images_support;

use images_support::layout::{chardev, file, hardlink, symlink, Compression, Entry, Layout};
use images_support::World;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Load a one-image layout of `layers` and expect a refusal mentioning `want`.
fn refused(w: &World, name: &str, layers: Vec<Vec<Entry>>, extra: &[&str], want: &str) -> String {
    let dir = w.dir.join(name);
    let mut l = Layout::new(&dir);
    for entries in layers {
        l.layer(&entries, Compression::Gzip);
    }
    l.finish("v1");
    let mut args = vec!["image", "load", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let e = w.fails(&args);
    assert!(e.contains(want) && e.contains("refused"), "{e}");
    assert!(w.images().is_empty(), "no image recorded");
    assert!(w.temps().is_empty(), "no temp left: {:?}", w.temps());
    assert!(w.layers().is_empty(), "no layer left: {:?}", w.layers());
    assert!(w.blobs().is_empty(), "no blob left: {:?}", w.blobs());
    e
}

/// A name for an escape target no test run has used.
fn target(w: &World) -> String {
    format!("{}-escape", w.dir.file_name().unwrap().to_string_lossy())
}

fn nothing_named(name: &str, w: &World) {
    for dir in [
        Path::new("/"),
        Path::new("/tmp"),
        w.dir.as_path(),
        w.root.as_path(),
        &w.store(),
    ] {
        assert!(
            !dir.join(name).exists(),
            "{} was written",
            dir.join(name).display()
        );
    }
}

#[test]
fn dot_dot_and_absolute_entries_are_refused() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("hdd");
    let t = target(&w);
    let up = format!("{}tmp/{t}", "../".repeat(12));
    refused(
        &w,
        "dotdot",
        vec![vec![file("ok", b"x"), file(&up, b"evil")]],
        &[],
        "'..' component",
    );
    refused(
        &w,
        "absolute",
        vec![vec![file(&format!("/tmp/{t}"), b"evil")]],
        &[],
        "absolute path",
    );
    nothing_named(&t, &w);
}

#[test]
fn writes_through_a_symlink_are_refused_within_a_layer_and_across_layers() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("hsl");
    let t = target(&w);
    refused(
        &w,
        "through-root",
        vec![vec![
            symlink("rootlink", "/"),
            file(&format!("rootlink/tmp/{t}"), b"evil"),
        ]],
        &[],
        "path goes through a symlink",
    );
    refused(
        &w,
        "planted",
        vec![
            vec![symlink("planted", "/tmp")],
            vec![file(&format!("planted/{t}"), b"evil")],
        ],
        &[],
        "symlink planted by lower layer",
    );
    nothing_named(&t, &w);
}

#[test]
fn hardlinks_outside_the_layer_are_refused() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("hhl");
    let before = std::fs::metadata("/etc/passwd").unwrap().nlink();
    refused(
        &w,
        "hl-rel",
        vec![vec![hardlink("pw", "../../../../../../etc/passwd")]],
        &[],
        "hardlink target",
    );
    refused(
        &w,
        "hl-abs",
        vec![vec![hardlink("pw", "/etc/passwd")]],
        &[],
        "hardlink target",
    );
    refused(
        &w,
        "hl-via-link",
        vec![vec![symlink("etc", "/etc"), hardlink("pw", "etc/passwd")]],
        &[],
        "hardlink target",
    );
    assert_eq!(
        std::fs::metadata("/etc/passwd").unwrap().nlink(),
        before,
        "no new link to /etc/passwd"
    );
}

#[test]
fn device_nodes_are_refused() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("hdv");
    refused(
        &w,
        "dev",
        vec![vec![file("ok", b"x"), chardev("dev/evil")]],
        &[],
        "device node refused by policy",
    );
}

#[test]
fn a_decompression_bomb_is_stopped_by_the_size_cap() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("hbm");
    // One entry of 256 MiB of zeros: about 256 KiB of gzip.
    let size: u64 = 256 << 20;
    let mut tar = Vec::new();
    let mut h = tar::Header::new_ustar();
    h.set_path("zeros").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    let dir = w.dir.join("bomb");
    let mut l = Layout::new(&dir);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut sha = sha2::Sha256::default();
    use sha2::Digest as _;
    sha.update(&tar);
    gz.write_all(&tar).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) {
        sha.update(&zeros);
        gz.write_all(&zeros).unwrap();
    }
    sha.update([0u8; 1024]);
    gz.write_all(&[0u8; 1024]).unwrap();
    let blob = gz.finish().unwrap();
    assert!(blob.len() < 1 << 20);
    l.layer_gz_with_diff_id(blob, format!("sha256:{}", hex::encode(sha.finalize())));
    l.finish("v1");
    let e = w.fails(&[
        "image",
        "load",
        dir.to_str().unwrap(),
        "--max-layer-bytes",
        "16777216",
    ]);
    assert!(e.contains("exceeds the cap of 16777216 bytes"), "{e}");
    assert!(w.images().is_empty() && w.temps().is_empty() && w.layers().is_empty());
}
