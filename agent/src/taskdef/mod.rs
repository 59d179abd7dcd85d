//! Task definitions: the ECS wire schema, validation, and the internal model the lifecycle uses.

mod container;
pub mod fargate;
mod validate;
pub mod wire;

pub(crate) use validate::{check_tags, short_serde_message};
pub use validate::{parse_register_request, validate};

use std::time::Duration;

/// Why a task definition was refused. Every variant names the offending field by its path in
/// the request (`containerDefinitions[1].memory`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskDefError {
    /// The body is not JSON of the right shape (a wrong type, a missing required member, or a
    /// member ECS does not know).
    #[error("{path}: {message}")]
    Malformed {
        /// Where in the document (`.` when at the top).
        path: String,
        /// serde's description.
        message: String,
    },
    /// A value breaks one of ECS's rules.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field's path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Fargate refuses this field (FARGATE is in requiresCompatibilities).
    #[error("{field}: {reason}")]
    Fargate {
        /// The field's path.
        field: String,
        /// Fargate's reason.
        reason: String,
    },
    /// ECS accepts this field but berth cannot honour it, so it is refused rather than dropped.
    #[error("{field}: not supported by berth ({reason})")]
    Unsupported {
        /// The field's path.
        field: String,
        /// Why berth cannot honour it.
        reason: String,
    },
}

impl TaskDefError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn fargate(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Fargate {
            field: field.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A `dependsOn` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Condition {
    /// The dependency has started.
    Start,
    /// The dependency has exited (any code).
    Complete,
    /// The dependency has exited with 0.
    Success,
    /// The dependency passed its health check.
    Healthy,
}

impl Condition {
    /// Parse ECS's spelling (`START`, …).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "START" => Some(Self::Start),
            "COMPLETE" => Some(Self::Complete),
            "SUCCESS" => Some(Self::Success),
            "HEALTHY" => Some(Self::Healthy),
            _ => None,
        }
    }
}

/// One `dependsOn` entry, resolved to the dependency's index in the task.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dependency {
    /// Index into [`TaskDefinitionSpec::containers`].
    pub container: usize,
    /// What the dependency must reach.
    pub condition: Condition,
}

/// What the lifecycle needs to know about one container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSpec {
    /// Unique in the task.
    pub name: String,
    /// The image reference.
    pub image: String,
    /// Its exit stops the task.
    pub is_essential: bool,
    /// Start ordering.
    pub depends_on: Vec<Dependency>,
    /// Signal → SIGKILL grace.
    pub stop_timeout: Duration,
    /// How long a dependant waits for this container's condition.
    pub start_timeout: Option<Duration>,
    /// Whether it has a health check.
    pub has_health_check: bool,
    /// Overrides the image's ENTRYPOINT.
    #[serde(default)]
    pub entry_point: Option<Vec<String>>,
    /// Overrides the image's CMD.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Extra environment, in order.
    #[serde(default)]
    pub environment: Vec<(String, String)>,
    /// Overrides the image's working directory.
    #[serde(default)]
    pub working_directory: Option<String>,
    /// Overrides the image's user.
    #[serde(default)]
    pub user: Option<String>,
    /// Mount the rootfs read-only.
    #[serde(default)]
    pub is_readonly_rootfs: bool,
    /// Hard memory limit, MiB.
    #[serde(default)]
    pub memory_mib: Option<i64>,
    /// Soft memory limit (`memoryReservation`), MiB.
    #[serde(default)]
    pub memory_reservation_mib: Option<i64>,
    /// CPU units (shares).
    #[serde(default)]
    pub cpu_units: Option<i64>,
    /// The health check, with ECS's defaults filled in.
    #[serde(default)]
    pub health_check: Option<HealthCheckSpec>,
    /// Namespaced sysctls (`systemControls`).
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// rlimits: (ECS name, soft, hard).
    #[serde(default)]
    pub ulimits: Vec<(String, i64, i64)>,
    /// Capabilities added to the default set (`CAP_` names).
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// Capabilities dropped from it (`ALL` drops every one).
    #[serde(default)]
    pub cap_drop: Vec<String>,
}

/// A container health check (ECS defaults: interval 30 s, timeout 5 s, retries 3, no start
/// period).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HealthCheckSpec {
    /// The argv to exec in the container (`CMD-SHELL x` becomes `/bin/sh -c x`).
    pub command: Vec<String>,
    /// Between checks.
    pub interval: Duration,
    /// One check's limit; a timeout is a failure.
    pub timeout: Duration,
    /// Consecutive failures that make the container UNHEALTHY.
    pub retries: u32,
    /// Failures in this period after start do not count.
    pub start_period: Duration,
}

/// The stop grace when a container gives none (ECS's default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A task definition that passed validation: only [`validate`] builds one.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefinitionSpec {
    /// What DescribeTaskDefinition echoes (cpu/memory normalised, defaults filled).
    pub body: wire::TaskDefinitionBody,
    /// The registration's tags.
    pub tags: Vec<wire::Tag>,
    /// `EC2` always, plus `FARGATE` when it validated for Fargate.
    pub compatibilities: Vec<String>,
    /// Task cpu units, when given.
    pub cpu_units: Option<u32>,
    /// Task memory in MiB, when given.
    pub memory_mib: Option<u32>,
    /// The containers, in definition order.
    pub containers: Vec<ContainerSpec>,
    /// Things accepted with a caveat (shown in the agent's log).
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests;
