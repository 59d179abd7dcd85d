//! Task-level validation: the request as a whole, Fargate's rules, and the ordering graph.
//! Pure: no I/O, so every rule is table-tested without root.

use super::container::{check_container, container_spec};
use super::fargate::{fargate_memory_choices, parse_cpu_units, parse_memory_mib};
use super::wire::{RegisterTaskDefinitionRequest, Tag, TaskDefinitionBody, Volume};
use super::{Condition, ContainerSpec, TaskDefError, TaskDefinitionSpec};
use serde_json::Value;
use std::collections::HashMap;

/// What the rules depend on.
pub(super) struct Rules {
    /// FARGATE is in requiresCompatibilities.
    pub is_fargate: bool,
    /// networkMode is awsvpc.
    pub is_awsvpc: bool,
}

impl Rules {
    /// A field Fargate refuses (with its reason) and berth refuses outside Fargate too.
    pub fn refuse(&self, field: String, fargate_reason: &str, berth_reason: &str) -> TaskDefError {
        if self.is_fargate {
            TaskDefError::fargate(field, fargate_reason)
        } else {
            TaskDefError::unsupported(field, berth_reason)
        }
    }
}

/// Whether a raw JSON member carries anything (`null`, `[]`, `{}` and `false` do not).
pub(super) fn is_set(value: &Option<Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Parse a RegisterTaskDefinition body; a type error or an unknown member is named by path.
pub fn parse_register_request(body: &[u8]) -> Result<RegisterTaskDefinitionRequest, TaskDefError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| TaskDefError::Malformed {
        path: e.path().to_string(),
        message: short_serde_message(&e.inner().to_string()),
    })
}

/// serde's message without its position and its list of every known member.
pub(crate) fn short_serde_message(message: &str) -> String {
    let end = [", expected one of", " at line "]
        .iter()
        .filter_map(|cut| message.find(cut))
        .min()
        .unwrap_or(message.len());
    message[..end].to_owned()
}

/// Validate a registration and build the internal model. The first broken rule is returned,
/// naming its field.
pub fn validate(req: &RegisterTaskDefinitionRequest) -> Result<TaskDefinitionSpec, TaskDefError> {
    check_family(&req.family)?;
    let is_fargate = check_compatibilities(&req.requires_compatibilities)?;
    let network_mode = req.network_mode.clone().unwrap_or_else(|| "bridge".into());
    let rules = Rules {
        is_fargate,
        is_awsvpc: network_mode == "awsvpc",
    };
    check_network_mode(&network_mode, &rules)?;
    check_task_fields(req, &rules)?;
    let (cpu_units, memory_mib) = check_task_size(req, &rules)?;
    check_volumes(&req.volumes, &rules)?;
    check_tags(&req.tags, "tags")?;
    if req.container_definitions.is_empty() {
        return Err(TaskDefError::invalid(
            "containerDefinitions",
            "at least one container definition is required",
        ));
    }
    let volume_names: Vec<&str> = req
        .volumes
        .iter()
        .filter_map(|v| v.name.as_deref())
        .collect();
    let names = container_names(req)?;
    let mut warnings = Vec::new();
    for (i, c) in req.container_definitions.iter().enumerate() {
        check_container(i, c, &rules, &names, &volume_names)?;
        let uses_awslogs = c.log_configuration.is_some();
        if uses_awslogs && req.execution_role_arn.is_none() {
            warnings.push(format!(
                "containerDefinitions[{i}].logConfiguration: ECS requires executionRoleArn for \
                 awslogs; berth needs no role locally and accepts it"
            ));
        }
    }
    check_sums(req, cpu_units, memory_mib)?;
    check_ports(req)?;
    let containers: Vec<ContainerSpec> = req
        .container_definitions
        .iter()
        .zip(&names)
        .map(|(c, name)| container_spec(c, name, &names))
        .collect::<Result<_, _>>()?;
    check_dependencies(&containers)?;
    if !containers.iter().any(|c| c.is_essential) {
        return Err(TaskDefError::invalid(
            "containerDefinitions",
            "at least one container must be essential",
        ));
    }
    let mut compatibilities = vec!["EC2".to_owned()];
    if is_fargate {
        compatibilities.push("FARGATE".into());
    }
    Ok(TaskDefinitionSpec {
        body: TaskDefinitionBody {
            family: req.family.clone(),
            task_role_arn: req.task_role_arn.clone(),
            execution_role_arn: req.execution_role_arn.clone(),
            network_mode,
            container_definitions: req.container_definitions.clone(),
            volumes: req.volumes.clone(),
            requires_compatibilities: req.requires_compatibilities.clone(),
            cpu: cpu_units.map(|c| c.to_string()),
            memory: memory_mib.map(|m| m.to_string()),
            pid_mode: req.pid_mode.clone(),
            ephemeral_storage: req.ephemeral_storage.clone(),
            runtime_platform: req.runtime_platform.clone(),
        },
        tags: req.tags.clone(),
        compatibilities,
        cpu_units,
        memory_mib,
        containers,
        warnings,
    })
}

/// ECS's name rule for families and containers: 1–255 of `[A-Za-z0-9_-]`.
pub(super) fn check_name(name: &str, field: &str) -> Result<(), TaskDefError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(TaskDefError::invalid(
            field,
            format!("'{name}' must be 1-255 letters, digits, hyphens or underscores"),
        ))
    }
}

fn check_family(family: &str) -> Result<(), TaskDefError> {
    check_name(family, "family")
}

fn check_compatibilities(list: &[String]) -> Result<bool, TaskDefError> {
    let mut is_fargate = false;
    for (i, c) in list.iter().enumerate() {
        match c.as_str() {
            "FARGATE" => is_fargate = true,
            "EC2" => {}
            "EXTERNAL" | "MANAGED_INSTANCES" => {
                return Err(TaskDefError::unsupported(
                    format!("requiresCompatibilities[{i}]"),
                    format!("{c}: berth validates for FARGATE or EC2 only"),
                ))
            }
            other => {
                return Err(TaskDefError::invalid(
                    format!("requiresCompatibilities[{i}]"),
                    format!("'{other}' is not one of EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES"),
                ))
            }
        }
    }
    Ok(is_fargate)
}

fn check_network_mode(mode: &str, rules: &Rules) -> Result<(), TaskDefError> {
    match mode {
        "awsvpc" => Ok(()),
        "bridge" | "host" | "none" if rules.is_fargate => Err(TaskDefError::fargate(
            "networkMode",
            format!("Fargate only supports network mode 'awsvpc', not '{mode}'"),
        )),
        "bridge" | "host" | "none" => Err(TaskDefError::unsupported(
            "networkMode",
            format!(
                "'{mode}' (the default when omitted is 'bridge'): every berth task gets its own \
                 network namespace and ENI, so networkMode must be 'awsvpc'"
            ),
        )),
        other => Err(TaskDefError::invalid(
            "networkMode",
            format!("'{other}' is not one of bridge, host, awsvpc, none"),
        )),
    }
}

fn check_task_fields(
    req: &RegisterTaskDefinitionRequest,
    rules: &Rules,
) -> Result<(), TaskDefError> {
    if is_set(&req.placement_constraints) {
        return Err(rules.refuse(
            "placementConstraints".into(),
            "placement constraints are not supported on Fargate",
            "berth places every task on this host",
        ));
    }
    if let Some(ipc) = &req.ipc_mode {
        return Err(rules.refuse(
            "ipcMode".into(),
            "ipcMode is not supported on Fargate",
            &format!("'{ipc}': every container gets its own IPC namespace"),
        ));
    }
    match req.pid_mode.as_deref() {
        None | Some("task") => {}
        Some("host") if rules.is_fargate => {
            return Err(TaskDefError::fargate(
                "pidMode",
                "Fargate only supports pidMode 'task'",
            ))
        }
        Some("host") => {
            return Err(TaskDefError::unsupported(
                "pidMode",
                "'host': berth tasks never share the host's pid namespace",
            ))
        }
        Some(other) => {
            return Err(TaskDefError::invalid(
                "pidMode",
                format!("'{other}' is not one of host, task"),
            ))
        }
    }
    for (field, set) in [
        ("proxyConfiguration", is_set(&req.proxy_configuration)),
        ("inferenceAccelerators", is_set(&req.inference_accelerators)),
        (
            "trustedExecutionConfiguration",
            is_set(&req.trusted_execution_configuration),
        ),
        (
            "enableFaultInjection",
            req.enable_fault_injection == Some(true),
        ),
    ] {
        if set {
            return Err(TaskDefError::unsupported(
                field,
                "no such AWS service on this host",
            ));
        }
    }
    if let Some(es) = &req.ephemeral_storage {
        if !(21..=200).contains(&es.size_in_gib) {
            return Err(TaskDefError::invalid(
                "ephemeralStorage.sizeInGiB",
                format!("{} is outside 21-200", es.size_in_gib),
            ));
        }
    }
    if let Some(rp) = &req.runtime_platform {
        check_runtime_platform(rp)?;
    }
    Ok(())
}

fn check_runtime_platform(rp: &super::wire::RuntimePlatform) -> Result<(), TaskDefError> {
    if let Some(os) = &rp.operating_system_family {
        if os != "LINUX" {
            return Err(TaskDefError::unsupported(
                "runtimePlatform.operatingSystemFamily",
                format!("'{os}': berth runs Linux containers only"),
            ));
        }
    }
    if let Some(arch) = &rp.cpu_architecture {
        let host = match std::env::consts::ARCH {
            "x86_64" => "X86_64",
            "aarch64" => "ARM64",
            other => other,
        };
        if !matches!(arch.as_str(), "X86_64" | "ARM64") {
            return Err(TaskDefError::invalid(
                "runtimePlatform.cpuArchitecture",
                format!("'{arch}' is not one of X86_64, ARM64"),
            ));
        }
        if arch != host {
            return Err(TaskDefError::unsupported(
                "runtimePlatform.cpuArchitecture",
                format!("'{arch}': this host is {host}"),
            ));
        }
    }
    Ok(())
}

/// Task cpu/memory: parsed, normalised, and for Fargate one of its sizes.
fn check_task_size(
    req: &RegisterTaskDefinitionRequest,
    rules: &Rules,
) -> Result<(Option<u32>, Option<u32>), TaskDefError> {
    let cpu = match &req.cpu {
        None => None,
        Some(t) => Some(parse_cpu_units(t).ok_or_else(|| {
            TaskDefError::invalid(
                "cpu",
                format!("Invalid 'cpu' setting for task. '{t}' is not CPU units or 'N vCPU'"),
            )
        })?),
    };
    let memory = match &req.memory {
        None => None,
        Some(t) => Some(parse_memory_mib(t).ok_or_else(|| {
            TaskDefError::invalid(
                "memory",
                format!("Invalid 'memory' setting for task. '{t}' is not MiB or 'N GB'"),
            )
        })?),
    };
    if !rules.is_fargate {
        if cpu.is_some_and(|c| !(128..=196_608).contains(&c)) {
            return Err(TaskDefError::invalid(
                "cpu",
                "task cpu must be 128-196608 units",
            ));
        }
        if memory.is_some_and(|m| m < 6) {
            return Err(TaskDefError::invalid(
                "memory",
                "task memory must be at least 6 MiB",
            ));
        }
        return Ok((cpu, memory));
    }
    let (Some(c), Some(m)) = (cpu, memory) else {
        let field = if cpu.is_none() { "cpu" } else { "memory" };
        return Err(TaskDefError::fargate(
            field,
            "Fargate requires task-level cpu and memory",
        ));
    };
    let choices = fargate_memory_choices(c);
    if choices.is_empty() {
        return Err(TaskDefError::fargate(
            "cpu",
            format!(
                "Invalid 'cpu' setting for task. {c} is not a Fargate cpu value \
                 (256, 512, 1024, 2048, 4096, 8192, 16384)"
            ),
        ));
    }
    if !choices.contains(&m) {
        let list: Vec<String> = choices.iter().map(u32::to_string).collect();
        return Err(TaskDefError::fargate(
            "memory",
            format!(
                "Invalid 'cpu' setting for task. memory {m} MiB does not fit cpu {c}; \
                 Fargate allows {}",
                list.join(", ")
            ),
        ));
    }
    Ok((cpu, memory))
}

fn check_volumes(volumes: &[Volume], rules: &Rules) -> Result<(), TaskDefError> {
    let mut seen = HashMap::new();
    for (i, v) in volumes.iter().enumerate() {
        let field = |m: &str| format!("volumes[{i}].{m}");
        let Some(name) = &v.name else {
            return Err(TaskDefError::invalid(
                field("name"),
                "a volume needs a name",
            ));
        };
        check_name(name, &field("name"))?;
        if seen.insert(name.as_str(), i).is_some() {
            return Err(TaskDefError::invalid(
                field("name"),
                format!("'{name}' is used by two volumes"),
            ));
        }
        if is_set(&v.docker_volume_configuration) {
            return Err(rules.refuse(
                field("dockerVolumeConfiguration"),
                "Docker volumes are not supported on Fargate",
                "Docker volume plugins do not exist here; use a task volume",
            ));
        }
        for (m, set) in [
            (
                "efsVolumeConfiguration",
                is_set(&v.efs_volume_configuration),
            ),
            (
                "s3filesVolumeConfiguration",
                is_set(&v.s3files_volume_configuration),
            ),
            (
                "fsxWindowsFileServerVolumeConfiguration",
                is_set(&v.fsx_windows_file_server_volume_configuration),
            ),
            ("configuredAtLaunch", v.configured_at_launch == Some(true)),
        ] {
            if set {
                return Err(TaskDefError::unsupported(
                    field(m),
                    "no such AWS service on this host",
                ));
            }
        }
        if let Some(source) = v.host.as_ref().and_then(|h| h.source_path.as_ref()) {
            if rules.is_fargate {
                return Err(TaskDefError::fargate(
                    field("host.sourcePath"),
                    "Fargate supports only task-scoped volumes (no host.sourcePath)",
                ));
            }
            if !source.starts_with('/') {
                return Err(TaskDefError::invalid(
                    field("host.sourcePath"),
                    format!("'{source}' is not an absolute path"),
                ));
            }
        }
    }
    Ok(())
}

/// ECS's tag rules: ≤ 50, key 1–128, value ≤ 256, unique keys, no `aws:` prefix.
pub(crate) fn check_tags(tags: &[Tag], field: &str) -> Result<(), TaskDefError> {
    if tags.len() > 50 {
        return Err(TaskDefError::invalid(field, "at most 50 tags"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tags.iter().enumerate() {
        let f = format!("{field}[{i}].key");
        if t.key.is_empty() || t.key.chars().count() > 128 {
            return Err(TaskDefError::invalid(f, "a tag key is 1-128 characters"));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(TaskDefError::invalid(f, "the 'aws:' prefix is reserved"));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(TaskDefError::invalid(
                f,
                format!("duplicate tag key '{}'", t.key),
            ));
        }
        if t.value.chars().count() > 256 {
            return Err(TaskDefError::invalid(
                format!("{field}[{i}].value"),
                "a tag value is at most 256 characters",
            ));
        }
    }
    Ok(())
}

fn container_names(req: &RegisterTaskDefinitionRequest) -> Result<Vec<String>, TaskDefError> {
    let mut names: Vec<String> = Vec::new();
    for (i, c) in req.container_definitions.iter().enumerate() {
        let field = format!("containerDefinitions[{i}].name");
        let Some(name) = &c.name else {
            return Err(TaskDefError::invalid(field, "a container needs a name"));
        };
        check_name(name, &field)?;
        if names.contains(name) {
            return Err(TaskDefError::invalid(
                field,
                format!("'{name}' is the name of two containers"),
            ));
        }
        names.push(name.clone());
    }
    Ok(names)
}

/// Container cpu/memory sums must fit the task's values.
fn check_sums(
    req: &RegisterTaskDefinitionRequest,
    cpu: Option<u32>,
    memory: Option<u32>,
) -> Result<(), TaskDefError> {
    let cpu_sum: i64 = req.container_definitions.iter().filter_map(|c| c.cpu).sum();
    if let Some(task_cpu) = cpu {
        if cpu_sum > i64::from(task_cpu) {
            return Err(TaskDefError::invalid(
                "containerDefinitions",
                format!("the containers' cpu ({cpu_sum}) exceeds the task's cpu ({task_cpu})"),
            ));
        }
    }
    let mem_sum: i64 = req
        .container_definitions
        .iter()
        .filter_map(|c| c.memory.or(c.memory_reservation))
        .sum();
    match memory {
        Some(task_mem) if mem_sum > i64::from(task_mem) => Err(TaskDefError::invalid(
            "containerDefinitions",
            format!(
                "the containers' memory ({mem_sum} MiB) exceeds the task's memory ({task_mem} MiB)"
            ),
        )),
        Some(_) => Ok(()),
        None => {
            for (i, c) in req.container_definitions.iter().enumerate() {
                if c.memory.is_none() && c.memory_reservation.is_none() {
                    return Err(TaskDefError::invalid(
                        format!("containerDefinitions[{i}].memory"),
                        "without task-level memory every container needs memory or memoryReservation",
                    ));
                }
            }
            Ok(())
        }
    }
}

/// The containers of an awsvpc task share one network namespace: a port can be bound once.
fn check_ports(req: &RegisterTaskDefinitionRequest) -> Result<(), TaskDefError> {
    let mut seen: HashMap<(i64, String), usize> = HashMap::new();
    for (i, c) in req.container_definitions.iter().enumerate() {
        for (j, p) in c.port_mappings.iter().enumerate() {
            let Some(port) = p.container_port else {
                continue;
            };
            let proto = p.protocol.clone().unwrap_or_else(|| "tcp".into());
            if let Some(other) = seen.insert((port, proto.clone()), i) {
                return Err(TaskDefError::invalid(
                    format!("containerDefinitions[{i}].portMappings[{j}].containerPort"),
                    format!(
                        "{port}/{proto} is already mapped by containerDefinitions[{other}]; the \
                         containers of a task share one network namespace"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// dependsOn: no cycles; COMPLETE/SUCCESS may not target an essential container.
fn check_dependencies(containers: &[ContainerSpec]) -> Result<(), TaskDefError> {
    for (i, c) in containers.iter().enumerate() {
        for (j, d) in c.depends_on.iter().enumerate() {
            let target = &containers[d.container];
            if matches!(d.condition, Condition::Complete | Condition::Success)
                && target.is_essential
            {
                return Err(TaskDefError::invalid(
                    format!("containerDefinitions[{i}].dependsOn[{j}].condition"),
                    format!(
                        "COMPLETE and SUCCESS cannot target the essential container '{}'",
                        target.name
                    ),
                ));
            }
            if d.condition == Condition::Healthy && !target.has_health_check {
                return Err(TaskDefError::invalid(
                    format!("containerDefinitions[{i}].dependsOn[{j}].condition"),
                    format!("HEALTHY needs a healthCheck on '{}'", target.name),
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(containers) {
        let names: Vec<&str> = cycle.iter().map(|i| containers[*i].name.as_str()).collect();
        return Err(TaskDefError::invalid(
            format!("containerDefinitions[{}].dependsOn", cycle[0]),
            format!("dependency cycle: {}", names.join(" -> ")),
        ));
    }
    Ok(())
}

/// A cycle in the dependsOn graph, as the list of container indices that form it (first
/// repeated at the end), or `None`.
pub(super) fn find_cycle(containers: &[ContainerSpec]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        n: usize,
        cs: &[ContainerSpec],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[n] = Mark::Open;
        path.push(n);
        for d in &cs[n].depends_on {
            match marks[d.container] {
                Mark::Open => {
                    let start = path.iter().position(|p| *p == d.container).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(d.container);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(d.container, cs, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[n] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; containers.len()];
    for n in 0..containers.len() {
        if marks[n] == Mark::New {
            if let Some(c) = visit(n, containers, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}
