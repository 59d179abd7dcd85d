//! `berth net ...`: subnets, ENIs and security groups, through berth-netd's socket.
//!
//! Security groups are managed as `aws ec2` does it: `create-security-group`,
//! `authorize-security-group-ingress --group-id web --protocol tcp --port 8080
//! --source-group app`, `revoke-…`, `describe-security-groups`, `delete-security-group`.

use super::{CliError, Ctx};
use clap::{Args, Subcommand, ValueEnum};
use netd::api::{AttachRequest, Client, Eni, PortMapping, Rule, SecurityGroup, SecurityGroupSpec};
use std::path::PathBuf;
use std::process::ExitCode;

/// How to reach netd and how to print.
#[derive(Args, Clone)]
pub struct Conn {
    /// berth-netd's API socket.
    #[arg(long, env = "BERTH_NETD_SOCKET", default_value = netd::api::DEFAULT_SOCKET)]
    netd_socket: PathBuf,
    /// `table` for people, `json` for scripts (the API's own JSON).
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

/// Output format.
#[derive(ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// JSON as netd answers it.
    Json,
}

/// A rule given on the command line, as `aws ec2 authorize-security-group-ingress` takes it.
#[derive(Args, Clone)]
pub struct RuleArgs {
    /// The group to change.
    #[arg(long)]
    group_id: String,
    /// tcp, udp, icmp or all.
    #[arg(long)]
    protocol: String,
    /// A port (`8080`) or a range (`8000-8100`); tcp and udp only.
    #[arg(long)]
    port: Option<String>,
    /// The peer as a CIDR block.
    #[arg(long, conflicts_with = "source_group")]
    cidr: Option<String>,
    /// The peer as a security group (its members' current IPs).
    #[arg(long)]
    source_group: Option<String>,
}

/// The `berth net` subcommands.
#[derive(Subcommand)]
pub enum NetCmd {
    /// List the VPC's subnets.
    Subnets {
        #[command(flatten)]
        conn: Conn,
    },
    /// List attached ENIs.
    Enis {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one task's ENI.
    Eni {
        /// The task.
        task: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Give a task an ENI.
    Attach {
        /// The task (ARN or id).
        #[arg(long)]
        task: String,
        /// The subnet; netd's first subnet when absent.
        #[arg(long)]
        subnet: Option<String>,
        /// A security group (repeat, up to 5); `default` when absent.
        #[arg(long = "security-group")]
        security_groups: Vec<String>,
        /// Publish HOST:CONTAINER[/udp] (public subnets only).
        #[arg(long = "publish")]
        publish: Vec<String>,
        /// The task's hostname.
        #[arg(long)]
        hostname: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a task's ENI.
    Detach {
        /// The task.
        task: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List security groups (all, or those named).
    DescribeSecurityGroups {
        /// Only these groups.
        #[arg(long = "group-ids", num_args = 1..)]
        group_ids: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Create a group: no ingress, and all egress unless `--no-default-egress`.
    CreateSecurityGroup {
        /// The new group's id (`[a-z0-9-]`).
        #[arg(long = "group-name")]
        group_name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// Start with no egress rule (all egress denied).
        #[arg(long)]
        no_default_egress: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a group no ENI uses and no rule names.
    DeleteSecurityGroup {
        /// The group.
        #[arg(long)]
        group_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Add an ingress rule.
    AuthorizeSecurityGroupIngress {
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove an ingress rule.
    RevokeSecurityGroupIngress {
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Add an egress rule.
    AuthorizeSecurityGroupEgress {
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove an egress rule.
    RevokeSecurityGroupEgress {
        #[command(flatten)]
        rule: RuleArgs,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Run one `berth net` subcommand.
pub fn run(cmd: NetCmd, _ctx: &Ctx) -> Result<ExitCode, CliError> {
    match cmd {
        NetCmd::Subnets { conn } => {
            let subnets = client(&conn).subnets()?;
            print(&conn, &subnets, || {
                let mut rows = vec![row(&["NAME", "CIDR", "PUBLIC", "GATEWAY", "FREE", "ENIS"])];
                for s in &subnets {
                    rows.push(vec![
                        s.name.clone(),
                        s.cidr.clone(),
                        s.public.to_string(),
                        s.gateway.to_string(),
                        s.available_ips.to_string(),
                        s.enis.to_string(),
                    ]);
                }
                rows
            })
        }
        NetCmd::Enis { conn } => {
            let enis = client(&conn).enis()?;
            print(&conn, &enis, || eni_rows(&enis))
        }
        NetCmd::Eni { task, conn } => {
            let eni = client(&conn).eni(&task)?;
            print(&conn, &eni, || eni_rows(std::slice::from_ref(&eni)))
        }
        NetCmd::Attach {
            task,
            subnet,
            security_groups,
            publish,
            hostname,
            conn,
        } => {
            let port_mappings = publish
                .iter()
                .map(|p| parse_publish(p))
                .collect::<Result<Vec<_>, _>>()?;
            let req = AttachRequest {
                task,
                subnet,
                security_groups,
                port_mappings,
                hostname,
            };
            let eni = client(&conn).attach(&req)?;
            print(&conn, &eni, || eni_rows(std::slice::from_ref(&eni)))
        }
        NetCmd::Detach { task, conn } => {
            client(&conn).detach(&task)?;
            Ok(ExitCode::SUCCESS)
        }
        NetCmd::DescribeSecurityGroups { group_ids, conn } => {
            let c = client(&conn);
            let groups = if group_ids.is_empty() {
                c.security_groups()?
            } else {
                group_ids
                    .iter()
                    .map(|id| c.security_group(id))
                    .collect::<Result<Vec<_>, _>>()?
            };
            print(&conn, &groups, || group_rows(&groups))
        }
        NetCmd::CreateSecurityGroup {
            group_name,
            description,
            no_default_egress,
            conn,
        } => {
            let spec = SecurityGroupSpec {
                id: Some(group_name),
                description,
                ingress: vec![],
                egress: no_default_egress.then(Vec::new),
            };
            let g = client(&conn).create_security_group(&spec)?;
            print(&conn, &g, || group_rows(std::slice::from_ref(&g)))
        }
        NetCmd::DeleteSecurityGroup { group_id, conn } => {
            client(&conn).delete_security_group(&group_id)?;
            Ok(ExitCode::SUCCESS)
        }
        NetCmd::AuthorizeSecurityGroupIngress { rule, conn } => {
            change(&conn, &rule, Direction::Ingress, true)
        }
        NetCmd::RevokeSecurityGroupIngress { rule, conn } => {
            change(&conn, &rule, Direction::Ingress, false)
        }
        NetCmd::AuthorizeSecurityGroupEgress { rule, conn } => {
            change(&conn, &rule, Direction::Egress, true)
        }
        NetCmd::RevokeSecurityGroupEgress { rule, conn } => {
            change(&conn, &rule, Direction::Egress, false)
        }
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

/// Read the group, add or remove the rule, write the whole group back (netd applies it in
/// one nft transaction).
fn change(conn: &Conn, args: &RuleArgs, dir: Direction, add: bool) -> Result<ExitCode, CliError> {
    let c = client(conn);
    let group = c.security_group(&args.group_id)?;
    let rule = rule_from(args)?;
    let (mut ingress, mut egress) = (group.ingress.clone(), group.egress.clone());
    let list = match dir {
        Direction::Ingress => &mut ingress,
        Direction::Egress => &mut egress,
    };
    if add {
        if !list.contains(&rule) {
            list.push(rule);
        }
    } else {
        let before = list.len();
        list.retain(|r| *r != rule);
        if list.len() == before {
            return Err(format!("group {:?} has no such rule", args.group_id).into());
        }
    }
    let spec = SecurityGroupSpec {
        id: None,
        description: group.description,
        ingress,
        egress: Some(egress),
    };
    let g = c.put_security_group(&args.group_id, &spec)?;
    print(conn, &g, || group_rows(std::slice::from_ref(&g)))
}

/// The rule as netd stores it (ports filled in both ends, as netd echoes them).
fn rule_from(args: &RuleArgs) -> Result<Rule, CliError> {
    let (from_port, to_port) = match &args.port {
        None => (None, None),
        Some(p) => {
            let (a, b) = p.split_once('-').unwrap_or((p, p));
            let parse = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("--port: {p:?} is not a port or a range like 8000-8100"))
            };
            (Some(parse(a)?), Some(parse(b)?))
        }
    };
    if args.cidr.is_none() && args.source_group.is_none() {
        return Err("give --cidr or --source-group".into());
    }
    Ok(Rule {
        protocol: args.protocol.clone(),
        from_port,
        to_port,
        cidr: args.cidr.clone(),
        group: args.source_group.clone(),
    })
}

/// `8080:80`, `8080:80/udp`, or `80` (same port on both sides).
fn parse_publish(text: &str) -> Result<PortMapping, CliError> {
    let (ports, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
    let (host, container) = ports.split_once(':').unwrap_or((ports, ports));
    let parse = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("--publish: {text:?} is not HOST:CONTAINER[/udp]"))
    };
    Ok(PortMapping {
        container_port: parse(container)?,
        host_port: Some(parse(host)?),
        protocol: protocol.to_owned(),
    })
}

fn client(conn: &Conn) -> Client {
    Client::new(&conn.netd_socket)
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

fn eni_rows(enis: &[Eni]) -> Vec<Vec<String>> {
    let mut rows = vec![row(&[
        "TASK", "ENI", "SUBNET", "IP", "MAC", "GROUPS", "NETNS",
    ])];
    for e in enis {
        rows.push(vec![
            e.task.clone(),
            e.eni_id.clone(),
            e.subnet.clone(),
            format!("{}/{}", e.ip, e.prefix_length),
            e.mac.clone(),
            e.security_groups.join(","),
            e.netns_path.display().to_string(),
        ]);
    }
    rows
}

fn rule_text(r: &Rule) -> String {
    let ports = match (r.from_port, r.to_port) {
        (Some(a), Some(b)) if a != b => format!("/{a}-{b}"),
        (Some(a), _) => format!("/{a}"),
        _ => String::new(),
    };
    let peer = r
        .cidr
        .clone()
        .or_else(|| r.group.clone())
        .unwrap_or_default();
    format!("{}{ports} {peer}", r.protocol)
}

fn group_rows(groups: &[SecurityGroup]) -> Vec<Vec<String>> {
    let mut rows = vec![row(&["GROUP", "DIRECTION", "RULE", "MEMBERS"])];
    for g in groups {
        let members = g.members.len().to_string();
        let mut any = false;
        for (dir, list) in [("ingress", &g.ingress), ("egress", &g.egress)] {
            for r in list {
                rows.push(vec![
                    g.id.clone(),
                    dir.into(),
                    rule_text(r),
                    members.clone(),
                ]);
                any = true;
            }
        }
        if !any {
            rows.push(vec![g.id.clone(), "-".into(), "(no rules)".into(), members]);
        }
    }
    rows
}

fn print<T: serde::Serialize>(
    conn: &Conn,
    value: &T,
    rows: impl FnOnce() -> Vec<Vec<String>>,
) -> Result<ExitCode, CliError> {
    match conn.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Table => {
            let rows = rows();
            let cols = rows.first().map_or(0, Vec::len);
            let widths: Vec<usize> = (0..cols)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
                .collect();
            for r in rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                println!("{}", line.join("  ").trim_end());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_and_port_arguments_parse_like_docker_and_aws() {
        let p = parse_publish("18080:8080").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol.as_str()),
            (Some(18080), 8080, "tcp")
        );
        let p = parse_publish("53/udp").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.protocol.as_str()),
            (Some(53), 53, "udp")
        );
        assert!(parse_publish("x:1").is_err());
        let args = RuleArgs {
            group_id: "web".into(),
            protocol: "tcp".into(),
            port: Some("8000-8100".into()),
            cidr: None,
            source_group: Some("app".into()),
        };
        let r = rule_from(&args).unwrap();
        assert_eq!((r.from_port, r.to_port), (Some(8000), Some(8100)));
        assert!(rule_from(&RuleArgs {
            source_group: None,
            ..args
        })
        .is_err());
    }
}
