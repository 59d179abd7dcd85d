//! Task security defaults (decisions.md, "Task security defaults"): Docker's default seccomp
//! profile, written here as a table from the facts of Docker's profile, and the task-level
//! cgroup that holds a task's cpu/memory hard limits with its containers' cgroups inside it.
//!
//! [`seccomp_profile`] is pure (tested as JSON): its allow list depends on the container's
//! capabilities, as Docker's does. [`TaskCgroupsLib`] is the real [`TaskCgroups`] seam, over
//! the `berth-cgroups` crate.

use super::seams::{BoxFuture, SeamError, TaskCgroupArgs, TaskCgroups};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Syscalls every container may make (Docker's unconditional allow list). `keyctl`,
/// `add_key`, `request_key`, `userfaultfd`, `mount`, `unshare`, `setns`, `bpf` and the other
/// namespace, module, clock and reboot calls are absent: refused with EPERM unless a
/// capability group below allows them.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Syscalls allowed only on x86 (Docker's amd64/386 group).
const X86_ONLY: &[&str] = &["arch_prctl", "modify_ldt"];

/// Syscalls a capability unlocks (Docker's capability-gated groups).
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// `personality` values allowed (PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and
/// the query 0xffffffff).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET: without
/// CAP_SYS_ADMIN, `clone` is allowed only with none of these flags.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// AF_VSOCK: the one socket family refused.
const AF_VSOCK: u64 = 40;

/// ENOSYS: `clone3` without CAP_SYS_ADMIN fails with it, so libc falls back to `clone`
/// (whose flags the filter can see).
const ENOSYS: u64 = 38;

/// The seccomp architectures of this build (Docker's arch map).
fn architectures() -> Value {
    if cfg!(target_arch = "x86_64") {
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    } else if cfg!(target_arch = "aarch64") {
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
    } else {
        json!([])
    }
}

/// Docker's default seccomp profile for a container holding `caps` (`CAP_` names): default
/// EPERM, the allow list, argument-filtered `personality`, `socket` and `clone`, and the groups
/// of the capabilities it holds.
pub fn seccomp_profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut rules = vec![json!({"names": ALLOWED, "action": "SCMP_ACT_ALLOW"})];
    for p in PERSONALITIES {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}));
    }
    rules.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]}));
    if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        rules.push(json!({"names": X86_ONLY, "action": "SCMP_ACT_ALLOW"}));
    }
    for (cap, names) in BY_CAPABILITY {
        if has(cap) {
            rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        rules.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": architectures(),
        "syscalls": rules,
    })
}

/// CFS period of the task's cpu quota.
pub const CFS_PERIOD_US: u64 = 100_000;

/// The task cgroup's hierarchy-relative path: `/berth/<task>`; each container's is
/// `/berth/<task>/<container>`.
pub fn task_cgroup_path(task: &str) -> PathBuf {
    PathBuf::from("/berth").join(task)
}

/// The task cgroup's limits as OCI `linux.resources`: memory MiB as the hard limit, cpu units
/// as a CFS quota (1024 units = one CPU).
pub fn task_resources(memory_mib: Option<u32>, cpu_units: Option<u32>) -> Value {
    let mut r = json!({});
    if let Some(mib) = memory_mib.filter(|m| *m > 0) {
        r["memory"] = json!({"limit": u64::from(mib) * 1024 * 1024});
    }
    if let Some(units) = cpu_units.filter(|u| *u > 0) {
        r["cpu"] =
            json!({"quota": u64::from(units) * CFS_PERIOD_US / 1024, "period": CFS_PERIOD_US});
    }
    r
}

/// The real task cgroups, through `berth-cgroups` on the host's layout.
#[derive(Debug, Default)]
pub struct TaskCgroupsLib;

fn cgroup_err<'a>(task: &'a str, verb: &'static str) -> impl Fn(String) -> SeamError + 'a {
    move |message| SeamError::TaskCgroup {
        verb,
        task: task.to_owned(),
        message,
    }
}

fn create_blocking(a: &TaskCgroupArgs) -> Result<(), SeamError> {
    let err = cgroup_err(&a.task, "create");
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_value(task_resources(a.memory_mib, a.cpu_units))
            .map_err(|e| err(format!("encoding the limits: {e}")))?;
    let layout = berth_cgroups::detect().map_err(|e| err(e.to_string()))?;
    let cg = berth_cgroups::manager(&layout, &task_cgroup_path(&a.task));
    berth_cgroups::validate(&resources, &layout).map_err(|e| err(e.to_string()))?;
    cg.create().map_err(|e| err(e.to_string()))?;
    if let Err(e) = cg.apply(&resources) {
        // Nothing half-created: a cgroup without its limits must not hold containers.
        let _ = cg.remove();
        return Err(err(e.to_string()));
    }
    Ok(())
}

fn remove_blocking(task: &str) -> Result<(), SeamError> {
    let err = cgroup_err(task, "remove");
    let layout = berth_cgroups::detect().map_err(|e| err(e.to_string()))?;
    berth_cgroups::manager(&layout, &task_cgroup_path(task))
        .remove()
        .map_err(|e| err(e.to_string()))
}

impl TaskCgroups for TaskCgroupsLib {
    fn create(&self, a: TaskCgroupArgs) -> BoxFuture<'_, Result<(), SeamError>> {
        Box::pin(async move {
            let task = a.task.clone();
            tokio::task::spawn_blocking(move || create_blocking(&a))
                .await
                .map_err(|e| cgroup_err(&task, "create")(e.to_string()))?
        })
    }
    fn remove(&self, task: String) -> BoxFuture<'_, Result<(), SeamError>> {
        Box::pin(async move {
            let t = task.clone();
            tokio::task::spawn_blocking(move || remove_blocking(&t))
                .await
                .map_err(|e| cgroup_err(&task, "remove")(e.to_string()))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(profile: &Value, name: &str) -> Vec<Value> {
        profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["action"] == "SCMP_ACT_ALLOW"
                    && r["names"].as_array().unwrap().contains(&json!(name))
            })
            .cloned()
            .collect()
    }

    fn caps(extra: &[&str]) -> Vec<String> {
        super::super::bundle::DEFAULT_CAPS
            .iter()
            .chain(extra)
            .map(|c| (*c).to_owned())
            .collect()
    }

    #[test]
    fn default_profile_refuses_keyctl_unshare_mount_bpf() {
        let p = seccomp_profile(&caps(&[]));
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], 1);
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "unshare",
            "mount",
            "umount2",
            "bpf",
            "setns",
            "ptrace",
            "init_module",
            "reboot",
            "clock_settime",
            "userfaultfd",
        ] {
            assert!(allowed(&p, name).is_empty(), "{name} must be refused");
        }
        for name in ["read", "execve", "chroot", "wait4", "arch_prctl"] {
            assert_eq!(allowed(&p, name).len(), 1, "{name} must be allowed");
        }
        let clone = allowed(&p, "clone");
        assert_eq!(
            clone,
            vec![json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 0x7E02_0000_u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]})]
        );
        assert!(p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["names"] == json!(["clone3"])
                && r["action"] == "SCMP_ACT_ERRNO"
                && r["errnoRet"] == 38));
        assert_eq!(allowed(&p, "personality").len(), 5);
        assert_eq!(allowed(&p, "socket")[0]["args"][0]["op"], "SCMP_CMP_NE");
        // The profile is one libseccomp can take: every rule names at least one syscall.
        assert!(p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r["names"].as_array().unwrap().is_empty()));
    }

    #[test]
    fn capabilities_unlock_their_groups() {
        let p = seccomp_profile(&caps(&["CAP_SYS_PTRACE"]));
        assert_eq!(allowed(&p, "ptrace").len(), 1);
        assert!(allowed(&p, "mount").is_empty());
        let admin = seccomp_profile(&caps(&["CAP_SYS_ADMIN"]));
        assert_eq!(allowed(&admin, "unshare").len(), 1);
        assert_eq!(allowed(&admin, "clone")[0].get("args"), None);
        let none = seccomp_profile(&[]);
        assert!(allowed(&none, "chroot").is_empty());
    }

    #[test]
    fn task_limits_as_resources() {
        assert_eq!(
            task_resources(Some(512), Some(256)),
            json!({"memory": {"limit": 536_870_912_u64},
                   "cpu": {"quota": 25_000, "period": 100_000}})
        );
        assert_eq!(task_resources(None, None), json!({}));
        assert_eq!(task_cgroup_path("t1"), PathBuf::from("/berth/t1"));
    }
}
