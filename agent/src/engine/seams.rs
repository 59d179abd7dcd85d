//! The seams the supervisor drives: the OCI runtime (through its CLI), the image store, and
//! netd. Each verb takes one typed argument struct. Real implementations live in
//! `engine::real`; unit tests use `engine::fakes`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so the seams stay object-safe (`Arc<dyn Runtime>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A seam call failed. Each variant names the part, the verb and the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeamError {
    /// berth-runtime refused or failed.
    #[error("runtime {verb} {id}: {message}")]
    Runtime {
        /// `create`, `start`, …
        verb: &'static str,
        /// The container id.
        id: String,
        /// The runtime's last error line.
        message: String,
    },
    /// A pull or rootfs failed.
    #[error("image {image}: {message}")]
    Image {
        /// The reference.
        image: String,
        /// What failed.
        message: String,
    },
    /// netd refused or failed.
    #[error("network for task {task}: {message}")]
    Network {
        /// The task id.
        task: String,
        /// netd's error.
        message: String,
    },
    /// Writing a bundle failed.
    #[error("bundle {path}: {message}")]
    Bundle {
        /// The bundle dir.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Creating or removing a task's cgroup failed.
    #[error("task cgroup {verb} for task {task}: {message}")]
    TaskCgroup {
        /// `create` or `remove`.
        verb: &'static str,
        /// The task id.
        task: String,
        /// What failed.
        message: String,
    },
    /// A call did not answer in time.
    #[error("{what}: timed out after {after:?}")]
    Timeout {
        /// The call.
        what: String,
        /// The limit.
        after: Duration,
    },
}

/// `berth-runtime create --bundle B --pid-file P ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateArgs {
    /// Container id.
    pub id: String,
    /// Bundle dir with config.json.
    pub bundle: PathBuf,
    /// Where the runtime writes the init pid.
    pub pid_file: PathBuf,
    /// The size cap and file count of the container's output log.
    pub log_limits: crate::logs::LogLimits,
}

/// `berth-runtime start ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartArgs {
    /// Container id.
    pub id: String,
}

/// `berth-runtime state ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateArgs {
    /// Container id.
    pub id: String,
}

/// The signals the agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// The polite one.
    Term,
    /// After stopTimeout.
    Kill,
}

impl StopSignal {
    /// runc's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::Term => "SIGTERM",
            Self::Kill => "SIGKILL",
        }
    }
}

/// `berth-runtime kill ID SIG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillArgs {
    /// Container id.
    pub id: String,
    /// Signal.
    pub signal: StopSignal,
}

/// `berth-runtime delete [--force] ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteArgs {
    /// Container id.
    pub id: String,
    /// Kill it first if it runs.
    pub force: bool,
}

/// `berth-runtime exec ID -- COMMAND...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecArgs {
    /// Container id.
    pub id: String,
    /// The argv.
    pub command: Vec<String>,
}

/// Wait for a started container's exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitArgs {
    /// Container id.
    pub id: String,
    /// Its bundle (where the shim records the exit status).
    pub bundle: PathBuf,
}

/// `state`'s status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeStatus {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Stopped,
    /// Frozen.
    Paused,
}

/// `state`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeState {
    /// Status.
    pub status: RuntimeStatus,
    /// Init pid (0 once stopped).
    pub pid: Option<i32>,
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code (128+signal for a signal), when known.
    pub code: Option<i32>,
    /// The cgroup's OOM killer took it.
    pub is_oom: bool,
}

/// The OCI runtime.
pub trait Runtime: Send + Sync {
    /// Create (init waits on the exec fifo).
    fn create(&self, a: CreateArgs) -> BoxFuture<'_, Result<(), SeamError>>;
    /// Start.
    fn start(&self, a: StartArgs) -> BoxFuture<'_, Result<(), SeamError>>;
    /// State.
    fn state(&self, a: StateArgs) -> BoxFuture<'_, Result<RuntimeState, SeamError>>;
    /// Signal.
    fn kill(&self, a: KillArgs) -> BoxFuture<'_, Result<(), SeamError>>;
    /// Delete (idempotent: an unknown id is success).
    fn delete(&self, a: DeleteArgs) -> BoxFuture<'_, Result<(), SeamError>>;
    /// Run `command` in the running container; its exit code.
    fn exec(&self, a: ExecArgs) -> BoxFuture<'_, Result<i32, SeamError>>;
    /// Resolve when the started container exits.
    fn wait(&self, a: WaitArgs) -> BoxFuture<'_, Result<Exit, SeamError>>;
    /// Where the containers live, for clients that drive the runtime themselves (`berth
    /// exec`); `None` when the runtime is not a CLI on this host (the fakes).
    fn location(&self) -> Option<RuntimeLocation> {
        None
    }
}

/// A runc-compatible runtime binary and its `--root`: what `berth exec` needs to run a
/// process in a task's container, as the agent itself does for health checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLocation {
    /// The binary.
    pub binary: PathBuf,
    /// Its `--root` state dir.
    pub root: PathBuf,
}

/// `pull`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// `sha256:…` of the manifest, when known.
    pub digest: Option<String>,
    /// Bytes downloaded from the registry; `None` when the image was in the store already.
    pub fetched_bytes: Option<u64>,
}

/// What the definition and RunTask's overrides say about the process; the image's config
/// fills in the rest (mirrors `images::Overrides`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessOverrides {
    /// ENTRYPOINT.
    pub entry_point: Option<Vec<String>>,
    /// CMD.
    pub command: Option<Vec<String>>,
    /// Environment, later entries win.
    pub environment: Vec<(String, String)>,
    /// Working directory.
    pub working_directory: Option<String>,
    /// User.
    pub user: Option<String>,
}

/// `create_rootfs`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsArgs {
    /// The image reference.
    pub image: String,
    /// The rootfs key (the container's runtime id).
    pub key: String,
    /// The process as the task wants it.
    pub process: ProcessOverrides,
}

/// A prepared root filesystem.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRootfs {
    /// Where it is mounted/copied.
    pub path: PathBuf,
    /// The image config's process pieces as an OCI `process` object (args, env, cwd, user).
    pub process: serde_json::Value,
}

/// The image store.
pub trait ImageSource: Send + Sync {
    /// Make the image present locally.
    fn pull(&self, image: String) -> BoxFuture<'_, Result<PulledImage, SeamError>>;
    /// A writable rootfs for one container.
    fn create_rootfs(&self, a: RootfsArgs) -> BoxFuture<'_, Result<PreparedRootfs, SeamError>>;
    /// Remove it (idempotent).
    fn remove_rootfs(&self, key: String) -> BoxFuture<'_, Result<(), SeamError>>;
}

/// `attach`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachArgs {
    /// The task id (netd's key).
    pub task: String,
    /// Subnet name; netd's first when `None`.
    pub subnet: Option<String>,
    /// Security groups.
    pub security_groups: Vec<String>,
}

/// An attached ENI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedEni {
    /// `eni-…`.
    pub eni_id: String,
    /// Subnet.
    pub subnet: String,
    /// IPv4.
    pub ip: String,
    /// MAC.
    pub mac: String,
    /// The netns the containers join.
    pub netns_path: PathBuf,
    /// /etc/resolv.conf content.
    pub resolv_conf: String,
    /// /etc/hosts content.
    pub hosts: String,
    /// The subnet's prefix length, when netd says.
    pub prefix_length: Option<u8>,
    /// The subnet's gateway, when netd says.
    pub gateway: Option<String>,
}

/// netd.
pub trait Network: Send + Sync {
    /// Attach (idempotent per task).
    fn attach(&self, a: AttachArgs) -> BoxFuture<'_, Result<AttachedEni, SeamError>>;
    /// Detach (idempotent: an unknown task is success).
    fn detach(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>>;
}

/// The task cgroup to create: `/berth/<task>` with the task's hard limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCgroupArgs {
    /// The task id.
    pub task: String,
    /// Task memory, MiB.
    pub memory_mib: Option<u32>,
    /// Task cpu units (1024 = one CPU).
    pub cpu_units: Option<u32>,
}

/// The task-level cgroup that holds the task's limits, with the containers' cgroups inside.
pub trait TaskCgroups: Send + Sync {
    /// Create it with its limits (idempotent: an existing one is reused and limited again).
    fn create(&self, a: TaskCgroupArgs) -> BoxFuture<'_, Result<(), SeamError>>;
    /// Remove it and anything left below it (idempotent: a missing one is success).
    fn remove(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>>;
}

/// The task metadata and credentials endpoints (169.254.170.2 inside each task's network
/// namespace): `crate::metadata::Endpoints` for real.
pub trait TaskEndpoints: Send + Sync {
    /// Serve `task`'s endpoints inside the network namespace at `netns` (idempotent).
    fn open(&self, task: String, netns: PathBuf) -> BoxFuture<'_, Result<(), SeamError>>;
    /// Stop serving them (idempotent).
    fn close(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>>;
    /// The environment container `container` of `task` gets for the endpoints (metadata URIs,
    /// region, credentials URI): `(name, value, wins over the definition's)`.
    fn environment(
        &self,
        task: &crate::model::TaskRecord,
        container: usize,
    ) -> Vec<(String, String, bool)>;
    /// Why a task with task role `role` cannot run, if it cannot (RunTask refuses it).
    fn check_role(&self, role: &str) -> Result<(), String>;
}

/// The seams together, as the supervisor gets them.
#[derive(Clone)]
pub struct Seams {
    /// Runtime.
    pub runtime: std::sync::Arc<dyn Runtime>,
    /// Images.
    pub images: std::sync::Arc<dyn ImageSource>,
    /// Network.
    pub network: std::sync::Arc<dyn Network>,
    /// Task cgroups.
    pub cgroups: std::sync::Arc<dyn TaskCgroups>,
    /// The metadata and credentials endpoints.
    pub endpoints: std::sync::Arc<dyn TaskEndpoints>,
    /// Where task bundles go: `<root>/tasks`.
    pub tasks_dir: PathBuf,
    /// The log limits new tasks get (each task keeps the ones it started with).
    pub log_limits: crate::logs::LogLimits,
    /// Events and metrics: told of every recorded transition, pull and attach.
    pub observe: std::sync::Arc<crate::observe::Observer>,
}
