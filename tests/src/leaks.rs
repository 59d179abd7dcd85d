//! The suite's final check: nothing a test (prefix `bt` + 8 hex) or the product (prefix
//! `berth`) created may be left on the host: netns, links, mounts, cgroups, state dirs,
//! processes, nft tables.

use crate::names::{contains_test_name, is_ours};
use std::fs;
use std::path::Path;
use std::process::Command;

/// Everything left behind, one line per object. Empty means clean.
pub fn scan() -> Vec<String> {
    let mut found = Vec::new();
    netns(&mut found);
    links(&mut found);
    mounts(&mut found);
    cgroups(&mut found);
    state_dirs(&mut found);
    processes(&mut found);
    nft_tables(&mut found);
    found
}

fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn netns(found: &mut Vec<String>) {
    for dir in ["/run/netns", "/run/berth/netns"] {
        for name in entries(Path::new(dir)) {
            if is_ours(&name) || dir.starts_with("/run/berth") {
                found.push(format!("netns {dir}/{name}"));
            }
        }
    }
}

fn links(found: &mut Vec<String>) {
    for name in entries(Path::new("/sys/class/net")) {
        if is_ours(&name) {
            found.push(format!("link {name}"));
        }
    }
}

fn mounts(found: &mut Vec<String>) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in info.lines() {
        let Some(point) = line.split(' ').nth(4) else {
            continue;
        };
        if contains_test_name(point) || point.split('/').any(|c| c.starts_with("berth")) {
            found.push(format!("mount {point}"));
        }
    }
}

fn cgroups(found: &mut Vec<String>) {
    fn walk(dir: &Path, depth: usize, found: &mut Vec<String>) {
        if depth == 0 {
            return;
        }
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.filter_map(|e| e.ok()) {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if is_ours(&name) {
                found.push(format!("cgroup {}", e.path().display()));
            } else {
                walk(&e.path(), depth - 1, found);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), 4, found);
}

fn state_dirs(found: &mut Vec<String>) {
    let tmp = std::env::temp_dir();
    for name in entries(&tmp) {
        if name.len() >= 10 && contains_test_name(&name[..10]) {
            found.push(format!("state dir {}", tmp.join(name).display()));
        }
    }
}

fn processes(found: &mut Vec<String>) {
    let me = std::process::id().to_string();
    for pid in entries(Path::new("/proc")) {
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let proc = Path::new("/proc").join(&pid);
        let cmdline = fs::read(proc.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.is_empty() {
            continue; // a kernel thread or a zombie: nothing left running
        }
        let cgroup = fs::read_to_string(proc.join("cgroup")).unwrap_or_default();
        // The program itself, not its arguments: `cargo build -p berth-agent` is not a leak.
        let argv0 = cmdline.split(' ').next().unwrap_or_default();
        let program = argv0.rsplit('/').next().unwrap_or_default();
        let by_name = contains_test_name(argv0)
            || ["berth-runtime", "berth-netd", "berth-agent", "berth-probe"].contains(&program)
            || (contains_test_name(&cmdline)
                && !["cargo", "rustc", "cargo-clippy"].contains(&program));
        let by_cgroup = cgroup.lines().any(|l| {
            l.rsplit(':')
                .next()
                .is_some_and(|p| p.split('/').any(is_ours))
        });
        if by_name || by_cgroup {
            found.push(format!("process {pid}: {}", cmdline.trim()));
        }
    }
}

fn nft_tables(found: &mut Vec<String>) {
    let Ok(out) = Command::new("nft").args(["list", "tables"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "table inet berth"
        if let Some(name) = line.split_whitespace().nth(2) {
            if is_ours(name) {
                found.push(format!("nft table {}", line.trim_start_matches("table ")));
            }
        }
    }
    // Test netns hold their own rulesets; those netns are already reported above.
}
