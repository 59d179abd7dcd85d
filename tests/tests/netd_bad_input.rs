//! Bad input: one clear error naming the field, and state unchanged (issue 5, acceptance 5).

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netd_support;

use netd::api::{AttachRequest, PortMapping, Rule, SecurityGroupSpec};
use netd_support::*;
use std::process::Command;

/// Everything a bad request could have changed.
fn snapshot(lab: &Lab) -> (String, String, String, Vec<String>, Vec<String>) {
    let c = lab.client();
    let list = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(lab.dir.join(dir))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    (
        serde_json::to_string(&c.enis().unwrap()).unwrap(),
        serde_json::to_string(&c.security_groups().unwrap()).unwrap(),
        lab.nft_table(),
        lab.host_links(),
        [list("netns"), list("run/enis"), list("state/groups")].concat(),
    )
}

fn refused(
    result: Result<impl std::fmt::Debug, netd::api::ClientError>,
    status: u16,
    fragment: &str,
) {
    let err = result.expect_err("bad input must be refused");
    assert_eq!(err.status(), Some(status), "{err}");
    assert!(
        err.to_string().contains(fragment),
        "{err:?} does not name {fragment:?}"
    );
}

fn rule(
    protocol: &str,
    from: Option<i64>,
    to: Option<i64>,
    cidr: Option<&str>,
    group: Option<&str>,
) -> Rule {
    Rule {
        protocol: protocol.into(),
        from_port: from,
        to_port: to,
        cidr: cidr.map(Into::into),
        group: group.map(Into::into),
    }
}

fn group_with(rule: Rule) -> SecurityGroupSpec {
    SecurityGroupSpec {
        id: Some("bad".into()),
        description: String::new(),
        ingress: vec![rule],
        egress: None,
    }
}

fn attach_req(groups: &[&str], subnet: &str, ports: Vec<PortMapping>) -> AttachRequest {
    AttachRequest {
        task: "task/bad".into(),
        subnet: Some(subnet.into()),
        security_groups: groups.iter().map(|g| g.to_string()).collect(),
        port_mappings: ports,
        hostname: None,
    }
}

#[test]
fn every_bad_request_is_refused_naming_its_field_and_changes_nothing() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    lab.group("web", vec![rule_cidr("tcp", Some(80), "0.0.0.0/0")], None);
    let kept = lab.attach("public", &["web"]);
    let before = snapshot(&lab);
    let c = lab.client();

    refused(
        c.create_security_group(&group_with(rule(
            "tcp",
            Some(80),
            None,
            Some("10.0.0.0/33"),
            None,
        ))),
        400,
        "ingress[0].cidr: \"10.0.0.0/33\" is not a CIDR block",
    );
    refused(
        c.create_security_group(&group_with(rule(
            "tcp",
            Some(80),
            None,
            Some("10.0.0"),
            None,
        ))),
        400,
        "ingress[0].cidr",
    );
    refused(
        c.create_security_group(&group_with(rule(
            "tcp",
            Some(0),
            None,
            Some("0.0.0.0/0"),
            None,
        ))),
        400,
        "ingress[0].fromPort: 0 is not a port",
    );
    refused(
        c.create_security_group(&group_with(rule(
            "tcp",
            Some(1),
            Some(65536),
            Some("0.0.0.0/0"),
            None,
        ))),
        400,
        "ingress[0].toPort: 65536 is not a port",
    );
    refused(
        c.create_security_group(&group_with(rule(
            "tcp",
            Some(80),
            None,
            Some("0.0.0.0/0"),
            Some("web"),
        ))),
        400,
        "ingress[0]: give either cidr or group, not both",
    );
    refused(
        c.create_security_group(&group_with(rule("tcp", Some(80), None, None, Some("nope")))),
        400,
        "ingress[0].group: no security group \"nope\"",
    );
    refused(
        c.put_security_group(
            "web",
            &group_with(rule("udp", Some(65536), None, Some("0.0.0.0/0"), None)),
        ),
        400,
        "does not match",
    );
    let mut web = group_with(rule("udp", Some(65536), None, Some("0.0.0.0/0"), None));
    web.id = None;
    refused(
        c.put_security_group("web", &web),
        400,
        "ingress[0].fromPort: 65536 is not a port",
    );
    refused(
        c.put_security_group("nope", &web),
        404,
        "no security group \"nope\"",
    );
    refused(c.delete_security_group("web"), 409, "is used by 1 ENI");

    refused(
        c.attach(&attach_req(&["nope"], "public", vec![])),
        400,
        "securityGroups[0]: no security group \"nope\"",
    );
    refused(
        c.attach(&attach_req(
            &["web", "default", "a", "b", "c", "d"],
            "public",
            vec![],
        )),
        400,
        "securityGroups: 6 groups given; an ENI has at most 5",
    );
    refused(
        c.attach(&attach_req(&["web"], "elsewhere", vec![])),
        400,
        "subnet: no subnet named \"elsewhere\"",
    );
    let port = |c: i64, h: i64| {
        vec![PortMapping {
            container_port: c,
            host_port: Some(h),
            protocol: "tcp".into(),
        }]
    };
    refused(
        c.attach(&attach_req(&["web"], "public", port(80, 0))),
        400,
        "portMappings[0].hostPort: 0 is not a port",
    );
    refused(
        c.attach(&attach_req(&["web"], "public", port(65536, 80))),
        400,
        "portMappings[0].containerPort: 65536 is not a port",
    );
    refused(
        c.attach(&attach_req(&["web"], "private", port(80, 8080))),
        400,
        "portMappings: subnet \"private\" is private",
    );
    refused(
        c.attach(&AttachRequest {
            task: "bad task id".into(),
            ..attach_req(&[], "public", vec![])
        }),
        400,
        "task: \"bad task id\" is not a task id",
    );
    refused(
        c.detach("task/never-attached"),
        404,
        "no ENI for task \"task/never-attached\"",
    );
    refused(c.eni("task/never-attached"), 404, "no ENI for task");

    assert_eq!(
        snapshot(&lab),
        before,
        "state changed after refused requests"
    );
    assert_eq!(c.eni(&kept.task).unwrap(), kept);
}

#[test]
fn a_malformed_body_is_refused_naming_the_problem() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    let out = Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(lab.socket())
        .args([
            "-X",
            "POST",
            "http://netd/enis",
            "-d",
            "{\"task\": \"t\", \"securityGroup\": []}",
        ])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("\"error\":\"body: unknown field `securityGroup`"),
        "{body}"
    );
}

#[test]
fn overlapping_subnets_stop_netd_at_start_with_nothing_created() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::new();
    std::fs::write(
        lab.config_path(),
        "[[subnets]]\nname = \"a\"\ncidr = \"172.31.0.0/20\"\n[[subnets]]\nname = \"b\"\ncidr = \"172.31.8.0/24\"\n",
    )
    .unwrap();
    let out = lab.netd_command().output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("subnets[1].cidr: 172.31.8.0/24 overlaps subnet \"a\" (172.31.0.0/20)"),
        "{stderr}"
    );
    assert!(
        !lab.dir.join("state").exists() && !lab.dir.join("run").exists() && !lab.socket().exists(),
        "nothing created"
    );
    let tables = Command::new("ip")
        .args(["netns", "exec", &lab.host_ns, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(
        tables.stdout.is_empty(),
        "no nft table: {}",
        String::from_utf8_lossy(&tables.stdout)
    );

    std::fs::write(lab.config_path(), "vpc_cidr = \"172.31.0.0/33\"\n").unwrap();
    let out = lab.netd_command().output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("vpc_cidr: \"172.31.0.0/33\" is not a CIDR block"));
}

#[test]
fn an_exhausted_subnet_is_a_clear_error_and_reserved_addresses_are_never_handed_out() {
    if !berth_tests::require_root() {
        return;
    }
    let mut lab = Lab::new();
    std::fs::write(
        lab.config_path(),
        format!(
            "netns_dir = \"{}\"\nvpc_cidr = \"10.77.0.0/24\"\n[[subnets]]\nname = \"tiny\"\ncidr = \"10.77.0.0/28\"\npublic = false\n",
            lab.dir.join("netns").display()
        ),
    )
    .unwrap();
    lab.start();
    let mut got = Vec::new();
    for _ in 0..11 {
        got.push(lab.attach("tiny", &["default"]).ip.octets()[3]);
    }
    got.sort_unstable();
    assert_eq!(
        got,
        (4..15).collect::<Vec<u8>>(),
        "network, +1, +2, +3 and broadcast stay reserved"
    );
    let before = snapshot(&lab);
    refused(
        lab.client()
            .attach(&attach_req(&["default"], "tiny", vec![])),
        409,
        "subnet: \"tiny\" (10.77.0.0/28) has no free address left",
    );
    assert_eq!(
        snapshot(&lab),
        before,
        "nothing created by the refused attach"
    );
}
