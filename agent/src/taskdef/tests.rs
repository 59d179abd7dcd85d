//! Table-driven validation tests: one good Fargate definition (the one the aws CLI sent in
//! harness/ecs-api-wire.md §1.2) and one mutation per rule, each expecting its field path.

use super::*;
use serde_json::{json, Value};

const WEB_APP: &str = include_str!("../../tests/fixtures/web-app.json");

fn base() -> Value {
    serde_json::from_str(WEB_APP).unwrap()
}

fn check(v: &Value) -> Result<TaskDefinitionSpec, TaskDefError> {
    let req = parse_register_request(&serde_json::to_vec(v).unwrap())?;
    validate(&req)
}

#[test]
fn the_pasted_fargate_definition_is_accepted() {
    let spec = check(&base()).unwrap();
    assert_eq!(spec.cpu_units, Some(512));
    assert_eq!(spec.memory_mib, Some(1024));
    assert_eq!(spec.compatibilities, vec!["EC2", "FARGATE"]);
    assert_eq!(spec.containers.len(), 2);
    assert_eq!(
        spec.containers[0].depends_on,
        vec![Dependency {
            container: 1,
            condition: Condition::Start
        }]
    );
    assert_eq!(
        spec.containers[0].stop_timeout,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(spec.containers[1].stop_timeout, DEFAULT_STOP_TIMEOUT);
    assert!(!spec.containers[1].is_essential);
}

#[test]
fn vcpu_and_gb_strings_are_normalised() {
    let mut v = base();
    v["cpu"] = json!("1 vCPU");
    v["memory"] = json!("2GB");
    let spec = check(&v).unwrap();
    assert_eq!(spec.body.cpu.as_deref(), Some("1024"));
    assert_eq!(spec.body.memory.as_deref(), Some("2048"));
}

type Mutation = fn(&mut Value);

/// (what, mutation, expected fragment of the message — always including the field path).
const REFUSED: &[(&str, Mutation, &str)] = &[
    ("unknown top-level member", |v| v["bogus"] = json!(1), "unknown field `bogus`"),
    ("unknown container member", |v| v["containerDefinitions"][1]["colour"] = json!("red"), "containerDefinitions[1].colour: unknown field `colour`"),
    ("container memory wrong type", |v| v["containerDefinitions"][1]["memory"] = json!("128"), "containerDefinitions[1].memory"),
    ("task cpu as number", |v| v["cpu"] = json!(512), "cpu: invalid type"),
    ("missing family", |v| { v.as_object_mut().unwrap().remove("family"); }, "missing field `family`"),
    ("bad family", |v| v["family"] = json!("web app"), "family: 'web app'"),
    ("no containers", |v| v["containerDefinitions"] = json!([]), "containerDefinitions: at least one"),
    ("missing image", |v| { v["containerDefinitions"][1].as_object_mut().unwrap().remove("image"); }, "containerDefinitions[1].image"),
    ("duplicate container", |v| v["containerDefinitions"][1]["name"] = json!("web"), "containerDefinitions[1].name: 'web' is the name of two"),
    ("fargate bridge", |v| v["networkMode"] = json!("bridge"), "networkMode: Fargate only supports network mode 'awsvpc'"),
    ("fargate default network mode", |v| { v.as_object_mut().unwrap().remove("networkMode"); }, "networkMode: Fargate only supports"),
    ("fargate cpu/memory pair", |v| v["memory"] = json!("8192"), "memory: Invalid 'cpu' setting for task. memory 8192 MiB does not fit cpu 512"),
    ("fargate cpu value", |v| v["cpu"] = json!("300"), "cpu: Invalid 'cpu' setting for task. 300 is not a Fargate cpu"),
    ("fargate needs memory", |v| { v.as_object_mut().unwrap().remove("memory"); }, "memory: Fargate requires task-level cpu and memory"),
    ("fargate privileged", |v| v["containerDefinitions"][0]["privileged"] = json!(true), "containerDefinitions[0].privileged: privileged containers are not supported on Fargate"),
    ("fargate links", |v| v["containerDefinitions"][0]["links"] = json!(["sidecar"]), "containerDefinitions[0].links"),
    ("fargate extraHosts", |v| v["containerDefinitions"][0]["extraHosts"] = json!([{"hostname": "a", "ipAddress": "10.0.0.1"}]), "containerDefinitions[0].extraHosts: extraHosts is not supported on Fargate"),
    ("fargate dnsServers", |v| v["containerDefinitions"][1]["dnsServers"] = json!(["1.1.1.1"]), "containerDefinitions[1].dnsServers"),
    ("fargate dnsSearchDomains", |v| v["containerDefinitions"][1]["dnsSearchDomains"] = json!(["x"]), "containerDefinitions[1].dnsSearchDomains"),
    ("fargate disableNetworking", |v| v["containerDefinitions"][1]["disableNetworking"] = json!(true), "containerDefinitions[1].disableNetworking"),
    ("fargate dockerSecurityOptions", |v| v["containerDefinitions"][1]["dockerSecurityOptions"] = json!(["no-new-privileges"]), "containerDefinitions[1].dockerSecurityOptions"),
    ("fargate gpu", |v| v["containerDefinitions"][1]["resourceRequirements"] = json!([{"type": "GPU", "value": "1"}]), "containerDefinitions[1].resourceRequirements: GPUs are not supported on Fargate"),
    ("fargate ipcMode", |v| v["ipcMode"] = json!("host"), "ipcMode: ipcMode is not supported on Fargate"),
    ("fargate pidMode host", |v| v["pidMode"] = json!("host"), "pidMode: Fargate only supports pidMode 'task'"),
    ("fargate placementConstraints", |v| v["placementConstraints"] = json!([{"type": "memberOf", "expression": "x"}]), "placementConstraints"),
    ("fargate cap add", |v| v["containerDefinitions"][0]["linuxParameters"]["capabilities"]["add"] = json!(["NET_ADMIN"]), "containerDefinitions[0].linuxParameters.capabilities.add[0]: Fargate only allows adding SYS_PTRACE"),
    ("unknown cap", |v| v["containerDefinitions"][0]["linuxParameters"]["capabilities"]["drop"] = json!(["FLY"]), "capabilities.drop[0]: 'FLY' is not a Linux capability"),
    ("fargate devices", |v| v["containerDefinitions"][0]["linuxParameters"]["devices"] = json!([{"hostPath": "/dev/kvm"}]), "containerDefinitions[0].linuxParameters.devices: devices are not supported on Fargate"),
    ("fargate tmpfs", |v| v["containerDefinitions"][0]["linuxParameters"]["tmpfs"] = json!([{"containerPath": "/run", "size": 64}]), "linuxParameters.tmpfs: tmpfs is not supported on Fargate"),
    ("fargate shm", |v| v["containerDefinitions"][0]["linuxParameters"]["sharedMemorySize"] = json!(64), "linuxParameters.sharedMemorySize"),
    ("fargate swappiness", |v| v["containerDefinitions"][0]["linuxParameters"]["swappiness"] = json!(10), "linuxParameters.swappiness"),
    ("fargate sysctl", |v| v["containerDefinitions"][1]["systemControls"] = json!([{"namespace": "kernel.shmmax", "value": "1"}]), "containerDefinitions[1].systemControls[0].namespace: 'kernel.shmmax': Fargate only allows"),
    ("fargate stopTimeout", |v| v["containerDefinitions"][0]["stopTimeout"] = json!(121), "containerDefinitions[0].stopTimeout: 121 s is above Fargate's maximum"),
    ("fargate host volume", |v| v["volumes"][0]["host"] = json!({"sourcePath": "/etc"}), "volumes[0].host.sourcePath: Fargate supports only task-scoped"),
    ("efs volume", |v| v["volumes"][0]["efsVolumeConfiguration"] = json!({"fileSystemId": "fs-1"}), "volumes[0].efsVolumeConfiguration: not supported by berth"),
    ("docker volume", |v| v["volumes"][0]["dockerVolumeConfiguration"] = json!({"scope": "task"}), "volumes[0].dockerVolumeConfiguration: Docker volumes are not supported on Fargate"),
    ("log driver", |v| v["containerDefinitions"][0]["logConfiguration"]["logDriver"] = json!("splunk"), "containerDefinitions[0].logConfiguration.logDriver: not supported by berth ('splunk'"),
    ("firelens", |v| v["containerDefinitions"][0]["firelensConfiguration"] = json!({"type": "fluentbit"}), "containerDefinitions[0].firelensConfiguration: not supported by berth"),
    ("proxy", |v| v["proxyConfiguration"] = json!({"containerName": "web"}), "proxyConfiguration: not supported by berth"),
    ("depends on missing", |v| v["containerDefinitions"][0]["dependsOn"][0]["containerName"] = json!("db"), "containerDefinitions[0].dependsOn[0].containerName: 'db' is not a container"),
    ("depends on self", |v| v["containerDefinitions"][0]["dependsOn"][0]["containerName"] = json!("web"), "containerDefinitions[0].dependsOn[0].containerName: a container cannot depend on itself"),
    ("bad condition", |v| v["containerDefinitions"][0]["dependsOn"][0]["condition"] = json!("READY"), "containerDefinitions[0].dependsOn[0].condition: 'READY'"),
    ("dependency cycle", |v| v["containerDefinitions"][1]["dependsOn"] = json!([{"containerName": "web", "condition": "START"}]), "dependency cycle: web -> sidecar -> web"),
    ("complete on essential", |v| { v["containerDefinitions"][1]["essential"] = json!(true); v["containerDefinitions"][0]["dependsOn"][0]["condition"] = json!("SUCCESS"); }, "containerDefinitions[0].dependsOn[0].condition: COMPLETE and SUCCESS cannot target the essential container 'sidecar'"),
    ("healthy without check", |v| v["containerDefinitions"][0]["dependsOn"][0]["condition"] = json!("HEALTHY"), "HEALTHY needs a healthCheck on 'sidecar'"),
    ("no essential", |v| v["containerDefinitions"][0]["essential"] = json!(false), "containerDefinitions: at least one container must be essential"),
    ("memory below reservation", |v| v["containerDefinitions"][1]["memoryReservation"] = json!(256), "containerDefinitions[1].memory: memory (128) must be greater than memoryReservation (256)"),
    ("tiny memory", |v| v["containerDefinitions"][1]["memory"] = json!(4), "containerDefinitions[1].memory: 4 MiB"),
    ("memory sum", |v| v["containerDefinitions"][1]["memory"] = json!(900), "the containers' memory (1412 MiB) exceeds the task's memory (1024 MiB)"),
    ("cpu sum", |v| v["containerDefinitions"][1]["cpu"] = json!(512), "the containers' cpu (768) exceeds the task's cpu (512)"),
    ("port twice", |v| v["containerDefinitions"][1]["portMappings"] = json!([{"containerPort": 8080}]), "containerDefinitions[1].portMappings[0].containerPort: 8080/tcp is already mapped"),
    ("hostPort differs", |v| v["containerDefinitions"][0]["portMappings"][0]["hostPort"] = json!(80), "containerDefinitions[0].portMappings[0].hostPort"),
    ("bad port", |v| v["containerDefinitions"][0]["portMappings"][0]["containerPort"] = json!(70000), "portMappings[0].containerPort: 70000"),
    ("mount unknown volume", |v| v["containerDefinitions"][1]["mountPoints"] = json!([{"sourceVolume": "data", "containerPath": "/data"}]), "containerDefinitions[1].mountPoints[0].sourceVolume: 'data'"),
    ("volumesFrom unknown", |v| v["containerDefinitions"][1]["volumesFrom"] = json!([{"sourceContainer": "db"}]), "containerDefinitions[1].volumesFrom[0].sourceContainer"),
    ("health check command", |v| v["containerDefinitions"][0]["healthCheck"]["command"] = json!(["curl"]), "containerDefinitions[0].healthCheck.command"),
    ("health check interval", |v| v["containerDefinitions"][0]["healthCheck"]["interval"] = json!(1), "containerDefinitions[0].healthCheck.interval: 1 is not 5-300"),
    ("ulimit name", |v| v["containerDefinitions"][1]["ulimits"][0]["name"] = json!("files"), "containerDefinitions[1].ulimits[0].name"),
    ("ulimit soft above hard", |v| v["containerDefinitions"][1]["ulimits"][0]["softLimit"] = json!(70000), "containerDefinitions[1].ulimits[0].softLimit"),
    ("ephemeral storage", |v| v["ephemeralStorage"]["sizeInGiB"] = json!(10), "ephemeralStorage.sizeInGiB: 10 is outside 21-200"),
    ("windows", |v| v["runtimePlatform"]["operatingSystemFamily"] = json!("WINDOWS_SERVER_2022_CORE"), "runtimePlatform.operatingSystemFamily"),
    ("compatibility", |v| v["requiresCompatibilities"] = json!(["FARGATE", "MOON"]), "requiresCompatibilities[1]: 'MOON'"),
    ("external", |v| v["requiresCompatibilities"] = json!(["EXTERNAL"]), "requiresCompatibilities[0]: not supported by berth"),
    ("hostname with awsvpc", |v| v["containerDefinitions"][1]["hostname"] = json!("h"), "containerDefinitions[1].hostname"),
    ("tag prefix", |v| v["tags"][0]["key"] = json!("aws:owner"), "tags[0].key: the 'aws:' prefix is reserved"),
    ("env name", |v| v["containerDefinitions"][0]["environment"][0] = json!({"value": "x"}), "containerDefinitions[0].environment[0].name"),
    ("env file path", |v| v["containerDefinitions"][0]["environmentFiles"] = json!([{"type": "s3", "value": "arn:aws:s3:::b/x.env"}]), "containerDefinitions[0].environmentFiles[0].value: not supported by berth"),
    ("bad user", |v| v["containerDefinitions"][1]["user"] = json!("a:b:c"), "containerDefinitions[1].user"),
];

#[test]
fn each_broken_rule_is_refused_by_field() {
    for (what, mutate, want) in REFUSED {
        let mut v = base();
        mutate(&mut v);
        match check(&v) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => assert!(
                e.to_string().contains(want),
                "{what}: got `{e}`, want `{want}`"
            ),
        }
    }
}

/// Without FARGATE the same fields are refused by berth (not by Fargate) or honoured.
#[test]
fn ec2_style_definitions() {
    let ec2 = |mutate: Mutation| {
        let mut v = base();
        v["requiresCompatibilities"] = json!(["EC2"]);
        mutate(&mut v);
        check(&v)
    };
    let spec = ec2(|_| {}).unwrap();
    assert_eq!(spec.compatibilities, vec!["EC2"]);
    // Honoured outside Fargate.
    ec2(|v| {
        v["containerDefinitions"][0]["linuxParameters"]["capabilities"]["add"] = json!(["NET_RAW"])
    })
    .unwrap();
    ec2(|v| {
        v["containerDefinitions"][0]["linuxParameters"]["tmpfs"] =
            json!([{"containerPath": "/run", "size": 64}])
    })
    .unwrap();
    ec2(|v| v["cpu"] = json!("300")).unwrap();
    ec2(|v| v["containerDefinitions"][0]["stopTimeout"] = json!(300)).unwrap();
    // Refused by berth, saying so.
    let e = ec2(|v| v["containerDefinitions"][0]["privileged"] = json!(true)).unwrap_err();
    assert!(
        matches!(e, TaskDefError::Unsupported { ref field, .. } if field == "containerDefinitions[0].privileged"),
        "{e}"
    );
    let e = ec2(|v| v["networkMode"] = json!("bridge")).unwrap_err();
    assert!(
        e.to_string()
            .contains("networkMode: not supported by berth ('bridge'"),
        "{e}"
    );
    let e = ec2(|v| {
        v["containerDefinitions"][1]["systemControls"] =
            json!([{"namespace": "vm.swappiness", "value": "1"}])
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("'vm.swappiness' is not a namespaced sysctl"),
        "{e}"
    );
    ec2(|v| {
        v["containerDefinitions"][1]["systemControls"] =
            json!([{"namespace": "kernel.shmmax", "value": "1"}])
    })
    .unwrap();
    // Without task memory, every container needs its own.
    let e = ec2(|v| {
        v.as_object_mut().unwrap().remove("memory");
        v["containerDefinitions"][0]
            .as_object_mut()
            .unwrap()
            .remove("memoryReservation");
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("containerDefinitions[0].memory: without task-level memory"),
        "{e}"
    );
}

#[test]
fn missing_execution_role_is_a_warning_not_an_error() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("executionRoleArn");
    let spec = check(&v).unwrap();
    assert_eq!(spec.warnings.len(), 1);
    assert!(spec.warnings[0].contains("executionRoleArn"));
}

#[test]
fn longer_cycles_are_named() {
    let v = json!({"family": "f", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "requiresCompatibilities": ["FARGATE"], "containerDefinitions": [
        {"name": "a", "image": "busybox", "dependsOn": [{"containerName": "b", "condition": "START"}]},
        {"name": "b", "image": "busybox", "dependsOn": [{"containerName": "c", "condition": "START"}]},
        {"name": "c", "image": "busybox", "dependsOn": [{"containerName": "a", "condition": "START"}]},
        {"name": "d", "image": "busybox"}]});
    let e = check(&v).unwrap_err();
    assert!(
        e.to_string().contains("dependency cycle: a -> b -> c -> a"),
        "{e}"
    );
}
