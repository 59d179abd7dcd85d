//! The per-container state directory under `--root`: `state.json`, the saved `config.json`,
//! the exec fifo, and a lock that serialises commands on one container.

use super::id::ContainerId;
use crate::error::RuntimeError;
use crate::sys::proc::{self, ProcessStatus};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The file `start` opens to release the init process.
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.json";

/// What berth-runtime records about one container, kept atomically in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// The runtime-spec version of the bundle.
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// The init process's pid on the host.
    pub pid: i32,
    /// The init's start time in clock ticks since boot (`/proc/PID/stat` field 22), so that a
    /// recycled pid is never mistaken for the container.
    pub pid_start_time: u64,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The rootfs as an absolute host path.
    pub rootfs: PathBuf,
    /// When `create` finished, RFC 3339.
    pub created: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The cgroup path the container was placed in (relative to each hierarchy's root).
    pub cgroup_path: String,
    /// Whether the container has its own pid namespace (if not, kill/delete must signal every
    /// process of its cgroup, not just init).
    pub has_own_pidns: bool,
    /// Whether `start` has run (poststart hooks done, fifo consumed).
    #[serde(default)]
    pub started: bool,
}

/// runtime-spec status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Init waits on the exec fifo.
    Created,
    /// The user process runs.
    Running,
    /// Frozen.
    Paused,
    /// Init is gone.
    Stopped,
}

impl Status {
    /// The lowercase name runc prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// One container's directory, locked for the lifetime of this value.
pub struct ContainerDir {
    /// The container id.
    pub id: ContainerId,
    /// `<root>/<id>`.
    pub path: PathBuf,
    _lock: File,
}

impl ContainerDir {
    /// Make the directory for a new container; an existing one is an error naming the id.
    pub fn create(root: &Path, id: &ContainerId) -> Result<Self, RuntimeError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(|source| RuntimeError::StateDir {
                path: root.to_path_buf(),
                source,
            })?;
        let path = root.join(id.as_str());
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::Exists { id: id.to_string() })
            }
            Err(source) => return Err(RuntimeError::StateDir { path, source }),
        }
        let lock = lock(&path)?;
        Ok(Self {
            id: id.clone(),
            path,
            _lock: lock,
        })
    }

    /// Open and lock an existing container's directory.
    pub fn open(root: &Path, id: &ContainerId) -> Result<Self, RuntimeError> {
        let path = root.join(id.as_str());
        if !path.join(STATE_FILE).exists() && !path.is_dir() {
            return Err(RuntimeError::NotFound { id: id.to_string() });
        }
        let lock = lock(&path)?;
        Ok(Self {
            id: id.clone(),
            path,
            _lock: lock,
        })
    }

    /// In init, right after clone: close init's copy of the lock fd, so that the container is
    /// not locked while init waits for `start`. Init never returns, so the `File` is never
    /// dropped (and never closed twice).
    pub fn forget_lock_in_child(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: closes this process's copy of the lock fd; nothing else uses the number.
        unsafe { libc::close(self._lock.as_raw_fd()) };
    }

    /// Read `state.json`.
    pub fn load(&self) -> Result<Record, RuntimeError> {
        let file = self.path.join(STATE_FILE);
        let bytes = fs::read(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuntimeError::NotFound {
                id: self.id.to_string(),
            },
            _ => RuntimeError::ReadState {
                path: file.clone(),
                source: e,
            },
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|source| RuntimeError::ParseState { path: file, source })
    }

    /// Replace `state.json` atomically.
    pub fn save(&self, record: &Record) -> Result<(), RuntimeError> {
        let bytes = serde_json::to_vec(record).map_err(|source| RuntimeError::ParseState {
            path: self.path.join(STATE_FILE),
            source,
        })?;
        write_atomic(&self.path, STATE_FILE, &bytes)
    }

    /// Keep a copy of the spec: `exec` needs it after the bundle may have changed.
    pub fn save_config(&self, spec: &Spec) -> Result<(), RuntimeError> {
        let bytes = serde_json::to_vec(spec).map_err(|source| RuntimeError::ParseState {
            path: self.path.join(CONFIG_FILE),
            source,
        })?;
        write_atomic(&self.path, CONFIG_FILE, &bytes)
    }

    /// The spec saved at create time.
    pub fn load_config(&self) -> Result<Spec, RuntimeError> {
        let file = self.path.join(CONFIG_FILE);
        let bytes = fs::read(&file).map_err(|source| RuntimeError::ReadState {
            path: file.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|source| RuntimeError::ParseState { path: file, source })
    }

    /// The exec fifo's path.
    pub fn fifo(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// The status as the kernel sees it now.
    pub fn status(&self, record: &Record, is_frozen: impl FnOnce() -> bool) -> Status {
        if !is_alive(record) {
            return Status::Stopped;
        }
        if self.fifo().exists() {
            return Status::Created;
        }
        if is_frozen() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// Remove the directory and everything in it.
    pub fn remove(self) -> Result<(), RuntimeError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RuntimeError::StateDir {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

/// Whether the recorded init is still that process and not a zombie.
pub fn is_alive(record: &Record) -> bool {
    if record.pid <= 0 {
        return false;
    }
    match proc::stat(record.pid) {
        Ok(st) => st.start_time == record.pid_start_time && st.status != ProcessStatus::Zombie,
        Err(_) => false,
    }
}

fn lock(dir: &Path) -> Result<File, RuntimeError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|source| RuntimeError::StateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
        RuntimeError::Lock {
            path: dir.to_path_buf(),
            source: e.into(),
        }
    })?;
    Ok(file)
}

/// Replace `dir/name` so that a reader sees the old bytes or the new ones, never a mix.
///
/// No fsync: runtime state lives on tmpfs (`/run`) and does not outlive a reboot, so only
/// atomicity matters, which the rename gives (as in runc and crun). On a disk-backed `--root`
/// an fsync per file cost several milliseconds of every `create`.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let target = dir.join(name);
    let err = |source| RuntimeError::WriteState {
        path: target.clone(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    fs::rename(&tmp, &target).map_err(err)
}

/// Every container id under `root`, sorted.
pub fn list_ids(root: &Path) -> Result<Vec<ContainerId>, RuntimeError> {
    let rd = match fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(RuntimeError::StateDir {
                path: root.to_path_buf(),
                source,
            })
        }
    };
    let mut ids: Vec<ContainerId> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(STATE_FILE).exists())
        .filter_map(|e| ContainerId::new(&e.file_name().to_string_lossy()).ok())
        .collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(ids)
}
