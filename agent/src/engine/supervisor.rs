//! One supervisor per task: the only writer of its record. It asks the pure lifecycle what to
//! do next, performs it through the seams, records the transition (one transaction), and
//! otherwise waits for StopTask, a container exit, or a stop deadline.

use super::bundle;
use super::health;
use super::lifecycle::{next_action, next_deadline, Action};
use super::seams::{
    AttachArgs, CreateArgs, DeleteArgs, Exit, KillArgs, ProcessOverrides, RootfsArgs, SeamError,
    Seams, StartArgs, StopSignal, TaskCgroupArgs, WaitArgs,
};
use super::shutdown::CancellationToken;
use crate::metrics::PullSource;
use crate::model::{
    now_epoch, random_uuid, ContainerStatus, DesiredStatus, EniRecord, StopCode, TaskRecord,
    TaskStatus,
};
use crate::store::Store;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// How long one runtime verb or netd call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one image pull may take.
pub const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// What the engine sends a supervisor.
#[derive(Debug)]
pub enum TaskCmd {
    /// StopTask: desired → STOPPED; the reply is the task right after recording that.
    Stop {
        /// StopTask's reason, or "Task stopped by user".
        reason: Option<String>,
        /// The updated record.
        reply: oneshot::Sender<TaskRecord>,
    },
}

async fn timed<T>(
    what: String,
    after: Duration,
    f: impl Future<Output = Result<T, SeamError>>,
) -> Result<T, SeamError> {
    tokio::time::timeout(after, f)
        .await
        .unwrap_or(Err(SeamError::Timeout { what, after }))
}

/// Milliseconds, for step timings in logs.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The definition's process settings with RunTask's `containerOverrides` for this container
/// applied (command replaces; environment entries are added after, so the same name wins).
pub fn process_overrides(
    spec: &crate::taskdef::ContainerSpec,
    overrides: &serde_json::Value,
) -> ProcessOverrides {
    let mut p = ProcessOverrides {
        entry_point: spec.entry_point.clone(),
        command: spec.command.clone(),
        environment: spec.environment.clone(),
        working_directory: spec.working_directory.clone(),
        user: spec.user.clone(),
    };
    let ours = overrides["containerOverrides"].as_array().and_then(|list| {
        list.iter()
            .find(|o| o["name"] == serde_json::json!(spec.name))
    });
    if let Some(o) = ours {
        if let Ok(command) = serde_json::from_value::<Vec<String>>(o["command"].clone()) {
            p.command = Some(command);
        }
        for kv in o["environment"].as_array().into_iter().flatten() {
            if let (Some(k), v) = (
                kv["name"].as_str(),
                kv["value"].as_str().unwrap_or_default(),
            ) {
                p.environment.retain(|(name, _)| name != k);
                p.environment.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    p
}

/// Where a task's container logs are kept after the task stopped: `<root>/logs/<task>/`.
pub fn logs_dir(seams: &Seams, task: &str) -> std::path::PathBuf {
    let root = seams.tasks_dir.parent().unwrap_or(&seams.tasks_dir);
    root.join("logs").join(task)
}

/// Move `<bundle>/output.log` and its rotated files (`output.log.N`) to
/// `<logs>/<container>.log[.N]` before the bundle goes.
fn keep_log(
    bundle: &std::path::Path,
    logs: &std::path::Path,
    container: &str,
) -> Result<(), String> {
    let files = crate::logs::log_files(bundle, crate::logs::LIVE_LOG);
    if files.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
    for from in files {
        let name = from.file_name().unwrap_or_default().to_string_lossy();
        let suffix = name.strip_prefix(crate::logs::LIVE_LOG).unwrap_or("");
        let to = logs.join(format!("{container}.log{suffix}"));
        std::fs::rename(&from, &to).map_err(|e| format!("keeping {}: {e}", from.display()))?;
    }
    Ok(())
}

/// The next command, or never when there is no receiver (before `run`).
async fn recv(cmds: &mut Option<mpsc::Receiver<TaskCmd>>) -> Option<TaskCmd> {
    match cmds {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The per-task loop.
pub struct Supervisor {
    task: TaskRecord,
    store: Store,
    seams: Seams,
    exits_tx: mpsc::UnboundedSender<(usize, Exit)>,
    exits_rx: mpsc::UnboundedReceiver<(usize, Exit)>,
    health_tx: mpsc::UnboundedSender<(usize, bool, bool)>,
    health_rx: mpsc::UnboundedReceiver<(usize, bool, bool)>,
    tallies: Vec<health::Tally>,
    waiters: JoinSet<()>,
    cmds: Option<mpsc::Receiver<TaskCmd>>,
}

impl Supervisor {
    /// A supervisor for `task` (new, or read back from the store after a restart).
    pub fn new(task: TaskRecord, store: Store, seams: Seams) -> Self {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let (health_tx, health_rx) = mpsc::unbounded_channel();
        let tallies = task
            .containers
            .iter()
            .map(|c| health::Tally {
                failures: 0,
                health: c.health,
            })
            .collect();
        Self {
            task,
            store,
            seams,
            exits_tx,
            exits_rx,
            health_tx,
            health_rx,
            tallies,
            waiters: JoinSet::new(),
            cmds: None,
        }
    }

    /// Drive the task until STOPPED or shutdown. Containers keep running across shutdown.
    pub async fn run(
        mut self,
        cmds: mpsc::Receiver<TaskCmd>,
        shutdown: CancellationToken,
    ) -> TaskRecord {
        // After a restart: serve the endpoints again, watch the containers that were running.
        if self.task.eni.is_some() && !self.task.is_eni_detached {
            if let Err(e) = self.open_endpoints().await {
                tracing::error!(task = %self.task.id, error = %e, "reopening the metadata endpoint failed");
            }
        }
        for i in 0..self.task.containers.len() {
            if self.task.containers[i].status == ContainerStatus::Running {
                self.watch_exit(i);
                self.watch_health(i);
            }
        }
        self.cmds = Some(cmds);
        // A new task's first event (PROVISIONING); an adopted task's is not repeated.
        self.seams.observe.recorded(&self.task);
        loop {
            if let Some(action) = next_action(&self.task, now_epoch()) {
                let started = Instant::now();
                self.perform(action.clone()).await;
                let performed = started.elapsed();
                self.record();
                // Where the time goes (bench/agent.sh reads these with RUST_LOG=debug).
                tracing::debug!(
                    task = %self.task.id,
                    ?action,
                    perform_ms = ms(performed),
                    record_ms = ms(started.elapsed() - performed),
                    "lifecycle step"
                );
                continue;
            }
            if self.task.is_stopped() {
                break;
            }
            let deadline = next_deadline(&self.task)
                .map(|at| Duration::from_secs_f64((at - now_epoch()).max(0.0)));
            tokio::select! {
                Some(cmd) = recv(&mut self.cmds) => self.apply(cmd),
                Some((i, exit)) = self.exits_rx.recv() => { self.observe_exit(i, exit); self.record(); }
                Some((i, passed, in_start)) = self.health_rx.recv() => self.observe_health(i, passed, in_start),
                () = tokio::time::sleep(deadline.unwrap_or(Duration::from_secs(3600))), if deadline.is_some() => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.waiters.abort_all();
        self.task
    }

    fn record(&mut self) {
        self.task.version += 1;
        if let Err(e) = self.store.put_task(&self.task) {
            tracing::error!(task = %self.task.id, error = %crate::cli::error_chain(&e), "recording a transition failed");
        }
        self.seams.observe.recorded(&self.task);
    }

    fn apply(&mut self, cmd: TaskCmd) {
        match cmd {
            TaskCmd::Stop { reason, reply } => {
                if self.task.desired == DesiredStatus::Running {
                    let reason = reason.unwrap_or_else(|| "Task stopped by user".into());
                    self.stop_task(StopCode::UserInitiated, reason);
                    self.record();
                }
                let _ = reply.send(self.task.clone());
            }
        }
    }

    fn stop_task(&mut self, code: StopCode, reason: String) {
        if self.task.desired == DesiredStatus::Stopped {
            return;
        }
        tracing::info!(task = %self.task.id, code = code.as_str(), %reason, "stopping task");
        self.task.desired = DesiredStatus::Stopped;
        self.task.stop_code = Some(code);
        self.task.stopped_reason = Some(reason);
        self.task.times.stopping_at.get_or_insert(now_epoch());
    }

    fn observe_exit(&mut self, i: usize, exit: Exit) {
        let c = &mut self.task.containers[i];
        if c.status == ContainerStatus::Stopped {
            return;
        }
        tracing::info!(task = %self.task.id, container = %c.spec.name, code = ?exit.code, "container exited");
        c.status = ContainerStatus::Stopped;
        c.exit_code = exit.code;
        c.finished_at.get_or_insert(now_epoch());
        if exit.is_oom {
            c.reason = Some("OutOfMemoryError: Container killed due to memory usage".into());
        }
    }

    fn observe_health(&mut self, i: usize, passed: bool, is_in_start_period: bool) {
        let c = &self.task.containers[i];
        let Some(spec) = &c.spec.health_check else {
            return;
        };
        if c.status != ContainerStatus::Running {
            return;
        }
        let tally = health::judge(self.tallies[i], passed, spec.retries, is_in_start_period);
        self.tallies[i] = tally;
        if tally.health != c.health {
            tracing::info!(task = %self.task.id, container = %c.spec.name, health = ?tally.health, "container health");
            self.task.containers[i].health = tally.health;
            self.record();
        }
    }

    fn watch_health(&mut self, i: usize) {
        let c = &self.task.containers[i];
        let (Some(spec), Some(id)) = (c.spec.health_check.clone(), c.runtime_id.clone()) else {
            return;
        };
        let runtime = self.seams.runtime.clone();
        let tx = self.health_tx.clone();
        self.waiters.spawn(health::check_loop(
            runtime,
            id,
            i,
            spec,
            std::time::Instant::now(),
            tx,
        ));
    }

    fn watch_exit(&mut self, i: usize) {
        let Some(id) = self.task.containers[i].runtime_id.clone() else {
            return;
        };
        let bundle = self
            .seams
            .tasks_dir
            .join(&self.task.id)
            .join(&self.task.containers[i].spec.name);
        let runtime = self.seams.runtime.clone();
        let tx = self.exits_tx.clone();
        self.waiters.spawn(async move {
            let exit = match runtime.wait(WaitArgs { id: id.clone(), bundle }).await {
                Ok(exit) => exit,
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "waiting for the container failed; reporting it stopped");
                    Exit { code: None, is_oom: false }
                }
            };
            let _ = tx.send((i, exit));
        });
    }

    async fn perform(&mut self, action: Action) {
        let now = now_epoch();
        match action {
            Action::AttachNetwork => self.attach().await,
            Action::Advance(status) => self.advance(status, now),
            Action::Pull(i) => self.pull(i, now).await,
            Action::Create(i) => self.create(i).await,
            Action::Start(i) => self.start(i).await,
            Action::SignalStop(i) => self.signal(i, StopSignal::Term, now).await,
            Action::Kill(i) => self.signal(i, StopSignal::Kill, now).await,
            Action::MarkStopped(i) => self.task.containers[i].status = ContainerStatus::Stopped,
            Action::Remove(i) => self.remove(i).await,
            Action::DetachNetwork => self.detach().await,
            Action::StopTask { code, reason } => self.stop_task(code, reason),
        }
    }

    fn advance(&mut self, status: TaskStatus, now: f64) {
        let t = &mut self.task;
        tracing::info!(task = %t.id, from = t.last_status.as_str(), to = status.as_str(), "task status");
        t.last_status = status;
        match status {
            TaskStatus::Running => {
                t.times.started_at.get_or_insert(now);
            }
            TaskStatus::Stopping => {
                t.times.stopping_at.get_or_insert(now);
            }
            TaskStatus::Deprovisioning => {
                t.times.execution_stopped_at.get_or_insert(now);
            }
            TaskStatus::Stopped => {
                t.times.stopped_at.get_or_insert(now);
            }
            _ => {}
        }
    }

    async fn attach(&mut self) {
        let args = AttachArgs {
            task: self.task.id.clone(),
            subnet: self.task.network.subnets.first().cloned(),
            security_groups: self.task.network.security_groups.clone(),
        };
        let network = self.seams.network.clone();
        let started = Instant::now();
        let attached = timed(
            format!("attach ENI of {}", self.task.id),
            CALL_TIMEOUT,
            network.attach(args),
        )
        .await;
        self.seams
            .observe
            .attached(started.elapsed(), attached.is_ok());
        match attached {
            Ok(eni) => {
                tracing::info!(task = %self.task.id, ip = %eni.ip, "eni attached");
                self.task.eni = Some(EniRecord {
                    attachment_id: random_uuid().unwrap_or_else(|_| self.task.id.clone()),
                    eni_id: eni.eni_id,
                    subnet: eni.subnet,
                    ip: eni.ip,
                    mac: eni.mac,
                    netns_path: eni.netns_path.display().to_string(),
                    hosts: eni.hosts,
                    resolv_conf: eni.resolv_conf,
                    prefix_length: eni.prefix_length,
                    gateway: eni.gateway,
                });
                // The metadata endpoint listens before any container can ask it.
                if let Err(e) = self.open_endpoints().await {
                    self.stop_task(
                        StopCode::TaskFailedToStart,
                        format!("ResourceInitializationError: {e}"),
                    );
                }
            }
            Err(e) => self.stop_task(
                StopCode::TaskFailedToStart,
                format!("ResourceInitializationError: {e}"),
            ),
        }
    }

    async fn pull(&mut self, i: usize, now: f64) {
        self.task.times.pull_started_at.get_or_insert(now);
        let image = self.task.containers[i].spec.image.clone();
        let images = self.seams.images.clone();
        let started = Instant::now();
        let pull = timed(format!("pull {image}"), PULL_TIMEOUT, images.pull(image));
        tokio::pin!(pull);
        // A pull can take minutes: StopTask is applied meanwhile and abandons it.
        let result = loop {
            tokio::select! {
                r = &mut pull => break r,
                Some(cmd) = recv(&mut self.cmds) => {
                    self.apply(cmd);
                    if self.task.desired == DesiredStatus::Stopped {
                        self.task.times.pull_stopped_at = Some(now_epoch());
                        return;
                    }
                }
            }
        };
        self.task.times.pull_stopped_at = Some(now_epoch());
        let (source, bytes) = match &result {
            Ok(p) => match p.fetched_bytes {
                Some(b) => (PullSource::Registry, Some(b)),
                None => (PullSource::Local, Some(0)),
            },
            Err(_) => (PullSource::Registry, None),
        };
        self.seams.observe.pulled(source, started.elapsed(), bytes);
        let c = &mut self.task.containers[i];
        match result {
            Ok(p) => {
                c.image_digest = p.digest;
                c.status = ContainerStatus::Pulled;
            }
            Err(e) => {
                let reason = format!("CannotPullContainerError: {e}");
                c.reason = Some(reason.clone());
                self.stop_task(StopCode::TaskFailedToStart, reason);
            }
        }
    }

    async fn create(&mut self, i: usize) {
        let id = format!("berth-{}-{i}", self.task.id);
        // An id already recorded means an earlier attempt (before a crash) may have left a
        // container of that id behind.
        let may_exist = self.task.containers[i].runtime_id.is_some();
        // Write-ahead: the id is on disk before the runtime knows it, so a restarted agent can
        // find (and delete) a container created just before a crash.
        self.task.containers[i].runtime_id = Some(id.clone());
        self.record();
        match self.create_container(i, &id, may_exist).await {
            Ok(()) => {
                self.task.containers[i].status = ContainerStatus::Created;
                self.task.containers[i].created_at = Some(now_epoch());
            }
            Err(e) => {
                let reason = format!("CannotCreateContainerError: {e}");
                self.task.containers[i].reason = Some(reason.clone());
                self.stop_task(StopCode::TaskFailedToStart, reason);
            }
        }
    }

    async fn create_container(
        &mut self,
        i: usize,
        id: &str,
        may_exist: bool,
    ) -> Result<(), SeamError> {
        let runtime = self.seams.runtime.clone();
        let images = self.seams.images.clone();
        let started = Instant::now();
        if may_exist {
            // A leftover from a crash between the write-ahead and the create: remove it.
            let args = DeleteArgs {
                id: id.into(),
                force: true,
            };
            timed(format!("delete {id}"), CALL_TIMEOUT, runtime.delete(args)).await?;
        }
        let spec = self.task.containers[i].spec.clone();
        let mut process = process_overrides(&spec, &self.task.overrides);
        for (name, value, wins) in self.seams.endpoints.environment(&self.task, i) {
            if wins {
                process.environment.retain(|(n, _)| *n != name);
                process.environment.push((name, value));
            } else if !process.environment.iter().any(|(n, _)| *n == name) {
                process.environment.insert(0, (name, value));
            }
        }
        let rootfs_args = RootfsArgs {
            image: spec.image.clone(),
            key: id.into(),
            process,
        };
        // The task cgroup (with the task's hard limits) before any container goes in it.
        let cgroup_args = TaskCgroupArgs {
            task: self.task.id.clone(),
            memory_mib: self.task.memory.as_deref().and_then(|m| m.parse().ok()),
            cpu_units: self.task.cpu.as_deref().and_then(|c| c.parse().ok()),
        };
        let cgroups = self.seams.cgroups.clone();
        // Independent of each other: the rootfs and the task cgroup are made at once.
        let (rootfs, cgroup) = tokio::join!(
            timed(
                format!("rootfs of {id}"),
                CALL_TIMEOUT,
                images.create_rootfs(rootfs_args)
            ),
            timed(
                format!("task cgroup of {}", self.task.id),
                CALL_TIMEOUT,
                cgroups.create(cgroup_args)
            ),
        );
        let rootfs = rootfs?;
        cgroup?;
        let prepared = started.elapsed();
        let dir = self.seams.tasks_dir.join(&self.task.id).join(&spec.name);
        let eni = self.task.eni.clone();
        let input = bundle::BundleInput {
            id,
            spec: &spec,
            rootfs: &rootfs,
            netns: eni.as_ref().map(|e| e.netns_path.as_str()),
            hosts: eni.as_ref().map(|e| e.hosts.as_str()),
            resolv_conf: eni.as_ref().map(|e| e.resolv_conf.as_str()),
            task: &self.task.id,
        };
        bundle::write(&dir, &input)?;
        let written = started.elapsed();
        let args = CreateArgs {
            id: id.into(),
            bundle: dir.clone(),
            pid_file: dir.join("init.pid"),
            log_limits: self.task.log_limits,
        };
        timed(format!("create {id}"), CALL_TIMEOUT, runtime.create(args)).await?;
        tracing::debug!(
            container = %id,
            rootfs_and_cgroup_ms = ms(prepared),
            bundle_ms = ms(written - prepared),
            runtime_create_ms = ms(started.elapsed() - written),
            "container created"
        );
        Ok(())
    }

    async fn start(&mut self, i: usize) {
        let Some(id) = self.task.containers[i].runtime_id.clone() else {
            return;
        };
        let runtime = self.seams.runtime.clone();
        match timed(
            format!("start {id}"),
            CALL_TIMEOUT,
            runtime.start(StartArgs { id }),
        )
        .await
        {
            Ok(()) => {
                self.task.containers[i].status = ContainerStatus::Running;
                self.task.containers[i].started_at = Some(now_epoch());
                self.watch_exit(i);
                self.watch_health(i);
            }
            Err(e) => {
                let reason = format!("CannotStartContainerError: {e}");
                self.task.containers[i].reason = Some(reason.clone());
                self.task.containers[i].status = ContainerStatus::Stopped;
                self.stop_task(StopCode::TaskFailedToStart, reason);
            }
        }
    }

    async fn signal(&mut self, i: usize, signal: StopSignal, now: f64) {
        let Some(id) = self.task.containers[i].runtime_id.clone() else {
            return;
        };
        // Record the act before doing it.
        match signal {
            StopSignal::Term => self.task.containers[i].stop_signalled_at = Some(now),
            StopSignal::Kill => self.task.containers[i].is_kill_sent = true,
        }
        self.record();
        let runtime = self.seams.runtime.clone();
        let what = format!("kill {id} {}", signal.name());
        if let Err(e) = timed(what, CALL_TIMEOUT, runtime.kill(KillArgs { id, signal })).await {
            // Most often it already exited; its waiter reports the exit.
            tracing::warn!(task = %self.task.id, error = %e, "signalling a container failed");
        }
    }

    async fn remove(&mut self, i: usize) {
        let c = &self.task.containers[i];
        let Some(id) = c.runtime_id.clone() else {
            return;
        };
        let dir = self.seams.tasks_dir.join(&self.task.id).join(&c.spec.name);
        let c_name = c.spec.name.clone();
        let runtime = self.seams.runtime.clone();
        let images = self.seams.images.clone();
        let mut errors = Vec::new();
        if let Err(e) = timed(
            format!("delete {id}"),
            CALL_TIMEOUT,
            runtime.delete(DeleteArgs {
                id: id.clone(),
                force: true,
            }),
        )
        .await
        {
            errors.push(e.to_string());
        }
        if let Err(e) = timed(
            format!("remove rootfs {id}"),
            CALL_TIMEOUT,
            images.remove_rootfs(id.clone()),
        )
        .await
        {
            errors.push(e.to_string());
        }
        if let Err(e) = keep_log(&dir, &logs_dir(&self.seams, &self.task.id), &c_name) {
            errors.push(e);
        }
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                errors.push(format!("removing {}: {e}", dir.display()));
            }
        }
        for e in &errors {
            tracing::error!(task = %self.task.id, container = %id, error = %e, "teardown step failed");
        }
        self.task.containers[i].is_removed = true;
    }

    /// Serve the task's metadata and credentials endpoints inside its network namespace.
    async fn open_endpoints(&mut self) -> Result<(), SeamError> {
        let Some(eni) = &self.task.eni else {
            return Ok(());
        };
        let endpoints = self.seams.endpoints.clone();
        let netns = std::path::PathBuf::from(&eni.netns_path);
        timed(
            format!("metadata endpoint of {}", self.task.id),
            CALL_TIMEOUT,
            endpoints.open(self.task.id.clone(), netns),
        )
        .await
    }

    async fn detach(&mut self) {
        let network = self.seams.network.clone();
        let task = self.task.id.clone();
        // The endpoint's listening socket is the last thing in the namespace: close it first.
        let endpoints = self.seams.endpoints.clone();
        if let Err(e) = timed(
            format!("close metadata endpoint of {task}"),
            CALL_TIMEOUT,
            endpoints.close(task.clone()),
        )
        .await
        {
            tracing::error!(task = %task, error = %e, "closing the metadata endpoint failed");
        }
        if let Err(e) = timed(
            format!("detach ENI of {task}"),
            CALL_TIMEOUT,
            network.detach(task.clone()),
        )
        .await
        {
            tracing::error!(task = %task, error = %e, "detaching the ENI failed");
        }
        // Every container is removed by now: the task cgroup goes too.
        let cgroups = self.seams.cgroups.clone();
        if let Err(e) = timed(
            format!("remove task cgroup of {task}"),
            CALL_TIMEOUT,
            cgroups.remove(task.clone()),
        )
        .await
        {
            tracing::error!(task = %task, error = %e, "removing the task cgroup failed");
        }
        let _ = std::fs::remove_dir(self.seams.tasks_dir.join(&task));
        self.task.is_eni_detached = true;
    }
}
