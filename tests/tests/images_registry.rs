//! Root tests of `berth image pull` against a real registry (Debian's docker-registry on a
//! loopback port): anonymous and basic-auth pulls, index resolution, corrupt blobs, a registry
//! killed mid-pull, and bad references. Issue 4, acceptance 1 and 2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod images_support;

use images_support::layout::{dir, file, noise, symlink, Compression, Layout};
use images_support::registry::{Proxy, Registry};
use images_support::World;
use std::time::Duration;

/// A three-layer image; returns the layer digests.
fn three_layers(w: &World, name: &str) -> (std::path::PathBuf, Vec<String>) {
    let path = w.dir.join(name);
    let mut l = Layout::new(&path);
    let a = l.layer(
        &[
            dir("etc/"),
            file("etc/one", b"1"),
            symlink("etc/link", "one"),
        ],
        Compression::Gzip,
    );
    let b = l.layer(&[dir("srv/"), file("srv/two", b"2")], Compression::Gzip);
    let c = l.layer(
        &[
            file("srv/three", &noise(64 * 1024, 3)),
            file(".wh.gone", b""),
        ],
        Compression::None,
    );
    l.finish("v1");
    (path, vec![a, b, c])
}

#[test]
fn pulls_a_multi_layer_image_anonymously_and_with_basic_auth() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("ipa");
    let (layout, _) = three_layers(&w, "multi");
    let open = Registry::start(&w.dir.join("reg-open"), None);
    open.push(&layout, "v1", "multi", None);
    let out = w.ok(&["image", "pull", &format!("{}/multi:v1", open.addr)]);
    assert!(
        out.stdout.contains("3 layers fetched, 0 already present"),
        "{}",
        out.stdout
    );
    assert_eq!(w.layers().len(), 3);
    let images = w.images();
    assert_eq!(images[0]["names"][0], format!("{}/multi:v1", open.addr));
    let again = w.ok(&["image", "pull", &format!("{}/multi:v1", open.addr)]);
    assert!(
        again.stdout.contains("0 layers fetched, 3 already present"),
        "{}",
        again.stdout
    );

    let locked = Registry::start(&w.dir.join("reg-auth"), Some(("alice", "s3cret")));
    locked.push(&layout, "v1", "multi", Some("alice:s3cret"));
    let image = format!("{}/multi:v1", locked.addr);
    let fresh = World::new("ipb");
    let e = fresh.fails(&["image", "pull", &image]);
    assert!(e.contains(&image) && e.contains("Not authorized"), "{e}");
    let e = fresh.fails(&["image", "pull", "--creds", "alice:wrong", &image]);
    assert!(e.contains(&image) && e.contains("Not authorized"), "{e}");
    assert!(fresh.layers().is_empty() && fresh.blobs().is_empty() && fresh.temps().is_empty());
    let out = fresh.ok(&["image", "pull", "--creds", "alice:s3cret", &image]);
    assert!(out.stdout.contains("3 layers fetched"), "{}", out.stdout);

    // The same credentials from a Docker config.json and from a secret file.
    let cfg = fresh.dir.join("config.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            locked.addr
        ),
    )
    .unwrap();
    let other = World::new("ipc");
    other.ok(&[
        "image",
        "pull",
        "--auth-file",
        cfg.to_str().unwrap(),
        &image,
    ]);
    let secret = fresh.dir.join("secret.json");
    std::fs::write(&secret, r#"{"username":"alice","password":"s3cret"}"#).unwrap();
    let third = World::new("ipd");
    third.ok(&[
        "image",
        "pull",
        "--secret-file",
        secret.to_str().unwrap(),
        &image,
    ]);
    assert_eq!(third.layers().len(), 3);
}

#[test]
fn an_index_resolves_to_linux_amd64_and_an_arm64_only_one_is_refused() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("iix");
    let mut l = Layout::new(&w.dir.join("multiarch"));
    l.layer(&[file("arch", b"arm64")], Compression::Gzip);
    let arm = l.manifest("arm64", serde_json::json!({"Cmd": ["/bin/sh"]}));
    l.layer(&[file("arch", b"amd64")], Compression::Gzip);
    let amd = l.manifest("amd64", serde_json::json!({"Cmd": ["/bin/sh"]}));
    l.finish_index(
        "v1",
        &[
            ("arm64", arm.0.clone(), arm.1),
            ("amd64", amd.0.clone(), amd.1),
        ],
    );
    let mut only_arm = Layout::new(&w.dir.join("armonly"));
    only_arm.layer(&[file("arch", b"arm64")], Compression::Gzip);
    let arm2 = only_arm.manifest("arm64", serde_json::json!({"Cmd": ["/bin/sh"]}));
    only_arm.finish_index("v1", &[("arm64", arm2.0, arm2.1)]);

    let reg = Registry::start(&w.dir.join("reg"), None);
    reg.push(&w.dir.join("multiarch"), "v1", "multiarch", None);
    reg.push(&w.dir.join("armonly"), "v1", "armonly", None);
    w.ok(&["image", "pull", &format!("{}/multiarch:v1", reg.addr)]);
    let images = w.images();
    assert_eq!(images[0]["id"], amd.0, "the amd64 manifest is the image");
    assert_eq!(images[0]["architecture"], "amd64");

    let fresh = World::new("iiy");
    let image = format!("{}/armonly:v1", reg.addr);
    let e = fresh.fails(&["image", "pull", &image]);
    assert!(
        e.contains(&image)
            && e.contains("no manifest for linux/amd64")
            && e.contains("linux/arm64"),
        "{e}"
    );
    assert!(fresh.layers().is_empty() && fresh.blobs().is_empty() && fresh.images().is_empty());
}

#[test]
fn a_corrupt_blob_is_refused_and_nothing_half_written_stays() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("icb");
    let (layout, _) = three_layers(&w, "corrupt");
    let reg = Registry::start(&w.dir.join("reg"), None);
    reg.push(&layout, "v1", "corrupt", None);
    // skopeo compresses the third layer on push: take the digests the registry serves.
    let layers = reg.layer_digests("corrupt:v1");
    assert_eq!(layers.len(), 3);
    // Flip one byte inside the third layer's blob: same size, other digest.
    let blob = reg.blob_file(&layers[2]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let image = format!("{}/corrupt:v1", reg.addr);
    let e = w.fails(&["image", "pull", &image]);
    assert!(
        e.contains(&image) && e.contains(&layers[2]) && e.to_lowercase().contains("digest"),
        "{e}"
    );
    assert!(w.images().is_empty(), "no image recorded");
    assert!(w.temps().is_empty(), "no temp left: {:?}", w.temps());
    assert!(
        w.blobs().is_empty(),
        "no manifest or config stored: {:?}",
        w.blobs()
    );
    assert_eq!(w.layers().len(), 2, "only the two verified layers are kept");
}

#[test]
fn a_registry_killed_mid_pull_fails_clearly_and_the_retry_skips_finished_layers() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("ikl");
    let path = w.dir.join("big");
    let mut l = Layout::new(&path);
    let small1 = l.layer(&[file("a", b"a")], Compression::Gzip);
    let small2 = l.layer(&[file("b", b"b")], Compression::Gzip);
    let big = l.layer(&[file("big.bin", &noise(6 << 20, 9))], Compression::Gzip);
    l.finish("v1");
    let mut reg = Registry::start(&w.dir.join("reg"), None);
    reg.push(&path, "v1", "big", None);
    // About 1.6 MB/s through the proxy: the big layer takes seconds, the small ones finish.
    let proxy = Proxy::start(&reg.addr, 16 * 1024);
    let image = format!("{}/big:v1", proxy.addr);
    let child = std::process::Command::new("timeout")
        .arg("120")
        .arg(berth_tests::bin_path("berth"))
        .arg("--root")
        .arg(&w.root)
        .args(["image", "pull", &image])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    berth_tests::wait_until(
        Duration::from_secs(60),
        "two small layers committed, big one in flight",
        || {
            (w.layers().len() == 2 && w.temps().iter().any(|t| t.starts_with("layer-")))
                .then_some(())
        },
    );
    reg.kill();
    let out = images_support::Out::from(child.wait_with_output().unwrap());
    assert!(!out.ok, "pull must fail when the registry dies");
    assert!(
        out.stderr.contains(&image) && out.stderr.contains(&format!("fetch layer {big}")),
        "{}",
        out.stderr
    );
    assert!(
        w.images().is_empty() && w.temps().is_empty(),
        "nothing half-written: {:?}",
        w.temps()
    );
    assert_eq!(w.layers().len(), 2);

    reg.restart();
    proxy.clear();
    let out = w.ok(&["image", "pull", &image]);
    assert!(
        out.stdout.contains("1 layers fetched, 2 already present"),
        "{}",
        out.stdout
    );
    let paths = proxy.paths().join("\n");
    assert!(paths.contains(&format!("/blobs/{big}")), "{paths}");
    for done in [&small1, &small2] {
        assert!(
            !paths.contains(&format!("/blobs/{done}")),
            "refetched {done}: {paths}"
        );
    }
}

#[test]
fn bad_references_unknown_images_and_a_down_registry_give_one_clear_error() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("ibr");
    let (layout, _) = three_layers(&w, "known");
    let mut reg = Registry::start(&w.dir.join("reg"), None);
    reg.push(&layout, "v1", "known", None);
    let e = w.fails(&["image", "pull", "Not/Valid::ref"]);
    assert!(e.contains("invalid image reference"), "{e}");
    let unknown = format!("{}/unknown:v1", reg.addr);
    let e = w.fails(&["image", "pull", &unknown]);
    assert!(
        e.contains(&unknown) && e.contains("manifest unknown"),
        "{e}"
    );
    let wrong_tag = format!("{}/known:nope", reg.addr);
    let e = w.fails(&["image", "pull", &wrong_tag]);
    assert!(
        e.contains(&wrong_tag) && e.contains("manifest unknown"),
        "{e}"
    );
    reg.kill();
    let known = format!("{}/known:v1", reg.addr);
    let e = w.fails(&["image", "pull", &known]);
    assert!(
        e.contains(&known) && e.contains("Connection refused"),
        "{e}"
    );
    assert!(
        w.images().is_empty()
            && w.layers().is_empty()
            && w.blobs().is_empty()
            && w.temps().is_empty()
    );
}

#[test]
fn concurrent_pulls_of_one_image_fetch_each_layer_once() {
    if !berth_tests::require_root() {
        return;
    }
    let w = World::new("icc");
    let path = w.dir.join("shared");
    let mut l = Layout::new(&path);
    let layers = [
        l.layer(&[file("a", &noise(512 * 1024, 1))], Compression::Gzip),
        l.layer(&[file("b", &noise(512 * 1024, 2))], Compression::Gzip),
    ];
    l.finish("v1");
    let reg = Registry::start(&w.dir.join("reg"), None);
    reg.push(&path, "v1", "shared", None);
    let proxy = Proxy::start(&reg.addr, 16 * 1024);
    let image = format!("{}/shared:v1", proxy.addr);
    let pull = || {
        std::process::Command::new("timeout")
            .arg("120")
            .arg(berth_tests::bin_path("berth"))
            .arg("--root")
            .arg(&w.root)
            .args(["image", "pull", &image])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (pull(), pull());
    for child in [first, second] {
        let out = images_support::Out::from(child.wait_with_output().unwrap());
        assert!(out.ok, "{}", out.stderr);
    }
    assert_eq!(w.layers().len(), 2);
    assert_eq!(w.images().len(), 1);
    let paths = proxy.paths();
    for d in &layers {
        let gets = paths
            .iter()
            .filter(|p| p.contains(&format!("/blobs/{d}")))
            .count();
        assert_eq!(gets, 1, "layer {d} fetched {gets} times: {paths:?}");
    }
}
