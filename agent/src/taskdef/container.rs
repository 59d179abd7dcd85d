//! Container-level validation: one `containerDefinitions[i]` at a time.

use super::validate::{is_set, Rules};
use super::wire::{ContainerDefinition, LinuxParameters};
use super::{Condition, ContainerSpec, Dependency, TaskDefError, DEFAULT_STOP_TIMEOUT};
use std::time::Duration;

/// The capabilities a definition may name (Linux's list, without the `CAP_` prefix).
const KNOWN_CAPS: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
    "ALL",
];

/// The rlimit names ECS knows.
const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Sysctl prefixes that live in a namespace the task owns (net: its netns; the rest: its ipc ns).
const NAMESPACED_SYSCTLS: &[&str] = &[
    "net.",
    "kernel.msg",
    "kernel.sem",
    "kernel.shm",
    "fs.mqueue.",
];

/// Check one container; `names` are all containers' names, `volumes` the task volumes' names.
pub(super) fn check_container(
    i: usize,
    c: &ContainerDefinition,
    rules: &Rules,
    names: &[String],
    volumes: &[&str],
) -> Result<(), TaskDefError> {
    let f = |m: &str| format!("containerDefinitions[{i}].{m}");
    match c.image.as_deref() {
        None | Some("") => return Err(TaskDefError::invalid(f("image"), "an image is required")),
        Some(img) if img.len() > 255 + 128 || img.chars().any(char::is_whitespace) => {
            return Err(TaskDefError::invalid(
                f("image"),
                format!("'{img}' is not an image reference"),
            ))
        }
        Some(_) => {}
    }
    check_refused(c, rules, &f)?;
    check_resources(c, &f)?;
    check_timeouts(c, rules, &f)?;
    if let Some(lp) = &c.linux_parameters {
        check_linux_parameters(lp, rules, &|m| f(&format!("linuxParameters.{m}")))?;
    }
    for (j, p) in c.port_mappings.iter().enumerate() {
        let pf = |m: &str| f(&format!("portMappings[{j}].{m}"));
        let Some(port) = p.container_port else {
            return Err(TaskDefError::invalid(
                pf("containerPort"),
                "containerPort is required",
            ));
        };
        if !(1..=65535).contains(&port) {
            return Err(TaskDefError::invalid(
                pf("containerPort"),
                format!("{port} is not 1-65535"),
            ));
        }
        if rules.is_awsvpc && p.host_port.is_some_and(|h| h != port) {
            return Err(TaskDefError::invalid(
                pf("hostPort"),
                "with networkMode awsvpc, hostPort must be absent or equal to containerPort",
            ));
        }
        if let Some(proto) = p
            .protocol
            .as_deref()
            .filter(|p| !matches!(*p, "tcp" | "udp"))
        {
            return Err(TaskDefError::invalid(
                pf("protocol"),
                format!("'{proto}' is not tcp or udp"),
            ));
        }
        if p.container_port_range.is_some() {
            return Err(TaskDefError::unsupported(
                pf("containerPortRange"),
                "port ranges",
            ));
        }
    }
    for (j, e) in c.environment.iter().enumerate() {
        if e.name.as_deref().is_none_or(str::is_empty) {
            return Err(TaskDefError::invalid(
                f(&format!("environment[{j}].name")),
                "a name is required",
            ));
        }
    }
    for (j, e) in c.environment_files.iter().enumerate() {
        if e.file_type != "s3" {
            return Err(TaskDefError::invalid(
                f(&format!("environmentFiles[{j}].type")),
                format!("'{}' is not s3", e.file_type),
            ));
        }
        if !e.value.starts_with('/') {
            return Err(TaskDefError::unsupported(
                f(&format!("environmentFiles[{j}].value")),
                format!(
                    "'{}': berth reads environment files from absolute local paths",
                    e.value
                ),
            ));
        }
    }
    for (j, m) in c.mount_points.iter().enumerate() {
        let source = m.source_volume.as_deref().unwrap_or("");
        if !volumes.contains(&source) {
            return Err(TaskDefError::invalid(
                f(&format!("mountPoints[{j}].sourceVolume")),
                format!("'{source}' is not a volume of this task definition"),
            ));
        }
        if !m
            .container_path
            .as_deref()
            .is_some_and(|p| p.starts_with('/'))
        {
            return Err(TaskDefError::invalid(
                f(&format!("mountPoints[{j}].containerPath")),
                "an absolute containerPath is required",
            ));
        }
    }
    for (j, v) in c.volumes_from.iter().enumerate() {
        let source = v.source_container.as_deref().unwrap_or("");
        if !names.iter().any(|n| n == source) || c.name.as_deref() == Some(source) {
            return Err(TaskDefError::invalid(
                f(&format!("volumesFrom[{j}].sourceContainer")),
                format!("'{source}' is not another container of this task definition"),
            ));
        }
    }
    for (j, d) in c.depends_on.iter().enumerate() {
        if !names.contains(&d.container_name) {
            return Err(TaskDefError::invalid(
                f(&format!("dependsOn[{j}].containerName")),
                format!(
                    "'{}' is not a container of this task definition",
                    d.container_name
                ),
            ));
        }
        if c.name.as_deref() == Some(d.container_name.as_str()) {
            return Err(TaskDefError::invalid(
                f(&format!("dependsOn[{j}].containerName")),
                "a container cannot depend on itself",
            ));
        }
        if Condition::parse(&d.condition).is_none() {
            return Err(TaskDefError::invalid(
                f(&format!("dependsOn[{j}].condition")),
                format!(
                    "'{}' is not one of START, COMPLETE, SUCCESS, HEALTHY",
                    d.condition
                ),
            ));
        }
    }
    check_misc(c, rules, &f)
}

/// Members ECS accepts that Fargate or berth refuses by name.
fn check_refused(
    c: &ContainerDefinition,
    rules: &Rules,
    f: &dyn Fn(&str) -> String,
) -> Result<(), TaskDefError> {
    let fargate_refused = [
        (
            "links",
            is_set(&c.links),
            "links are not supported with networkMode awsvpc",
        ),
        (
            "dnsServers",
            is_set(&c.dns_servers),
            "dnsServers is not supported on Fargate",
        ),
        (
            "dnsSearchDomains",
            is_set(&c.dns_search_domains),
            "dnsSearchDomains is not supported on Fargate",
        ),
        (
            "extraHosts",
            is_set(&c.extra_hosts),
            "extraHosts is not supported on Fargate",
        ),
        (
            "dockerSecurityOptions",
            is_set(&c.docker_security_options),
            "dockerSecurityOptions is not supported on Fargate",
        ),
        (
            "disableNetworking",
            c.disable_networking == Some(true),
            "disableNetworking is not supported on Fargate",
        ),
        (
            "privileged",
            c.privileged == Some(true),
            "privileged containers are not supported on Fargate",
        ),
    ];
    for (m, set, reason) in fargate_refused {
        if set {
            return Err(rules.refuse(f(m), reason, "berth cannot honour it in an isolated task"));
        }
    }
    if is_set(&c.resource_requirements) {
        return Err(rules.refuse(
            f("resourceRequirements"),
            "GPUs are not supported on Fargate",
            "no GPUs or accelerators",
        ));
    }
    for (m, set, why) in [
        (
            "restartPolicy",
            is_set(&c.restart_policy),
            "container restarts",
        ),
        (
            "firelensConfiguration",
            is_set(&c.firelens_configuration),
            "FireLens log routing",
        ),
        (
            "credentialSpecs",
            is_set(&c.credential_specs),
            "Windows gMSA",
        ),
    ] {
        if set {
            return Err(TaskDefError::unsupported(f(m), why));
        }
    }
    if let Some(lc) = &c.log_configuration {
        if lc.log_driver != "awslogs" {
            return Err(TaskDefError::unsupported(
                f("logConfiguration.logDriver"),
                format!(
                    "'{}': only awslogs (mapped to berth's local log store)",
                    lc.log_driver
                ),
            ));
        }
        if is_set(&lc.secret_options) {
            return Err(TaskDefError::unsupported(
                f("logConfiguration.secretOptions"),
                "log driver secrets",
            ));
        }
    }
    if c.hostname.is_some() && rules.is_awsvpc {
        return Err(TaskDefError::invalid(
            f("hostname"),
            "hostname is not supported with networkMode awsvpc",
        ));
    }
    Ok(())
}

fn check_resources(
    c: &ContainerDefinition,
    f: &dyn Fn(&str) -> String,
) -> Result<(), TaskDefError> {
    if let Some(cpu) = c.cpu {
        if !(0..=10240 * 16).contains(&cpu) {
            return Err(TaskDefError::invalid(
                f("cpu"),
                format!("{cpu} is not 0-163840 units"),
            ));
        }
    }
    for (m, v) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        if let Some(mib) = v {
            if mib < 6 {
                return Err(TaskDefError::invalid(
                    f(m),
                    format!("{mib} MiB is below the 6 MiB minimum"),
                ));
            }
        }
    }
    if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
        if hard <= soft {
            return Err(TaskDefError::invalid(
                f("memory"),
                format!("memory ({hard}) must be greater than memoryReservation ({soft})"),
            ));
        }
    }
    Ok(())
}

fn check_timeouts(
    c: &ContainerDefinition,
    rules: &Rules,
    f: &dyn Fn(&str) -> String,
) -> Result<(), TaskDefError> {
    for (m, v) in [
        ("stopTimeout", c.stop_timeout),
        ("startTimeout", c.start_timeout),
    ] {
        match v {
            Some(s) if s < 0 => {
                return Err(TaskDefError::invalid(f(m), format!("{s} is negative")))
            }
            Some(s) if rules.is_fargate && s > 120 => {
                return Err(TaskDefError::fargate(
                    f(m),
                    format!("{s} s is above Fargate's maximum of 120 s"),
                ))
            }
            _ => {}
        }
    }
    if let Some(hc) = &c.health_check {
        match hc.command.first().map(String::as_str) {
            Some("CMD") | Some("CMD-SHELL") if hc.command.len() >= 2 => {}
            _ => {
                return Err(TaskDefError::invalid(
                    f("healthCheck.command"),
                    "must start with CMD or CMD-SHELL followed by the command",
                ))
            }
        }
        for (m, v, lo, hi) in [
            ("interval", hc.interval, 5, 300),
            ("timeout", hc.timeout, 2, 60),
            ("retries", hc.retries, 1, 10),
            ("startPeriod", hc.start_period, 0, 300),
        ] {
            if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
                return Err(TaskDefError::invalid(
                    f(&format!("healthCheck.{m}")),
                    format!("{v} is not {lo}-{hi}"),
                ));
            }
        }
    }
    Ok(())
}

fn check_linux_parameters(
    lp: &LinuxParameters,
    rules: &Rules,
    f: &dyn Fn(&str) -> String,
) -> Result<(), TaskDefError> {
    if is_set(&lp.devices) {
        return Err(rules.refuse(
            f("devices"),
            "devices are not supported on Fargate",
            "host devices in a task",
        ));
    }
    for (m, set) in [
        ("maxSwap", lp.max_swap.is_some()),
        ("swappiness", lp.swappiness.is_some()),
    ] {
        if set {
            return Err(rules.refuse(
                f(m),
                &format!("{m} is not supported on Fargate"),
                "swap limits",
            ));
        }
    }
    if rules.is_fargate {
        if lp.shared_memory_size.is_some() {
            return Err(TaskDefError::fargate(
                f("sharedMemorySize"),
                "sharedMemorySize is not supported on Fargate",
            ));
        }
        if !lp.tmpfs.is_empty() {
            return Err(TaskDefError::fargate(
                f("tmpfs"),
                "tmpfs is not supported on Fargate",
            ));
        }
    }
    for (j, t) in lp.tmpfs.iter().enumerate() {
        if !t.container_path.starts_with('/') || t.size <= 0 {
            return Err(TaskDefError::invalid(
                f(&format!("tmpfs[{j}]")),
                "needs an absolute containerPath and a positive size",
            ));
        }
    }
    if let Some(caps) = &lp.capabilities {
        for (list, names) in [("add", &caps.add), ("drop", &caps.drop)] {
            for (j, cap) in names.iter().enumerate() {
                let field = f(&format!("capabilities.{list}[{j}]"));
                let bare = cap.strip_prefix("CAP_").unwrap_or(cap);
                if !KNOWN_CAPS.contains(&bare) {
                    return Err(TaskDefError::invalid(
                        field,
                        format!("'{cap}' is not a Linux capability"),
                    ));
                }
                if list == "add" && rules.is_fargate && bare != "SYS_PTRACE" {
                    return Err(TaskDefError::fargate(
                        field,
                        format!("Fargate only allows adding SYS_PTRACE, not {bare}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_misc(
    c: &ContainerDefinition,
    rules: &Rules,
    f: &dyn Fn(&str) -> String,
) -> Result<(), TaskDefError> {
    for (j, u) in c.ulimits.iter().enumerate() {
        let uf = |m: &str| f(&format!("ulimits[{j}].{m}"));
        if !ULIMITS.contains(&u.name.as_str()) {
            return Err(TaskDefError::invalid(
                uf("name"),
                format!("'{}' is not an rlimit ECS knows", u.name),
            ));
        }
        if u.soft_limit < 0 || u.soft_limit > u.hard_limit {
            return Err(TaskDefError::invalid(
                uf("softLimit"),
                "softLimit must be 0..=hardLimit",
            ));
        }
        if rules.is_fargate && u.name == "nofile" && u.hard_limit > 1_048_576 {
            return Err(TaskDefError::fargate(
                uf("hardLimit"),
                "Fargate allows nofile up to 1048576",
            ));
        }
    }
    for (j, s) in c.system_controls.iter().enumerate() {
        let key = s.namespace.as_deref().unwrap_or("");
        let field = f(&format!("systemControls[{j}].namespace"));
        if rules.is_fargate && !key.starts_with("net.") {
            return Err(TaskDefError::fargate(
                field,
                format!("'{key}': Fargate only allows network-namespaced net.* sysctls"),
            ));
        }
        if !NAMESPACED_SYSCTLS.iter().any(|p| key.starts_with(p)) {
            return Err(TaskDefError::unsupported(
                field,
                format!("'{key}' is not a namespaced sysctl: setting it would change the host"),
            ));
        }
    }
    if let Some(vc) = c
        .version_consistency
        .as_deref()
        .filter(|v| !matches!(*v, "enabled" | "disabled"))
    {
        return Err(TaskDefError::invalid(
            f("versionConsistency"),
            format!("'{vc}' is not enabled or disabled"),
        ));
    }
    if let Some(user) = &c.user {
        let ok = !user.is_empty()
            && user.split(':').count() <= 2
            && user.split(':').all(|p| !p.is_empty());
        if !ok {
            return Err(TaskDefError::invalid(
                f("user"),
                format!("'{user}' is not user, user:group, uid or uid:gid"),
            ));
        }
    }
    Ok(())
}

/// The internal model of a container that passed [`check_container`].
pub(super) fn container_spec(
    c: &ContainerDefinition,
    name: &str,
    names: &[String],
) -> Result<ContainerSpec, TaskDefError> {
    let secs = |s: Option<i64>| s.map(|s| Duration::from_secs(s.unsigned_abs()));
    let depends_on = c
        .depends_on
        .iter()
        .enumerate()
        .map(|(j, d)| {
            let container = names.iter().position(|n| *n == d.container_name);
            match (container, Condition::parse(&d.condition)) {
                (Some(container), Some(condition)) => Ok(Dependency {
                    container,
                    condition,
                }),
                _ => Err(TaskDefError::invalid(
                    format!("{name}.dependsOn[{j}]"),
                    "unresolved dependency",
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(ContainerSpec {
        name: name.to_owned(),
        image: c.image.clone().unwrap_or_default(),
        is_essential: c.essential.unwrap_or(true),
        depends_on,
        stop_timeout: secs(c.stop_timeout).unwrap_or(DEFAULT_STOP_TIMEOUT),
        start_timeout: secs(c.start_timeout),
        has_health_check: c.health_check.is_some(),
        entry_point: c.entry_point.clone(),
        command: c.command.clone(),
        environment: c
            .environment
            .iter()
            .filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default())))
            .collect(),
        working_directory: c.working_directory.clone(),
        user: c.user.clone(),
        is_readonly_rootfs: c.readonly_root_filesystem.unwrap_or(false),
        memory_mib: c.memory,
        memory_reservation_mib: c.memory_reservation,
        cpu_units: c.cpu,
        health_check: c.health_check.as_ref().map(health_check_spec),
        sysctls: c
            .system_controls
            .iter()
            .filter_map(|s| Some((s.namespace.clone()?, s.value.clone().unwrap_or_default())))
            .collect(),
        ulimits: c
            .ulimits
            .iter()
            .map(|u| (u.name.clone(), u.soft_limit, u.hard_limit))
            .collect(),
        cap_add: caps(c, |k| &k.add),
        cap_drop: caps(c, |k| &k.drop),
    })
}

/// linuxParameters.capabilities.add/drop as `CAP_` names.
fn caps(
    c: &ContainerDefinition,
    list: fn(&super::wire::KernelCapabilities) -> &Vec<String>,
) -> Vec<String> {
    let Some(k) = c
        .linux_parameters
        .as_ref()
        .and_then(|l| l.capabilities.as_ref())
    else {
        return Vec::new();
    };
    list(k)
        .iter()
        .map(|n| {
            let bare = n.strip_prefix("CAP_").unwrap_or(n);
            if bare == "ALL" {
                bare.to_owned()
            } else {
                format!("CAP_{bare}")
            }
        })
        .collect()
}

fn health_check_spec(h: &super::wire::HealthCheck) -> super::HealthCheckSpec {
    let secs =
        |v: Option<i64>, default: u64| Duration::from_secs(v.map_or(default, i64::unsigned_abs));
    let command = match h.command.split_first() {
        Some((kind, rest)) if kind == "CMD-SHELL" => {
            vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.join(" ")]
        }
        Some((_, rest)) => rest.to_vec(),
        None => Vec::new(),
    };
    super::HealthCheckSpec {
        command,
        interval: secs(h.interval, 30),
        timeout: secs(h.timeout, 5),
        retries: h.retries.and_then(|r| u32::try_from(r).ok()).unwrap_or(3),
        start_period: secs(h.start_period, 0),
    }
}
