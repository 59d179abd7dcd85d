//! The human page of `berth inspect`: one fact per line, each line starting with a stable
//! label (`ns net:`, `cgroup memory.limit:`, `eni ip:`, …) that docs/inspect.md explains and
//! scripts may grep. Container lines are indented by two spaces.

use super::cgroup::CgroupFacts;
use super::procfs::CapSet;
use super::{Inspection, NsFacts};
use std::fmt::Write as _;

const WIDTH: usize = 24;

fn line(out: &mut String, indent: &str, label: &str, value: &str) {
    let label = format!("{indent}{label}:");
    let _ = writeln!(out, "{label:<WIDTH$} {value}");
}

fn cgroup_lines(out: &mut String, indent: &str, head: &str, cg: &CgroupFacts) {
    line(out, indent, head, &format!("{}  ({})", cg.path, cg.layout));
    for v in &cg.values {
        line(
            out,
            indent,
            &format!("cgroup {}", v.key),
            &format!("{}  {}", v.display, v.file),
        );
    }
}

fn ns_value(n: &NsFacts) -> String {
    let whose = if n.is_host {
        "host's".to_owned()
    } else if n.is_shared {
        format!("shared by {}", n.shared_with.join(", "))
    } else {
        "own".to_owned()
    };
    format!("{}  {whose}", n.inode)
}

fn caps(c: &CapSet) -> String {
    if c.names.is_empty() {
        format!("{}  (none)", c.hex)
    } else {
        format!("{}  {}", c.hex, c.names.join(" "))
    }
}

/// The page.
pub fn page(i: &Inspection) -> String {
    let mut o = String::new();
    line(
        &mut o,
        "",
        "task",
        &format!(
            "{}  {} (desired {})",
            i.task.id, i.task.last_status, i.task.desired_status
        ),
    );
    line(&mut o, "", "arn", &i.task.arn);
    for (kind, inode) in &i.host_namespaces {
        line(
            &mut o,
            "",
            &format!("host ns {kind}"),
            &format!("{inode}  ({})", i.host_namespaces_from),
        );
    }
    if let Some(cg) = &i.task_cgroup {
        o.push('\n');
        cgroup_lines(&mut o, "", "task cgroup", cg);
    }
    for c in &i.containers {
        o.push('\n');
        let pid = c
            .pid
            .map_or_else(|| "no live pid".to_owned(), |p| format!("pid {p}"));
        line(
            &mut o,
            "",
            &format!("container {}", c.name),
            &format!(
                "{pid}  runtime id {}  ({})",
                c.runtime_id.as_deref().unwrap_or("-"),
                c.runtime_status
            ),
        );
        for n in &c.namespaces {
            line(&mut o, "  ", &format!("ns {}", n.kind), &ns_value(n));
        }
        if let Some(cg) = &c.cgroup {
            cgroup_lines(&mut o, "  ", "cgroup", cg);
        }
        if let Some(r) = &c.rootfs {
            line(
                &mut o,
                "  ",
                "rootfs",
                &format!("{} on /  (source {})", r.fstype, r.source),
            );
            for l in &r.layers {
                let v = match &l.digest {
                    Some(d) => format!("{d}  {}", l.dir),
                    None => l.dir.clone(),
                };
                line(&mut o, "  ", "rootfs lowerdir", &v);
            }
            if let Some(u) = &r.upperdir {
                line(&mut o, "  ", "rootfs upperdir", u);
            }
            if let Some(w) = &r.workdir {
                line(&mut o, "  ", "rootfs workdir", w);
            }
        }
        if let Some(s) = &c.security {
            let filters = s
                .seccomp_filters
                .map(|n| format!(", {n} filter(s)"))
                .unwrap_or_default();
            line(
                &mut o,
                "  ",
                "seccomp",
                &format!("{} (mode {}{filters})", s.seccomp, s.seccomp_mode),
            );
            line(
                &mut o,
                "  ",
                "no_new_privs",
                if s.no_new_privs { "1" } else { "0" },
            );
            line(&mut o, "  ", "caps effective", &caps(&s.cap_eff));
            line(&mut o, "  ", "caps permitted", &caps(&s.cap_prm));
            line(&mut o, "  ", "caps bounding", &caps(&s.cap_bnd));
        }
    }
    if let Some(e) = &i.eni {
        o.push('\n');
        line(
            &mut o,
            "",
            "eni netns",
            &format!("{}  (inode {})", e.netns_path, e.netns_inode),
        );
        line(
            &mut o,
            "",
            "eni task veth",
            &format!(
                "{} (ifindex {})",
                e.task_interface.name, e.task_interface.index
            ),
        );
        if let Some(h) = &e.host_interface {
            line(
                &mut o,
                "",
                "eni host veth",
                &format!("{} (ifindex {})", h.name, h.index),
            );
        }
        line(
            &mut o,
            "",
            "eni ip",
            &format!("{}/{}", e.ip, e.prefix_length),
        );
        line(&mut o, "", "eni mac", e.mac.as_deref().unwrap_or("-"));
        line(&mut o, "", "eni subnet", &e.subnet);
        line(
            &mut o,
            "",
            "eni gateway",
            e.gateway.as_deref().unwrap_or("-"),
        );
    }
    for g in &i.security_groups {
        o.push('\n');
        for (dir, chain, rules) in [
            ("ingress", &g.ingress_chain, &g.ingress),
            ("egress", &g.egress_chain, &g.egress),
        ] {
            let label = format!("sg {} {dir}", g.id);
            if rules.is_empty() {
                line(
                    &mut o,
                    "",
                    &label,
                    &format!("(no rules: nothing allowed)  chain {chain}"),
                );
            }
            for r in rules {
                line(&mut o, "", &label, &format!("{r}  chain {chain}"));
            }
        }
        line(
            &mut o,
            "",
            &format!("sg {} members", g.id),
            &g.members.join(", "),
        );
    }
    if !i.published_ports.is_empty() {
        o.push('\n');
    }
    for p in &i.published_ports {
        line(
            &mut o,
            "",
            "port",
            &format!("{}/{} -> {}", p.host_port, p.protocol, p.container_port),
        );
    }
    if !i.gone.is_empty() {
        o.push('\n');
    }
    for g in &i.gone {
        line(&mut o, "", "gone", g);
    }
    o
}
