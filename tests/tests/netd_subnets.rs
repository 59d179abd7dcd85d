//! Public and private subnets: NAT to the uplink, published ports, isolation of private
//! subnets from the host and the uplink (issue 5, acceptance 3 and 7: all traffic stays in
//! namespaces the test made).

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netd_support;

use netd::api::PortMapping;
use netd_support::*;

#[test]
fn a_private_task_reaches_neither_the_hosts_other_interfaces_nor_the_uplink() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    lab.group("any", vec![], None);
    let private = lab.attach("private", &["any"]);
    let public = lab.attach("public", &["any"]);
    serve(&lab.host_ns_path(), 7001, "host");
    serve(&lab.uplink_ns_path(), 7002, "uplink");

    assert!(
        !reaches(&private.netns_path, HOST_UPLINK_IP, 7001),
        "host's uplink address"
    );
    assert!(
        !reaches(&private.netns_path, UPLINK_IP, 7002),
        "the uplink namespace"
    );
    assert!(
        !reaches(&public.netns_path, HOST_UPLINK_IP, 7001),
        "no task reaches host services it was not given"
    );
    assert!(
        pings(&private.netns_path, private.gateway),
        "its gateway answers ICMP"
    );
}

#[test]
fn a_public_task_reaches_the_uplink_through_nat_and_its_published_port_answers_from_the_host() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    lab.group("web", vec![rule_cidr("tcp", Some(8080), "0.0.0.0/0")], None);
    let published = vec![PortMapping {
        container_port: 8080,
        host_port: Some(18080),
        protocol: "tcp".into(),
    }];
    let task = lab.attach_with("public", &["web"], published);
    assert_eq!(task.port_mappings[0].host_port, Some(18080));
    serve(&task.netns_path, 8080, "task");
    serve(&lab.uplink_ns_path(), 7002, "uplink");

    // Egress through NAT: the uplink sees the host's address, not the task's.
    let mut s = connect(&task.netns_path, UPLINK_IP, 7002).expect("public task reaches the uplink");
    let answer = exchange(&mut s, "out").unwrap();
    assert_eq!(
        answer,
        format!("uplink {HOST_UPLINK_IP} out"),
        "masqueraded to the host's uplink address"
    );

    // The published port answers on the host's address, from the host and from the uplink.
    let mut s =
        connect(&lab.host_ns_path(), HOST_UPLINK_IP, 18080).expect("published port from the host");
    assert!(exchange(&mut s, "in").unwrap().starts_with("task "));
    let mut s = connect(&lab.uplink_ns_path(), HOST_UPLINK_IP, 18080)
        .expect("published port from the uplink");
    assert_eq!(
        exchange(&mut s, "in").unwrap(),
        format!("task {UPLINK_IP} in")
    );
    // A port that is not published is not forwarded.
    assert!(!reaches(&lab.uplink_ns_path(), HOST_UPLINK_IP, 18081));
    // Nothing routes the VPC from the uplink: the task's own address is unreachable there.
    assert!(!reaches(&lab.uplink_ns_path(), task.ip, 8080));
}
