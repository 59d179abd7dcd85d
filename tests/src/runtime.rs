//! Driving berth-runtime from root tests: a private state root and cgroup parent per test,
//! bundles with a busybox rootfs and the probe, and cleanup of every container on drop.

use crate::guard::Cleanup;
use crate::names::unique;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One runtime test: its own directory, runtime `--root`, and cgroup parent `/<name>`.
pub struct RuntimeTest {
    /// Unique name (`bt…`), also the cgroup parent.
    pub name: String,
    /// The test's directory under the temp dir.
    pub dir: PathBuf,
    /// berth-runtime's `--root`.
    pub root: PathBuf,
    /// The runtime binary.
    pub runtime: PathBuf,
    cleanup: Cleanup,
    ids: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
}

/// A bundle: `config.json` is written from `spec` by [`RuntimeTest::write`].
pub struct Bundle {
    /// The bundle directory.
    pub path: PathBuf,
    /// The container id it is meant for.
    pub id: String,
    /// The spec, edited by the test before writing.
    pub spec: Value,
}

impl RuntimeTest {
    /// A new test named after `role` (1–3 letters).
    pub fn new(role: &str) -> Self {
        Self::with_runtime(role, crate::env::bin_path("berth-runtime"))
    }

    /// The same, with another runtime binary (runc, crun) for comparisons.
    pub fn with_runtime(role: &str, runtime: PathBuf) -> Self {
        let name = unique(role);
        let dir = crate::env::test_dir(&name);
        let root = dir.join("state");
        let mut cleanup = Cleanup::new();
        let ids: std::rc::Rc<std::cell::RefCell<Vec<String>>> = Default::default();
        {
            let (dir, name) = (dir.clone(), name.clone());
            cleanup.defer(format!("test dir {}", dir.display()), move || {
                remove_cgroup_parent(&name);
                unmount_below(&dir);
                std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())
            });
        }
        {
            let (rt, root, ids) = (runtime.clone(), root.clone(), ids.clone());
            cleanup.defer("containers", move || {
                for id in ids.borrow().iter() {
                    let _ = Command::new(&rt)
                        .arg("--root")
                        .arg(&root)
                        .args(["delete", "--force", id])
                        .output();
                }
                Ok(())
            });
        }
        Self {
            name,
            dir,
            root,
            runtime,
            cleanup,
            ids,
        }
    }

    /// A bundle for a new container id with a fresh busybox rootfs and the default spec.
    pub fn bundle(&mut self, tag: &str) -> Bundle {
        let id = format!("{}-{tag}", self.name);
        let path = self.dir.join(format!("bundle-{tag}"));
        crate::rootfs::busybox(&path.join("rootfs"));
        self.ids.borrow_mut().push(id.clone());
        let spec = default_spec(&format!("/{}/{tag}", self.name));
        Bundle { path, id, spec }
    }

    /// Register another container id for cleanup (one created by hand).
    pub fn track(&mut self, id: &str) {
        self.ids.borrow_mut().push(id.to_string());
    }

    /// Write the bundle's config.json.
    pub fn write(&self, b: &Bundle) {
        std::fs::write(
            b.path.join("config.json"),
            serde_json::to_vec_pretty(&b.spec).expect("spec json"),
        )
        .expect("write config.json");
    }

    /// `berth-runtime --root R ARGS` (not yet run).
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    /// Run a runtime command to completion, capturing its output.
    pub fn out<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn berth-runtime")
    }

    /// Write the bundle and `run` it in the foreground; returns its output.
    pub fn run(&self, b: &Bundle) -> Output {
        self.write(b);
        self.out(["run", "--bundle", &b.path.display().to_string(), &b.id])
    }

    /// Write the bundle and `create` it; panics with the runtime's stderr on failure. The
    /// container's stdout and stderr go to `<bundle>/stdout` and `<bundle>/stderr` (init keeps
    /// them open, so they cannot be pipes that the test waits to close).
    pub fn create(&self, b: &Bundle) {
        self.write(b);
        let o = self.create_output(b, &[]);
        assert!(
            o.status.success(),
            "create {}: {}",
            b.id,
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `create` with extra flags; the runtime's stderr is read from `<bundle>/stderr`.
    pub fn create_output(&self, b: &Bundle, extra: &[&str]) -> Output {
        let out = std::fs::File::create(b.path.join("stdout")).expect("stdout file");
        let err = std::fs::File::create(b.path.join("stderr")).expect("stderr file");
        let mut args = vec![
            "create".to_string(),
            "--bundle".into(),
            b.path.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(b.id.clone());
        let status = self
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .expect("spawn berth-runtime");
        Output {
            status,
            stdout: std::fs::read(b.path.join("stdout")).unwrap_or_default(),
            stderr: std::fs::read(b.path.join("stderr")).unwrap_or_default(),
        }
    }

    /// `create` + `start` of a bundle whose process keeps running.
    pub fn start_detached(&self, b: &Bundle) -> i32 {
        self.create(b);
        let o = self.out(["start", &b.id]);
        assert!(
            o.status.success(),
            "start {}: {}",
            b.id,
            String::from_utf8_lossy(&o.stderr)
        );
        i32::try_from(self.state(&b.id)["pid"].as_i64().expect("pid")).expect("pid fits i32")
    }

    /// `state ID` as JSON.
    pub fn state(&self, id: &str) -> Value {
        let o = self.out(["state", id]);
        assert!(
            o.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("state json")
    }

    /// Run the bundle and parse the probe's JSON line from stdout.
    pub fn probe(&self, b: &Bundle) -> Value {
        let o = self.run(b);
        parse_probe(&o)
    }

    /// The test's cgroup directory for a controller on this host (v1) or the unified tree.
    pub fn cgroup_dir(&self, controller: &str, tag: &str) -> PathBuf {
        let v1 = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.name)
            .join(tag);
        if Path::new("/sys/fs/cgroup").join(controller).is_dir() {
            v1
        } else {
            Path::new("/sys/fs/cgroup").join(&self.name).join(tag)
        }
    }

    /// Run cleanup now (for tests that then check that nothing is left).
    pub fn cleanup_now(&mut self) -> Vec<String> {
        self.cleanup.run_now()
    }
}

/// The probe's JSON (the last line of stdout), with the runtime's stderr on failure.
pub fn parse_probe(o: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "no probe output (status {}): stdout {stdout:?} stderr {:?}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            )
        });
    serde_json::from_str(line).expect("probe json")
}

/// A spec like `berth-runtime spec`, without a terminal, running `/probe report`, in the
/// cgroup `cgroups_path`.
pub fn default_spec(cgroups_path: &str) -> Value {
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE"
    ]);
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/probe", "report"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "btcontainer",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Remove `/<name>` (and below) in every cgroup hierarchy, deepest first.
pub fn remove_cgroup_parent(name: &str) {
    fn rm(dir: &Path) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    let base = Path::new("/sys/fs/cgroup");
    rm(&base.join(name));
    if let Ok(rd) = std::fs::read_dir(base) {
        for e in rd.flatten() {
            rm(&e.path().join(name));
        }
    }
}

/// Lazily unmount anything mounted at or below `dir` (deepest first).
pub fn unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).output();
    }
}

/// Whether berth-runtime would accept `id` as a container id (one safe path component).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
}
