//! Security groups with real traffic between task namespaces (issue 5, acceptance 1 and 2).

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netd_support;

use netd::api::SecurityGroupSpec;
use netd_support::*;

#[test]
fn group_to_group_rule_allows_tcp_8080_and_without_it_the_connection_is_dropped() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    lab.group("app", vec![], None);
    lab.group("web", vec![tcp_from_group(8080, "app")], None);
    let web = lab.attach("public", &["web"]);
    let app = lab.attach("public", &["app"]);
    let stranger = lab.attach("public", &["default"]);
    serve(&web.netns_path, 8080, "web");
    serve(&web.netns_path, 8081, "web");

    assert!(
        reaches(&app.netns_path, web.ip, 8080),
        "app -> web:8080 is allowed by the group rule"
    );
    assert!(
        !reaches(&stranger.netns_path, web.ip, 8080),
        "a task outside `app` is dropped"
    );
    assert!(
        !reaches(&app.netns_path, web.ip, 8081),
        "only port 8080 is allowed"
    );

    // ICMP follows its own rule.
    assert!(!pings(&app.netns_path, web.ip), "no ICMP rule yet");
    lab.group(
        "web",
        vec![
            tcp_from_group(8080, "app"),
            rule_cidr("icmp", None, &format!("{}/32", app.ip)),
        ],
        None,
    );
    assert!(
        pings(&app.netns_path, web.ip),
        "ICMP allowed from app's address"
    );
    assert!(
        !pings(&stranger.netns_path, web.ip),
        "ICMP still dropped from others"
    );
    assert!(reaches(&app.netns_path, web.ip, 8080));
}

#[test]
fn egress_deny_stops_connections_the_task_starts() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    lab.group(
        "open",
        vec![rule_cidr("tcp", Some(9000), "0.0.0.0/0")],
        None,
    );
    lab.group("locked", vec![], Some(vec![]));
    let server = lab.attach("public", &["open"]);
    let locked = lab.attach("public", &["locked"]);
    let free = lab.attach("public", &["default"]);
    serve(&server.netns_path, 9000, "srv");

    assert!(
        reaches(&free.netns_path, server.ip, 9000),
        "default egress allows all"
    );
    assert!(
        !reaches(&locked.netns_path, server.ip, 9000),
        "egress [] denies"
    );
    // Allow egress to the server's group only: the connection goes through.
    lab.group("locked", vec![], Some(vec![tcp_from_group(9000, "open")]));
    assert!(
        reaches(&locked.netns_path, server.ip, 9000),
        "egress to group `open` on 9000"
    );
}

#[test]
fn a_source_group_rule_follows_a_member_whose_ip_changed() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    lab.group("app", vec![], None);
    lab.group("web", vec![tcp_from_group(8080, "app")], None);
    let web = lab.attach("public", &["web"]);
    serve(&web.netns_path, 8080, "web");
    let client = lab.client();

    let req = netd::api::AttachRequest {
        task: "task/app-1".into(),
        subnet: Some("public".into()),
        security_groups: vec!["app".into()],
        port_mappings: vec![],
        hostname: None,
    };
    let first = client.attach(&req).unwrap();
    assert!(reaches(&first.netns_path, web.ip, 8080));
    client.detach("task/app-1").unwrap();
    // Another task now sits between; the member comes back with a different address.
    let _filler = lab.attach("public", &["default"]);
    let second = client.attach(&req).unwrap();
    assert_ne!(first.ip, second.ip, "the member's IP changed");
    assert!(
        reaches(&second.netns_path, web.ip, 8080),
        "the rule follows the new IP"
    );
    let table = lab.nft_table();
    let app_set = table
        .split("set g_app {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    assert!(
        app_set.contains(&second.ip.to_string()) && !app_set.contains(&first.ip.to_string()),
        "{app_set}"
    );
}

#[test]
fn a_rule_change_keeps_established_connections_and_reaches_new_ones() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    lab.group("app", vec![], None);
    lab.group("web", vec![tcp_from_group(8080, "app")], None);
    let web = lab.attach("public", &["web"]);
    let app = lab.attach("public", &["app"]);
    serve(&web.netns_path, 8080, "web");

    let mut open = connect(&app.netns_path, web.ip, 8080).expect("allowed connection");
    assert!(exchange(&mut open, "before").unwrap().ends_with("before"));

    // Remove the rule: new connections are dropped, the established one carries on.
    let none = SecurityGroupSpec {
        id: None,
        description: String::new(),
        ingress: vec![],
        egress: None,
    };
    lab.client().put_security_group("web", &none).unwrap();
    assert!(
        !reaches(&app.netns_path, web.ip, 8080),
        "the change reached the running task"
    );
    let after = exchange(&mut open, "after").expect("established connection survives the change");
    assert!(after.ends_with("after"), "{after}");
}

/// ENIs are IPv4-only: the host end of each veth comes up with IPv6 off (no link-local
/// address, no per-link IPv6 routes), so a task cannot reach the host over IPv6 and a new
/// ENI's bring-up does not walk every other ENI's IPv6 routes.
#[test]
fn the_host_end_of_an_eni_has_ipv6_off() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    let eni = lab.attach("public", &["default"]);
    let sysctl = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.host_ns, "cat"])
        .arg(format!(
            "/proc/sys/net/ipv6/conf/{}/disable_ipv6",
            eni.host_interface
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sysctl.stdout).trim(),
        "1",
        "disable_ipv6 on {}: {}",
        eni.host_interface,
        String::from_utf8_lossy(&sysctl.stderr)
    );
    let v6 = std::process::Command::new("ip")
        .args(["-n", &lab.host_ns, "-6", "-o", "addr", "show", "dev"])
        .arg(&eni.host_interface)
        .output()
        .unwrap();
    assert!(v6.status.success());
    assert_eq!(
        String::from_utf8_lossy(&v6.stdout).trim(),
        "",
        "no IPv6 address on the host end"
    );
    let up = std::process::Command::new("ip")
        .args(["-n", &lab.host_ns, "-o", "link", "show", "dev"])
        .arg(&eni.host_interface)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&up.stdout).contains(",UP"),
        "the host end is up: {}",
        String::from_utf8_lossy(&up.stdout)
    );
}

/// Deleting a group whose last ENI is gone also removes its combination (set, chains and
/// dispatch rules) in one transaction; the combinations still in use keep working.
#[test]
fn deleting_an_unused_group_removes_its_combination_and_others_keep_working() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    lab.group("app", vec![], None);
    lab.group("web", vec![tcp_from_group(8080, "app")], None);
    lab.group("gone", vec![], None);
    let web = lab.attach("public", &["web"]);
    let app = lab.attach("public", &["app"]);
    let passing = lab.attach("public", &["gone", "app"]);
    let gone_combo = netd::firewall::combo_name(&[
        netd::model::GroupId::parse("id", "gone").unwrap(),
        netd::model::GroupId::parse("id", "app").unwrap(),
    ]);
    assert!(lab.nft_table().contains(&format!("set {gone_combo} ")));
    serve(&web.netns_path, 8080, "web");
    assert!(reaches(&passing.netns_path, web.ip, 8080));

    let c = lab.client();
    let refused = c.delete_security_group("gone").unwrap_err().to_string();
    assert!(refused.contains("used by 1 ENI"), "{refused}");
    c.detach(&passing.task).unwrap();
    c.delete_security_group("gone").unwrap();

    let table = lab.nft_table();
    assert!(!table.contains(&gone_combo), "{table}");
    assert!(!table.contains("g_gone"), "{table}");
    assert!(
        reaches(&app.netns_path, web.ip, 8080),
        "the kept combinations' dispatch rules are back after the refill"
    );
    let stranger = lab.attach("public", &["default"]);
    assert!(!reaches(&stranger.netns_path, web.ip, 8080));
}
