//! Response shapes (harness/ecs-api-wire.md §3.1) built from the internal records. Absent
//! members are omitted, never `null`; timestamps are epoch seconds; task/container cpu and
//! memory are strings.

use super::arn::Arns;
use crate::model::{ContainerRecord, Health, TaskRecord};
use crate::store::{ClusterRecord, TaskDefRecord};
use crate::taskdef::wire::{Tag, TaskDefinitionOut};
use serde_json::{json, Map, Value};

/// The `TaskDefinition` shape.
pub fn task_definition(arns: &Arns, td: &TaskDefRecord) -> Value {
    let out = TaskDefinitionOut {
        task_definition_arn: arns.task_definition(&td.family, td.revision),
        body: td.body.clone(),
        revision: td.revision,
        status: td.status.clone(),
        compatibilities: td.compatibilities.clone(),
        registered_at: td.registered_at,
        deregistered_at: td.deregistered_at,
        registered_by: None,
    };
    serde_json::to_value(out).unwrap_or(Value::Null)
}

/// The `Cluster` shape.
pub fn cluster(
    arns: &Arns,
    c: &ClusterRecord,
    running: i64,
    pending: i64,
    include_tags: bool,
) -> Value {
    let mut v = json!({
        "clusterArn": arns.cluster(&c.name),
        "clusterName": c.name,
        "status": c.status,
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "activeServicesCount": 0,
        "statistics": [],
        "settings": [{"name": "containerInsights", "value": "disabled"}],
        "capacityProviders": ["FARGATE"],
        "defaultCapacityProviderStrategy": [],
    });
    if include_tags {
        v["tags"] = tags(&c.tags);
    }
    v
}

/// Tags as ECS shows them.
pub fn tags(tags: &[Tag]) -> Value {
    serde_json::to_value(tags).unwrap_or(Value::Array(vec![]))
}

fn health(h: Health) -> &'static str {
    match h {
        Health::Unknown => "UNKNOWN",
        Health::Healthy => "HEALTHY",
        Health::Unhealthy => "UNHEALTHY",
    }
}

fn put<T: serde::Serialize>(m: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value.and_then(|v| serde_json::to_value(v).ok()) {
        m.insert(key.into(), v);
    }
}

fn container(arns: &Arns, t: &TaskRecord, c: &ContainerRecord) -> Value {
    let mut m = Map::new();
    m.insert(
        "containerArn".into(),
        json!(arns.container(&t.cluster, &t.id, &c.uuid)),
    );
    m.insert("taskArn".into(), json!(arns.task(&t.cluster, &t.id)));
    m.insert("name".into(), json!(c.spec.name));
    m.insert("image".into(), json!(c.spec.image));
    put(&mut m, "imageDigest", c.image_digest.as_ref());
    put(&mut m, "runtimeId", c.runtime_id.as_ref());
    m.insert("lastStatus".into(), json!(c.status.as_ecs()));
    put(&mut m, "exitCode", c.exit_code);
    put(&mut m, "reason", c.reason.as_ref());
    m.insert("networkBindings".into(), json!([]));
    let interfaces = match &t.eni {
        Some(e) => json!([{"attachmentId": e.attachment_id, "privateIpv4Address": e.ip}]),
        None => json!([]),
    };
    m.insert("networkInterfaces".into(), interfaces);
    m.insert("healthStatus".into(), json!(health(c.health)));
    Value::Object(m)
}

fn attachments(t: &TaskRecord) -> Value {
    let Some(e) = &t.eni else { return json!([]) };
    let status = if t.is_eni_detached {
        "DELETED"
    } else if t.is_stopped() {
        "DETACHED"
    } else {
        "ATTACHED"
    };
    json!([{
        "id": e.attachment_id,
        "type": "ElasticNetworkInterface",
        "status": status,
        "details": [
            {"name": "subnetId", "value": e.subnet},
            {"name": "networkInterfaceId", "value": e.eni_id},
            {"name": "macAddress", "value": e.mac},
            {"name": "privateIPv4Address", "value": e.ip},
        ],
    }])
}

/// The `Task` shape.
pub fn task(arns: &Arns, t: &TaskRecord, include_tags: bool) -> Value {
    let mut m = Map::new();
    m.insert("attachments".into(), attachments(t));
    m.insert(
        "attributes".into(),
        json!([{"name": "ecs.cpu-architecture", "value": std::env::consts::ARCH}]),
    );
    m.insert(
        "availabilityZone".into(),
        json!(format!("{}a", arns.region)),
    );
    m.insert("clusterArn".into(), json!(arns.cluster(&t.cluster)));
    m.insert("connectivity".into(), json!("CONNECTED"));
    m.insert("connectivityAt".into(), json!(t.times.created_at));
    let containers: Vec<Value> = t.containers.iter().map(|c| container(arns, t, c)).collect();
    m.insert("containers".into(), Value::Array(containers));
    put(&mut m, "cpu", t.cpu.as_ref());
    put(&mut m, "memory", t.memory.as_ref());
    m.insert("createdAt".into(), json!(t.times.created_at));
    m.insert("desiredStatus".into(), json!(t.desired.as_str()));
    m.insert("enableExecuteCommand".into(), json!(false));
    m.insert("group".into(), json!(t.group));
    m.insert("healthStatus".into(), json!(task_health(t)));
    m.insert("lastStatus".into(), json!(t.last_status.as_str()));
    m.insert("launchType".into(), json!(t.launch_type));
    m.insert("overrides".into(), overrides(t));
    if t.launch_type == "FARGATE" {
        m.insert("platformVersion".into(), json!("1.4.0"));
        m.insert("platformFamily".into(), json!("Linux"));
    }
    put(&mut m, "pullStartedAt", t.times.pull_started_at);
    put(&mut m, "pullStoppedAt", t.times.pull_stopped_at);
    put(&mut m, "startedAt", t.times.started_at);
    put(&mut m, "stoppingAt", t.times.stopping_at);
    put(&mut m, "executionStoppedAt", t.times.execution_stopped_at);
    put(&mut m, "stoppedAt", t.times.stopped_at);
    put(&mut m, "stopCode", t.stop_code.map(|c| c.as_str()));
    put(&mut m, "stoppedReason", t.stopped_reason.as_ref());
    put(&mut m, "startedBy", t.started_by.as_ref());
    if include_tags {
        m.insert("tags".into(), tags(&t.tags));
    }
    m.insert("taskArn".into(), json!(arns.task(&t.cluster, &t.id)));
    m.insert(
        "taskDefinitionArn".into(),
        json!(arns.task_definition(&t.family, t.revision)),
    );
    m.insert("version".into(), json!(t.version));
    Value::Object(m)
}

/// The task's health from its essential containers' checks.
fn task_health(t: &TaskRecord) -> &'static str {
    let essential: Vec<&ContainerRecord> = t
        .containers
        .iter()
        .filter(|c| c.spec.is_essential && c.spec.has_health_check)
        .collect();
    if essential.is_empty() {
        "UNKNOWN"
    } else if essential.iter().any(|c| c.health == Health::Unhealthy) {
        "UNHEALTHY"
    } else if essential.iter().all(|c| c.health == Health::Healthy) {
        "HEALTHY"
    } else {
        "UNKNOWN"
    }
}

/// DescribeTasks echoes overrides with one entry per container.
fn overrides(t: &TaskRecord) -> Value {
    let mut o = match &t.overrides {
        Value::Object(m) => Value::Object(m.clone()),
        _ => json!({}),
    };
    let given: Vec<Value> = o["containerOverrides"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let all: Vec<Value> = t
        .containers
        .iter()
        .map(|c| {
            given
                .iter()
                .find(|g| g["name"] == json!(c.spec.name))
                .cloned()
                .unwrap_or_else(|| json!({"name": c.spec.name}))
        })
        .collect();
    o["containerOverrides"] = Value::Array(all);
    o["inferenceAcceleratorOverrides"] = json!([]);
    o
}

/// berth's own member of each container of a described task: the runtime binary and
/// `--root` its `runtimeId` lives under, so `berth exec` can run a process in it (ECS Exec's
/// job, with no cloud in the way). Clients of the ECS API ignore members they do not model.
pub fn add_berth_runtime(task: &mut Value, at: &crate::engine::seams::RuntimeLocation) {
    for c in task["containers"].as_array_mut().into_iter().flatten() {
        if c.get("runtimeId").is_some() {
            c["berthRuntime"] = json!({"binary": at.binary, "root": at.root});
        }
    }
}

/// A `Failure`.
pub fn failure(arn: &str, reason: &str) -> Value {
    json!({"arn": arn, "reason": reason})
}
