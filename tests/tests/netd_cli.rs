//! `berth net ...` against a berth-netd in a throwaway host namespace.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod netd_support;

use netd_support::*;
use std::process::{Command, Output};

fn berth(lab: &Lab, args: &[&str]) -> Output {
    Command::new(berth_tests::bin_path("berth"))
        .arg("net")
        .args(args)
        .env("BERTH_NETD_SOCKET", lab.socket())
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn security_groups_are_managed_like_aws_ec2_and_enis_attach_and_detach() {
    if !berth_tests::require_root() {
        return;
    }
    let lab = Lab::started();
    ok(&berth(
        &lab,
        &[
            "create-security-group",
            "--group-name",
            "web",
            "--description",
            "web tier",
        ],
    ));
    ok(&berth(
        &lab,
        &["create-security-group", "--group-name", "app"],
    ));
    ok(&berth(
        &lab,
        &[
            "authorize-security-group-ingress",
            "--group-id",
            "web",
            "--protocol",
            "tcp",
            "--port",
            "8080",
            "--source-group",
            "app",
        ],
    ));
    let table = ok(&berth(
        &lab,
        &["describe-security-groups", "--group-ids", "web"],
    ));
    assert!(table.contains("tcp/8080 app"), "{table}");

    let web: netd::api::Eni = serde_json::from_str(&ok(&berth(
        &lab,
        &[
            "attach",
            "--task",
            "task/web",
            "--security-group",
            "web",
            "--output",
            "json",
        ],
    )))
    .unwrap();
    let app: netd::api::Eni = serde_json::from_str(&ok(&berth(
        &lab,
        &[
            "attach",
            "--task",
            "task/app",
            "--security-group",
            "app",
            "--output",
            "json",
        ],
    )))
    .unwrap();
    serve(&web.netns_path, 8080, "web");
    assert!(reaches(&app.netns_path, web.ip, 8080));
    ok(&berth(
        &lab,
        &[
            "revoke-security-group-ingress",
            "--group-id",
            "web",
            "--protocol",
            "tcp",
            "--port",
            "8080",
            "--source-group",
            "app",
        ],
    ));
    assert!(!reaches(&app.netns_path, web.ip, 8080), "revoked");

    let bad = berth(
        &lab,
        &[
            "authorize-security-group-ingress",
            "--group-id",
            "web",
            "--protocol",
            "tcp",
            "--port",
            "65536",
            "--cidr",
            "0.0.0.0/0",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("ingress[0].fromPort: 65536 is not a port")
    );

    let enis = ok(&berth(&lab, &["enis"]));
    assert!(
        enis.contains("task/web") && enis.contains(&web.ip.to_string()),
        "{enis}"
    );
    ok(&berth(&lab, &["detach", "task/web"]));
    let gone = berth(&lab, &["eni", "task/web"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no ENI for task \"task/web\""));
    let subnets = ok(&berth(&lab, &["subnets"]));
    assert!(
        subnets.contains("172.31.0.0/20") && subnets.contains("172.31.16.0/20"),
        "{subnets}"
    );
}
