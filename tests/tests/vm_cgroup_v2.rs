//! Issue 8: berth on a cgroup-v2-only kernel. These tests boot one qemu guest (Debian's 6.1
//! kernel with `cgroup_no_v1=all`, cgroup2 alone on /sys/fs/cgroup; built and cached by
//! `tests/vm/build-guest`) and run inside it, each test alone: the berth-cgroups root tests
//! (`cgroups_host`), the berth-runtime root tests (`runtime_*`), netd's root tests (`netd_*`),
//! an agent task with an ENI and a security group (`agent_port`, issue 11),
//! and the v2 checks of `tests/vm/checks` (limits from config.json read back and enforced,
//! cgroup.freeze, eBPF device rules, `events --stats`, removal). Every in-guest result comes
//! back to the host through a 9p-shared run directory, and a failure there fails the test
//! here with the guest's output.
//!
//! The host shares its `/usr` (glibc, busybox, nft, ip, jq), a few files of `/etc`, and the
//! directories holding the binaries under test read-only at the same paths, so the guest runs
//! exactly what `scripts/test` built.
//!
//! A guest whose kernel dies before its init prints anything (seen under TCG here: qemu exits
//! 0.8 s in, after the firmware's "Booting from ROM..") is booted again, at most three boots,
//! each reported with the console and qemu's reset log; any later failure fails the tests.
//!
//! Where qemu cannot run the tests fail naming why, unless `BERTH_SKIP_VM=1` (said aloud).
//! Tunables: `BERTH_VM_CACHE` (guest cache, default /var/cache/berth-tests/vm),
//! `BERTH_VM_TIMEOUT` (seconds for the whole boot, default 1200), `BERTH_VM_ACCEL` (`kvm` or
//! `tcg`; default kvm only where kvm_intel/kvm_amd is loaded), `BERTH_VM_SMP` (default 1).

// Test helpers outside #[test] functions: a failed step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::env::{bin_path, probe_path, test_dir};
use berth_tests::{require_root, unique, workspace_root, Cleanup};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The v2 checks of `tests/vm/checks`, each run as its own guest test.
const CHECKS: &[&str] = &["memory", "pids", "cpu", "freeze", "devices", "stats"];

/// What came back from one guest boot.
struct GuestRun {
    /// (suite, test) → (exit status, output).
    results: BTreeMap<(String, String), (i32, String)>,
    /// The serial console, for failures that happen outside any test.
    console: String,
    /// The suites the plan asked for.
    planned: Vec<String>,
}

impl GuestRun {
    /// Panics with every failed test of the suites whose names start with `prefix`, or when
    /// such a suite reported nothing. Returns how many tests passed.
    fn assert_suites(&self, prefix: &str) -> usize {
        let suites: Vec<&String> = self
            .planned
            .iter()
            .filter(|s| s.starts_with(prefix))
            .collect();
        assert!(!suites.is_empty(), "no suite {prefix}* was planned");
        let mut failures = Vec::new();
        let mut passed = 0;
        for suite in &suites {
            let mine: Vec<_> = self
                .results
                .iter()
                .filter(|((s, _), _)| s == *suite)
                .collect();
            if mine.is_empty() {
                failures.push(format!(
                    "{suite}: no result came back from the guest; console:\n{}",
                    tail(&self.console, 40)
                ));
            }
            for ((_, test), (rc, log)) in mine {
                if *rc == 0 {
                    passed += 1;
                } else {
                    failures.push(format!(
                        "{suite}::{test} failed in the cgroup-v2 guest (exit {rc}):\n{}",
                        tail(log, 60)
                    ));
                }
            }
        }
        eprintln!("berth-vm: {passed} guest test(s) of {prefix}* passed");
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        passed
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `BERTH_SKIP_VM=1` opts out, aloud. Root is needed (qemu's 9p passthrough of root-owned
/// files, and the tests in the guest are root tests anyway).
fn vm_wanted() -> bool {
    if std::env::var_os("BERTH_SKIP_VM").is_some_and(|v| v == "1") {
        eprintln!("berth-tests: BERTH_SKIP_VM=1: NOT running the cgroup-v2 guest tests");
        return false;
    }
    require_root()
}

/// The one boot every test of this file shares (libtest runs them on threads of one process).
fn main_run() -> &'static GuestRun {
    static RUN: OnceLock<Result<GuestRun, String>> = OnceLock::new();
    match RUN.get_or_init(|| {
        let mut plan: Vec<(String, String, String)> = Vec::new();
        for (name, exe) in test_binaries() {
            let keep = name == "cgroups_host"
                || name.starts_with("runtime_")
                || name.starts_with("netd_")
                || name == "agent_port";
            if keep {
                plan.push((name, exe.display().to_string(), String::new()));
            }
        }
        for check in CHECKS {
            plan.push(("v2checks".into(), format!("check:{check}"), String::new()));
        }
        // The deliberately broken limit (acceptance 2), in the same boot.
        plan.push((
            "broken".into(),
            "check:memory".into(),
            "BERTH_VM_BREAK=memory".into(),
        ));
        boot(&plan)
    }) {
        Ok(run) => run,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn cgroups_host_tests_pass_in_the_cgroup_v2_guest() {
    if !vm_wanted() {
        return;
    }
    let n = main_run().assert_suites("cgroups_host");
    assert!(n > 0, "no cgroups_host test ran in the guest");
}

#[test]
fn runtime_tests_pass_in_the_cgroup_v2_guest() {
    if !vm_wanted() {
        return;
    }
    main_run().assert_suites("runtime_");
}

#[test]
fn netd_tests_pass_in_the_cgroup_v2_guest() {
    if !vm_wanted() {
        return;
    }
    main_run().assert_suites("netd_");
}

/// Issue 11 acceptance 3: an agent task with an ENI and a security group runs on cgroup v2,
/// answers on its port (and not on one its group does not allow), and stops cleanly, leaving
/// nothing behind (tests/tests/agent_port.rs, with real netd, agent, runtime and images).
#[test]
fn an_agent_task_with_an_eni_and_a_security_group_runs_in_the_cgroup_v2_guest() {
    if !vm_wanted() {
        return;
    }
    let n = main_run().assert_suites("agent_port");
    assert!(n > 0, "no agent_port test ran in the guest");
}

#[test]
fn runtime_limits_freezer_devices_and_stats_work_on_cgroup_v2() {
    if !vm_wanted() {
        return;
    }
    let n = main_run().assert_suites("v2checks");
    assert_eq!(n, CHECKS.len(), "every v2 check must have run and passed");
}

#[test]
fn the_guest_tests_leave_nothing_behind_in_the_guest() {
    if !vm_wanted() {
        return;
    }
    main_run().assert_suites("guest");
}

/// Acceptance 2: a v2 limit broken on purpose inside the guest (memory.max overwritten after
/// berth-runtime set it) must come back to the host as a failure with the guest's message.
#[test]
fn a_broken_v2_limit_in_the_guest_is_reported_as_a_failure() {
    if !vm_wanted() {
        return;
    }
    let run = main_run();
    let (rc, log) = run
        .results
        .get(&("broken".to_string(), "memory".to_string()))
        .unwrap_or_else(|| {
            panic!(
                "the broken check reported nothing; console:\n{}",
                tail(&run.console, 40)
            )
        });
    assert_ne!(
        *rc, 0,
        "the memory check passed although memory.max was broken:\n{log}"
    );
    assert!(
        log.contains("FAIL:") && log.contains("memory.max is 'max', expected '67108864'"),
        "the broken check failed, but not with the expected message:\n{log}"
    );
}

/// (target name, executable) of the root-test binaries of this crate (`tests/tests/*.rs`).
/// `cargo test` has just built them all beside this one, in `<target>/<profile>/deps` as
/// `<name>-<16 hex>`; where several builds left several, the newest is the one built from
/// the current sources. Asking cargo instead (`--no-run --message-format json`) would nest
/// a cargo in the suite's cargo, and could rebuild with other features.
fn test_binaries() -> Vec<(String, PathBuf)> {
    let me = std::env::current_exe().unwrap();
    let deps = me.parent().unwrap();
    let sources = workspace_root().join("tests/tests");
    let mut newest: BTreeMap<String, (std::time::SystemTime, PathBuf)> = BTreeMap::new();
    for entry in fs::read_dir(deps).unwrap() {
        let path = entry.unwrap().path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some((name, hash)) = file.rsplit_once('-') else {
            continue;
        };
        let is_exe = hash.len() == 16
            && hash.bytes().all(|b| b.is_ascii_hexdigit())
            && fs::metadata(&path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !is_exe || !sources.join(format!("{name}.rs")).is_file() {
            continue;
        }
        let mtime = fs::metadata(&path).and_then(|m| m.modified()).unwrap();
        if newest.get(name).is_none_or(|(t, _)| mtime > *t) {
            newest.insert(name.to_string(), (mtime, path));
        }
    }
    assert!(
        newest.contains_key("cgroups_host"),
        "no cgroups_host test binary beside {} (build with `cargo test --release --no-run`)",
        me.display()
    );
    newest.into_iter().map(|(n, (_, p))| (n, p)).collect()
}

/// Boot the guest with `plan` (suite, binary or `check:NAME`, extra env `K=V` or empty) and
/// collect the results. Everything made on the host is removed before returning.
fn boot(plan: &[(String, String, String)]) -> Result<GuestRun, String> {
    let qemu = find_qemu()?;
    let guest = build_guest()?;
    let mut cleanup = Cleanup::new();
    let dir = test_dir(&unique("vm"));
    {
        let dir = dir.clone();
        cleanup.defer(format!("guest run dir {}", dir.display()), move || {
            fs::remove_dir_all(&dir).map_err(|e| e.to_string())
        });
    }
    let run = dir.join("run");
    fs::create_dir_all(run.join("results")).unwrap();
    let vm_src = workspace_root().join("tests/vm");
    for f in ["run-tests", "checks"] {
        fs::copy(vm_src.join(f), run.join(f)).unwrap();
    }

    let runtime = bin_path("berth-runtime");
    let bin_dir = runtime.parent().unwrap().to_path_buf();
    let probe = probe_path();
    let mut plan_text = String::new();
    for (suite, what, env) in plan {
        plan_text.push_str(&format!("{suite} {what} {env}\n"));
    }
    fs::write(run.join("plan"), plan_text).unwrap();
    fs::write(
        run.join("env"),
        format!(
            "export BERTH_BIN_DIR='{}' BERTH_PROBE='{}' BERTH_IN_GUEST=1 RUST_BACKTRACE=1 HOME=/root\n",
            bin_dir.display(),
            probe.display()
        ),
    )
    .unwrap();

    // Directories the guest needs at the host's paths: the workspace (tests read files
    // relative to it), the binaries, the probe, the test executables.
    let mut needed: Vec<PathBuf> = vec![workspace_root(), bin_dir.clone()];
    needed.push(probe.parent().unwrap().to_path_buf());
    for (_, what, _) in plan {
        if !what.starts_with("check:") {
            needed.push(Path::new(what).parent().unwrap().to_path_buf());
        }
    }
    let shares = minimal_roots(needed);
    let mut shares_text = String::new();
    for (i, p) in shares.iter().enumerate() {
        shares_text.push_str(&format!("s{i} {}\n", p.display()));
    }
    fs::write(run.join("shares"), shares_text).unwrap();

    let timeout = Duration::from_secs(
        std::env::var("BERTH_VM_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1200),
    );
    let args = qemu_args(&guest, &run, &shares);
    let mut attempt = 1;
    let (status, console) = loop {
        let boot = run_qemu(&qemu, &args, &dir, attempt, timeout)?;
        // A guest whose kernel died before its init printed anything (qemu exits 0 on the
        // reset that `-no-reboot` turns into an exit) ran none of the plan: boot it again, a
        // bounded number of times, saying so, with what qemu saw of the reset.
        if attempt < BOOT_ATTEMPTS && boot.died_before_init() {
            // Straight to fd 2, past libtest's capture, so the log shows it even when the
            // next boot passes.
            let _ = writeln!(
                std::io::stderr(),
                "berth-vm: boot {attempt} died before the guest's init ran ({}); booting again.\n\
                 console:\n{}\nqemu reset log:\n{}",
                boot.status,
                tail(&boot.console, 20),
                tail(&boot.qemu_log, 30)
            );
            attempt += 1;
            continue;
        }
        let Some(status) = boot.finished else {
            return Err(format!(
                "the cgroup-v2 guest did not finish within {} s (BERTH_VM_TIMEOUT); console:\n{}",
                timeout.as_secs(),
                tail(&boot.console, 60)
            ));
        };
        break (status, boot.console);
    };
    // isa-debug-exit: qemu exits with (guest status << 1) | 1; 1 means the guest said 0.
    // Any other exit (a crash, a panic with -no-reboot) is reported with the console.
    let code = status.code().unwrap_or(-1);
    if code & 1 == 0 {
        return Err(format!(
            "qemu exited with {status} without the guest's exit status (did the guest crash?); console:\n{}\nqemu reset log ({}):\n{}",
            tail(&console, 60),
            dir.join("qemu.log").display(),
            tail(&fs::read_to_string(dir.join("qemu.log")).unwrap_or_default(), 30)
        ));
    }
    if code >> 1 == 2 {
        return Err(format!(
            "the guest could not set itself up; console:\n{}",
            tail(&console, 60)
        ));
    }

    let mut results = BTreeMap::new();
    for suite in fs::read_dir(run.join("results")).unwrap() {
        let suite = suite.unwrap();
        let sname = suite.file_name().to_string_lossy().into_owned();
        for entry in fs::read_dir(suite.path()).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "rc") {
                let test = p.file_stem().unwrap().to_string_lossy().into_owned();
                let rc = fs::read_to_string(&p).unwrap().trim().parse().unwrap_or(-1);
                let log = fs::read_to_string(p.with_extension("log")).unwrap_or_default();
                results.insert((sname.clone(), test), (rc, log));
            }
        }
    }
    let mut planned: Vec<String> = plan.iter().map(|(s, _, _)| s.clone()).collect();
    planned.push("guest".into());
    planned.dedup();
    drop(cleanup);
    Ok(GuestRun {
        results,
        console,
        planned,
    })
}

/// How many times a guest that dies before its init runs is booted.
const BOOT_ATTEMPTS: u32 = 3;

/// One qemu run: how it ended, the serial console, and qemu's `-d cpu_reset,guest_errors` log.
struct Boot {
    /// `None` when it was killed at the timeout.
    finished: Option<std::process::ExitStatus>,
    status: String,
    console: String,
    qemu_log: String,
}

impl Boot {
    /// qemu exited 0 (the guest reset under `-no-reboot`: an early kernel panic or a triple
    /// fault) before the guest's init printed its first `berth-vm:` line.
    fn died_before_init(&self) -> bool {
        self.finished.is_some_and(|s| s.code() == Some(0)) && !self.console.contains("berth-vm:")
    }
}

fn run_qemu(
    qemu: &Path,
    args: &[String],
    dir: &Path,
    attempt: u32,
    timeout: Duration,
) -> Result<Boot, String> {
    let console_path = dir.join("console.log");
    let qemu_log = dir.join("qemu.log");
    let console = fs::File::create(&console_path).unwrap();
    let mut cmd = Command::new(qemu);
    cmd.args(args)
        .arg("-d")
        .arg("cpu_reset,guest_errors")
        .arg("-D")
        .arg(&qemu_log)
        .stdin(Stdio::null())
        .stdout(console.try_clone().unwrap())
        .stderr(console);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu.display()))?;
    let finished = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "berth-vm: guest boot {attempt} ran for {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Boot {
        status: finished.map_or_else(|| "killed at the timeout".into(), |s| s.to_string()),
        finished,
        console: fs::read_to_string(&console_path).unwrap_or_default(),
        qemu_log: fs::read_to_string(&qemu_log).unwrap_or_default(),
    })
}

/// The shortest list of directories covering all of `paths`.
fn minimal_roots(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    paths.dedup();
    let mut roots: Vec<PathBuf> = Vec::new();
    for p in paths {
        if !roots.iter().any(|r| p.starts_with(r)) {
            roots.push(p);
        }
    }
    roots
}

fn find_qemu() -> Result<PathBuf, String> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin"])
    {
        let p = Path::new(dir).join("qemu-system-x86_64");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(
        "qemu-system-x86_64 is not installed, so the cgroup-v2 guest cannot run: install \
         qemu-system-x86 from bookworm-backports (`.ci/run` does, through scripts/lib.sh \
         `install_qemu`), or set BERTH_SKIP_VM=1 to skip these tests"
            .into(),
    )
}

/// `tests/vm/build-guest`: the cached guest directory (vmlinux, initrd.img).
fn build_guest() -> Result<PathBuf, String> {
    let script = workspace_root().join("tests/vm/build-guest");
    let out = Command::new("timeout")
        .arg("600")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): see its message above",
            script.display(),
            out.status
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !dir.join("vmlinux").is_file() || !dir.join("initrd.img").is_file() {
        return Err(format!(
            "{} printed {}, which holds no guest",
            script.display(),
            dir.display()
        ));
    }
    Ok(dir)
}

/// KVM only where a real hardware backend is loaded: this build host's /dev/kvm is a nested
/// paravirtual backend (kvm_pvm) on which a stock kernel crawls, and qemu does not fall back.
fn accel() -> (&'static str, &'static str) {
    let want = std::env::var("BERTH_VM_ACCEL").unwrap_or_default();
    let hw = Path::new("/dev/kvm").exists()
        && (Path::new("/sys/module/kvm_intel").exists()
            || Path::new("/sys/module/kvm_amd").exists());
    match want.as_str() {
        "kvm" => ("kvm", "host"),
        "tcg" => ("tcg", "max"),
        _ if hw => ("kvm", "host"),
        _ => ("tcg", "max"),
    }
}

/// The host's TSC frequency in kHz: passed to the guest so that microvm under TCG does not
/// hang calibrating it.
fn tsc_khz() -> u64 {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("cpu MHz").and_then(|r| r.split(':').nth(1)))
        .and_then(|mhz| {
            // "2596.136" MHz -> 2596136 kHz, without floating point.
            let (int, frac) = mhz.trim().split_once('.').unwrap_or((mhz.trim(), "0"));
            let frac: String = frac.chars().chain("000".chars()).take(3).collect();
            Some(int.parse::<u64>().ok()? * 1000 + frac.parse::<u64>().ok()?)
        })
        .filter(|&k| k > 0)
        .unwrap_or(2_000_000)
}

fn qemu_args(guest: &Path, run: &Path, shares: &[PathBuf]) -> Vec<String> {
    let (accel, cpu) = accel();
    let smp = std::env::var("BERTH_VM_SMP").unwrap_or_else(|_| "1".into());
    let khz = tsc_khz();
    let mut a: Vec<String> = [
        "-M",
        "microvm",
        "-accel",
        accel,
        "-cpu",
        cpu,
        "-smp",
        &smp,
        "-m",
        "1536",
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",
        "-serial",
        "stdio",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("-kernel".into());
    a.push(guest.join("vmlinux").display().to_string());
    a.push("-initrd".into());
    a.push(guest.join("initrd.img").display().to_string());
    a.push("-append".into());
    a.push(format!(
        "console=ttyS0 earlyprintk=serial,ttyS0 quiet loglevel=3 panic=-1 cgroup_no_v1=all rdinit=/init \
         tsc_early_khz={khz} lpj={}",
        khz * 4
    ));
    let mut share = |tag: &str, path: &Path, ro: bool| {
        a.push("-fsdev".into());
        a.push(format!(
            "local,id={tag},path={},security_model=none{}",
            path.display(),
            if ro { ",readonly=on" } else { "" }
        ));
        a.push("-device".into());
        a.push(format!("virtio-9p-device,fsdev={tag},mount_tag={tag}"));
    };
    share("usr", Path::new("/usr"), true);
    share("etc", Path::new("/etc"), true);
    share("run", run, false);
    for (i, p) in shares.iter().enumerate() {
        share(&format!("s{i}"), p, true);
    }
    a
}
