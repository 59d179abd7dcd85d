//! `exec`: a new process in a running container, with the container's namespaces, cgroup and
//! security settings (capabilities, no_new_privs, seccomp, LSM labels, rlimits) unless the
//! process spec overrides them.

use super::Ctx;
use crate::container::Status;
use crate::error::RuntimeError;
use crate::namespaces::{flag_of, proc_name};
use crate::process::init::{
    apply_lsm_labels, change_identity, check_cwd_inside, cstring, find_executable, load_seccomp,
};
use crate::process::sync::{self, FromInit, ToInit};
use crate::sys::clone::{clone_process, Cloned};
use crate::{capabilities, rlimits, sys, tty};
use clap::Args;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// `exec` flags (runc's names).
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Unix socket that receives the pty master.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pty.
    #[arg(short, long)]
    pub tty: bool,
    /// `uid[:gid]`.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids.
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// A process.json with the whole process spec.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// SELinux label.
    #[arg(long)]
    pub process_label: Option<String>,
    /// AppArmor profile.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability.
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Pass this many extra fds (from 3).
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Exec even if the container is paused.
    #[arg(long)]
    pub ignore_paused: bool,
    /// Sub-cgroup to run in (accepted, the container's cgroup is used).
    #[arg(long)]
    pub cgroup: Option<String>,
    /// Container id.
    pub id: String,
    /// The command and its arguments (unless --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Build the process to run: the --process file, or the container's process with the flags.
pub fn process_spec(spec: &Spec, a: &ExecArgs) -> Result<Process, RuntimeError> {
    if let Some(path) = &a.process {
        let text = std::fs::read_to_string(path).map_err(|e| RuntimeError::ProcessFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let p: Process = serde_json::from_str(&text).map_err(|e| RuntimeError::ProcessFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if p.args().as_ref().is_none_or(|x| x.is_empty()) {
            return Err(RuntimeError::ProcessFile {
                path: path.clone(),
                reason: "args is empty".into(),
            });
        }
        return Ok(p);
    }
    if a.command.is_empty() {
        return Err(RuntimeError::Usage {
            flag: "exec",
            reason: "a command is required (or --process)".into(),
        });
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let mut user = p.user().clone();
        let (uid, gid) = u
            .split_once(':')
            .map_or((u.as_str(), None), |(x, y)| (x, Some(y)));
        let parse = |s: &str| {
            s.parse::<u32>().map_err(|_| RuntimeError::Usage {
                flag: "--user",
                reason: format!("{u:?} is not uid[:gid]"),
            })
        };
        user.set_uid(parse(uid)?);
        user.set_gid(gid.map(parse).transpose()?.unwrap_or(0));
        user.set_additional_gids(None);
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(l) = &a.apparmor {
        p.set_apparmor_profile(Some(l.clone()));
    }
    if let Some(l) = &a.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let add = |set: Option<oci_spec::runtime::Capabilities>| -> Result<oci_spec::runtime::Capabilities, RuntimeError> {
            let mut set = set.unwrap_or_default();
            for c in &a.cap {
                let name = if c.starts_with("CAP_") { c.clone() } else { format!("CAP_{}", c.to_ascii_uppercase()) };
                let cap: oci_spec::runtime::Capability = serde_json::from_value(name.clone().into())
                    .map_err(|_| RuntimeError::Usage { flag: "--cap", reason: format!("unknown capability {c:?}") })?;
                set.insert(cap);
            }
            Ok(set)
        };
        caps.set_bounding(Some(add(caps.bounding().clone())?));
        caps.set_effective(Some(add(caps.effective().clone())?));
        caps.set_permitted(Some(add(caps.permitted().clone())?));
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// Run the process; returns the exit code (0 when detached).
pub fn run(ctx: &Ctx, a: &ExecArgs) -> Result<i32, RuntimeError> {
    let (dir, record) = ctx.open(&a.id)?;
    let status = super::status_of(&dir, &record);
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if a.ignore_paused => {}
        _ => {
            return Err(RuntimeError::WrongStatus {
                id: a.id.clone(),
                status: status.as_str(),
                what: "cannot exec in it",
            })
        }
    }
    let spec = dir.load_config()?;
    drop(dir);
    let process = process_spec(&spec, a)?;
    let linux = spec.linux().clone().unwrap_or_default();
    let security =
        crate::process::security::prepare(&linux, &process, a.console_socket.as_deref())?;
    let (filter, caps, limits, console) = (
        security.seccomp,
        security.caps,
        security.rlimits,
        security.console,
    );
    let joins = open_namespaces(record.pid, &linux.namespaces().clone().unwrap_or_default())?;
    if let Some((_, pidns)) = joins.iter().find(|(f, _)| *f == CloneFlags::CLONE_NEWPID) {
        nix::sched::setns(pidns, CloneFlags::CLONE_NEWPID)
            .map_err(|e| RuntimeError::sys("join pid namespace of", &a.id, e))?;
    }
    let (ours, theirs) =
        sync::pair().map_err(|e| RuntimeError::sys("socketpair", "exec sync", e))?;
    // SAFETY: berth-runtime is single-threaded.
    let pid = match unsafe { clone_process(CloneFlags::empty()) }
        .map_err(|e| RuntimeError::sys("fork", "exec process", e))?
    {
        Cloned::Child => {
            drop(ours);
            let err = child(
                &theirs,
                &joins,
                &process,
                console,
                filter,
                caps.as_ref(),
                &limits,
                a.preserve_fds,
            );
            let _ = theirs.send(&FromInit::Failed { message: err });
            // SAFETY: leave without running the runtime's destructors in the child.
            unsafe { libc::_exit(1) }
        }
        Cloned::Parent(pid) => pid,
    };
    drop(theirs);
    drop(joins);
    let cg = super::cgroup_of(&record)?;
    if let Err(e) = cg.add_task(pid.as_raw()) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = waitpid(pid, None);
        return Err(RuntimeError::Cgroup(e));
    }
    crate::sys::attach_warmup::reap();
    ours.send(&ToInit::Proceed)
        .map_err(|reason| RuntimeError::Sync { reason })?;
    // EOF means the child exec'd (the channel is close-on-exec).
    if let Some(FromInit::Failed { message }) = ours
        .recv::<FromInit>()
        .map_err(|reason| RuntimeError::Sync { reason })?
    {
        let _ = waitpid(pid, None);
        return Err(RuntimeError::Init { message });
    }
    if let Some(pf) = &a.pid_file {
        super::create::write_pid_file(pf, pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(RuntimeError::sys(
                    "wait for",
                    format!("exec process {pid}"),
                    e,
                ))
            }
        }
    }
}

/// The container init's namespaces, user first (pid is joined by the runtime itself).
fn open_namespaces(
    pid: i32,
    spec_ns: &[oci_spec::runtime::LinuxNamespace],
) -> Result<Vec<(CloneFlags, OwnedFd)>, RuntimeError> {
    let mut kinds: Vec<LinuxNamespaceType> = spec_ns.iter().map(|n| n.typ()).collect();
    kinds.sort_by_key(|t| *t != LinuxNamespaceType::User);
    kinds
        .into_iter()
        .map(|t| {
            let path = format!("/proc/{pid}/ns/{}", proc_name(t));
            let fd = nix::fcntl::open(
                path.as_str(),
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| RuntimeError::sys("open namespace", &path, e))?;
            Ok((flag_of(t).0, fd))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn child(
    ch: &sync::Channel,
    joins: &[(CloneFlags, OwnedFd)],
    process: &Process,
    console: Option<OwnedFd>,
    filter: Option<libseccomp::ScmpFilterContext>,
    caps: Option<&capabilities::CapPlan>,
    limits: &[rlimits::Limit],
    preserve_fds: u32,
) -> String {
    let run = || -> Result<std::convert::Infallible, String> {
        sys::set_not_dumpable();
        for (flag, fd) in joins {
            if *flag == CloneFlags::CLONE_NEWPID {
                continue;
            }
            nix::sched::setns(fd, *flag).map_err(|e| format!("join {flag:?} namespace: {e}"))?;
        }
        match ch.recv::<ToInit>()? {
            Some(ToInit::Proceed) => {}
            other => return Err(format!("sync: expected Proceed, got {other:?}")),
        }
        if let Some(sock) = console {
            tty::setup_console(&sock, None)?;
        }
        crate::rlimits::apply(limits)?;
        if let Some(io) = process.io_priority() {
            crate::process_extras::set_io_priority(io)?;
        }
        let env = process.env().clone().unwrap_or_default();
        let args = process.args().clone().unwrap_or_default();
        let path = find_executable(&args[0], &env)?;
        apply_lsm_labels(process)?;
        let nnp = process.no_new_privileges().unwrap_or(false);
        let mut filter = filter;
        if !nnp {
            load_seccomp(filter.take())?;
        }
        change_identity(process, caps)?;
        if nnp {
            sys::set_no_new_privs().map_err(|e| format!("set no_new_privs: {e}"))?;
        }
        nix::unistd::chdir(process.cwd())
            .map_err(|e| format!("chdir to cwd {}: {e}", process.cwd().display()))?;
        check_cwd_inside()?;
        sys::cloexec_from(3 + preserve_fds).map_err(|e| format!("mark fds close-on-exec: {e}"))?;
        for fd in 3..3 + preserve_fds {
            sys::keep_on_exec(i32::try_from(fd).unwrap_or(-1));
        }
        let cpath = cstring(&path.to_string_lossy())?;
        let argv = args
            .iter()
            .map(|s| cstring(s))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = env
            .iter()
            .map(|s| cstring(s))
            .collect::<Result<Vec<_>, _>>()?;
        load_seccomp(filter.take())?;
        nix::unistd::execve(&cpath, &argv, &envp).map_err(|e| format!("exec {:?}: {e}", args[0]))
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}
