//! berth-netd's configuration: the VPC, its subnets, the seed security groups and where
//! things live. Every key has a default, so no file at all is a working configuration.

use crate::api::{Rule, SecurityGroupSpec};
use crate::cidr::Cidr;
use crate::error::{InputError, NetdError};
use crate::model::{self, Group, GroupId};
use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The file as written (TOML).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The API socket.
    pub socket: Option<PathBuf>,
    /// Where security group records are kept (survives reboots).
    pub state_dir: Option<PathBuf>,
    /// Where ENI records are kept: runtime state, gone with a reboot like the namespaces
    /// and veths they describe (a tmpfs such as /run).
    pub run_dir: Option<PathBuf>,
    /// Where task netns are bind-mounted.
    pub netns_dir: Option<PathBuf>,
    /// How many task namespaces to keep made ahead of time (0 turns the pool off).
    pub netns_pool: Option<usize>,
    /// The nft table (family inet) netd owns.
    pub table: Option<String>,
    /// The `nft` binary; when set it is run for every change instead of libnftables
    /// in-process (the default when `libnftables.so.1` loads).
    pub nft: Option<PathBuf>,
    /// The VPC's block.
    pub vpc_cidr: Option<String>,
    /// Name servers written into tasks' resolv.conf; the host's non-loopback ones by default.
    pub dns_servers: Option<Vec<String>>,
    /// Search domains for resolv.conf.
    pub dns_search: Option<Vec<String>>,
    /// Host addresses tasks may reach besides ICMP to their gateway (the task metadata
    /// endpoint 169.254.170.2 by default).
    pub host_services: Option<Vec<String>>,
    /// Subnets; a public and a private one by default.
    #[serde(default)]
    pub subnets: Vec<SubnetFile>,
    /// Security groups created on first start (API changes win afterwards).
    #[serde(default)]
    pub security_groups: Vec<GroupFile>,
}

/// A subnet as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetFile {
    /// The name requests use.
    pub name: String,
    /// Its block, inside the VPC's.
    pub cidr: String,
    /// NAT to the uplink and published ports.
    #[serde(default)]
    pub public: bool,
}

/// A security group as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    /// Its id.
    pub id: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Ingress rules (`{protocol, from_port, to_port, cidr, group}`).
    #[serde(default)]
    pub ingress: Vec<RuleFile>,
    /// Egress rules; AWS's allow-all when absent.
    pub egress: Option<Vec<RuleFile>>,
}

/// A rule as written in TOML (snake_case keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// tcp, udp, icmp, all.
    pub protocol: String,
    /// First port.
    pub from_port: Option<i64>,
    /// Last port.
    pub to_port: Option<i64>,
    /// Peer block.
    pub cidr: Option<String>,
    /// Peer group.
    pub group: Option<String>,
}

impl From<&RuleFile> for Rule {
    fn from(r: &RuleFile) -> Rule {
        Rule {
            protocol: r.protocol.clone(),
            from_port: r.from_port,
            to_port: r.to_port,
            cidr: r.cidr.clone(),
            group: r.group.clone(),
        }
    }
}

/// A validated subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetConfig {
    /// Its name.
    pub name: String,
    /// Its block.
    pub cidr: Cidr,
    /// Whether it is public.
    pub public: bool,
}

impl SubnetConfig {
    /// The gateway address (+1).
    pub fn gateway(&self) -> Ipv4Addr {
        self.cidr.gateway().unwrap_or(self.cidr.network())
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The API socket.
    pub socket: PathBuf,
    /// The state directory (group records).
    pub state_dir: PathBuf,
    /// The runtime directory (ENI records).
    pub run_dir: PathBuf,
    /// Whether `run_dir` was set rather than defaulted.
    pub is_run_dir_explicit: bool,
    /// Whether `netns_dir` was set rather than defaulted.
    pub is_netns_dir_explicit: bool,
    /// The netns directory.
    pub netns_dir: PathBuf,
    /// Namespaces kept ready for attaches (`pool`).
    pub netns_pool: usize,
    /// The nft table name (family inet).
    pub table: String,
    /// The nft binary.
    pub nft: PathBuf,
    /// Whether the config named an `nft` binary: then it is used instead of libnftables
    /// in-process.
    pub is_nft_binary_forced: bool,
    /// The VPC block.
    pub vpc: Cidr,
    /// Subnets, in file order; the first is the default for attach.
    pub subnets: Vec<SubnetConfig>,
    /// resolv.conf name servers.
    pub dns_servers: Vec<Ipv4Addr>,
    /// resolv.conf search domains.
    pub dns_search: Vec<String>,
    /// Host addresses tasks may reach.
    pub host_services: Vec<Cidr>,
    /// Seed groups.
    pub groups: Vec<Group>,
}

/// Defaults, as decided in docs/network.md.
pub const DEFAULT_SOCKET: &str = "/run/berth/netd.sock";
/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/berth/netd";
/// The default runtime directory (ENI records).
pub const DEFAULT_RUN_DIR: &str = "/run/berth/netd";
/// The default netns directory.
pub const DEFAULT_NETNS_DIR: &str = "/run/berth/netns";
/// Namespaces made ahead of time: enough for the next attaches of a steady stream, few
/// enough that an idle host keeps almost nothing extra.
pub const DEFAULT_NETNS_POOL: usize = 2;
/// The default table.
pub const DEFAULT_TABLE: &str = "berth";

impl Config {
    /// Read and validate `path`; `None` is the all-defaults configuration.
    pub fn load(path: Option<&Path>) -> Result<Config, NetdError> {
        let (file, shown) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| NetdError::Store {
                    op: "read config",
                    path: p.to_owned(),
                    source,
                })?;
                let file: ConfigFile = toml::from_str(&text).map_err(|e| NetdError::Config {
                    path: p.to_owned(),
                    message: e.to_string().trim().replace('\n', " "),
                })?;
                (file, p.to_owned())
            }
            None => (ConfigFile::default(), PathBuf::from("(defaults)")),
        };
        Config::from_file(file).map_err(|e| NetdError::Config {
            path: shown,
            message: e.to_string(),
        })
    }

    /// Validate a parsed file.
    pub fn from_file(file: ConfigFile) -> Result<Config, InputError> {
        let vpc: Cidr = file
            .vpc_cidr
            .as_deref()
            .unwrap_or("172.31.0.0/16")
            .parse()
            .map_err(|e: crate::cidr::CidrError| InputError::new("vpc_cidr", e.to_string()))?;
        let subnets = if file.subnets.is_empty() {
            default_subnets(vpc)
        } else {
            file.subnets
        };
        let subnets = validate_subnets(vpc, &subnets)?;
        let table = file.table.unwrap_or_else(|| DEFAULT_TABLE.to_owned());
        if table.is_empty()
            || table.len() > 64
            || !table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(InputError::new(
                "table",
                format!("{table:?} is not a table name (a-z A-Z 0-9 _)"),
            ));
        }
        let dns_servers = match file.dns_servers {
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse().map_err(|_| {
                        InputError::new(
                            &format!("dns_servers[{i}]"),
                            format!("{s:?} is not an IPv4 address"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            None => host_name_servers(),
        };
        let host_services = file
            .host_services
            .unwrap_or_else(|| vec!["169.254.170.2/32".into()])
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse().map_err(|e: crate::cidr::CidrError| {
                    InputError::new(&format!("host_services[{i}]"), e.to_string())
                })
            })
            .collect::<Result<_, _>>()?;
        let groups = validate_seed_groups(&file.security_groups)?;
        let state_dir = file.state_dir.clone();
        let mut cfg = Config {
            socket: file.socket.unwrap_or_else(|| DEFAULT_SOCKET.into()),
            state_dir: DEFAULT_STATE_DIR.into(),
            is_run_dir_explicit: file.run_dir.is_some(),
            is_netns_dir_explicit: file.netns_dir.is_some(),
            run_dir: file.run_dir.unwrap_or_else(|| DEFAULT_RUN_DIR.into()),
            netns_dir: file.netns_dir.unwrap_or_else(|| DEFAULT_NETNS_DIR.into()),
            netns_pool: file.netns_pool.unwrap_or(DEFAULT_NETNS_POOL),
            table,
            is_nft_binary_forced: file.nft.is_some(),
            nft: file.nft.unwrap_or_else(|| "nft".into()),
            vpc,
            subnets,
            dns_servers,
            dns_search: file.dns_search.unwrap_or_default(),
            host_services,
            groups,
        };
        if let Some(dir) = state_dir {
            cfg.use_state_dir(dir);
        }
        Ok(cfg)
    }

    /// Use `dir` as the state directory. A second instance must not share the default
    /// runtime or netns directory (each netd removes records and namespaces it does not know),
    /// so unless those were set explicitly they move under `dir` as `run/` and `netns/`:
    /// `--socket` and `--state-dir` are all a side-by-side instance needs.
    pub fn use_state_dir(&mut self, dir: PathBuf) {
        if !self.is_run_dir_explicit {
            self.run_dir = dir.join("run");
        }
        if !self.is_netns_dir_explicit {
            self.netns_dir = dir.join("netns");
        }
        self.state_dir = dir;
    }

    /// The subnet named `name`.
    pub fn subnet(&self, name: &str) -> Option<&SubnetConfig> {
        self.subnets.iter().find(|s| s.name == name)
    }
}

/// A public /20 at the VPC's start and a private /20 after it (as AWS's default VPC
/// carves /20s), or halves of a smaller VPC.
fn default_subnets(vpc: Cidr) -> Vec<SubnetFile> {
    let len = if vpc.prefix_len() + 4 <= 24 {
        vpc.prefix_len().max(12) + 4
    } else {
        (vpc.prefix_len() + 1).min(28)
    };
    let first = Cidr::new_truncating(vpc.network(), len.min(30));
    let next = u64::from(u32::from(first.network())) + first.size();
    let second_start = u32::try_from(next)
        .map(Ipv4Addr::from)
        .unwrap_or(first.network());
    let second = Cidr::new_truncating(second_start, len.min(30));
    vec![
        SubnetFile {
            name: "public".into(),
            cidr: first.to_string(),
            public: true,
        },
        SubnetFile {
            name: "private".into(),
            cidr: second.to_string(),
            public: false,
        },
    ]
}

/// Validate subnets: names unique and well-formed, blocks inside the VPC, no overlaps, and
/// room for at least one task after AWS's 5 reserved addresses.
pub fn validate_subnets(
    vpc: Cidr,
    subnets: &[SubnetFile],
) -> Result<Vec<SubnetConfig>, InputError> {
    let mut out: Vec<SubnetConfig> = Vec::new();
    for (i, s) in subnets.iter().enumerate() {
        let field = format!("subnets[{i}]");
        let ok_name = !s.name.is_empty()
            && s.name.len() <= 64
            && s.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        if !ok_name {
            return Err(InputError::new(
                &format!("{field}.name"),
                format!("{:?} is not a subnet name", s.name),
            ));
        }
        let cidr: Cidr = s.cidr.parse().map_err(|e: crate::cidr::CidrError| {
            InputError::new(&format!("{field}.cidr"), e.to_string())
        })?;
        if !vpc.contains_block(&cidr) {
            return Err(InputError::new(
                &format!("{field}.cidr"),
                format!("{cidr} is not inside the VPC {vpc}"),
            ));
        }
        if cidr.prefix_len() > 28 {
            return Err(InputError::new(
                &format!("{field}.cidr"),
                format!("{cidr} is smaller than a /28 (AWS's smallest subnet)"),
            ));
        }
        if let Some(other) = out.iter().find(|o| o.cidr.overlaps(&cidr)) {
            return Err(InputError::new(
                &format!("{field}.cidr"),
                format!("{cidr} overlaps subnet {:?} ({})", other.name, other.cidr),
            ));
        }
        if out.iter().any(|o| o.name == s.name) {
            return Err(InputError::new(
                &format!("{field}.name"),
                format!("{:?} is used twice", s.name),
            ));
        }
        out.push(SubnetConfig {
            name: s.name.clone(),
            cidr,
            public: s.public,
        });
    }
    Ok(out)
}

fn validate_seed_groups(files: &[GroupFile]) -> Result<Vec<Group>, InputError> {
    let mut specs: Vec<SecurityGroupSpec> = files
        .iter()
        .map(|g| SecurityGroupSpec {
            id: Some(g.id.clone()),
            description: g.description.clone(),
            ingress: g.ingress.iter().map(Rule::from).collect(),
            egress: g
                .egress
                .as_ref()
                .map(|e| e.iter().map(Rule::from).collect()),
        })
        .collect();
    if !specs.iter().any(|s| s.id.as_deref() == Some("default")) {
        specs.push(default_group());
    }
    let ids: Vec<GroupId> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            GroupId::parse(
                &format!("security_groups[{i}].id"),
                s.id.as_deref().unwrap_or_default(),
            )
        })
        .collect::<Result<_, _>>()?;
    let exists = |g: &GroupId| ids.contains(g);
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            model::validate_group(s, None, &exists).map_err(|e| {
                InputError::new(&format!("security_groups[{i}].{}", e.field), e.message)
            })
        })
        .collect()
}

/// AWS's default group: members reach each other on everything; all egress allowed.
fn default_group() -> SecurityGroupSpec {
    SecurityGroupSpec {
        id: Some("default".into()),
        description: "default VPC security group".into(),
        ingress: vec![Rule {
            protocol: "all".into(),
            from_port: None,
            to_port: None,
            cidr: None,
            group: Some("default".into()),
        }],
        egress: None,
    }
}

/// The host's non-loopback IPv4 name servers from /etc/resolv.conf.
fn host_name_servers() -> Vec<Ipv4Addr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .filter(|a| !a.is_loopback())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, InputError> {
        Config::from_file(toml::from_str(text).unwrap())
    }

    #[test]
    fn no_config_is_a_working_config() {
        let c = parse("").unwrap();
        assert_eq!(c.vpc.to_string(), "172.31.0.0/16");
        let s: Vec<_> = c
            .subnets
            .iter()
            .map(|s| (s.name.as_str(), s.cidr.to_string(), s.public))
            .collect();
        assert_eq!(
            s,
            [
                ("public", "172.31.0.0/20".into(), true),
                ("private", "172.31.16.0/20".into(), false)
            ]
        );
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.groups[0].id.as_str(), "default"); // appended when the file has none
        assert_eq!(c.table, "berth");
    }

    #[test]
    fn a_second_instance_needs_only_its_own_state_dir() {
        let mut c = parse("").unwrap();
        assert_eq!(c.run_dir, PathBuf::from("/run/berth/netd"));
        c.use_state_dir("/tmp/x".into());
        assert_eq!(
            (c.run_dir.as_path(), c.netns_dir.as_path()),
            (Path::new("/tmp/x/run"), Path::new("/tmp/x/netns"))
        );
        let c = parse("state_dir = '/s'\nnetns_dir = '/n'").unwrap();
        assert_eq!(
            (c.run_dir.as_path(), c.netns_dir.as_path()),
            (Path::new("/s/run"), Path::new("/n"))
        );
    }

    #[test]
    fn small_vpcs_get_halves() {
        let c = parse("vpc_cidr = \"10.9.0.0/24\"").unwrap();
        let s: Vec<_> = c.subnets.iter().map(|s| s.cidr.to_string()).collect();
        assert_eq!(s, ["10.9.0.0/25", "10.9.0.128/25"]);
    }

    #[test]
    fn bad_subnets_are_named() {
        let overlap = "[[subnets]]\nname='a'\ncidr='172.31.0.0/20'\n[[subnets]]\nname='b'\ncidr='172.31.8.0/24'\n";
        let err = parse(overlap).unwrap_err().to_string();
        assert_eq!(
            err,
            "subnets[1].cidr: 172.31.8.0/24 overlaps subnet \"a\" (172.31.0.0/20)"
        );
        let outside = "[[subnets]]\nname='a'\ncidr='10.0.0.0/24'\n";
        assert!(parse(outside)
            .unwrap_err()
            .to_string()
            .contains("not inside the VPC"));
        let invalid = "[[subnets]]\nname='a'\ncidr='172.31.0.0/40'\n";
        assert!(parse(invalid)
            .unwrap_err()
            .to_string()
            .starts_with("subnets[0].cidr: \"172.31.0.0/40\""));
        let vpc = "vpc_cidr = '172.31.0.0'";
        assert!(parse(vpc).unwrap_err().to_string().starts_with("vpc_cidr:"));
    }

    #[test]
    fn seed_groups_are_validated() {
        let text = "[[security_groups]]\nid='web'\n[[security_groups.ingress]]\nprotocol='tcp'\nfrom_port=8080\ngroup='nope'\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("security_groups[0].ingress[0].group: no security group \"nope\""),
            "{err}"
        );
    }
}
