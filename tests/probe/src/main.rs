//! berth-probe: run inside a container, it reports what the container sees as one JSON object
//! on stdout, so that tests assert on exact values instead of parsing shell output.
//!
//! Built static (`-C target-feature=+crt-static`) so that it runs in any rootfs.
//!
//! Verbs (one per run):
//! - `report`: identity, capabilities, seccomp, rlimits, namespaces, mounts, cgroups, fds, env.
//! - `read PATH`, `write PATH [TEXT]`, `open PATH`, `mkdir PATH`, `stat PATH`: one file operation.
//! - `syscall NAME`: one named syscall whose result (errno) is the point of the test.
//! - `alloc MIB`: touch MIB mebibytes of memory, 1 MiB at a time.
//! - `forks N`: try to fork N children that sleep; report how many forks succeeded.
//! - `spin SECS`: burn CPU for SECS seconds of wall time and report the CPU time used.
//! - `sleep SECS`, `wait-signal`: stay alive; the latter reports the first signal it gets.
//! - `exec PATH ARGS...`: execv, for setuid and no-new-privileges tests.
//!
//! Failures of the operation print `{"ok":false,"errno":N,"error":"..."}` and exit 1.

use serde_json::{json, Map, Value};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verb = args.first().map(String::as_str).unwrap_or("report");
    let rest = args.get(1..).unwrap_or(&[]);
    let result = match verb {
        "report" => Ok(report()),
        "read" => arg(rest, 0).and_then(|p| {
            fs::read_to_string(p)
                .map(|s| json!({ "content": s }))
                .map_err(io_err)
        }),
        "write" => arg(rest, 0).and_then(|p| {
            let text = rest.get(1).map(String::as_str).unwrap_or("probe");
            fs::write(p, text).map(|()| json!({})).map_err(io_err)
        }),
        "open" => arg(rest, 0).and_then(open_rw),
        "mkdir" => arg(rest, 0).and_then(|p| fs::create_dir(p).map(|()| json!({})).map_err(io_err)),
        "stat" => arg(rest, 0).and_then(stat),
        "syscall" => arg(rest, 0).and_then(syscall),
        "alloc" => number(rest, 0).map(alloc),
        "forks" => number(rest, 0).map(forks),
        "spin" => number(rest, 0).map(spin),
        "sleep" => number(rest, 0).map(|s| {
            std::thread::sleep(Duration::from_secs(s));
            json!({})
        }),
        "wait-signal" => Ok(wait_signal()),
        "exec" => exec(rest),
        other => Err(json!({ "error": format!("unknown verb {other:?}") })),
    };
    let (out, code) = match result {
        Ok(mut v) => {
            if let Value::Object(m) = &mut v {
                m.insert("ok".into(), true.into());
            }
            (v, 0)
        }
        Err(mut v) => {
            if let Value::Object(m) = &mut v {
                m.insert("ok".into(), false.into());
            }
            (v, 1)
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{out}");
    let _ = stdout.flush();
    std::process::exit(code);
}

fn arg(rest: &[String], i: usize) -> Result<&str, Value> {
    rest.get(i)
        .map(String::as_str)
        .ok_or_else(|| json!({ "error": format!("missing argument {i}") }))
}

fn number(rest: &[String], i: usize) -> Result<u64, Value> {
    arg(rest, i)?
        .parse()
        .map_err(|e| json!({ "error": format!("argument {i}: {e}") }))
}

fn io_err(e: std::io::Error) -> Value {
    json!({ "errno": e.raw_os_error().unwrap_or(0), "error": e.to_string() })
}

fn errno_result(ret: libc::c_long) -> Result<Value, Value> {
    if ret < 0 {
        Err(io_err(std::io::Error::last_os_error()))
    } else {
        Ok(json!({ "ret": ret }))
    }
}

fn report() -> Value {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Value {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(|v| Value::String(v.trim().to_string()))
            .unwrap_or(Value::Null)
    };
    let mut r = Map::new();
    r.insert("hostname".into(), read_trim("/proc/sys/kernel/hostname"));
    r.insert(
        "domainname".into(),
        read_trim("/proc/sys/kernel/domainname"),
    );
    // SAFETY: these identity getters have no preconditions and cannot fail.
    let (pid, ppid, uid, gid, euid, egid) = unsafe {
        (
            libc::getpid(),
            libc::getppid(),
            libc::getuid(),
            libc::getgid(),
            libc::geteuid(),
            libc::getegid(),
        )
    };
    r.insert("pid".into(), pid.into());
    r.insert("ppid".into(), ppid.into());
    r.insert("uid".into(), uid.into());
    r.insert("gid".into(), gid.into());
    r.insert("euid".into(), euid.into());
    r.insert("egid".into(), egid.into());
    r.insert("groups".into(), groups());
    r.insert("umask".into(), umask().into());
    r.insert(
        "cwd".into(),
        std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
            .into(),
    );
    r.insert(
        "env".into(),
        std::env::vars()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .into(),
    );
    let caps: Map<String, Value> = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .map(|c| ((*c).to_string(), field(c)))
        .collect();
    r.insert("caps".into(), caps.into());
    r.insert("no_new_privs".into(), field("NoNewPrivs"));
    r.insert("seccomp".into(), field("Seccomp"));
    r.insert("rlimits".into(), rlimits());
    r.insert(
        "oom_score_adj".into(),
        read_trim("/proc/self/oom_score_adj"),
    );
    r.insert("namespaces".into(), namespaces());
    r.insert("mounts".into(), mounts());
    r.insert(
        "cgroup".into(),
        fs::read_to_string("/proc/self/cgroup")
            .unwrap_or_default()
            .into(),
    );
    r.insert("fds".into(), fds());
    Value::Object(r)
}

fn read_trim(path: &str) -> Value {
    fs::read_to_string(path)
        .map(|s| Value::String(s.trim().to_string()))
        .unwrap_or(Value::Null)
}

fn groups() -> Value {
    let mut buf = [0 as libc::gid_t; 256];
    // SAFETY: buf has room for 256 entries and we pass that length.
    let n = unsafe { libc::getgroups(256, buf.as_mut_ptr()) };
    let n = usize::try_from(n).unwrap_or(0);
    buf[..n].to_vec().into()
}

fn umask() -> u32 {
    // Reading the umask means setting it; put it straight back. The probe is single-threaded.
    // SAFETY: umask cannot fail.
    let old = unsafe { libc::umask(0o022) };
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    old
}

fn rlimits() -> Value {
    let names = [
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ];
    let mut m = Map::new();
    for (name, res) in names {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid, writable rlimit struct.
        if unsafe { libc::getrlimit(res, &mut lim) } == 0 {
            m.insert(
                name.into(),
                json!({ "soft": lim.rlim_cur, "hard": lim.rlim_max }),
            );
        }
    }
    Value::Object(m)
}

fn namespaces() -> Value {
    let mut m = Map::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(link) = fs::read_link(format!("/proc/self/ns/{ns}")) {
            m.insert(ns.into(), link.display().to_string().into());
        }
    }
    Value::Object(m)
}

fn mounts() -> Value {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(json!({
                "point": pre.get(4)?,
                "options": pre.get(5)?,
                "optional": pre.get(6..).map(|o| o.join(" ")).unwrap_or_default(),
                "fstype": post.first()?,
                "source": post.get(1)?,
                "super_options": post.get(2).copied().unwrap_or(""),
            }))
        })
        .collect::<Vec<_>>()
        .into()
}

fn fds() -> Value {
    let mut m = Map::new();
    if let Ok(rd) = fs::read_dir("/proc/self/fd") {
        for e in rd.flatten() {
            let target = fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            m.insert(e.file_name().to_string_lossy().into_owned(), target.into());
        }
    }
    Value::Object(m)
}

fn open_rw(path: &str) -> Result<Value, Value> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(|_| json!({}))
        .map_err(io_err)
}

fn stat(path: &str) -> Result<Value, Value> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let md = fs::symlink_metadata(path).map_err(io_err)?;
    Ok(json!({
        "mode": md.permissions().mode(), "uid": md.uid(), "gid": md.gid(), "size": md.len(),
        "rdev": md.rdev(), "dev": md.dev(), "ino": md.ino(),
    }))
}

fn syscall(name: &str) -> Result<Value, Value> {
    let ret: libc::c_long =
    // SAFETY: each arm passes constant or NUL-terminated arguments that the kernel only
    // reads; the results are reported, not relied on.
    unsafe {
        match name {
            "swapoff" => libc::syscall(libc::SYS_swapoff, c"/nonexistent".as_ptr()),
            "mkdir" => libc::syscall(libc::SYS_mkdir, c"/tmp/probe-mkdir".as_ptr(), 0o755),
            "unshare-user" => libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER),
            "unshare-net" => libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNET),
            "keyctl" => libc::syscall(libc::SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0),
            "bpf" => libc::syscall(libc::SYS_bpf, 0, 0, 0),
            "getpid" => libc::syscall(libc::SYS_getpid),
            "sethostname" => libc::syscall(libc::SYS_sethostname, c"probe".as_ptr(), 5),
            "setuid0" => libc::syscall(libc::SYS_setuid, 0),
            "lo-down" => return lo_down(),
            _ => return Err(json!({ "error": format!("unknown syscall {name:?}") })),
        }
    };
    errno_result(ret)
}

/// Set `lo` down with SIOCSIFFLAGS: it needs CAP_NET_ADMIN in the network namespace.
fn lo_down() -> Result<Value, Value> {
    // SAFETY: socket() with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io_err(std::io::Error::last_os_error()));
    }
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: fd is a socket we own; req is a valid ifreq naming "lo". Flags 0 = down.
    let ret = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &mut req) };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    if ret < 0 {
        Err(io_err(err))
    } else {
        Ok(json!({}))
    }
}

fn alloc(mib: u64) -> Value {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib {
        let mut chunk = vec![0u8; 1 << 20];
        for i in (0..chunk.len()).step_by(4096) {
            chunk[i] = 1;
        }
        chunks.push(chunk);
    }
    json!({ "allocated_mib": chunks.len() })
}

fn forks(n: u64) -> Value {
    let mut ok = 0u64;
    let mut children = Vec::new();
    for _ in 0..n {
        // SAFETY: the probe is single-threaded; the child only sleeps and exits.
        match unsafe { libc::fork() } {
            0 => {
                // SAFETY: plain sleep and _exit in the child.
                unsafe {
                    libc::sleep(5);
                    libc::_exit(0);
                }
            }
            pid if pid > 0 => {
                ok += 1;
                children.push(pid);
            }
            _ => break,
        }
    }
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    for pid in children {
        // SAFETY: pid is our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    json!({ "forked": ok, "last_errno": errno })
}

fn cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe_zeroed_rusage();
    // SAFETY: ru is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn unsafe_zeroed_rusage() -> libc::rusage {
    // SAFETY: rusage is plain data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

fn spin(secs: u64) -> Value {
    let start = Instant::now();
    let mut x: u64 = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        for i in 0..100_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
    }
    json!({ "wall_seconds": start.elapsed().as_secs_f64(), "cpu_seconds": cpu_seconds() })
}

fn wait_signal() -> Value {
    // SAFETY: sigset_t is plain data and sigfillset initialises it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut sig: libc::c_int = 0;
    // SAFETY: set and sig are valid; blocking all signals lets sigwait receive them.
    unsafe {
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    println!("{}", json!({ "waiting": true }));
    let _ = std::io::stdout().flush();
    // SAFETY: as above.
    unsafe { libc::sigwait(&set, &mut sig) };
    json!({ "signal": sig })
}

fn exec(rest: &[String]) -> Result<Value, Value> {
    let path = arg(rest, 0)?;
    let to_c = |s: &str| CString::new(s).map_err(|e| json!({ "error": e.to_string() }));
    let cpath = to_c(path)?;
    let cargs: Vec<CString> = rest.iter().map(|s| to_c(s)).collect::<Result<_, _>>()?;
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: cpath and the NULL-terminated argv array outlive the call.
    unsafe { libc::execv(cpath.as_ptr(), ptrs.as_ptr()) };
    Err(io_err(std::io::Error::last_os_error()))
}
