//! A failed attach leaves nothing behind: the kernel objects made before the failing step
//! are removed in reverse order, the record goes and the address is free again.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netd_support;

use netd_support::*;
use std::process::Command;

#[test]
fn an_attach_that_fails_at_its_last_step_is_rolled_back_and_a_restart_heals_the_table() {
    if !berth_tests::require_root() {
        return;
    }
    let mut lab = Lab::started();
    let kept = lab.attach("public", &["default"]);
    let free_before = lab.client().subnets().unwrap()[0].available_ips;
    let links_before = lab.host_links();

    // Someone removes netd's table behind its back: the next attach fails when it adds the
    // ENI's elements, after the record, the netns, the veth, addresses and routes exist.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.host_ns,
            "nft",
            "delete",
            "table",
            "inet",
            "berth",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let req = netd::api::AttachRequest {
        task: "task/doomed".into(),
        subnet: Some("public".into()),
        security_groups: vec![],
        port_mappings: vec![],
        hostname: None,
    };
    let err = lab
        .client()
        .attach(&req)
        .expect_err("attach without a table must fail");
    assert_eq!(err.status(), Some(500), "{err}");
    assert!(
        err.to_string()
            .contains("nft: apply batch to table inet berth"),
        "{err}"
    );

    assert_eq!(lab.host_links(), links_before, "no veth left");
    let netns: Vec<_> = std::fs::read_dir(lab.dir.join("netns"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        netns,
        vec![std::ffi::OsString::from(&kept.host_interface)],
        "only the kept ENI's netns"
    );
    assert_eq!(
        std::fs::read_dir(lab.dir.join("run/enis")).unwrap().count(),
        1,
        "only the kept record"
    );
    assert_eq!(
        lab.client().subnets().unwrap()[0].available_ips,
        free_before,
        "the address is free again"
    );
    assert!(lab.client().eni("task/doomed").is_err());

    // A restart rebuilds the table from the records; the kept ENI works again.
    lab.kill9();
    lab.start();
    assert!(lab.nft_table().contains(&kept.ip.to_string()));
    let other = lab.client().attach(&req).unwrap();
    serve(&kept.netns_path, 8080, "kept");
    assert!(reaches(&other.netns_path, kept.ip, 8080));
}
