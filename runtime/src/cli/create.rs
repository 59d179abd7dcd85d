//! `create`: validate everything, then build the container; init is left blocked on the exec
//! fifo. On any failure everything made so far is undone (state dir, cgroup, init).

use super::Ctx;
use crate::container::{ContainerDir, ContainerId, Record};
use crate::error::RuntimeError;
use crate::hooks::{self, HookState};
use crate::process::init::{self, InitArgs};
use crate::process::sync::{self, FromInit, ToInit};
use crate::rollback::Rollback;
use crate::sys::clone::{clone_process, Cloned};
use crate::{namespaces, spec, sys};
use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// `create` flags (runc's names).
#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Bundle directory (default: the current directory).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the init's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3) to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id.
    pub id: String,
}

/// Create the container; returns its init pid.
pub fn run(ctx: &Ctx, a: &CreateArgs) -> Result<Pid, RuntimeError> {
    let (_dir, record) = create(ctx, a)?;
    Ok(Pid::from_raw(record.pid))
}

/// Everything checked before anything is created.
struct Prepared {
    spec: Spec,
    bundle: PathBuf,
    rootfs: PathBuf,
    plan: namespaces::Plan,
    joins: Vec<(namespaces::Join, std::os::fd::OwnedFd)>,
    layout: berth_cgroups::Layout,
    cgroup_path: PathBuf,
    security: crate::process::security::ProcessSecurity,
}

fn prepare(id: &ContainerId, a: &CreateArgs) -> Result<Prepared, RuntimeError> {
    let bundle = std::fs::canonicalize(&a.bundle)
        .map_err(|e| RuntimeError::io("open bundle", &a.bundle, e))?;
    let spec = spec::load(&bundle)?;
    spec::validate(&spec)?;
    let rootfs = spec::rootfs(&bundle, &spec)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let process = spec.process().clone().unwrap_or_default();
    let plan = namespaces::plan(&linux.namespaces().clone().unwrap_or_default());
    let layout = berth_cgroups::detect().map_err(RuntimeError::Cgroup)?;
    let cgroup_path = berth_cgroups::cgroup_path(linux.cgroups_path().as_deref(), id.as_str())
        .map_err(RuntimeError::Cgroup)?;
    if let Some(res) = linux.resources() {
        berth_cgroups::validate(res, &layout).map_err(RuntimeError::Cgroup)?;
    }
    let security =
        crate::process::security::prepare(&linux, &process, a.console_socket.as_deref())?;
    let joins = namespaces::open_joins(&plan)?;
    Ok(Prepared {
        spec,
        bundle,
        rootfs,
        plan,
        joins,
        layout,
        cgroup_path,
        security,
    })
}

/// Create the container and return its locked directory and record.
pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<(ContainerDir, Record), RuntimeError> {
    let id = ContainerId::new(&a.id)?;
    let p = prepare(&id, a)?;
    let dir = ContainerDir::create(&ctx.root, &id)?;
    let mut rb = Rollback::default();
    let dir_path = dir.path.clone();
    rb.on_failure("remove state dir", move || {
        std::fs::remove_dir_all(&dir_path).map_err(|e| e.to_string())
    });
    nix::unistd::mkfifo(&dir.fifo(), nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| RuntimeError::sys("mkfifo", dir.fifo().display().to_string(), e))?;
    // Init may run as another user (or as root of a user namespace) when it opens the fifo
    // for writing: the mode must survive the umask.
    std::fs::set_permissions(
        dir.fifo(),
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .map_err(|e| RuntimeError::io("chmod", dir.fifo(), e))?;
    let (ours, theirs) =
        sync::pair().map_err(|e| RuntimeError::sys("socketpair", "sync channel", e))?;
    if let Some(path) = &p.plan.join_pid {
        join_pid_namespace(path)?;
    }
    let has_own_pidns = p.plan.has_pidns;
    let (rootfs, bundle, cgroup_path) = (p.rootfs.clone(), p.bundle.clone(), p.cgroup_path.clone());
    let (spec, plan_new_user) = (p.spec.clone(), p.plan.new_user);
    let cg = berth_cgroups::manager(&p.layout, &p.cgroup_path);
    let layout = p.layout.clone();
    let args = InitArgs {
        id: id.to_string(),
        spec: p.spec,
        bundle: p.bundle,
        rootfs: p.rootfs,
        plan: p.plan,
        joins: p.joins,
        sync: theirs,
        fifo: dir.fifo(),
        console: p.security.console,
        preserve_fds: a.preserve_fds,
        seccomp: p.security.seccomp,
        caps: p.security.caps,
        rlimits: p.security.rlimits,
        cgroup_path: p.cgroup_path,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
    };
    let clone_flags = args.plan.clone_flags;
    // Init is cloned before its cgroup exists: it makes its namespaces and mounts while the
    // runtime makes the cgroup, and waits for Proceed before anything that shows the cgroup
    // (init.rs). Without a user namespace that overlap is most of `create`'s kernel work.
    // SAFETY: berth-runtime is single-threaded (it never starts a thread).
    let pid = match unsafe { clone_process(clone_flags) }
        .map_err(|e| RuntimeError::sys("clone", "container init", e))?
    {
        Cloned::Child => {
            // The lock belongs to the runtime; init must not keep the container locked.
            dir.forget_lock_in_child();
            drop(ours);
            init::main(args)
        }
        Cloned::Parent(pid) => pid,
    };
    drop(args);
    rb.on_failure("kill init", move || {
        let _ = kill(pid, Signal::SIGKILL);
        match waitpid(pid, None) {
            // Already reaped by the cgroup's rollback, which needed it gone.
            Ok(_) | Err(nix::errno::Errno::ECHILD) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    });
    let placed = place_init(
        cg.as_ref(),
        &layout,
        &cgroup_path,
        pid,
        &spec,
        plan_new_user,
        &mut rb,
    );
    if let Err(e) = placed.and_then(|()| {
        ours.send(&ToInit::Proceed)
            .map_err(|reason| RuntimeError::Sync { reason })
    }) {
        // Init may have failed first (a mount, say) and said why: that is the error.
        return Err(match ours.try_recv::<FromInit>() {
            Ok(Some(FromInit::Failed { message })) => RuntimeError::Init { message },
            _ => e,
        });
    }
    wait_ready(&ours, pid, &spec, &id, &bundle)?;
    crate::log::debug(&format!(
        "create {id}: init {pid} is ready in cgroup {}",
        cgroup_path.display()
    ));
    let record = Record {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        pid: pid.as_raw(),
        pid_start_time: sys::proc::stat(pid.as_raw())
            .map(|s| s.start_time)
            .map_err(|e| RuntimeError::io("read", format!("/proc/{pid}/stat"), e))?,
        bundle,
        rootfs,
        created: sys::time::now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup_path: cgroup_path.display().to_string(),
        has_own_pidns,
        started: false,
    };
    dir.save_config(&spec)?;
    dir.save(&record)?;
    if let Some(pf) = &a.pid_file {
        write_pid_file(pf, pid)?;
    }
    rb.commit();
    Ok((dir, record))
}

/// Init's cgroup, made and filled while init sets up its namespaces: created (and on
/// failure removed, once init is gone), limits applied, id maps written, init moved in.
fn place_init(
    cg: &dyn berth_cgroups::CgroupManager,
    layout: &berth_cgroups::Layout,
    cgroup_path: &Path,
    pid: Pid,
    spec: &Spec,
    new_user: bool,
    rb: &mut Rollback,
) -> Result<(), RuntimeError> {
    let existed = cg.exists();
    cg.create().map_err(RuntimeError::Cgroup)?;
    if !existed {
        let made = berth_cgroups::manager(layout, cgroup_path);
        rb.on_failure("remove cgroup", move || {
            // A cgroup with a process in it cannot be removed: init goes first.
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            made.remove().map_err(|e| e.to_string())
        });
    }
    if let Some(res) = crate::devices_cgroup::effective_resources(spec) {
        cg.apply(&res).map_err(RuntimeError::Cgroup)?;
    }
    if new_user {
        write_id_maps(pid, spec)?;
    }
    cg.add_task(pid.as_raw()).map_err(RuntimeError::Cgroup)?;
    sys::attach_warmup::reap();
    if let Some(score) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), score.to_string())
            .map_err(|e| RuntimeError::spec("process.oomScoreAdj", format!("set {score}: {e}")))?;
    }
    Ok(())
}

fn wait_ready(
    ch: &sync::Channel,
    pid: Pid,
    spec: &Spec,
    id: &ContainerId,
    bundle: &Path,
) -> Result<(), RuntimeError> {
    loop {
        match ch
            .recv::<FromInit>()
            .map_err(|reason| RuntimeError::Sync { reason })?
        {
            Some(FromInit::Ready) => return Ok(()),
            Some(FromInit::Failed { message }) => return Err(RuntimeError::Init { message }),
            Some(FromInit::RunHooks) => {
                let state = HookState {
                    oci_version: spec.version().clone(),
                    id: id.to_string(),
                    status: "creating".into(),
                    pid: Some(pid.as_raw()),
                    bundle: bundle.to_path_buf(),
                    annotations: spec.annotations().clone().unwrap_or_default(),
                };
                let h = spec.hooks().clone().unwrap_or_default();
                #[allow(deprecated)]
                let prestart = h.prestart().clone().unwrap_or_default();
                for (kind, list) in [
                    ("prestart", prestart),
                    (
                        "createRuntime",
                        h.create_runtime().clone().unwrap_or_default(),
                    ),
                ] {
                    hooks::run_all(&list, &state).map_err(|f| RuntimeError::Hook {
                        kind,
                        path: f.path,
                        reason: f.reason,
                    })?;
                }
                ch.send(&ToInit::HooksDone)
                    .map_err(|reason| RuntimeError::Sync { reason })?;
            }
            None => {
                let status = waitpid(pid, None)
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_else(|e| e.to_string());
                return Err(RuntimeError::InitDied { status });
            }
        }
    }
}

fn join_pid_namespace(path: &Path) -> Result<(), RuntimeError> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| RuntimeError::sys("open pid namespace", path.display().to_string(), e))?;
    // Only children enter the namespace: the runtime itself stays where it is.
    nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWPID)
        .map_err(|e| RuntimeError::sys("join pid namespace", path.display().to_string(), e))
}

fn write_id_maps(pid: Pid, spec: &Spec) -> Result<(), RuntimeError> {
    let linux = spec.linux().clone().unwrap_or_default();
    for (file, maps) in [
        ("uid_map", linux.uid_mappings().clone()),
        ("gid_map", linux.gid_mappings().clone()),
    ] {
        let text: String = maps
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect();
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| {
            RuntimeError::spec(
                format!(
                    "linux.{}",
                    if file == "uid_map" {
                        "uidMappings"
                    } else {
                        "gidMappings"
                    }
                ),
                format!("write {path}: {e}"),
            )
        })?;
    }
    Ok(())
}

/// Write the pid file atomically (conmon and containerd read it as soon as create returns).
pub fn write_pid_file(path: &Path, pid: Pid) -> Result<(), RuntimeError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let dir = abs.parent().unwrap_or(Path::new("/"));
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::container::state::write_atomic(dir, &name, pid.as_raw().to_string().as_bytes())
}
