//! packaging/ (issue 6): the systemd units pass `systemd-analyze verify` without a warning (and
//! a broken copy does not), and the default config files are exactly the built-in defaults:
//! every key the daemons take is in them, each commented out with its default value, and
//! uncommented they load through the daemons' own config code.

// Test code: a failed setup step panics, which is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::{bin_path, unique, wait_until, workspace_root, Cleanup};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn packaging() -> PathBuf {
    workspace_root().join("packaging")
}

fn scratch(guard: &mut Cleanup, role: &str) -> PathBuf {
    let dir = berth_tests::env::test_dir(&unique(role));
    let d = dir.clone();
    guard.defer(format!("remove {}", dir.display()), move || {
        std::fs::remove_dir_all(&d).map_err(|e| e.to_string())
    });
    dir
}

/// `systemd-analyze verify` of `units`: (success, stderr).
fn verify(units: &[PathBuf]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("systemd-analyze (Debian's systemd package) must be installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of the unit `name` in `dir` whose ExecStart runs the binary from BERTH_BIN_DIR
/// (`systemd-analyze verify` checks that it exists); everything else is verbatim.
fn unit_copy(dir: &Path, name: &str, binary: &str, config: &str) -> PathBuf {
    let text = std::fs::read_to_string(packaging().join("systemd").join(name)).unwrap();
    let exec = format!("ExecStart=/usr/local/bin/{binary} --config /etc/berth/{config}\n");
    assert!(
        text.contains(&exec),
        "{name} starts /usr/local/bin/{binary} with /etc/berth/{config}"
    );
    let local = format!(
        "ExecStart={} --config /etc/berth/{config}\n",
        bin_path(binary).display()
    );
    let path = dir.join(name);
    std::fs::write(&path, text.replace(&exec, &local)).unwrap();
    path
}

#[test]
fn systemd_units_verify_cleanly_and_a_broken_one_does_not() {
    let mut guard = Cleanup::new();
    let dir = scratch(&mut guard, "pu");
    let netd = unit_copy(&dir, "berth-netd.service", "berth-netd", "netd.toml");
    let agent = unit_copy(&dir, "berth-agent.service", "berth-agent", "agent.toml");
    let (ok, stderr) = verify(&[netd.clone(), agent.clone()]);
    assert!(ok && stderr.trim().is_empty(), "verify: {stderr}");

    let agent_text = std::fs::read_to_string(&agent).unwrap();
    for line in [
        "Requires=berth-netd.service",
        "After=berth-netd.service",
        "KillMode=process",
    ] {
        assert!(agent_text.contains(line), "berth-agent.service: {line}");
    }
    for (unit, text) in [
        (&netd, std::fs::read_to_string(&netd).unwrap()),
        (&agent, agent_text),
    ] {
        // A private mount namespace would hide the netns bind mounts and rootfs overlays.
        for key in [
            "ProtectSystem",
            "ProtectHome",
            "PrivateTmp",
            "ReadOnlyPaths",
            "PrivateMounts",
        ] {
            let set = text.lines().any(|l| l.starts_with(&format!("{key}=")));
            assert!(
                !set,
                "{}: {key} gives the service its own mount namespace",
                unit.display()
            );
        }
    }

    // A misspelt key and an invalid value are warnings (exit 0): the check reads stderr.
    let broken = dir.join("broken");
    std::fs::create_dir(&broken).unwrap();
    let text = std::fs::read_to_string(&netd).unwrap();
    let bad = broken.join("berth-netd.service");
    std::fs::write(&bad, text.replace("RestartSec=", "RestartSecs=")).unwrap();
    let (_, stderr) = verify(std::slice::from_ref(&bad));
    assert!(
        stderr.contains("RestartSecs"),
        "verify of a misspelt key: {stderr:?}"
    );
    std::fs::write(&bad, text.replace("Type=simple", "Type=simpel")).unwrap();
    let (_, stderr) = verify(&[bad]);
    assert!(
        stderr.contains("simpel"),
        "verify of a bad value: {stderr:?}"
    );
}

/// The file with every `#key = value` / `#[[table]]` line uncommented ("# " lines are prose).
fn uncommented(name: &str) -> String {
    let text = std::fs::read_to_string(packaging().join("config").join(name)).unwrap();
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `--long` flags of `binary --help`, without --config, --help and --version.
fn flags(binary: &str) -> Vec<(String, String)> {
    let out = Command::new(bin_path(binary))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut found: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let t = t
            .strip_prefix("-h, ")
            .or_else(|| t.strip_prefix("-V, "))
            .unwrap_or(t);
        if let Some(rest) = t.strip_prefix("--") {
            let flag: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            found.push((flag, rest.to_owned()));
        } else if let Some((_, text)) = found.last_mut() {
            text.push_str(t);
            text.push(' ');
        }
    }
    found.retain(|(f, _)| !["config", "help", "version"].contains(&f.as_str()));
    assert!(!found.is_empty(), "{binary} --help lists flags: {help}");
    found
}

#[test]
fn netd_config_file_is_every_default() {
    let text = uncommented("netd.toml");
    for (flag, _) in flags("berth-netd") {
        let key = flag.replace('-', "_");
        assert!(
            text.contains(&format!("\n{key} = ")),
            "netd.toml has no line for --{flag}"
        );
    }
    let mut guard = Cleanup::new();
    let dir = scratch(&mut guard, "pn");
    let file = dir.join("netd.toml");
    std::fs::write(&file, &text).unwrap();
    let loaded = netd::config::Config::load(Some(&file)).expect("the uncommented netd.toml loads");
    let default = netd::config::Config::load(None).unwrap();
    let view = |c: &netd::config::Config| {
        format!(
            "{:?}",
            (
                &c.socket,
                &c.state_dir,
                &c.run_dir,
                (&c.netns_dir, c.netns_pool),
                &c.table,
                c.is_nft_binary_forced,
                &c.vpc,
                &c.subnets,
                &c.dns_servers,
                &c.dns_search,
                &c.host_services,
                &c.groups
            )
        )
    };
    assert_eq!(
        view(&loaded),
        view(&default),
        "netd.toml uncommented = the defaults"
    );
}

#[test]
fn agent_config_file_is_every_default_and_starts_the_agent() {
    let text = uncommented("agent.toml");
    for (flag, help) in flags("berth-agent") {
        let key = flag.replace('-', "_");
        let Some(line) = text.lines().find(|l| l.starts_with(&format!("{key} = "))) else {
            // Keys without a fixed default are shown as an example ("# key = ...").
            assert!(
                text.contains(&format!("\n# {key} = ")),
                "agent.toml has no line for --{flag}"
            );
            continue;
        };
        let value = line[key.len() + 3..].trim().trim_matches('"');
        assert!(
            help.contains(&format!("Default {value}")),
            "agent.toml: {key} = {value}, but --{flag} says: {help}"
        );
    }
    // The real agent reads the uncommented file (unknown keys are refused); flags move its
    // socket and state into a scratch directory.
    let mut guard = Cleanup::new();
    let dir = scratch(&mut guard, "pa");
    let file = dir.join("agent.toml");
    std::fs::write(&file, &text).unwrap();
    let sock = dir.join("agent.sock");
    let mut agent = Command::new(bin_path("berth-agent"))
        .arg("--config")
        .arg(&file)
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--socket")
        .arg(&sock)
        .arg("--netd-socket")
        .arg(dir.join("netd.sock"))
        .arg("--runtime-root")
        .arg(dir.join("runtime"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.log")).unwrap())
        .spawn()
        .unwrap();
    let started = wait_until(Duration::from_secs(20), "the agent's socket", || {
        if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
            return Some(true);
        }
        matches!(agent.try_wait(), Ok(Some(_))).then_some(false)
    });
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(agent.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = agent.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    assert!(started, "berth-agent with agent.toml: {status}: {log}");

    // A misspelt key stops it with a line naming the key.
    std::fs::write(&file, text.replace("\nregion = ", "\nregoin = ")).unwrap();
    let out = Command::new(bin_path("berth-agent"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("regoin"), "{err}");
}
