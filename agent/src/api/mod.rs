//! The ECS JSON API: parse `X-Amz-Target` + body into a typed [`Command`], hand it to the
//! engine over a channel, and turn the reply into an HTTP status and JSON body.
//!
//! The transport is not in here: [`Dispatcher::dispatch`] takes the target header and the raw
//! body, so the unix-socket listener ([`http`]) and issue 7's SigV4 TCP listener (which checks
//! the signature over the same raw bytes first) share one dispatcher.

pub mod arn;
pub mod berth;
pub mod coverage;
pub mod credentials;
pub mod error;
pub mod http;
pub mod requests;
pub mod shapes;
pub mod sigv4;
pub mod tcp;

use crate::engine::command::{Command, Page, RunTaskCmd};
use crate::engine::EngineHandle;
use crate::model::{DesiredStatus, NetworkRequest};
use crate::store::TaskFilter;
use crate::taskdef::{self, TaskDefError};
use arn::Arns;
use error::{ApiError, ErrorType};
use serde::de::DeserializeOwned;

/// `X-Amz-Target`'s prefix for ECS.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";

/// The actions berth serves.
pub const ACTIONS: &[&str] = &[
    "RegisterTaskDefinition",
    "DeregisterTaskDefinition",
    "DescribeTaskDefinition",
    "ListTaskDefinitions",
    "ListTaskDefinitionFamilies",
    "CreateCluster",
    "DescribeClusters",
    "ListClusters",
    "DeleteCluster",
    "RunTask",
    "StopTask",
    "DescribeTasks",
    "ListTasks",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
];

/// An answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// 200, 400 or 500.
    pub status: u16,
    /// The body.
    pub body: serde_json::Value,
}

impl From<Result<serde_json::Value, ApiError>> for Answer {
    fn from(r: Result<serde_json::Value, ApiError>) -> Self {
        match r {
            Ok(body) => Self { status: 200, body },
            Err(e) => Self {
                status: e.kind.http_status(),
                body: e.body(),
            },
        }
    }
}

/// Parses requests and forwards them to the engine.
#[derive(Clone)]
pub struct Dispatcher {
    engine: EngineHandle,
    arns: Arns,
    netd: Option<std::sync::Arc<netd::api::Client>>,
}

impl Dispatcher {
    /// A dispatcher in front of `engine`.
    pub fn new(engine: EngineHandle, arns: Arns) -> Self {
        Self {
            engine,
            arns,
            netd: None,
        }
    }

    /// Check RunTask's subnets and security groups against netd before the task is created,
    /// as ECS does (an unknown one is `InvalidParameterException`, and no task is made).
    pub fn with_netd(mut self, client: std::sync::Arc<netd::api::Client>) -> Self {
        self.netd = Some(client);
        self
    }

    /// Handle one request: `target` is the `X-Amz-Target` header, `body` the raw bytes.
    pub async fn dispatch(&self, target: Option<&str>, body: &[u8]) -> Answer {
        let cmd = match parse(&self.arns, target, body) {
            Ok(cmd) => cmd,
            Err(e) => return Err(e).into(),
        };
        if let (Command::RunTask(run), Some(netd)) = (&cmd, &self.netd) {
            if let Some(network) = &run.network {
                if let Err(e) = check_network(netd.clone(), network.clone()).await {
                    return Err(e).into();
                }
            }
        }
        self.engine.call(cmd).await.into()
    }
}

/// Every subnet and security group of `network` must exist in netd. When netd cannot be
/// asked, the check is left to the attach (the task then stops with
/// `ResourceInitializationError`, as before).
async fn check_network(
    netd: std::sync::Arc<netd::api::Client>,
    network: NetworkRequest,
) -> Result<(), ApiError> {
    let known = tokio::task::spawn_blocking(move || {
        let subnets = netd.subnets().ok()?;
        let groups = netd.security_groups().ok()?;
        Some((subnets, groups))
    })
    .await
    .ok()
    .flatten();
    let Some((subnets, groups)) = known else {
        tracing::debug!("netd not reachable: subnets and security groups checked at attach");
        return Ok(());
    };
    let missing: Vec<&String> = network
        .subnets
        .iter()
        .filter(|s| !subnets.iter().any(|k| &k.name == *s))
        .collect();
    if let Some(first) = missing.first() {
        return Err(ApiError::invalid(format!(
            "Error retrieving subnet information for [{}]: The subnet ID '{first}' does not exist",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let missing: Vec<&String> = network
        .security_groups
        .iter()
        .filter(|g| !groups.iter().any(|k| &k.id == *g))
        .collect();
    if let Some(first) = missing.first() {
        return Err(ApiError::invalid(format!(
            "Error retrieving security group information for [{}]: The security group '{first}' does not exist",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}

/// The action named by `X-Amz-Target`.
pub fn action(target: Option<&str>) -> Result<&str, ApiError> {
    let Some(target) = target else {
        return Err(ApiError::new(
            ErrorType::MissingActionException,
            "Missing X-Amz-Target header: it names the action (AmazonEC2ContainerServiceV20141113.<Action>)",
        ));
    };
    target
        .strip_prefix(TARGET_PREFIX)
        .filter(|a| ACTIONS.contains(a))
        .ok_or_else(|| {
            ApiError::new(
                ErrorType::UnknownOperationException,
                format!("Unknown operation {target}"),
            )
        })
}

fn body_of<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = taskdef::short_serde_message(&e.inner().to_string());
        ApiError::new(
            ErrorType::SerializationException,
            format!("{path}: {message}"),
        )
    })
}

/// Parse and validate one request into a command.
pub fn parse(arns: &Arns, target: Option<&str>, body: &[u8]) -> Result<Command, ApiError> {
    let action = action(target)?;
    match action {
        "RegisterTaskDefinition" => {
            let req = taskdef::parse_register_request(body).map_err(|e| match e {
                TaskDefError::Malformed { .. } => {
                    ApiError::new(ErrorType::SerializationException, e.to_string())
                }
                other => other.into(),
            })?;
            Ok(Command::RegisterTaskDefinition(Box::new(
                taskdef::validate(&req)?,
            )))
        }
        "DeregisterTaskDefinition" => {
            let r: requests::DeregisterTaskDefinition = body_of(body)?;
            match arns.task_definition_ref(&r.task_definition)? {
                (family, Some(revision)) => {
                    Ok(Command::DeregisterTaskDefinition { family, revision })
                }
                (_, None) => Err(ApiError::client(
                    "Revision must be specified: family:revision or the full ARN",
                )),
            }
        }
        "DescribeTaskDefinition" => {
            let r: requests::DescribeTaskDefinition = body_of(body)?;
            let (family, revision) = arns.task_definition_ref(&r.task_definition)?;
            Ok(Command::DescribeTaskDefinition {
                family,
                revision,
                include_tags: includes_tags(&r.include)?,
            })
        }
        "ListTaskDefinitions" => {
            let r: requests::ListTaskDefinitions = body_of(body)?;
            let descending = match r.sort.as_deref() {
                None | Some("ASC") => false,
                Some("DESC") => true,
                Some(o) => {
                    return Err(ApiError::invalid(format!("sort: '{o}' is not ASC or DESC")))
                }
            };
            let status = status_filter(r.status.as_deref())?.unwrap_or_else(|| "ACTIVE".into());
            Ok(Command::ListTaskDefinitions {
                family: r.family_prefix,
                status,
                descending,
                page: page(r.next_token.as_deref(), r.max_results)?,
            })
        }
        "ListTaskDefinitionFamilies" => {
            let r: requests::ListTaskDefinitionFamilies = body_of(body)?;
            let status = match r.status.as_deref() {
                Some("ALL") => None,
                other => Some(status_filter(other)?.unwrap_or_else(|| "ACTIVE".into())),
            };
            Ok(Command::ListTaskDefinitionFamilies {
                prefix: r.family_prefix,
                status,
                page: page(r.next_token.as_deref(), r.max_results)?,
            })
        }
        "CreateCluster" => parse_create_cluster(arns, body),
        "DescribeClusters" => {
            let r: requests::DescribeClusters = body_of(body)?;
            let given = r
                .clusters
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| vec!["default".into()]);
            let names = given
                .into_iter()
                .map(|g| Ok((arns.cluster_name(Some(&g))?, g)))
                .collect::<Result<_, ApiError>>()?;
            Ok(Command::DescribeClusters {
                names,
                include_tags: includes_tags(&r.include)?,
            })
        }
        "ListClusters" => {
            let r: requests::ListClusters = body_of(body)?;
            Ok(Command::ListClusters {
                page: page(r.next_token.as_deref(), r.max_results)?,
            })
        }
        "DeleteCluster" => {
            let r: requests::DeleteCluster = body_of(body)?;
            Ok(Command::DeleteCluster {
                name: arns.cluster_name(Some(&r.cluster))?,
            })
        }
        "RunTask" => parse_run_task(arns, body_of(body)?),
        "StopTask" => {
            let r: requests::StopTask = body_of(body)?;
            let cluster = arns.cluster_name(r.cluster.as_deref())?;
            let (task, _) = arns.task_id(&r.task)?;
            if r.reason.as_ref().is_some_and(|x| x.chars().count() > 1024) {
                return Err(ApiError::invalid("reason: at most 1024 characters"));
            }
            Ok(Command::StopTask {
                cluster,
                task,
                reason: r.reason,
            })
        }
        "DescribeTasks" => {
            let r: requests::DescribeTasks = body_of(body)?;
            if r.tasks.is_empty() {
                return Err(ApiError::invalid("Tasks cannot be empty."));
            }
            if r.tasks.len() > 100 {
                return Err(ApiError::invalid("tasks: at most 100 per call"));
            }
            let cluster = arns.cluster_name(r.cluster.as_deref())?;
            let tasks = r
                .tasks
                .into_iter()
                .map(|g| Ok((arns.task_id(&g)?.0, g)))
                .map(|r: Result<(String, String), ApiError>| r.map(|(id, g)| (g, id)))
                .collect::<Result<_, _>>()?;
            Ok(Command::DescribeTasks {
                cluster,
                tasks,
                include_tags: includes_tags(&r.include)?,
            })
        }
        "ListTasks" => parse_list_tasks(arns, body_of(body)?),
        "TagResource" => {
            let r: requests::TagResource = body_of(body)?;
            let resource = arns.resource_ref(&r.resource_arn)?;
            if r.tags.is_empty() {
                return Err(ApiError::invalid("tags: at least one tag"));
            }
            taskdef::check_tags(&r.tags, "tags").map_err(|e| ApiError::invalid(e.to_string()))?;
            Ok(Command::TagResource {
                resource,
                tags: r.tags,
            })
        }
        "UntagResource" => {
            let r: requests::UntagResource = body_of(body)?;
            let resource = arns.resource_ref(&r.resource_arn)?;
            if r.tag_keys.is_empty() {
                return Err(ApiError::invalid("tagKeys: at least one key"));
            }
            for (i, k) in r.tag_keys.iter().enumerate() {
                if k.is_empty() || k.chars().count() > 128 {
                    return Err(ApiError::invalid(format!(
                        "tagKeys[{i}]: a tag key is 1-128 characters"
                    )));
                }
                if k.to_ascii_lowercase().starts_with("aws:") {
                    return Err(ApiError::invalid(format!(
                        "tagKeys[{i}]: the 'aws:' prefix is reserved"
                    )));
                }
            }
            Ok(Command::UntagResource {
                resource,
                keys: r.tag_keys,
            })
        }
        "ListTagsForResource" => {
            let r: requests::ListTagsForResource = body_of(body)?;
            Ok(Command::ListTagsForResource {
                resource: arns.resource_ref(&r.resource_arn)?,
            })
        }
        other => Err(ApiError::new(
            ErrorType::UnknownOperationException,
            format!("Unknown operation {other}"),
        )),
    }
}

fn includes_tags(include: &[String]) -> Result<bool, ApiError> {
    let mut tags = false;
    for i in include {
        match i.as_str() {
            "TAGS" => tags = true,
            "ATTACHMENTS" | "CONFIGURATIONS" | "SETTINGS" | "STATISTICS" => {}
            other => return Err(ApiError::invalid(format!("include: '{other}' is not TAGS"))),
        }
    }
    Ok(tags)
}

fn status_filter(status: Option<&str>) -> Result<Option<String>, ApiError> {
    match status {
        None => Ok(None),
        Some(s @ ("ACTIVE" | "INACTIVE")) => Ok(Some(s.to_owned())),
        Some(o) => Err(ApiError::invalid(format!(
            "status: '{o}' is not ACTIVE or INACTIVE"
        ))),
    }
}

/// `nextToken` is the offset of the next item, opaque to clients.
pub fn page(next_token: Option<&str>, max_results: Option<i64>) -> Result<Page, ApiError> {
    let max = match max_results {
        None => 100,
        Some(m @ 1..=100) => usize::try_from(m).unwrap_or(100),
        Some(m) => return Err(ApiError::invalid(format!("maxResults: {m} is not 1-100"))),
    };
    let offset = match next_token {
        None => 0,
        Some(t) => t
            .strip_prefix("berth-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::invalid("Invalid nextToken"))?,
    };
    Ok(Page { offset, max })
}

/// The token for the page after `offset + taken`, when more items remain.
pub fn next_token(page: Page, total: usize) -> Option<String> {
    let next = page.offset + page.max;
    (next < total).then(|| format!("berth-page-{next}"))
}

fn parse_create_cluster(arns: &Arns, body: &[u8]) -> Result<Command, ApiError> {
    let r: requests::CreateCluster = body_of(body)?;
    for (field, set) in [
        ("settings", r.settings.is_some()),
        ("configuration", r.configuration.is_some()),
        ("capacityProviders", r.capacity_providers.is_some()),
        (
            "defaultCapacityProviderStrategy",
            r.default_capacity_provider_strategy.is_some(),
        ),
        (
            "serviceConnectDefaults",
            r.service_connect_defaults.is_some(),
        ),
    ] {
        if set {
            return Err(ApiError::invalid(format!(
                "{field}: not supported by berth"
            )));
        }
    }
    let name = arns.cluster_name(r.cluster_name.as_deref())?;
    let ok = name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ApiError::invalid(format!(
            "clusterName: '{name}' must be up to 255 letters, digits, hyphens or underscores"
        )));
    }
    taskdef::check_tags(&r.tags, "tags").map_err(|e| ApiError::invalid(e.to_string()))?;
    Ok(Command::CreateCluster { name, tags: r.tags })
}

fn parse_run_task(arns: &Arns, r: requests::RunTask) -> Result<Command, ApiError> {
    for (field, set) in [
        (
            "capacityProviderStrategy",
            r.capacity_provider_strategy.is_some(),
        ),
        ("placementConstraints", r.placement_constraints.is_some()),
        ("placementStrategy", r.placement_strategy.is_some()),
        ("volumeConfigurations", r.volume_configurations.is_some()),
        (
            "enableExecuteCommand",
            r.enable_execute_command == Some(true),
        ),
        (
            "enableECSManagedTags",
            r.enable_ecs_managed_tags == Some(true),
        ),
        ("referenceId", r.reference_id.is_some()),
    ] {
        if set {
            return Err(ApiError::invalid(format!(
                "{field}: not supported by berth"
            )));
        }
    }
    if let Some(o) = &r.overrides {
        check_overrides(o)?;
    }
    let count = r.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid(format!("count: {count} is not 1-10")));
    }
    if let Some(lt) = r
        .launch_type
        .as_deref()
        .filter(|l| !matches!(*l, "FARGATE" | "EC2"))
    {
        return Err(ApiError::invalid(format!(
            "launchType: '{lt}' is not FARGATE or EC2"
        )));
    }
    if let Some(pv) = r
        .platform_version
        .as_deref()
        .filter(|p| !matches!(*p, "LATEST" | "1.4.0"))
    {
        return Err(ApiError::new(
            ErrorType::InvalidParameterException,
            format!("platformVersion: '{pv}': berth provides 1.4.0 (LATEST)"),
        ));
    }
    if let Some(sb) = &r.started_by {
        let ok = sb.len() <= 128
            && sb
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_".contains(&b));
        if !ok {
            return Err(ApiError::invalid(
                "startedBy: up to 128 letters, digits, hyphens, slashes, underscores",
            ));
        }
    }
    if let Some(t) = &r.client_token {
        if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(ApiError::invalid(
                "clientToken: 1-64 characters in ASCII 33-126",
            ));
        }
    }
    taskdef::check_tags(&r.tags, "tags").map_err(|e| ApiError::invalid(e.to_string()))?;
    let propagate_definition_tags = match r.propagate_tags.as_deref() {
        None | Some("NONE") => false,
        Some("TASK_DEFINITION") => true,
        Some("SERVICE") => {
            return Err(ApiError::invalid(
                "propagateTags: SERVICE: berth has no services (TASK_DEFINITION or NONE)",
            ))
        }
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "propagateTags: '{o}' is not TASK_DEFINITION, SERVICE or NONE"
            )))
        }
    };
    let network = r
        .network_configuration
        .and_then(|n| n.awsvpc_configuration)
        .map(network_request)
        .transpose()?;
    let (family, revision) = arns.task_definition_ref(&r.task_definition)?;
    Ok(Command::RunTask(Box::new(RunTaskCmd {
        cluster: arns.cluster_name(r.cluster.as_deref())?,
        family,
        revision,
        count: usize::try_from(count).unwrap_or(1),
        launch_type: r.launch_type,
        network,
        overrides: r.overrides.unwrap_or_default(),
        started_by: r.started_by,
        group: r.group,
        tags: r.tags,
        client_token: r.client_token,
        propagate_definition_tags,
    })))
}

/// Override members berth cannot honour are refused by name, never dropped.
fn check_overrides(o: &requests::TaskOverride) -> Result<(), ApiError> {
    for (field, set) in [
        ("ephemeralStorage", o.ephemeral_storage.is_some()),
        (
            "inferenceAcceleratorOverrides",
            // An empty list (as DescribeTasks shows it) asks for nothing.
            o.inference_accelerator_overrides
                .as_ref()
                .is_some_and(|v| v.as_array().is_none_or(|a| !a.is_empty())),
        ),
    ] {
        if set {
            return Err(ApiError::invalid(format!(
                "overrides.{field}: not supported by berth"
            )));
        }
    }
    for (i, c) in o.container_overrides.iter().enumerate() {
        for (field, set) in [
            ("cpu", c.cpu.is_some()),
            ("memory", c.memory.is_some()),
            ("memoryReservation", c.memory_reservation.is_some()),
            ("environmentFiles", c.environment_files.is_some()),
            ("resourceRequirements", c.resource_requirements.is_some()),
        ] {
            if set {
                return Err(ApiError::invalid(format!(
                    "overrides.containerOverrides[{i}].{field}: not supported by berth (override the task's cpu/memory instead)"
                )));
            }
        }
    }
    Ok(())
}

fn network_request(c: requests::AwsVpcConfiguration) -> Result<NetworkRequest, ApiError> {
    if c.subnets.is_empty() || c.subnets.len() > 16 {
        return Err(ApiError::invalid(
            "networkConfiguration.awsvpcConfiguration.subnets: 1-16 subnets",
        ));
    }
    if c.security_groups.len() > 5 {
        return Err(ApiError::invalid(
            "networkConfiguration.awsvpcConfiguration.securityGroups: at most 5 security groups",
        ));
    }
    let assign_public_ip = match c.assign_public_ip.as_deref() {
        None | Some("DISABLED") => false,
        Some("ENABLED") => true,
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "networkConfiguration.awsvpcConfiguration.assignPublicIp: '{o}' is not ENABLED or DISABLED"
            )))
        }
    };
    Ok(NetworkRequest {
        subnets: c.subnets,
        security_groups: c.security_groups,
        assign_public_ip,
    })
}

fn parse_list_tasks(arns: &Arns, r: requests::ListTasks) -> Result<Command, ApiError> {
    for (field, set) in [
        ("containerInstance", r.container_instance.is_some()),
        ("serviceName", r.service_name.is_some()),
        ("daemonName", r.daemon_name.is_some()),
    ] {
        if set {
            return Err(ApiError::invalid(format!(
                "{field}: berth has no container instances or services"
            )));
        }
    }
    if r.started_by.is_some()
        && (r.family.is_some() || r.desired_status.is_some() || r.launch_type.is_some())
    {
        return Err(ApiError::invalid(
            "startedBy may not be combined with other filters (family, desiredStatus, launchType)",
        ));
    }
    let desired = match r.desired_status.as_deref() {
        None | Some("RUNNING") => Some(DesiredStatus::Running),
        Some("STOPPED") => Some(DesiredStatus::Stopped),
        Some("PENDING") => None,
        Some(o) => {
            return Err(ApiError::invalid(format!(
                "desiredStatus: '{o}' is not RUNNING, PENDING or STOPPED"
            )))
        }
    };
    if r.desired_status.as_deref() == Some("PENDING") {
        // ECS never sets desired PENDING: the filter matches nothing.
        return Ok(Command::ListTasks {
            filter: TaskFilter {
                cluster: arns.cluster_name(r.cluster.as_deref())?,
                family: Some(String::new()),
                ..Default::default()
            },
            page: page(r.next_token.as_deref(), r.max_results)?,
        });
    }
    let desired = if r.started_by.is_some() && r.desired_status.is_none() {
        None
    } else {
        desired
    };
    Ok(Command::ListTasks {
        filter: TaskFilter {
            cluster: arns.cluster_name(r.cluster.as_deref())?,
            family: r.family,
            desired,
            started_by: r.started_by,
        },
        page: page(r.next_token.as_deref(), r.max_results)?,
    })
}

#[cfg(test)]
mod tests;
