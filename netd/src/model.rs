//! Validated internal types: task keys, group ids, rules, port mappings. Only the
//! `validate_*` functions build them, so everything past the API boundary is known good.

use crate::api::{self, AttachRequest, Rule, SecurityGroupSpec};
use crate::cidr::Cidr;
use crate::error::InputError;
use std::collections::BTreeSet;
use std::fmt;

/// The most security groups one ENI may carry (AWS's default quota).
pub const MAX_GROUPS_PER_ENI: usize = 5;

/// A task's key: its ARN or id.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TaskKey(String);

impl TaskKey {
    /// Validate `text` as a task key, naming `field` in the error.
    pub fn parse(field: &str, text: &str) -> Result<Self, InputError> {
        let ok = !text.is_empty()
            && text.len() <= 255
            && text.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-')
            });
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(InputError::new(
                field,
                format!("{text:?} is not a task id (1-255 of A-Z a-z 0-9 . _ : / -)"),
            ))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TaskKey {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, InputError> {
        Self::parse("task", &s)
    }
}

impl From<TaskKey> for String {
    fn from(k: TaskKey) -> String {
        k.0
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A security group id: `[a-z0-9-]`, 1–40 bytes, so it maps one-to-one onto nft names
/// (`-` becomes `_`, which ids may not contain).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(String);

impl GroupId {
    /// Validate `text` as a group id, naming `field` in the error.
    pub fn parse(field: &str, text: &str) -> Result<Self, InputError> {
        let ok = !text.is_empty()
            && text.len() <= 40
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(InputError::new(
                field,
                format!("{text:?} is not a security group id (1-40 of a-z 0-9 -)"),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an nft identifier fragment.
    pub fn nft_name(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rule's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP, optionally a port range.
    Tcp,
    /// UDP, optionally a port range.
    Udp,
    /// ICMP (all types).
    Icmp,
    /// Every protocol.
    All,
}

/// A rule's peer: a CIDR block or a group's current members.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// Addresses in a block.
    Cidr(Cidr),
    /// The members of a security group.
    Group(GroupId),
}

/// A validated rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValidRule {
    /// Protocol.
    pub protocol: Protocol,
    /// Inclusive port range (tcp/udp only); `None` is every port.
    pub ports: Option<(u16, u16)>,
    /// Source (ingress) or destination (egress).
    pub peer: Peer,
}

/// A validated security group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Its id.
    pub id: GroupId,
    /// Free text.
    pub description: String,
    /// Ingress rules.
    pub ingress: Vec<ValidRule>,
    /// Egress rules.
    pub egress: Vec<ValidRule>,
}

/// AWS's default egress rule: all traffic to 0.0.0.0/0.
pub fn allow_all_egress() -> Rule {
    Rule {
        protocol: "all".into(),
        from_port: None,
        to_port: None,
        cidr: Some("0.0.0.0/0".into()),
        group: None,
    }
}

impl Group {
    /// The wire form (without members).
    pub fn to_wire(&self) -> api::SecurityGroup {
        api::SecurityGroup {
            id: self.id.to_string(),
            description: self.description.clone(),
            ingress: self.ingress.iter().map(rule_to_wire).collect(),
            egress: self.egress.iter().map(rule_to_wire).collect(),
            members: Vec::new(),
        }
    }

    /// The groups this one's rules name.
    pub fn referenced_groups(&self) -> BTreeSet<&GroupId> {
        self.ingress
            .iter()
            .chain(&self.egress)
            .filter_map(|r| match &r.peer {
                Peer::Group(g) => Some(g),
                Peer::Cidr(_) => None,
            })
            .collect()
    }
}

fn rule_to_wire(r: &ValidRule) -> Rule {
    let (cidr, group) = match &r.peer {
        Peer::Cidr(c) => (Some(c.to_string()), None),
        Peer::Group(g) => (None, Some(g.to_string())),
    };
    Rule {
        protocol: match r.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "all",
        }
        .into(),
        from_port: r.ports.map(|p| i64::from(p.0)),
        to_port: r.ports.map(|p| i64::from(p.1)),
        cidr,
        group,
    }
}

/// Validate a port number (1–65535), naming `field`.
pub fn validate_port(field: &str, port: i64) -> Result<u16, InputError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| InputError::new(field, format!("{port} is not a port (1-65535)")))
}

/// Validate one rule. `group_exists` answers whether a group id is known (the group being
/// defined counts, so a group may name itself).
pub fn validate_rule(
    field: &str,
    rule: &Rule,
    group_exists: &dyn Fn(&GroupId) -> bool,
) -> Result<ValidRule, InputError> {
    let protocol = match rule.protocol.as_str() {
        "tcp" | "6" => Protocol::Tcp,
        "udp" | "17" => Protocol::Udp,
        "icmp" | "1" => Protocol::Icmp,
        "all" | "-1" => Protocol::All,
        other => {
            return Err(InputError::new(
                &format!("{field}.protocol"),
                format!("{other:?} is not a protocol (tcp, udp, icmp, all)"),
            ))
        }
    };
    let ports = match (rule.from_port, rule.to_port) {
        (None, None) => None,
        (from, to) if matches!(protocol, Protocol::Tcp | Protocol::Udp) => {
            let from_port = from.or(to).unwrap_or_default();
            let first = validate_port(&format!("{field}.fromPort"), from_port)?;
            let last = validate_port(&format!("{field}.toPort"), to.unwrap_or(from_port))?;
            if last < first {
                return Err(InputError::new(
                    &format!("{field}.toPort"),
                    format!("{last} is below fromPort {first}"),
                ));
            }
            Some((first, last))
        }
        _ => {
            return Err(InputError::new(
                &format!("{field}.fromPort"),
                format!("ports apply to tcp and udp only, not {:?}", rule.protocol),
            ))
        }
    };
    let peer = match (&rule.cidr, &rule.group) {
        (Some(_), Some(_)) => {
            return Err(InputError::new(
                field,
                "give either cidr or group, not both".into(),
            ))
        }
        (None, None) => return Err(InputError::new(field, "give a cidr or a group".into())),
        (Some(c), None) => Peer::Cidr(c.parse().map_err(|e: crate::cidr::CidrError| {
            InputError::new(&format!("{field}.cidr"), e.to_string())
        })?),
        (None, Some(g)) => {
            let id = GroupId::parse(&format!("{field}.group"), g)?;
            if !group_exists(&id) {
                return Err(InputError::new(
                    &format!("{field}.group"),
                    format!("no security group {g:?}"),
                ));
            }
            Peer::Group(id)
        }
    };
    Ok(ValidRule {
        protocol,
        ports,
        peer,
    })
}

/// Validate a group spec. `path_id` is the id from a PUT's path (the body may omit it).
pub fn validate_group(
    spec: &SecurityGroupSpec,
    path_id: Option<&str>,
    group_exists: &dyn Fn(&GroupId) -> bool,
) -> Result<Group, InputError> {
    let id = match (path_id, spec.id.as_deref()) {
        (Some(p), Some(b)) if p != b => {
            return Err(InputError::new(
                "id",
                format!("{b:?} does not match the path's {p:?}"),
            ))
        }
        (Some(p), _) => GroupId::parse("id", p)?,
        (None, Some(b)) => GroupId::parse("id", b)?,
        (None, None) => return Err(InputError::new("id", "missing".into())),
    };
    let exists = |g: &GroupId| *g == id || group_exists(g);
    let rules = |name: &str, list: &[Rule]| -> Result<Vec<ValidRule>, InputError> {
        let mut out: Vec<ValidRule> = Vec::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            let v = validate_rule(&format!("{name}[{i}]"), r, &exists)?;
            if !out.contains(&v) {
                out.push(v);
            }
        }
        Ok(out)
    };
    let ingress = rules("ingress", &spec.ingress)?;
    let egress = match &spec.egress {
        Some(list) => rules("egress", list)?,
        None => rules("egress", &[allow_all_egress()])?,
    };
    Ok(Group {
        id,
        description: spec.description.clone(),
        ingress,
        egress,
    })
}

/// A validated published port.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Published {
    /// `tcp` or `udp`.
    pub udp: bool,
    /// The host's port.
    pub host_port: u16,
    /// The task's port.
    pub container_port: u16,
}

impl Published {
    /// The wire form.
    pub fn to_wire(self) -> api::PortMapping {
        api::PortMapping {
            container_port: i64::from(self.container_port),
            host_port: Some(i64::from(self.host_port)),
            protocol: if self.udp { "udp" } else { "tcp" }.into(),
        }
    }
}

/// An attach request with its fields validated (existence checks against the current state
/// are the engine's: subnet, groups, host ports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidAttach {
    /// The task.
    pub task: TaskKey,
    /// The subnet name, if given.
    pub subnet: Option<String>,
    /// The groups, deduplicated, in order.
    pub groups: Vec<GroupId>,
    /// Published ports.
    pub published: Vec<Published>,
    /// The hostname, if given.
    pub hostname: Option<String>,
}

/// Validate an attach request's fields.
pub fn validate_attach(req: &AttachRequest) -> Result<ValidAttach, InputError> {
    let task = TaskKey::parse("task", &req.task)?;
    if req.security_groups.len() > MAX_GROUPS_PER_ENI {
        return Err(InputError::new(
            "securityGroups",
            format!(
                "{} groups given; an ENI has at most {MAX_GROUPS_PER_ENI}",
                req.security_groups.len()
            ),
        ));
    }
    let mut groups: Vec<GroupId> = Vec::new();
    for (i, g) in req.security_groups.iter().enumerate() {
        let id = GroupId::parse(&format!("securityGroups[{i}]"), g)?;
        if !groups.contains(&id) {
            groups.push(id);
        }
    }
    let mut published: Vec<Published> = Vec::new();
    for (i, m) in req.port_mappings.iter().enumerate() {
        let container_port = validate_port(
            &format!("portMappings[{i}].containerPort"),
            m.container_port,
        )?;
        let host_port = validate_port(
            &format!("portMappings[{i}].hostPort"),
            m.host_port.unwrap_or(m.container_port),
        )?;
        let udp = match m.protocol.as_str() {
            "tcp" => false,
            "udp" => true,
            other => {
                return Err(InputError::new(
                    &format!("portMappings[{i}].protocol"),
                    format!("{other:?} is not tcp or udp"),
                ))
            }
        };
        if published
            .iter()
            .any(|p| p.udp == udp && p.host_port == host_port)
        {
            return Err(InputError::new(
                &format!("portMappings[{i}].hostPort"),
                format!("{host_port} is mapped twice"),
            ));
        }
        published.push(Published {
            udp,
            host_port,
            container_port,
        });
    }
    if let Some(h) = &req.hostname {
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
        if !ok {
            return Err(InputError::new(
                "hostname",
                format!("{h:?} is not a hostname"),
            ));
        }
    }
    Ok(ValidAttach {
        task,
        subnet: req.subnet.clone(),
        groups,
        published,
        hostname: req.hostname.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        protocol: &str,
        from: Option<i64>,
        to: Option<i64>,
        cidr: Option<&str>,
        group: Option<&str>,
    ) -> Rule {
        Rule {
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            cidr: cidr.map(Into::into),
            group: group.map(Into::into),
        }
    }

    fn known(g: &GroupId) -> bool {
        g.as_str() == "web"
    }

    #[test]
    fn bad_rules_name_their_field() {
        let cases = [
            (
                rule("tcp", Some(0), None, Some("0.0.0.0/0"), None),
                "ingress[0].fromPort: 0 is not a port",
            ),
            (
                rule("tcp", Some(1), Some(65536), Some("0.0.0.0/0"), None),
                "ingress[0].toPort: 65536 is not a port",
            ),
            (
                rule("tcp", Some(90), Some(80), Some("0.0.0.0/0"), None),
                "ingress[0].toPort: 80 is below fromPort 90",
            ),
            (
                rule("tcp", Some(80), None, Some("10.0.0.0/8"), Some("web")),
                "ingress[0]: give either cidr or group, not both",
            ),
            (
                rule("tcp", Some(80), None, None, None),
                "ingress[0]: give a cidr or a group",
            ),
            (
                rule("tcp", Some(80), None, None, Some("nope")),
                "ingress[0].group: no security group \"nope\"",
            ),
            (
                rule("tcp", Some(80), None, Some("10.0.0.0/33"), None),
                "ingress[0].cidr: \"10.0.0.0/33\" is not a CIDR block",
            ),
            (
                rule("gre", None, None, Some("0.0.0.0/0"), None),
                "ingress[0].protocol: \"gre\" is not a protocol",
            ),
            (
                rule("icmp", Some(8), None, Some("0.0.0.0/0"), None),
                "ingress[0].fromPort: ports apply to tcp and udp only",
            ),
        ];
        for (r, want) in cases {
            let err = validate_rule("ingress[0]", &r, &known)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{err} !~ {want}");
        }
    }

    #[test]
    fn good_rules_validate() {
        let r = validate_rule(
            "x",
            &rule("tcp", Some(8080), None, None, Some("web")),
            &known,
        )
        .unwrap();
        assert_eq!(r.ports, Some((8080, 8080)));
        assert_eq!(r.peer, Peer::Group(GroupId("web".into())));
        let r = validate_rule(
            "x",
            &rule("all", None, None, Some("0.0.0.0/0"), None),
            &known,
        )
        .unwrap();
        assert_eq!((r.protocol, r.ports), (Protocol::All, None));
    }

    #[test]
    fn groups_default_to_allow_all_egress_and_may_name_themselves() {
        let spec = SecurityGroupSpec {
            id: Some("db".into()),
            description: String::new(),
            ingress: vec![rule("tcp", Some(5432), None, None, Some("db"))],
            egress: None,
        };
        let g = validate_group(&spec, None, &known).unwrap();
        assert_eq!(g.egress.len(), 1);
        assert_eq!(g.egress[0].protocol, Protocol::All);
        let deny = SecurityGroupSpec {
            egress: Some(vec![]),
            ..spec.clone()
        };
        assert!(validate_group(&deny, None, &known)
            .unwrap()
            .egress
            .is_empty());
        let err = validate_group(&spec, Some("other"), &known)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match"), "{err}");
        assert!(GroupId::parse("id", "Bad_Id").is_err());
    }

    #[test]
    fn attach_requests_are_checked_field_by_field() {
        let base = AttachRequest {
            task: "arn:aws:ecs:us-east-1:1:task/c/0123".into(),
            subnet: None,
            security_groups: vec!["a".into()],
            port_mappings: vec![],
            hostname: None,
        };
        assert!(validate_attach(&base).is_ok());
        let six = AttachRequest {
            security_groups: (0..6).map(|i| format!("g{i}")).collect(),
            ..base.clone()
        };
        assert!(validate_attach(&six)
            .unwrap_err()
            .to_string()
            .starts_with("securityGroups: 6 groups given"));
        let bad_task = AttachRequest {
            task: "a b".into(),
            ..base.clone()
        };
        assert!(validate_attach(&bad_task)
            .unwrap_err()
            .to_string()
            .starts_with("task:"));
        let port = AttachRequest {
            port_mappings: vec![api::PortMapping {
                container_port: 80,
                host_port: Some(65536),
                protocol: "tcp".into(),
            }],
            ..base.clone()
        };
        assert!(validate_attach(&port)
            .unwrap_err()
            .to_string()
            .starts_with("portMappings[0].hostPort: 65536"));
    }
}
