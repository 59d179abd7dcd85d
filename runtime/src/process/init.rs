//! The container's init: the cloned child of `create`. It builds the container step by step,
//! reports Ready (or which step failed), blocks on the exec fifo until `start`, and execs.
//! Each line of [`setup`] is one named step.

use super::sync::{Channel, FromInit, ToInit};
use crate::capabilities::CapPlan;
use crate::hooks::{self, HookState};
use crate::namespaces::{self, Join, Plan};
use crate::rlimits::Limit;
use crate::{lsm, rootfs, sys, tty};
use libseccomp::ScmpFilterContext;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Everything init needs, prepared by the runtime before clone.
pub struct InitArgs {
    /// Container id.
    pub id: String,
    /// The validated spec.
    pub spec: Spec,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Rootfs (absolute).
    pub rootfs: PathBuf,
    /// Namespace plan.
    pub plan: Plan,
    /// Namespaces to join, opened.
    pub joins: Vec<(Join, OwnedFd)>,
    /// Init's end of the sync channel.
    pub sync: Channel,
    /// The exec fifo (host path, opened O_PATH before pivot_root).
    pub fifo: PathBuf,
    /// A connected console socket when process.terminal is set.
    pub console: Option<OwnedFd>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
    /// The compiled seccomp filter.
    pub seccomp: Option<ScmpFilterContext>,
    /// Capability sets.
    pub caps: Option<CapPlan>,
    /// Rlimits.
    pub rlimits: Vec<Limit>,
    /// The container's cgroup path.
    pub cgroup_path: PathBuf,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// `--no-new-keyring`.
    pub no_new_keyring: bool,
}

/// Init's entry point: never returns.
pub fn main(mut args: InitArgs) -> ! {
    let code = match setup(&mut args) {
        Ok(exec) => {
            let err = exec_now(&mut args, exec);
            // After `start` there is no runtime to report to: the container's stderr is it.
            eprintln!("berth-runtime init: {err}");
            127
        }
        Err(message) => {
            let _ = args.sync.send(&FromInit::Failed { message });
            1
        }
    };
    // SAFETY: _exit skips atexit handlers and stdio flushing that belong to the runtime process.
    unsafe { libc::_exit(code) }
}

/// What to execve once `start` releases init.
pub struct Exec {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    fifo_fd: OwnedFd,
}

fn setup(a: &mut InitArgs) -> Result<Exec, String> {
    sys::set_parent_death_signal(libc::SIGKILL);
    sys::set_not_dumpable();
    // In a new user namespace nothing can be done before the runtime has written the id
    // maps. Otherwise init makes its namespaces and mounts while the runtime makes its
    // cgroup, and waits for the runtime only where the cgroup matters (`in_cgroup`).
    let early = !a.plan.new_user;
    if !early {
        wait_for(&a.sync, ToInit::Proceed)?;
        become_root_in_userns()?;
    }
    namespaces::join_all(&a.joins)?;
    a.joins.clear();
    // A cgroup namespace is rooted at the cgroup its creator is in: it waits for the move.
    let cgroupns_later = early && a.plan.unshare.contains(CloneFlags::CLONE_NEWCGROUP);
    let unshare_now = if cgroupns_later {
        a.plan.unshare - CloneFlags::CLONE_NEWCGROUP
    } else {
        a.plan.unshare
    };
    if !unshare_now.is_empty() {
        nix::sched::unshare(unshare_now)
            .map_err(|e| format!("unshare namespaces {unshare_now:?}: {e}"))?;
    }
    if a.plan
        .unshare
        .contains(nix::sched::CloneFlags::CLONE_NEWNET)
        || a.plan
            .clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWNET)
    {
        sys::bring_up_loopback()
            .map_err(|e| format!("bring up lo in the new network namespace: {e}"))?;
    }
    if a.plan.new_time {
        enter_new_time_namespace(&a.spec)?;
    }
    set_names(&a.spec)?;
    write_sysctls(&a.spec)?;
    if !a.no_new_keyring {
        sys::join_new_session_keyring().map_err(|e| format!("join a new session keyring: {e}"))?;
    }
    let fifo_fd = nix::fcntl::open(
        &a.fifo,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open exec fifo {}: {e}", a.fifo.display()))?;
    let process = a
        .spec
        .process()
        .clone()
        .ok_or("config.json: process: missing")?;
    let has_cgroupns = a
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup)
        });
    let waiting = std::cell::Cell::new(early);
    let sync = &a.sync;
    let in_cgroup = || -> Result<(), String> {
        if waiting.replace(false) {
            wait_for(sync, ToInit::Proceed)?;
            if cgroupns_later {
                nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
                    .map_err(|e| format!("unshare cgroup namespace: {e}"))?;
            }
        }
        Ok(())
    };
    let setup = rootfs::Setup {
        spec: &a.spec,
        bundle: &a.bundle,
        rootfs: &a.rootfs,
        cgroup_path: &a.cgroup_path,
        has_cgroupns,
        in_userns: a.plan.new_user,
        no_pivot: a.no_pivot,
        in_cgroup: &in_cgroup,
    };
    let root = rootfs::prepare(&setup)?;
    // Hooks and everything after see the container in its cgroup.
    in_cgroup()?;
    root.resolve_or_create(process.cwd(), rootfs::resolve::Kind::Dir)?;
    let hooks = a.spec.hooks().clone().unwrap_or_default();
    if hooks.prestart().as_ref().is_some_and(|h| !h.is_empty())
        || hooks
            .create_runtime()
            .as_ref()
            .is_some_and(|h| !h.is_empty())
    {
        a.sync.send(&FromInit::RunHooks)?;
        wait_for(&a.sync, ToInit::HooksDone)?;
    }
    if let Some(list) = hooks.create_container().as_ref().filter(|h| !h.is_empty()) {
        hooks::run_all(list, &state(a, "created"))
            .map_err(|f| format!("createContainer hook {}: {}", f.path.display(), f.reason))?;
    }
    rootfs::finish(&setup, root)?;
    if process.terminal().unwrap_or(false) {
        let sock = a
            .console
            .take()
            .ok_or("process.terminal is set but no --console-socket was given")?;
        let size = process.console_size().as_ref().map(|b| {
            (
                u16::try_from(b.height()).unwrap_or(0),
                u16::try_from(b.width()).unwrap_or(0),
            )
        });
        tty::setup_console(&sock, size)?;
    }
    crate::rlimits::apply(&a.rlimits)?;
    if let Some(p) = a
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
    {
        crate::process_extras::set_personality(p)?;
    }
    if let Some(io) = process.io_priority() {
        crate::process_extras::set_io_priority(io)?;
    }
    let env = process.env().clone().unwrap_or_default();
    let args = process.args().clone().unwrap_or_default();
    let path = find_executable(&args[0], &env)?;
    apply_lsm_labels(&process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    if !nnp {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it before the drop.
        load_seccomp(a.seccomp.take())?;
    }
    change_identity(&process, a.caps.as_ref())?;
    if nnp {
        sys::set_no_new_privs().map_err(|e| format!("set no_new_privs: {e}"))?;
    }
    nix::unistd::chdir(process.cwd())
        .map_err(|e| format!("chdir to cwd {}: {e}", process.cwd().display()))?;
    check_cwd_inside()?;
    sys::cloexec_from(3 + a.preserve_fds).map_err(|e| format!("mark fds close-on-exec: {e}"))?;
    for fd in 3..3 + a.preserve_fds {
        sys::keep_on_exec(i32::try_from(fd).unwrap_or(-1));
    }
    let exec = Exec {
        path: cstring(&path.to_string_lossy())?,
        argv: args.iter().map(|s| cstring(s)).collect::<Result<_, _>>()?,
        env: env.iter().map(|s| cstring(s)).collect::<Result<_, _>>()?,
        fifo_fd,
    };
    // The runtime exits as soon as it reads Ready, and init must outlive it: stop the parent
    // death signal *before* saying Ready (after it, the parent may already be gone).
    sys::set_parent_death_signal(0);
    a.sync.send(&FromInit::Ready)?;
    Ok(exec)
}

/// Block on the fifo until `start`, run startContainer hooks, load a no_new_privs seccomp
/// filter as late as possible, and exec. Returns only on failure.
fn exec_now(a: &mut InitArgs, exec: Exec) -> String {
    let fifo = format!("/proc/self/fd/{}", exec.fifo_fd.as_raw_fd());
    // Opening blocks until `start` opens the other end; the byte is written only after the
    // startContainer hooks ran, so that `start` (and its poststart hooks) come after them.
    let mut released = match std::fs::OpenOptions::new().write(true).open(&fifo) {
        Ok(f) => f,
        Err(e) => return format!("open exec fifo: {e}"),
    };
    drop(exec.fifo_fd);
    let hooks = a.spec.hooks().clone().unwrap_or_default();
    if let Some(list) = hooks.start_container().as_ref().filter(|h| !h.is_empty()) {
        if let Err(f) = hooks::run_all(list, &state(a, "running")) {
            return format!("startContainer hook {}: {}", f.path.display(), f.reason);
        }
    }
    if let Err(e) = std::io::Write::write_all(&mut released, b"0") {
        return format!("write exec fifo: {e}");
    }
    drop(released);
    if let Err(e) = load_seccomp(a.seccomp.take()) {
        return e;
    }
    match nix::unistd::execve(&exec.path, &exec.argv, &exec.env) {
        Err(e) => format!("exec {:?}: {e}", exec.path),
        Ok(never) => match never {},
    }
}

fn state(a: &InitArgs, status: &str) -> HookState {
    HookState {
        oci_version: a.spec.version().clone(),
        id: a.id.clone(),
        status: status.into(),
        pid: Some(std::process::id() as i32),
        bundle: a.bundle.clone(),
        annotations: a.spec.annotations().clone().unwrap_or_default(),
    }
}

fn wait_for(sync: &Channel, want: ToInit) -> Result<(), String> {
    match sync.recv::<ToInit>()? {
        Some(got) if got == want => Ok(()),
        Some(got) => Err(format!("sync: expected {want:?}, got {got:?}")),
        None => Err("sync: the runtime went away".into()),
    }
}

fn become_root_in_userns() -> Result<(), String> {
    nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
        .map_err(|e| format!("setresgid 0 in the user namespace: {e}"))?;
    nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
        .map_err(|e| format!("setresuid 0 in the user namespace: {e}"))
}

fn enter_new_time_namespace(spec: &Spec) -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
        libc::CLONE_NEWTIME,
    ))
    .map_err(|e| format!("unshare time namespace: {e}"))?;
    if let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) {
        let mut text = String::new();
        for (clock, off) in offsets {
            text.push_str(&format!(
                "{clock} {} {}\n",
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0)
            ));
        }
        std::fs::write("/proc/self/timens_offsets", text)
            .map_err(|e| format!("write time offsets: {e}"))?;
    }
    let fd = nix::fcntl::open(
        "/proc/self/ns/time_for_children",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open time_for_children: {e}"))?;
    nix::sched::setns(
        fd,
        nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    )
    .map_err(|e| format!("enter time namespace: {e}"))
}

fn set_names(spec: &Spec) -> Result<(), String> {
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| format!("sethostname {h:?}: {e}"))?;
    }
    if let Some(d) = spec.domainname() {
        let c = cstring(d)?;
        // SAFETY: setdomainname reads `len` bytes of a NUL-terminated string that outlives it.
        if unsafe { libc::setdomainname(c.as_ptr(), d.len()) } != 0 {
            return Err(format!(
                "setdomainname {d:?}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn write_sysctls(spec: &Spec) -> Result<(), String> {
    for (key, value) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
    {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, &value).map_err(|e| format!("sysctl {key}={value}: {e}"))?;
    }
    Ok(())
}

/// Resolve args[0] the way execvp would, with the container's PATH, and report what runc
/// reports (podman maps "not found" to 127 and "permission denied" to 126).
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, String> {
    let check = |p: &Path| -> Result<(), String> {
        let md = std::fs::metadata(p).map_err(|e| {
            format!(
                "exec: {arg0:?}: stat {}: {}",
                p.display(),
                strip_os_error(&e)
            )
        })?;
        if md.is_dir() || nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_err() {
            return Err(format!("exec: {arg0:?}: permission denied"));
        }
        Ok(())
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        check(&p)?;
        return Ok(p);
    }
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = false;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(arg0);
        if p.exists() {
            match check(&p) {
                Ok(()) => return Ok(p),
                Err(_) => denied = true,
            }
        }
    }
    if denied {
        Err(format!("exec: {arg0:?}: permission denied"))
    } else {
        Err(format!(
            "exec: {arg0:?}: executable file not found in $PATH"
        ))
    }
}

fn strip_os_error(e: &std::io::Error) -> String {
    let s = e.to_string().to_lowercase();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

pub fn apply_lsm_labels(process: &oci_spec::runtime::Process) -> Result<(), String> {
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        lsm::set_apparmor_exec_profile(p)
            .map_err(|e| format!("apply AppArmor profile {p:?}: {e}"))?;
    }
    if let Some(l) = process.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        lsm::set_selinux_exec_label(l).map_err(|e| format!("apply SELinux label {l:?}: {e}"))?;
    }
    Ok(())
}

pub fn load_seccomp(filter: Option<ScmpFilterContext>) -> Result<(), String> {
    match filter {
        Some(f) => f.load().map_err(|e| format!("load seccomp filter: {e}")),
        None => Ok(()),
    }
}

/// Bounding set → keep caps → groups, gid, uid → the other capability sets.
pub fn change_identity(
    process: &oci_spec::runtime::Process,
    caps: Option<&CapPlan>,
) -> Result<(), String> {
    let user = process.user();
    if let Some(c) = caps {
        crate::capabilities::drop_bounding(c)?;
    }
    sys::set_keep_caps(true).map_err(|e| format!("keep capabilities: {e}"))?;
    let groups: Vec<Gid> = user
        .additional_gids()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(Gid::from_raw)
        .collect();
    // setgroups is refused in a user namespace whose setgroups file says deny; ignore only then
    if let Err(e) = nix::unistd::setgroups(&groups) {
        if !(groups.is_empty() && e == nix::errno::Errno::EPERM) {
            return Err(format!("setgroups {:?}: {e}", user.additional_gids()));
        }
    }
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid {}: {e}", user.gid()))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid {}: {e}", user.uid()))?;
    if let Some(c) = caps {
        crate::capabilities::apply(c)?;
    }
    sys::set_keep_caps(false).map_err(|e| format!("reset keep capabilities: {e}"))?;
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// CVE-2024-21626: a cwd reached through a leaked fd would lie outside the container's root;
/// getcwd then reports it as unreachable.
pub fn check_cwd_inside() -> Result<(), String> {
    let cwd = std::env::current_dir().map_err(|e| format!("getcwd: {e}"))?;
    if !cwd.is_absolute() || cwd.to_string_lossy().starts_with("(unreachable)") {
        return Err(format!("cwd {} is outside the container", cwd.display()));
    }
    Ok(())
}

pub fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}
