//! The agent's internal model of tasks and containers: what the store keeps and the lifecycle
//! reasons about. Wire shapes (camelCase ECS JSON) are built from these in `api::shapes`.

use crate::taskdef::ContainerSpec;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// A task's `lastStatus`, in ECS's order; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskStatus {
    /// ENI being attached.
    Provisioning,
    /// Images pulled, containers created and started in dependency order.
    Pending,
    /// Work after launch, before RUNNING.
    Activating,
    /// Running.
    Running,
    /// Work before stopping.
    Deactivating,
    /// Containers being stopped (signal, stopTimeout, SIGKILL).
    Stopping,
    /// ENI being detached, rootfs removed.
    Deprovisioning,
    /// Done.
    Stopped,
}

impl TaskStatus {
    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Pending => "PENDING",
            Self::Activating => "ACTIVATING",
            Self::Running => "RUNNING",
            Self::Deactivating => "DEACTIVATING",
            Self::Stopping => "STOPPING",
            Self::Deprovisioning => "DEPROVISIONING",
            Self::Stopped => "STOPPED",
        }
    }

    /// Every status, in order.
    pub const ALL: [TaskStatus; 8] = [
        Self::Provisioning,
        Self::Pending,
        Self::Activating,
        Self::Running,
        Self::Deactivating,
        Self::Stopping,
        Self::Deprovisioning,
        Self::Stopped,
    ];

    /// Parse ECS's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A task's `desiredStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DesiredStatus {
    /// Keep it running.
    Running,
    /// Stop it.
    Stopped,
}

impl DesiredStatus {
    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
        }
    }
}

/// A container's internal status (ECS reports PENDING / RUNNING / STOPPED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ContainerStatus {
    /// Nothing done yet.
    None,
    /// Image present locally.
    Pulled,
    /// Created in the runtime (bundle written, `create` done).
    Created,
    /// Started.
    Running,
    /// Exited or never started.
    Stopped,
}

impl ContainerStatus {
    /// What ECS shows.
    pub fn as_ecs(self) -> &'static str {
        match self {
            Self::None | Self::Pulled | Self::Created => "PENDING",
            Self::Running => "RUNNING",
            Self::Stopped => "STOPPED",
        }
    }
}

/// A container's health, from its health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// No check, or not decided yet.
    Unknown,
    /// The check passes.
    Healthy,
    /// The check fails.
    Unhealthy,
}

/// Why a task stopped (ECS `stopCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCode {
    /// Pull, create or start failed.
    TaskFailedToStart,
    /// An essential container exited.
    EssentialContainerExited,
    /// StopTask.
    UserInitiated,
}

impl StopCode {
    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TaskFailedToStart => "TaskFailedToStart",
            Self::EssentialContainerExited => "EssentialContainerExited",
            Self::UserInitiated => "UserInitiated",
        }
    }
}

/// One container of a task, as known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The definition's view of it.
    pub spec: ContainerSpec,
    /// A UUID, the last part of its ARN.
    pub uuid: String,
    /// The runtime's container id (recorded before `create`, so recovery can look it up).
    #[serde(default)]
    pub runtime_id: Option<String>,
    /// What is known.
    pub status: ContainerStatus,
    /// Exit code, once it exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// `CannotPullContainerError: …`, `OutOfMemoryError: …`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Health-check result.
    pub health: Health,
    /// The image digest pulled.
    #[serde(default)]
    pub image_digest: Option<String>,
    /// The init pid and its start time, once started.
    #[serde(default)]
    pub pid: Option<i32>,
    /// The stop signal was sent at (epoch seconds); SIGKILL follows after stopTimeout.
    #[serde(default)]
    pub stop_signalled_at: Option<f64>,
    /// SIGKILL was sent.
    #[serde(default)]
    pub is_kill_sent: bool,
    /// Created in the runtime at (epoch seconds): its dependencies' startTimeout counts from here.
    #[serde(default)]
    pub created_at: Option<f64>,
    /// Deleted from the runtime and its rootfs removed.
    #[serde(default)]
    pub is_removed: bool,
    /// Started at (epoch seconds): the metadata endpoint's `StartedAt`.
    #[serde(default)]
    pub started_at: Option<f64>,
    /// Its exit was seen at (epoch seconds): the metadata endpoint's `FinishedAt`.
    #[serde(default)]
    pub finished_at: Option<f64>,
}

impl ContainerRecord {
    /// A container of a new task.
    pub fn new(spec: ContainerSpec, uuid: String) -> Self {
        Self {
            spec,
            uuid,
            runtime_id: None,
            status: ContainerStatus::None,
            exit_code: None,
            reason: None,
            health: Health::Unknown,
            image_digest: None,
            pid: None,
            stop_signalled_at: None,
            is_kill_sent: false,
            created_at: None,
            is_removed: false,
            started_at: None,
            finished_at: None,
        }
    }
}

/// The ENI as attached by netd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EniRecord {
    /// The attachment's UUID.
    pub attachment_id: String,
    /// `eni-…`.
    pub eni_id: String,
    /// The subnet.
    pub subnet: String,
    /// The private IPv4 address.
    pub ip: String,
    /// Its MAC.
    pub mac: String,
    /// The netns bind mount the containers join.
    pub netns_path: String,
    /// The task's /etc/hosts (from netd).
    #[serde(default)]
    pub hosts: String,
    /// The task's /etc/resolv.conf (from netd).
    #[serde(default)]
    pub resolv_conf: String,
    /// The subnet's prefix length (the mask on the task's `eth0`).
    #[serde(default)]
    pub prefix_length: Option<u8>,
    /// The subnet's gateway.
    #[serde(default)]
    pub gateway: Option<String>,
}

/// The network request of RunTask (awsvpcConfiguration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    /// The subnets (berth uses the first).
    pub subnets: Vec<String>,
    /// Security groups.
    pub security_groups: Vec<String>,
    /// Whether a public IP was asked for.
    pub assign_public_ip: bool,
}

/// Timestamps ECS reports, epoch seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timestamps {
    /// RunTask.
    pub created_at: f64,
    /// First pull started.
    pub pull_started_at: Option<f64>,
    /// Last pull finished.
    pub pull_stopped_at: Option<f64>,
    /// Reached RUNNING.
    pub started_at: Option<f64>,
    /// Desired became STOPPED.
    pub stopping_at: Option<f64>,
    /// All containers exited.
    pub execution_stopped_at: Option<f64>,
    /// Reached STOPPED.
    pub stopped_at: Option<f64>,
}

/// A task: everything DescribeTasks shows and recovery needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// 32 lowercase hex.
    pub id: String,
    /// Cluster name.
    pub cluster: String,
    /// Task definition family.
    pub family: String,
    /// And revision.
    pub revision: i64,
    /// Desired.
    pub desired: DesiredStatus,
    /// Known.
    pub last_status: TaskStatus,
    /// The containers, in definition order.
    pub containers: Vec<ContainerRecord>,
    /// The network request.
    pub network: NetworkRequest,
    /// The ENI once attached.
    #[serde(default)]
    pub eni: Option<EniRecord>,
    /// netd has detached it (teardown done).
    #[serde(default)]
    pub is_eni_detached: bool,
    /// Timestamps.
    pub times: Timestamps,
    /// Why it stopped.
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    /// Human reason.
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// RunTask's startedBy.
    #[serde(default)]
    pub started_by: Option<String>,
    /// `family:<family>` by default.
    pub group: String,
    /// `FARGATE` or `EC2`.
    pub launch_type: String,
    /// Task cpu units / memory MiB as strings (ECS shows strings).
    #[serde(default)]
    pub cpu: Option<String>,
    /// MiB.
    #[serde(default)]
    pub memory: Option<String>,
    /// RunTask's overrides, as sent (echoed by DescribeTasks).
    #[serde(default)]
    pub overrides: serde_json::Value,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<crate::taskdef::wire::Tag>,
    /// Bumped on every change.
    pub version: i64,
    /// How much of each container's output is kept (the agent's config when RunTask came).
    #[serde(default)]
    pub log_limits: crate::logs::LogLimits,
    /// The task role (RunTask's override, else the definition's `taskRoleArn`).
    #[serde(default)]
    pub task_role_arn: Option<String>,
    /// The unguessable id in the task's credentials URI (`/v2/credentials/<id>`), with a role.
    #[serde(default)]
    pub credentials_id: Option<String>,
}

impl TaskRecord {
    /// Whether the task is past the point of no return.
    pub fn is_stopped(&self) -> bool {
        self.last_status == TaskStatus::Stopped
    }
}

/// Now, epoch seconds with a fraction.
pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `n` random bytes as lowercase hex, from the kernel's CSPRNG.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(hex::encode(buf))
}

/// A random UUID (version 4 layout).
pub fn random_uuid() -> std::io::Result<String> {
    let h = random_hex(16)?;
    let variant = ["8", "9", "a", "b"][usize::from(h.as_bytes()[16] % 4)];
    Ok(format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        variant,
        &h[17..20],
        &h[20..32]
    ))
}
