//! Driving berth-runtime through the real clients: podman (`podman --runtime`) and containerd
//! (its runc v2 shim with `BinaryName` = berth-runtime), each with state that is entirely
//! private to one test under the test's temp dir, so nothing of the host's podman or
//! containerd is read or written.
//!
//! - [`busybox_image`] builds the test image offline: one uncompressed layer with Debian's
//!   busybox-static, its applet links and the probe, as an OCI layout and an oci-archive,
//!   byte-for-byte reproducible (GNU tar with fixed mtimes and owners, sorted names).
//! - [`Podman`]: private `--root`, `--runroot`, `--tmpdir`, `containers.conf`,
//!   `storage.conf`, file locks, file events log, cgroupfs manager under the cgroup parent
//!   `/<name>`, and the runtime behind a wrapper that passes its own `--root` (podman 4.3 drops
//!   `--runtime-flag` from conmon's exit command, which would put state in the default root).
//! - [`Containerd`]: a containerd with root, state, temp dir and sockets in the test dir,
//!   running in a private mount namespace whose `/run` is an empty tmpfs (containerd 1.6
//!   writes shim sockets under `/run/containerd/s` and ctr its FIFOs under
//!   `/run/containerd/fifo` whatever the config says); every `ctr` enters that namespace.
//!   The containerd namespace is the test's name, so cgroups are `/<name>/<id>`.
//!
//! Every client command runs under coreutils `timeout`, so a hanging runtime fails a test
//! instead of hanging the suite. Cleanup goes through [`Cleanup`] and runs on panic too.

use crate::guard::{run_quiet, Cleanup};
use crate::names::unique;
use crate::runtime::{remove_cgroup_parent, unmount_below};
use crate::wait::wait_until;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

/// Seconds one podman or ctr command may take before it is killed.
pub const COMMAND_TIMEOUT_SECS: u32 = 60;

/// The result of one client command.
#[derive(Debug)]
pub struct Out {
    /// Exit code (`None` if killed by a signal); 124 means the timeout hit.
    pub code: Option<i32>,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
}

impl Out {
    /// stdout without the trailing newline.
    pub fn text(&self) -> &str {
        self.stdout.trim_end_matches('\n')
    }

    /// Panic naming `what` and both outputs unless the command exited 0.
    pub fn ok(&self, what: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed: stdout {:?} stderr {:?}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The last JSON object line of stdout (the probe's report).
    pub fn probe(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no probe output: {self:?}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("probe json {line:?}: {e}"))
    }
}

/// Run `cmd` (already prefixed with `timeout`) with stdin from /dev/null, capturing output.
fn capture(cmd: &mut Command) -> Out {
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    if o.status.code() == Some(124) {
        stderr.insert_str(0, &format!("[timed out after {COMMAND_TIMEOUT_SECS}s] "));
    }
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr,
    }
}

/// `timeout -k 5 SECS PROGRAM` as a command to add arguments to.
fn timed(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("timeout");
    c.args(["-k", "5", &COMMAND_TIMEOUT_SECS.to_string()])
        .arg(program);
    c
}

/// The OCI image the client tests run: where it is and how clients name it.
#[derive(Debug, Clone)]
pub struct Image {
    /// The oci-archive (a tar of the OCI layout).
    pub archive: PathBuf,
    /// The name `ctr images import` gives it (the `io.containerd.image.name` annotation).
    pub name: String,
    /// The config digest's hex: podman's image id.
    pub id: String,
}

fn sha256_file(path: &Path) -> String {
    let o = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum (coreutils)");
    assert!(o.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string()
}

/// GNU tar flags for a reproducible archive: sorted names, fixed mtime, root owner, no atime.
const REPRODUCIBLE_TAR: &[&str] = &[
    "--sort=name",
    "--mtime=@0",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--format=posix",
    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
];

fn tar_dir(src: &Path, out: &Path) {
    let mut names: Vec<String> = fs::read_dir(src)
        .unwrap_or_else(|e| panic!("read {}: {e}", src.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    let o = Command::new("tar")
        .args(REPRODUCIBLE_TAR)
        .arg("-C")
        .arg(src)
        .arg("-cf")
        .arg(out)
        .arg("--")
        .args(&names)
        .output()
        .expect("run GNU tar");
    assert!(
        o.status.success(),
        "tar {}: {}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn put_blob(layout: &Path, bytes_file: &Path) -> (String, u64) {
    let hex = sha256_file(bytes_file);
    let size = fs::metadata(bytes_file).expect("blob size").len();
    fs::copy(bytes_file, layout.join("blobs/sha256").join(&hex)).expect("store blob");
    (format!("sha256:{hex}"), size)
}

fn put_json(layout: &Path, work: &Path, name: &str, v: &Value) -> (String, u64) {
    let path = work.join(name);
    fs::write(&path, serde_json::to_vec(v).expect("json")).expect("write json");
    put_blob(layout, &path)
}

/// Build the busybox + probe image under `dir` (`dir/image` layout, `dir/image.tar` archive).
/// Rootfs: [`crate::rootfs::busybox`] (busybox with applet links, `/probe`, passwd, group).
pub fn busybox_image(dir: &Path) -> Image {
    let work = dir.join("image-work");
    let rootfs = work.join("rootfs");
    crate::rootfs::busybox(&rootfs);
    let layer = work.join("layer.tar");
    tar_dir(&rootfs, &layer);
    let layout = dir.join("image");
    fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir layout");
    let (layer_digest, layer_size) = put_blob(&layout, &layer);
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/"
        },
        // uncompressed layer: its digest is its diff id
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "berth-tests busybox_image"}]
    });
    let (config_digest, config_size) = put_json(&layout, &work, "config.json", &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}]
    });
    let (manifest_digest, manifest_size) = put_json(&layout, &work, "manifest.json", &manifest);
    let name = "localhost/bt-busybox:latest".to_string();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "org.opencontainers.image.ref.name": "latest",
                "io.containerd.image.name": name
            }
        }]
    });
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("write index.json");
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write oci-layout");
    let archive = dir.join("image.tar");
    tar_dir(&layout, &archive);
    fs::remove_dir_all(&work).expect("remove image work dir");
    Image {
        archive,
        name,
        id: config_digest.trim_start_matches("sha256:").to_string(),
    }
}

/// Kill (SIGKILL) every process whose command line names `dir` (conmon, shims, client
/// helpers), a few rounds, since killing a parent can briefly leave a child behind.
pub fn kill_processes_naming(dir: &Path) {
    let needle = dir.display().to_string();
    let me = std::process::id();
    for _ in 0..3 {
        let pids = processes_naming(&needle, me);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill(2) with a pid read from /proc; a recycled or gone pid only
            // makes the call fail with ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pids (not ours) whose command line contains `needle`.
pub fn processes_naming(needle: &str, me: u32) -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| u32::try_from(*pid).is_ok_and(|p| p != me))
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .contains(needle)
            })
        })
        .collect()
}

/// Every cgroup directory `/<name>` in the host's hierarchies (v1 controllers and unified).
pub fn cgroup_parents(name: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = Vec::new();
    if base.join(name).is_dir() {
        dirs.push(base.join(name));
    }
    if let Ok(rd) = fs::read_dir(base) {
        for e in rd.flatten() {
            let d = e.path().join(name);
            if d.is_dir() {
                dirs.push(d);
            }
        }
    }
    dirs
}

/// Directories below `dir` (not `dir` itself), any depth.
pub fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path());
                out.extend(subdirs(&e.path()));
            }
        }
    }
    out
}

/// Kill every process in the cgroup parent `/<name>` (all hierarchies), thaw frozen
/// cgroups so the kills land, then remove the directories deepest first.
pub fn remove_cgroup_tree(name: &str) -> Result<(), String> {
    for parent in cgroup_parents(name) {
        let mut dirs = subdirs(&parent);
        dirs.push(parent.clone());
        for d in &dirs {
            if d.join("freezer.state").exists() {
                let _ = fs::write(d.join("freezer.state"), "THAWED");
            }
            if d.join("cgroup.freeze").exists() {
                let _ = fs::write(d.join("cgroup.freeze"), "0");
            }
            for pid in fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
            {
                // SAFETY: kill(2) on a pid listed in a test cgroup; ESRCH is harmless.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    // killed processes leave their cgroups asynchronously
    for _ in 0..50 {
        remove_cgroup_parent(name);
        if cgroup_parents(name).is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("cgroups left: {:?}", cgroup_parents(name)))
}

/// Mount points (from `mountinfo` text) at or below `dir`.
pub fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// A host file's content, trimmed; panics naming the file when unreadable.
pub fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Whether this process has CAP_SYS_RESOURCE (some sandboxes run root without it).
fn have_cap_sys_resource() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps >> 24 & 1 == 1)
}

fn hard_limit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit we own.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_max
}

/// Where containers/image keeps root's blob-info cache, and its parents: the deepest one that
/// exists is hidden while podman loads the image.
const BLOB_INFO_CACHE: [&str; 2] = ["/var/lib/containers/cache", "/var/lib/containers"];

/// One podman whose every file lives in the test's directory.
pub struct Podman {
    /// The unique test name: also the cgroup parent `/<name>`.
    pub name: String,
    /// The test directory (under the temp dir).
    pub dir: PathBuf,
    /// berth-runtime's own `--root` (through the wrapper).
    pub rtroot: PathBuf,
    /// The image, loaded.
    pub image: Image,
    wrapper: PathBuf,
    /// `--ulimit` flags that keep podman's default rlimits within what this process may set.
    ulimit_flags: Vec<String>,
    cleanup: Cleanup,
}

impl Podman {
    /// Set up a private podman for berth-runtime named after `role` and load the image.
    pub fn new(role: &str) -> Self {
        let runtime = crate::env::bin_path("berth-runtime");
        let name = unique(role);
        let dir = crate::env::test_dir(&name);
        let mut cleanup = Cleanup::new();
        {
            let (dir, name) = (dir.clone(), name.clone());
            cleanup.defer(format!("podman test dir {}", dir.display()), move || {
                kill_processes_naming(&dir);
                let cg = remove_cgroup_tree(&name);
                unmount_below(&dir);
                let rm = fs::remove_dir_all(&dir).map_err(|e| format!("remove: {e}"));
                cg.and(rm)
            });
        }
        for d in [
            "root", "runroot", "tmp", "net", "rtroot", "vartmp", "events", "bin",
        ] {
            fs::create_dir_all(dir.join(d)).expect("mkdir podman dirs");
        }
        let rtroot = dir.join("rtroot");
        let wrapper = dir.join("bin/berth-runtime");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec '{}' --root '{}' \"$@\"\n",
                runtime.display(),
                rtroot.display()
            ),
        )
        .expect("write runtime wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
        // Without CAP_SYS_RESOURCE podman's default rlimits (1048576) cannot be set: pin them
        // to this process's hard limits (`--ulimit` replaces the defaults, so tests repeat it).
        let (mut ulimits, mut ulimit_flags) = (String::new(), Vec::new());
        if !have_cap_sys_resource() {
            let nofile = hard_limit(libc::RLIMIT_NOFILE).min(1_048_576);
            let nproc = hard_limit(libc::RLIMIT_NPROC).min(32_768);
            ulimits = format!(
                "default_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]"
            );
            ulimit_flags = vec![
                "--ulimit".into(),
                format!("nofile={nofile}:{nofile}"),
                "--ulimit".into(),
                format!("nproc={nproc}:{nproc}"),
            ];
        }
        let d = dir.display();
        fs::write(
            dir.join("containers.conf"),
            format!(
                r#"[containers]
netns = "none"
log_driver = "k8s-file"
default_sysctls = []
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
  "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
{ulimits}
[network]
network_backend = "cni"
network_config_dir = "{d}/net"
default_network = "bt-unused"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events/events.log"
tmp_dir = "{d}/tmp"
lock_type = "file"
num_locks = 128
volume_path = "{d}/root/volumes"
runtime = "berth-runtime"
runtime_supports_json = ["crun", "runc", "berth-runtime"]
[engine.runtimes]
berth-runtime = ["{w}"]
"#,
                w = wrapper.display()
            ),
        )
        .expect("write containers.conf");
        fs::write(
            dir.join("storage.conf"),
            format!("[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n"),
        )
        .expect("write storage.conf");
        fs::write(
            dir.join("registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .expect("write registries.conf");
        fs::write(
            dir.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("write policy.json");
        {
            // Runs before the directory step: remove containers while podman can still
            // unmount their storage.
            let p = Podman::command_for(&dir, &wrapper, None);
            let dir2 = dir.clone();
            cleanup.defer("podman containers", move || {
                let mut c = p;
                c.args(["rm", "-af", "-t", "0"]).current_dir(&dir2);
                run_quiet(&mut c, |_| false)
            });
        }
        let image = busybox_image(&dir);
        let pm = Podman {
            name,
            dir,
            rtroot,
            image,
            wrapper,
            ulimit_flags,
            cleanup,
        };
        // podman 4.3 (containers/image) keeps a blob-info cache at /var/lib/containers/cache
        // for root whatever the storage config says: load in a private mount namespace where
        // that place is an empty tmpfs, so the host's file is not written.
        let hide = BLOB_INFO_CACHE
            .iter()
            .map(Path::new)
            .find(|p| p.is_dir())
            .unwrap_or(Path::new("/var/lib"));
        let mut load = Podman::command_for(&pm.dir, &pm.wrapper, Some(hide));
        load.args(["load", "--signature-policy"])
            .arg(pm.dir.join("policy.json"))
            .arg("-i")
            .arg(&pm.image.archive);
        capture(&mut load).ok("podman load");
        pm
    }

    /// `timeout … podman` with the private globals and environment (no arguments yet). With
    /// `hide`, podman runs in a private mount namespace with an empty tmpfs over `hide`.
    fn command_for(dir: &Path, wrapper: &Path, hide: Option<&Path>) -> Command {
        let mut c = match hide {
            None => timed("podman"),
            Some(hide) => {
                let mut c = timed("unshare");
                c.args(["-m", "--propagation", "private", "sh", "-c"])
                    .arg(r#"mount -n -t tmpfs -o size=16m,mode=0700 bt-podman-cache "$1" && shift && exec "$@""#)
                    .arg("sh")
                    .arg(hide)
                    .arg("podman");
                c
            }
        };
        c.arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("runroot"))
            .arg("--tmpdir")
            .arg(dir.join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .arg("--network-config-dir")
            .arg(dir.join("net"))
            .arg("--volumepath")
            .arg(dir.join("root/volumes"))
            .arg("--runtime")
            .arg(wrapper)
            .env("CONTAINERS_CONF", dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", dir.join("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
            .env("TMPDIR", dir.join("vartmp"))
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
            .env("XDG_DATA_HOME", dir.join("xdg-data"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION")
            .env_remove("DOCKER_HOST")
            // conmon drops files (an "oom" marker) into the working directory it inherits
            .current_dir(dir);
        c
    }

    /// Run `podman ARGS` with the private setup; stdin is /dev/null.
    pub fn podman<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Podman::command_for(&self.dir, &self.wrapper, None);
        c.args(args);
        capture(&mut c)
    }

    /// Flags every container gets: no network, the private cgroup parent, no pulls, and the
    /// pinned rlimits where needed.
    pub fn container_flags(&self) -> Vec<String> {
        let mut f = vec![
            "--network".to_string(),
            "none".into(),
            "--cgroup-parent".into(),
            format!("/{}", self.name),
            "--pull".into(),
            "never".into(),
        ];
        f.extend(self.ulimit_flags.iter().cloned());
        f
    }

    /// `podman run --rm FLAGS… IMAGE CMD…` (plus [`Self::container_flags`]).
    pub fn run_rm(&self, flags: &[&str], cmd: &[&str]) -> Out {
        let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
        args.extend(self.container_flags());
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(self.image.id.clone());
        args.extend(cmd.iter().map(|s| s.to_string()));
        self.podman(&args)
    }

    /// `podman run -d --name NAME FLAGS… IMAGE CMD…`; returns the container id.
    pub fn run_detached(&self, name: &str, flags: &[&str], cmd: &[&str]) -> String {
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.into()];
        args.extend(self.container_flags());
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(self.image.id.clone());
        args.extend(cmd.iter().map(|s| s.to_string()));
        let o = self.podman(&args);
        o.ok(&format!("podman run -d {name}"));
        o.text().to_string()
    }

    /// `podman inspect --format F NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let o = self.podman(["inspect", "--format", format, name]);
        o.ok(&format!("podman inspect {name}"));
        o.text().to_string()
    }

    /// Entries left in berth-runtime's `--root`.
    pub fn runtime_state_left(&self) -> Vec<String> {
        fs::read_dir(&self.rtroot)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Container root filesystems still mounted (overlay `merged` dirs under the storage).
    pub fn rootfs_mounts_left(&self) -> Vec<String> {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        mounts_below(&info, &self.dir)
            .into_iter()
            .filter(|p| p.ends_with("/merged"))
            .collect()
    }

    /// Container cgroups (`libpod-*`) still present under the cgroup parent.
    pub fn container_cgroups_left(&self) -> Vec<PathBuf> {
        cgroup_parents(&self.name)
            .iter()
            .flat_map(|p| subdirs(p))
            .filter(|d| {
                d.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("libpod-"))
            })
            .collect()
    }

    /// Processes other than podman itself whose command line names the test dir (conmon,
    /// container processes started through the wrapper).
    pub fn processes_left(&self) -> Vec<String> {
        processes_naming(&self.dir.display().to_string(), std::process::id())
            .into_iter()
            .filter_map(|pid| {
                let c = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                Some(format!(
                    "{pid}: {}",
                    String::from_utf8_lossy(&c).replace('\0', " ")
                ))
            })
            .collect()
    }

    /// The host freezer state of a container (cgroup v1 freezer or cgroup v2 `cgroup.freeze`).
    pub fn freezer_state(&self, container_id: &str) -> String {
        let leaf = format!("libpod-{container_id}");
        let v1 = Path::new("/sys/fs/cgroup/freezer")
            .join(&self.name)
            .join(&leaf)
            .join("freezer.state");
        let v2 = Path::new("/sys/fs/cgroup")
            .join(&self.name)
            .join(&leaf)
            .join("cgroup.freeze");
        fs::read_to_string(&v1)
            .or_else(|_| {
                fs::read_to_string(&v2)
                    .map(|s| if s.trim() == "1" { "FROZEN" } else { "THAWED" }.to_string())
            })
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("unreadable ({}: {e})", v1.display()))
    }

    /// Run cleanup now (the test then checks the host).
    pub fn cleanup_now(&mut self) -> Vec<String> {
        self.cleanup.run_now()
    }
}

/// One containerd, private to the test, in its own mount namespace.
pub struct Containerd {
    /// The unique test name: the containerd namespace and so the cgroup parent `/<name>`.
    pub ns: String,
    /// The test directory.
    pub dir: PathBuf,
    /// berth-runtime's `--root` (`--runc-root`).
    pub rtroot: PathBuf,
    /// The berth-runtime binary (`--runc-binary`, the shim's `BinaryName`).
    pub runtime: PathBuf,
    /// The image, imported.
    pub image: Image,
    /// containerd's pid (also the holder of the private mount namespace).
    pub pid: i32,
    child: Rc<RefCell<Option<Child>>>,
    cleanup: Cleanup,
}

impl Containerd {
    /// Start a private containerd named after `role` and import the image.
    pub fn new(role: &str) -> Self {
        let runtime = crate::env::bin_path("berth-runtime");
        let ns = unique(role);
        let dir = crate::env::test_dir(&ns);
        let mut cleanup = Cleanup::new();
        {
            let (dir, ns) = (dir.clone(), ns.clone());
            cleanup.defer(
                format!("containerd test dir {}", dir.display()),
                move || {
                    kill_processes_naming(&dir);
                    let cg = remove_cgroup_tree(&ns);
                    unmount_below(&dir);
                    let rm = fs::remove_dir_all(&dir).map_err(|e| format!("remove: {e}"));
                    cg.and(rm)
                },
            );
        }
        for d in ["root", "state", "tmp", "rtroot"] {
            fs::create_dir_all(dir.join(d)).expect("mkdir containerd dirs");
        }
        let d = dir.display();
        let config = dir.join("config.toml");
        fs::write(
            &config,
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
temp = "{d}/tmp"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
"#
            ),
        )
        .expect("write containerd config");
        let log = fs::File::create(dir.join("containerd.log")).expect("containerd.log");
        // unshare execs sh, sh execs containerd: the child's pid is containerd's.
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -n -t tmpfs -o mode=0755,size=64m bt-ctr-run /run && exec containerd --config \"$1\"")
            .arg("sh")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .current_dir(&dir)
            .spawn()
            .expect("spawn unshare + containerd");
        let pid = i32::try_from(child.id()).expect("pid");
        let child = Rc::new(RefCell::new(Some(child)));
        {
            let child = child.clone();
            cleanup.defer(format!("containerd pid {pid}"), move || {
                stop_child(&child, Duration::from_secs(5));
                Ok(())
            });
        }
        let mut c = Containerd {
            ns,
            rtroot: dir.join("rtroot"),
            dir,
            runtime,
            image: Image {
                archive: PathBuf::new(),
                name: String::new(),
                id: String::new(),
            },
            pid,
            child,
            cleanup,
        };
        let sock = c.dir.join("containerd.sock");
        wait_until(Duration::from_secs(20), "containerd to answer", || {
            let exited = c
                .child
                .borrow_mut()
                .as_mut()
                .is_some_and(|ch| ch.try_wait().ok().flatten().is_some());
            assert!(
                !exited,
                "containerd exited: {}",
                fs::read_to_string(c.dir.join("containerd.log")).unwrap_or_default()
            );
            (sock.exists() && c.ctr(["version"]).code == Some(0)).then_some(())
        });
        {
            // Runs before containerd stops: kill and delete tasks and containers.
            let (dir, ns, pid) = (c.dir.clone(), c.ns.clone(), c.pid);
            c.cleanup.defer("containerd tasks and containers", move || {
                let ctr = |args: &[&str]| capture(&mut ctr_command(&dir, &ns, pid, args));
                let tasks = ctr(&["tasks", "ls", "-q"]);
                for id in tasks.stdout.lines() {
                    ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id]);
                }
                for id in tasks.stdout.lines() {
                    ctr(&["tasks", "rm", "-f", id]);
                }
                for id in ctr(&["containers", "ls", "-q"]).stdout.lines() {
                    ctr(&["containers", "rm", id]);
                }
                Ok(())
            });
        }
        c.image = busybox_image(&c.dir);
        c.ctr([
            "images".as_ref(),
            "import".as_ref(),
            c.image.archive.as_os_str(),
        ])
        .ok("ctr images import");
        let listed = c.ctr(["images", "ls", "-q"]);
        assert!(
            listed.stdout.lines().any(|l| l == c.image.name),
            "{} missing after import: {listed:?}",
            c.image.name
        );
        c
    }

    /// Run `ctr --address … --namespace NS ARGS` inside containerd's mount namespace.
    pub fn ctr<I, S>(&self, args: I) -> Out
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let args: Vec<std::ffi::OsString> = args
            .into_iter()
            .map(|a| a.as_ref().to_os_string())
            .collect();
        capture(&mut ctr_command(&self.dir, &self.ns, self.pid, &args))
    }

    /// The `ctr run` flags that select the runc v2 shim with berth-runtime as its binary and
    /// the runtime's private root.
    pub fn runtime_flags(&self) -> Vec<String> {
        vec![
            "--runtime".into(),
            "io.containerd.runc.v2".into(),
            "--runc-binary".into(),
            self.runtime.display().to_string(),
            "--runc-root".into(),
            self.rtroot.display().to_string(),
        ]
    }

    /// `ctr run --rm FLAGS… IMAGE ID CMD…`.
    pub fn run_rm(&self, id: &str, flags: &[&str], cmd: &[&str]) -> Out {
        let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
        args.extend(self.runtime_flags());
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(self.image.name.clone());
        args.push(id.into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        self.ctr(&args)
    }

    /// `ctr run -d --null-io FLAGS… IMAGE ID CMD…`, then wait for RUNNING.
    pub fn run_detached(&self, id: &str, flags: &[&str], cmd: &[&str]) {
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--null-io".into()];
        args.extend(self.runtime_flags());
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(self.image.name.clone());
        args.push(id.into());
        args.extend(cmd.iter().map(|s| s.to_string()));
        self.ctr(&args).ok(&format!("ctr run -d {id}"));
        wait_until(
            Duration::from_secs(20),
            &format!("task {id} RUNNING"),
            || (self.task(id).map(|t| t.1) == Some("RUNNING".into())).then_some(()),
        );
    }

    /// `(pid, status)` of a task from `ctr tasks ls`, if listed.
    pub fn task(&self, id: &str) -> Option<(i32, String)> {
        let o = self.ctr(["tasks", "ls"]);
        o.stdout.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first() != Some(&id) {
                return None;
            }
            Some((f.get(1)?.parse().ok()?, f.get(2)?.to_string()))
        })
    }

    /// A cgroup v1 file of container `id` on the host: `/sys/fs/cgroup/CTRL/NS/ID/FILE`.
    pub fn cgroup_file(&self, controller: &str, id: &str, file: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(&self.ns)
            .join(id)
            .join(file)
    }

    /// The memory limit of container `id` as the host's cgroup files hold it (v1
    /// `memory.limit_in_bytes`, else v2 `memory.max`).
    pub fn memory_limit(&self, id: &str) -> String {
        let v1 = self.cgroup_file("memory", id, "memory.limit_in_bytes");
        let path = if Path::new("/sys/fs/cgroup/memory").is_dir() {
            v1
        } else {
            Path::new("/sys/fs/cgroup")
                .join(&self.ns)
                .join(id)
                .join("memory.max")
        };
        read_trimmed(&path)
    }

    /// `FROZEN` or `THAWED`: the freezer of container `id` on the host (v1 `freezer.state`,
    /// else v2 `cgroup.freeze`).
    pub fn freezer_state(&self, id: &str) -> String {
        if Path::new("/sys/fs/cgroup/freezer").is_dir() {
            read_trimmed(&self.cgroup_file("freezer", id, "freezer.state"))
        } else {
            let v2 = Path::new("/sys/fs/cgroup")
                .join(&self.ns)
                .join(id)
                .join("cgroup.freeze");
            if read_trimmed(&v2) == "1" {
                "FROZEN"
            } else {
                "THAWED"
            }
            .to_string()
        }
    }

    /// Mounts at or below the test dir as containerd sees them (its private namespace).
    pub fn mounts_left(&self) -> Vec<String> {
        let info = fs::read_to_string(format!("/proc/{}/mountinfo", self.pid)).unwrap_or_default();
        mounts_below(&info, &self.dir)
    }

    /// Stop containerd with SIGTERM (SIGKILL after `grace`); whether it exited on SIGTERM.
    pub fn stop(&self, grace: Duration) -> bool {
        stop_child(&self.child, grace)
    }

    /// Run cleanup now (the test then checks the host).
    pub fn cleanup_now(&mut self) -> Vec<String> {
        self.cleanup.run_now()
    }
}

fn ctr_command<S: AsRef<std::ffi::OsStr>>(dir: &Path, ns: &str, pid: i32, args: &[S]) -> Command {
    let mut c = timed("nsenter");
    c.arg(format!("--mount=/proc/{pid}/ns/mnt"))
        .args(["--", "ctr", "--address"])
        .arg(dir.join("containerd.sock"))
        .args(["--namespace", ns])
        .args(args)
        .current_dir(dir);
    c
}

/// SIGTERM the child, wait up to `grace`, then SIGKILL; reap it. Whether SIGTERM sufficed.
fn stop_child(child: &Rc<RefCell<Option<Child>>>, grace: Duration) -> bool {
    let Some(mut ch) = child.borrow_mut().take() else {
        return true;
    };
    if ch.try_wait().ok().flatten().is_some() {
        return true;
    }
    let pid = i32::try_from(ch.id()).unwrap_or(0);
    // SAFETY: kill(2) on our own unreaped child: its pid cannot have been recycled.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if ch.try_wait().ok().flatten().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = ch.kill();
    let _ = ch.wait();
    false
}
