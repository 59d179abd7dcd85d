//! The endpoint's JSON against ECS's field names and shapes (research/ecs.md §5).

use super::*;
use crate::metadata::env::{container_env, container_index};
use crate::model::*;
use crate::taskdef::{parse_register_request, validate};

fn task() -> TaskRecord {
    let body = serde_json::json!({"family": "web", "networkMode": "awsvpc", "cpu": "256",
        "memory": "512", "requiresCompatibilities": ["FARGATE"],
        "containerDefinitions": [{"name": "app", "image": "busybox:1.36", "memory": 128, "cpu": 10},
                                 {"name": "side", "image": "busybox"}]});
    let spec =
        validate(&parse_register_request(&serde_json::to_vec(&body).unwrap()).unwrap()).unwrap();
    let mut containers: Vec<ContainerRecord> = spec
        .containers
        .iter()
        .map(|c| ContainerRecord::new(c.clone(), "05966557-f16c-49cb-9352-24b3a0dcd0e1".into()))
        .collect();
    containers[0].status = ContainerStatus::Running;
    containers[0].runtime_id = Some("berth-t-0".into());
    containers[0].image_digest = Some("sha256:abc".into());
    containers[0].created_at = Some(1_602_188_951.5);
    containers[0].started_at = Some(1_602_188_952.0);
    containers[1].status = ContainerStatus::Stopped;
    containers[1].exit_code = Some(3);
    let mut t: TaskRecord = serde_json::from_value(serde_json::json!({
        "id": "e9028f8d5d8e4f258373e7b93ce9a3c3", "cluster": "default", "family": "web",
        "revision": 3, "desired": "Running", "last_status": "Running",
        "containers": containers, "network": NetworkRequest::default(),
        "times": Timestamps { created_at: 1.0, pull_started_at: Some(1_602_190_036.053_331),
                              ..Timestamps::default() },
        "group": "family:web", "launch_type": "FARGATE", "cpu": "256", "memory": "512",
        "version": 1,
    }))
    .unwrap();
    t.eni = Some(EniRecord {
        attachment_id: "a".into(),
        eni_id: "eni-1".into(),
        subnet: "private".into(),
        ip: "10.0.1.23".into(),
        mac: "02:0a:00:01:17:00".into(),
        netns_path: "/run/berth/netns/x".into(),
        hosts: String::new(),
        resolv_conf: "nameserver 10.0.0.2\nsearch x\n".into(),
        prefix_length: Some(24),
        gateway: Some("10.0.1.1".into()),
    });
    t
}

#[test]
fn container_has_ecs_fields() {
    let arns = Arns::default();
    let t = task();
    let c = container(&arns, &t, 0);
    assert_eq!(c["DockerId"], "e9028f8d5d8e4f258373e7b93ce9a3c3-0");
    assert_eq!(c["Name"], "app");
    assert_eq!(c["DockerName"], "berth-t-0");
    assert_eq!(c["Image"], "busybox:1.36");
    assert_eq!(c["ImageID"], "sha256:abc");
    assert_eq!(
        c["Labels"]["com.amazonaws.ecs.task-arn"],
        "arn:aws:ecs:us-east-1:123456789012:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3"
    );
    assert_eq!(
        c["Labels"]["com.amazonaws.ecs.task-definition-version"],
        "3"
    );
    assert_eq!(c["DesiredStatus"], "RUNNING");
    assert_eq!(c["KnownStatus"], "RUNNING");
    assert_eq!(c["Limits"], serde_json::json!({"CPU": 10, "Memory": 128}));
    assert_eq!(c["CreatedAt"], "2020-10-08T20:29:11.500000000Z");
    assert_eq!(c["StartedAt"], "2020-10-08T20:29:12.000000000Z");
    assert_eq!(c["Type"], "NORMAL");
    assert!(c.get("ExitCode").is_none());
    let n = &c["Networks"][0];
    assert_eq!(n["NetworkMode"], "awsvpc");
    assert_eq!(n["IPv4Addresses"], serde_json::json!(["10.0.1.23"]));
    assert_eq!(n["MACAddress"], "02:0a:00:01:17:00");
    assert_eq!(n["IPv4SubnetCIDRBlock"], "10.0.1.0/24");
    assert_eq!(n["SubnetGatewayIpv4Address"], "10.0.1.1/24");
    assert_eq!(n["DomainNameServers"], serde_json::json!(["10.0.0.2"]));
    assert_eq!(n["PrivateDNSName"], "ip-10-0-1-23.ec2.internal");
    assert_eq!(n["AttachmentIndex"], 0);
    assert_eq!(
        c["ContainerARN"],
        "arn:aws:ecs:us-east-1:123456789012:container/default/e9028f8d5d8e4f258373e7b93ce9a3c3/05966557-f16c-49cb-9352-24b3a0dcd0e1"
    );
    let stopped = container(&arns, &t, 1);
    assert_eq!(stopped["KnownStatus"], "STOPPED");
    assert_eq!(stopped["ExitCode"], 3);
}

#[test]
fn task_has_ecs_fields() {
    let arns = Arns {
        region: "eu-west-1".into(),
        account: "111122223333".into(),
    };
    let t = task();
    let v = super::task(&arns, &t);
    assert_eq!(
        v["Cluster"],
        "arn:aws:ecs:eu-west-1:111122223333:cluster/default"
    );
    assert_eq!(
        v["TaskARN"],
        "arn:aws:ecs:eu-west-1:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3"
    );
    assert_eq!(v["Family"], "web");
    assert_eq!(v["Revision"], "3");
    assert_eq!(v["KnownStatus"], "RUNNING");
    assert_eq!(v["Limits"], serde_json::json!({"CPU": 0.25, "Memory": 512}));
    assert_eq!(v["AvailabilityZone"], "eu-west-1a");
    assert_eq!(v["LaunchType"], "FARGATE");
    assert_eq!(v["FaultInjectionEnabled"], false);
    assert!(v["PullStartedAt"]
        .as_str()
        .unwrap()
        .starts_with("2020-10-08T20:47:16.0533"));
    assert_eq!(v["Containers"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["Containers"][0]["Networks"][0]["PrivateDNSName"],
        "ip-10-0-1-23.eu-west-1.compute.internal"
    );
}

#[test]
fn container_ids_map_back_only_within_the_task() {
    let t = task();
    assert_eq!(
        container_index(&t, "e9028f8d5d8e4f258373e7b93ce9a3c3-1"),
        Some(1)
    );
    assert_eq!(
        container_index(&t, "e9028f8d5d8e4f258373e7b93ce9a3c3-2"),
        None
    );
    assert_eq!(
        container_index(&t, "e9028f8d5d8e4f258373e7b93ce9a3c3-01"),
        None
    );
    assert_eq!(
        container_index(&t, "0000000000000000000000000000000a-0"),
        None
    );
    assert_eq!(
        container_index(&t, "e9028f8d5d8e4f258373e7b93ce9a3c3"),
        None
    );
}

#[test]
fn environment_as_fargate_injects_it() {
    let mut t = task();
    let env = container_env("eu-west-1", &t, 1);
    let get = |env: &[(String, String, bool)], k: &str| {
        env.iter()
            .find(|(n, _, _)| n == k)
            .map(|(_, v, w)| (v.clone(), *w))
    };
    assert_eq!(
        get(&env, "ECS_CONTAINER_METADATA_URI_V4"),
        Some((
            "http://169.254.170.2/v4/e9028f8d5d8e4f258373e7b93ce9a3c3-1".into(),
            true
        ))
    );
    assert_eq!(
        get(&env, "ECS_CONTAINER_METADATA_URI"),
        Some((
            "http://169.254.170.2/v3/e9028f8d5d8e4f258373e7b93ce9a3c3-1".into(),
            true
        ))
    );
    assert_eq!(get(&env, "AWS_EXECUTION_ENV").unwrap().0, "AWS_ECS_FARGATE");
    assert_eq!(get(&env, "AWS_REGION"), Some(("eu-west-1".into(), false)));
    assert_eq!(get(&env, "AWS_DEFAULT_REGION").unwrap().0, "eu-west-1");
    assert_eq!(get(&env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), None);
    t.task_role_arn = Some("arn:aws:iam::123456789012:role/app".into());
    t.credentials_id = Some("0123abcd".into());
    let env = container_env("eu-west-1", &t, 0);
    assert_eq!(
        get(&env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        Some(("/v2/credentials/0123abcd".into(), true))
    );
}

fn reading(at_secs: u64, cpu_ns: u64, rx: u64) -> Reading {
    let mut cgroup = berth_cgroups::Stats::default();
    cgroup.cpu.usage.total = cpu_ns;
    cgroup.memory.usage.usage = 4096;
    cgroup.memory.usage.max = 8192;
    cgroup.pids.current = 2;
    Reading {
        at: UNIX_EPOCH + Duration::from_secs(at_secs),
        cgroup,
        host: HostCpu {
            total_ns: at_secs * 2_000_000_000,
            online_cpus: 2,
        },
        eni: Some(NetCounters {
            rx_bytes: rx,
            ..NetCounters::default()
        }),
    }
}

#[test]
fn stats_are_docker_shaped_with_the_previous_reading() {
    let t = task();
    let before = reading(100, 1_000, 1_000);
    let now = reading(102, 5_000, 3_000);
    let s = container_stats(&t, 0, &now, Some(&before), Some(128 << 20));
    assert_eq!(s["id"], "e9028f8d5d8e4f258373e7b93ce9a3c3-0");
    assert_eq!(s["name"], "app");
    assert_eq!(s["cpu_stats"]["cpu_usage"]["total_usage"], 5_000);
    assert_eq!(s["precpu_stats"]["cpu_usage"]["total_usage"], 1_000);
    assert_eq!(s["cpu_stats"]["system_cpu_usage"], 204_000_000_000u64);
    assert_eq!(s["cpu_stats"]["online_cpus"], 2);
    assert_eq!(s["memory_stats"]["usage"], 4096);
    assert_eq!(s["memory_stats"]["max_usage"], 8192);
    assert_eq!(s["memory_stats"]["limit"], 128u64 << 20);
    assert_eq!(s["pids_stats"]["current"], 2);
    assert_eq!(s["networks"]["eth0"]["rx_bytes"], 3_000);
    assert_eq!(s["network_rate_stats"]["rx_bytes_per_sec"], 1000.0);
    assert_eq!(s["read"], "1970-01-01T00:01:42.000000000Z");
    assert_eq!(s["preread"], "1970-01-01T00:01:40.000000000Z");
    let first = container_stats(&t, 0, &now, None, None);
    assert_eq!(first["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(first["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert_eq!(first["memory_stats"]["limit"], u64::MAX);
}
