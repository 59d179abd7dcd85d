//! `berth topology`: the host's VPC as a Graphviz DOT graph (pure: built from what netd and
//! the agent report, unit-tested on the text). Node ids are stable and greppable:
//! `"vpc"`, `"subnet:<name>"`, `"eni:<eni id>"`, `"task:<task id>"`,
//! `"container:<task id>/<name>"`, `"sg:<group id>"`, `"cidr:<block>"`. An edge
//! `"sg:a" -> "sg:b"` says members of group a may open connections to members of group b
//! (b's ingress names a, solid; or a's egress names b, dashed).

use netd::api::{Eni, Rule, SecurityGroup, Subnet};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// A running task and its containers, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNode {
    /// The task id (netd's ENI key).
    pub id: String,
    /// `family:revision`.
    pub definition: String,
    /// The containers' names.
    pub containers: Vec<String>,
}

/// What the graph is drawn from.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The VPC block (from netd's nft table), if known.
    pub vpc_cidr: Option<String>,
    /// netd's subnets.
    pub subnets: Vec<Subnet>,
    /// netd's ENIs.
    pub enis: Vec<Eni>,
    /// The agent's tasks.
    pub tasks: Vec<TaskNode>,
    /// netd's security groups.
    pub groups: Vec<SecurityGroup>,
}

/// A DOT double-quoted string; a newline becomes DOT's `\n` line break, so every statement
/// stays on one line.
fn q(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

fn ports(r: &Rule) -> String {
    let p = match (r.from_port, r.to_port) {
        (Some(a), Some(b)) if a != b => format!(" {a}-{b}"),
        (Some(a), _) => format!(" {a}"),
        _ => String::new(),
    };
    format!("{}{p}", r.protocol)
}

/// The peer node of a rule (`sg:<id>` or `cidr:<block>`).
fn peer(r: &Rule) -> Option<String> {
    r.group
        .as_ref()
        .map(|g| format!("sg:{g}"))
        .or_else(|| r.cidr.as_ref().map(|c| format!("cidr:{c}")))
}

/// The graph.
pub fn dot(m: &Model) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "digraph berth {{");
    let _ = writeln!(o, "  rankdir=LR;");
    let _ = writeln!(o, "  node [fontname=\"monospace\" fontsize=10];");
    let vpc = m.vpc_cidr.as_deref().unwrap_or("(VPC block unknown)");
    let _ = writeln!(
        o,
        "  \"vpc\" [shape=box3d label={}];",
        q(&format!("VPC\n{vpc}"))
    );
    for s in &m.subnets {
        let id = format!("subnet:{}", s.name);
        let kind = if s.public { "public" } else { "private" };
        let label = format!(
            "subnet {} ({kind})\n{}\ngateway {}",
            s.name, s.cidr, s.gateway
        );
        let _ = writeln!(o, "  {} [shape=box label={}];", q(&id), q(&label));
        let _ = writeln!(o, "  \"vpc\" -> {};", q(&id));
    }
    for e in &m.enis {
        let id = format!("eni:{}", e.eni_id);
        let label = format!(
            "ENI {}\n{}/{}\n{}",
            e.eni_id, e.ip, e.prefix_length, e.host_interface
        );
        let _ = writeln!(o, "  {} [shape=ellipse label={}];", q(&id), q(&label));
        let _ = writeln!(o, "  {} -> {};", q(&format!("subnet:{}", e.subnet)), q(&id));
        for g in &e.security_groups {
            let _ = writeln!(
                o,
                "  {} -> {} [style=dotted arrowhead=none label=\"member\"];",
                q(&id),
                q(&format!("sg:{g}"))
            );
        }
        if let Some(t) = m.tasks.iter().find(|t| t.id == e.task) {
            let _ = writeln!(o, "  {} -> {};", q(&id), q(&format!("task:{}", t.id)));
        }
    }
    for t in &m.tasks {
        let id = format!("task:{}", t.id);
        let label = format!("task {}\n{}", t.id, t.definition);
        let _ = writeln!(o, "  {} [shape=component label={}];", q(&id), q(&label));
        for c in &t.containers {
            let cid = format!("container:{}/{c}", t.id);
            let _ = writeln!(
                o,
                "  {} [shape=box style=rounded label={}];",
                q(&cid),
                q(&format!("container {c}"))
            );
            let _ = writeln!(o, "  {} -> {};", q(&id), q(&cid));
        }
    }
    let mut cidrs = BTreeSet::new();
    for g in &m.groups {
        let label = format!("security group {}\n{} member(s)", g.id, g.members.len());
        let _ = writeln!(
            o,
            "  {} [shape=octagon label={}];",
            q(&format!("sg:{}", g.id)),
            q(&label)
        );
        for r in g.ingress.iter().chain(&g.egress) {
            if let Some(c) = &r.cidr {
                cidrs.insert(c.clone());
            }
        }
    }
    for c in &cidrs {
        let _ = writeln!(
            o,
            "  {} [shape=plaintext label={}];",
            q(&format!("cidr:{c}")),
            q(c)
        );
    }
    for g in &m.groups {
        let me = format!("sg:{}", g.id);
        for r in &g.ingress {
            if let Some(from) = peer(r) {
                let _ = writeln!(
                    o,
                    "  {} -> {} [color=blue label={}];",
                    q(&from),
                    q(&me),
                    q(&format!("ingress {}", ports(r)))
                );
            }
        }
        for r in &g.egress {
            if let Some(to) = peer(r) {
                let _ = writeln!(
                    o,
                    "  {} -> {} [color=gray style=dashed label={}];",
                    q(&me),
                    q(&to),
                    q(&format!("egress {}", ports(r)))
                );
            }
        }
    }
    let _ = writeln!(o, "}}");
    o
}

/// The VPC block from netd's `ingress` chain (`ip daddr <vpc> drop`), as `nft list` prints it.
pub fn vpc_from_ingress(rules: &[String]) -> Option<String> {
    rules.iter().find_map(|r| {
        r.strip_prefix("ip daddr ")?
            .strip_suffix(" drop")
            .filter(|c| c.contains('/') && !c.contains(' '))
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: &str, port: Option<i64>, group: Option<&str>, cidr: Option<&str>) -> Rule {
        Rule {
            protocol: protocol.into(),
            from_port: port,
            to_port: port,
            cidr: cidr.map(Into::into),
            group: group.map(Into::into),
        }
    }

    fn group(id: &str, ingress: Vec<Rule>, egress: Vec<Rule>, members: &[&str]) -> SecurityGroup {
        SecurityGroup {
            id: id.into(),
            description: String::new(),
            ingress,
            egress,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    #[test]
    fn a_group_admitting_another_is_an_edge_from_it() {
        let m = Model {
            vpc_cidr: Some("10.233.0.0/16".into()),
            groups: vec![
                group(
                    "web",
                    vec![rule("tcp", Some(8080), Some("clients"), None)],
                    vec![],
                    &["10.233.1.4"],
                ),
                group(
                    "clients",
                    vec![],
                    vec![rule("all", None, None, Some("0.0.0.0/0"))],
                    &[],
                ),
            ],
            ..Default::default()
        };
        let d = dot(&m);
        assert!(
            d.contains("\"sg:clients\" -> \"sg:web\" [color=blue label=\"ingress tcp 8080\"];"),
            "{d}"
        );
        assert!(
            d.contains("\"sg:clients\" -> \"cidr:0.0.0.0/0\" [color=gray style=dashed"),
            "{d}"
        );
        assert!(d.contains("\"cidr:0.0.0.0/0\" [shape=plaintext"), "{d}");
        assert!(d.contains("label=\"VPC\\n10.233.0.0/16\""), "{d}");
        assert!(
            d.lines()
                .all(|l| l.ends_with(';') || l.ends_with('{') || l == "}"),
            "{d}"
        );
        assert!(d.starts_with("digraph berth {") && d.ends_with("}\n"));
    }

    #[test]
    fn enis_hang_from_their_subnet_and_carry_their_task() {
        let eni: Eni = serde_json::from_value(serde_json::json!({
            "task": "t1", "eniId": "eni-1", "subnet": "private", "ip": "10.233.1.4",
            "prefixLength": 24, "gateway": "10.233.1.1", "mac": "0a:58:0a:e9:01:04",
            "hostInterface": "berth01234567", "interfaceName": "eth0",
            "netnsPath": "/run/berth/netns/berth01234567", "securityGroups": ["web"],
            "portMappings": [], "resolvConf": "", "hosts": ""
        }))
        .unwrap();
        let m = Model {
            enis: vec![eni],
            tasks: vec![TaskNode {
                id: "t1".into(),
                definition: "web:1".into(),
                containers: vec!["app".into(), "side\"car".into()],
            }],
            ..Default::default()
        };
        let d = dot(&m);
        assert!(d.contains("\"subnet:private\" -> \"eni:eni-1\";"));
        assert!(d.contains("\"eni:eni-1\" -> \"sg:web\" [style=dotted"));
        assert!(d.contains("\"eni:eni-1\" -> \"task:t1\";"));
        assert!(d.contains("\"task:t1\" -> \"container:t1/side\\\"car\";"));
    }

    #[test]
    fn the_vpc_block_is_read_from_the_ingress_chain() {
        let rules = vec![
            "jump dispatch_in".to_owned(),
            "ip daddr 10.233.0.0/16 drop".to_owned(),
            "accept".to_owned(),
        ];
        assert_eq!(vpc_from_ingress(&rules).unwrap(), "10.233.0.0/16");
        assert_eq!(vpc_from_ingress(&rules[..1]), None);
    }
}
