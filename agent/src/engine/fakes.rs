//! Fakes of the three seams for unit tests: they record every call (`Call`, `Eq + Debug`),
//! can be told to fail a verb, and let a test decide when a container exits.

use super::seams::*;
use crate::model::TaskRecord;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// network.attach(task)
    Attach(String),
    /// network.detach(task)
    Detach(String),
    /// images.pull(image)
    Pull(String),
    /// images.create_rootfs(key)
    Rootfs(String),
    /// images.remove_rootfs(key)
    RemoveRootfs(String),
    /// runtime.create(id)
    Create(String),
    /// runtime.start(id)
    Start(String),
    /// runtime.kill(id, signal)
    Kill(String, StopSignal),
    /// runtime.delete(id)
    Delete(String),
    /// runtime.exec(id, …) (a health check)
    Exec(String),
}

/// All three seams in one recorder.
#[derive(Default)]
pub struct Fake {
    calls: Mutex<Vec<Call>>,
    /// Task cgroup calls, kept apart from `calls`: `("create", task)` / `("remove", task)`.
    pub cgroup_calls: Mutex<Vec<(&'static str, String)>>,
    /// Metadata endpoint calls: `("open", task)` / `("close", task)`.
    pub endpoint_calls: Mutex<Vec<(&'static str, String)>>,
    exits: Mutex<HashMap<String, watch::Sender<Option<Exit>>>>,
    /// Image references whose pull never finishes.
    pub hanging_images: Mutex<Vec<String>>,
    /// Image references whose pull fails.
    pub missing_images: Mutex<Vec<String>>,
    /// Container ids (substring) that ignore SIGTERM.
    pub ignores_term: Mutex<Vec<String>>,
    /// Container ids (substring) whose health check fails.
    pub unhealthy: Mutex<Vec<String>>,
    /// Verbs that fail (`"start"`, `"attach"`).
    pub failing: Mutex<Vec<&'static str>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fake {
    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    fn record(&self, c: Call) {
        lock(&self.calls).push(c);
    }

    fn fails(&self, verb: &'static str) -> bool {
        lock(&self.failing).contains(&verb)
    }

    fn channel(&self, id: &str) -> watch::Sender<Option<Exit>> {
        lock(&self.exits)
            .entry(id.to_owned())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    /// Make container `id` exit with `code`.
    pub fn exit(&self, id: &str, code: i32) {
        self.channel(id).send_replace(Some(Exit {
            code: Some(code),
            is_oom: false,
        }));
    }

    /// Seams backed by this fake, with bundles under `tasks_dir`.
    pub fn seams(self: &Arc<Self>, tasks_dir: PathBuf) -> Seams {
        Seams {
            runtime: self.clone(),
            images: self.clone(),
            network: self.clone(),
            cgroups: self.clone(),
            endpoints: self.clone(),
            tasks_dir,
            log_limits: crate::logs::LogLimits::default(),
            observe: Arc::new(crate::observe::Observer::in_memory(
                crate::api::arn::Arns::default(),
            )),
        }
    }
}

impl Runtime for Fake {
    fn create(&self, a: CreateArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        self.record(Call::Create(a.id.clone()));
        let ok = a.bundle.join("config.json").exists();
        Box::pin(async move {
            ok.then_some(()).ok_or(SeamError::Runtime {
                verb: "create",
                id: a.id,
                message: "no config.json".into(),
            })
        })
    }
    fn start(&self, a: StartArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        self.record(Call::Start(a.id.clone()));
        let fails = self.fails("start");
        Box::pin(async move {
            if fails {
                return Err(SeamError::Runtime {
                    verb: "start",
                    id: a.id,
                    message: "exec: no such file".into(),
                });
            }
            Ok(())
        })
    }
    fn state(&self, _a: StateArgs) -> BoxFuture<'_, Result<RuntimeState, SeamError>> {
        Box::pin(async {
            Ok(RuntimeState {
                status: RuntimeStatus::Running,
                pid: Some(1),
            })
        })
    }
    fn kill(&self, a: KillArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        self.record(Call::Kill(a.id.clone(), a.signal));
        let ignores = lock(&self.ignores_term)
            .iter()
            .any(|s| a.id.contains(s.as_str()));
        match a.signal {
            StopSignal::Term if !ignores => self.exit(&a.id, 143),
            StopSignal::Term => {}
            StopSignal::Kill => self.exit(&a.id, 137),
        }
        Box::pin(async { Ok(()) })
    }
    fn delete(&self, a: DeleteArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        self.record(Call::Delete(a.id));
        Box::pin(async { Ok(()) })
    }
    fn exec(&self, a: ExecArgs) -> BoxFuture<'_, Result<i32, SeamError>> {
        let unhealthy = lock(&self.unhealthy)
            .iter()
            .any(|s| a.id.contains(s.as_str()));
        self.record(Call::Exec(a.id));
        Box::pin(async move { Ok(i32::from(unhealthy)) })
    }
    fn wait(&self, a: WaitArgs) -> BoxFuture<'_, Result<Exit, SeamError>> {
        let id = a.id;
        let mut rx = self.channel(&id).subscribe();
        Box::pin(async move {
            let exit = rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| SeamError::Runtime {
                    verb: "wait",
                    id: id.clone(),
                    message: "gone".into(),
                })?;
            Ok((*exit).unwrap_or(Exit {
                code: None,
                is_oom: false,
            }))
        })
    }
}

impl ImageSource for Fake {
    fn pull(&self, image: String) -> BoxFuture<'_, Result<PulledImage, SeamError>> {
        self.record(Call::Pull(image.clone()));
        let missing = lock(&self.missing_images).contains(&image);
        let hangs = lock(&self.hanging_images).contains(&image);
        Box::pin(async move {
            if hangs {
                std::future::pending::<()>().await;
            }
            if missing {
                return Err(SeamError::Image {
                    image,
                    message: "manifest unknown".into(),
                });
            }
            Ok(PulledImage {
                digest: Some("sha256:00".into()),
                fetched_bytes: Some(0),
            })
        })
    }
    fn create_rootfs(&self, a: RootfsArgs) -> BoxFuture<'_, Result<PreparedRootfs, SeamError>> {
        self.record(Call::Rootfs(a.key.clone()));
        let args = a
            .process
            .command
            .clone()
            .unwrap_or_else(|| vec!["sh".into()]);
        Box::pin(async move {
            Ok(PreparedRootfs {
                path: format!("/fake/{}", a.key).into(),
                process: serde_json::json!({"args": args}),
            })
        })
    }
    fn remove_rootfs(&self, key: String) -> BoxFuture<'_, Result<(), SeamError>> {
        self.record(Call::RemoveRootfs(key));
        Box::pin(async { Ok(()) })
    }
}

impl Network for Fake {
    fn attach(&self, a: AttachArgs) -> BoxFuture<'_, Result<AttachedEni, SeamError>> {
        self.record(Call::Attach(a.task.clone()));
        let fails = self.fails("attach");
        Box::pin(async move {
            if fails {
                return Err(SeamError::Network {
                    task: a.task,
                    message: "unknown subnet 'nope'".into(),
                });
            }
            Ok(AttachedEni {
                eni_id: "eni-0000abcd".into(),
                subnet: a.subnet.unwrap_or_else(|| "private".into()),
                ip: "10.88.0.2".into(),
                mac: "02:00:00:00:00:02".into(),
                netns_path: format!("/run/berth/netns/{}", a.task).into(),
                resolv_conf: String::new(),
                hosts: String::new(),
                prefix_length: Some(24),
                gateway: Some("10.88.0.1".into()),
            })
        })
    }
    fn detach(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>> {
        self.record(Call::Detach(task));
        Box::pin(async { Ok(()) })
    }
}

impl TaskEndpoints for Fake {
    fn open(&self, task: String, _netns: PathBuf) -> BoxFuture<'_, Result<(), SeamError>> {
        lock(&self.endpoint_calls).push(("open", task));
        Box::pin(async { Ok(()) })
    }
    fn close(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>> {
        lock(&self.endpoint_calls).push(("close", task));
        Box::pin(async { Ok(()) })
    }
    fn environment(&self, task: &TaskRecord, container: usize) -> Vec<(String, String, bool)> {
        vec![(
            "ECS_CONTAINER_METADATA_URI_V4".into(),
            format!("http://169.254.170.2/v4/{}-{container}", task.id),
            true,
        )]
    }
    fn check_role(&self, role: &str) -> Result<(), String> {
        match role.ends_with("role/unknown") {
            true => Err(format!(
                "taskRoleArn {role} is not in the task credentials file"
            )),
            false => Ok(()),
        }
    }
}

impl TaskCgroups for Fake {
    fn create(&self, a: TaskCgroupArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        lock(&self.cgroup_calls).push(("create", a.task.clone()));
        let fails = self.fails("cgroup");
        Box::pin(async move {
            if fails {
                return Err(SeamError::TaskCgroup {
                    verb: "create",
                    task: a.task,
                    message: "no memory controller".into(),
                });
            }
            Ok(())
        })
    }
    fn remove(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>> {
        lock(&self.cgroup_calls).push(("remove", task));
        Box::pin(async { Ok(()) })
    }
}
