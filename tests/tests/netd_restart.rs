//! berth-netd killed -9 in the middle of 50 attaches, then restarted (issue 5, acceptance 4).

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netd_support;

use netd_support::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn set_block<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .split(&format!("{name} {{"))
        .nth(1)
        .and_then(|rest| rest.split("\n\t}").next())
        .unwrap_or_else(|| panic!("no {name} in {table}"))
}

#[test]
fn kill_9_during_50_attaches_then_restart_leaves_no_duplicate_ip_and_no_orphan() {
    if !berth_tests::require_root() {
        return;
    }
    let mut lab = Lab::started();
    let enis_dir = lab.dir.join("run/enis");
    let attaching: Vec<_> = (0..2)
        .map(|_| {
            let client = lab.client();
            let id = lab.id.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let req = netd::api::AttachRequest {
                        task: format!("{id}/{}", berth_tests::unique(&format!("{}", i % 10))),
                        subnet: Some("public".into()),
                        security_groups: vec![],
                        port_mappings: vec![],
                        hostname: None,
                    };
                    if client.attach(&req).is_err() {
                        break; // netd is gone
                    }
                }
            })
        })
        .collect();
    // Generous: inside the cgroup-v2 test guest (software emulation) an attach takes seconds.
    berth_tests::wait_until(Duration::from_secs(240), "20 ENI records", || {
        let n = std::fs::read_dir(&enis_dir).map(|d| d.count()).unwrap_or(0);
        (n >= 20).then_some(())
    });
    lab.kill9();
    for t in attaching {
        t.join().unwrap();
    }
    lab.start();

    let enis = lab.client().enis().unwrap();
    assert!(
        enis.len() >= 19,
        "at most the one in-flight attach is lost: {}",
        enis.len()
    );
    let ips: BTreeSet<_> = enis.iter().map(|e| e.ip).collect();
    assert_eq!(ips.len(), enis.len(), "no IP is used twice");

    // Exactly one veth per ENI, one pinned namespace per ENI, nothing else.
    let names: BTreeSet<String> = enis.iter().map(|e| e.host_interface.clone()).collect();
    let veths: BTreeSet<String> = lab
        .host_links()
        .into_iter()
        .filter(|l| l.starts_with("berth"))
        .collect();
    assert_eq!(veths, names, "host veths match the ENIs");
    let netns: BTreeSet<String> = std::fs::read_dir(lab.dir.join("netns"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(netns, names, "pinned namespaces match the ENIs");
    let records = std::fs::read_dir(&enis_dir).unwrap().count();
    assert_eq!(records, enis.len(), "one record per ENI");

    // The rebuilt table holds exactly the surviving ENIs, with one combination chain.
    let table = lab.nft_table();
    let members = set_block(&table, "set enis");
    for e in &enis {
        assert!(
            members.contains(&format!("{}", e.ip)),
            "{} missing from set enis",
            e.ip
        );
    }
    assert_eq!(members.matches("172.31.").count(), enis.len(), "{members}");
    assert_eq!(
        table.matches("chain c_").count() / 2,
        1,
        "one combination chain pair"
    );

    // Rules intact: members of `default` reach each other; a new attach takes a free IP.
    serve(&enis[0].netns_path, 8080, "first");
    assert!(reaches(&enis[1].netns_path, enis[0].ip, 8080));
    let fresh = lab.attach("public", &["default"]);
    assert!(!ips.contains(&fresh.ip));
    assert!(reaches(&fresh.netns_path, enis[0].ip, 8080));
}
