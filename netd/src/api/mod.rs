//! The wire types of berth-netd's HTTP+JSON API and a small blocking client.
//!
//! This module is all the agent and the `berth net` CLI link (`netd` with
//! `default-features = false`); the netlink, nftables and daemon code stay behind the
//! `daemon` feature.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `GET /subnets` | | `[Subnet]` |
//! | `GET /enis` | | `[Eni]` |
//! | `POST /enis` | [`AttachRequest`] | [`Eni`] (201; 200 when the same request was already done) |
//! | `GET /enis/{task}` / `DELETE /enis/{task}` | | [`Eni`] / 204 |
//! | `GET /security-groups` | | `[SecurityGroup]` |
//! | `POST /security-groups` | [`SecurityGroupSpec`] | [`SecurityGroup`] (201) |
//! | `GET/PUT/DELETE /security-groups/{id}` | PUT: [`SecurityGroupSpec`] | [`SecurityGroup`] / 204 |
//!
//! Errors answer `{"error": "..."}` ([`ErrorBody`]) with a 4xx status for bad input (the
//! message names the field) and 5xx for a kernel or disk failure.

mod client;

pub use client::{Client, ClientError, DEFAULT_SOCKET};

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// `POST /enis`: give a task its ENI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachRequest {
    /// The task (its ARN or id): the ENI's key. `[A-Za-z0-9._:/-]`, at most 255 bytes.
    pub task: String,
    /// The subnet's name; the first configured subnet when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// Up to 5 security group ids; the group `default` when empty.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Published ports (public subnets only): host port → task port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    /// The task's hostname, written into the `hosts` content; the ENI's IP-derived name when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// A published port: `hostPort` on the host's addresses forwards to `containerPort` on the
/// task's IP. Ports are integers 1–65535.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortMapping {
    /// The port inside the task.
    pub container_port: i64,
    /// The port on the host; the same as `containerPort` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    /// `tcp` (default) or `udp`.
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "tcp".to_owned()
}

/// An attached ENI: what the agent writes into the task's bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Eni {
    /// The task it belongs to.
    pub task: String,
    /// `eni-` + 8 hex digits.
    pub eni_id: String,
    /// The subnet's name.
    pub subnet: String,
    /// The task's private IP.
    pub ip: Ipv4Addr,
    /// The subnet's prefix length (the mask on `eth0`).
    pub prefix_length: u8,
    /// The default gateway (the subnet's +1 address, on the host).
    pub gateway: Ipv4Addr,
    /// The MAC address of `eth0`.
    pub mac: String,
    /// The host end of the veth.
    pub host_interface: String,
    /// The task end of the veth, inside the netns: `eth0`.
    pub interface_name: String,
    /// The network namespace's bind mount: the runtime joins it by this path.
    pub netns_path: PathBuf,
    /// The security groups, in the order given.
    pub security_groups: Vec<String>,
    /// Published ports, with `hostPort` filled in.
    pub port_mappings: Vec<PortMapping>,
    /// Content for the task's `/etc/resolv.conf`.
    pub resolv_conf: String,
    /// Content for the task's `/etc/hosts`.
    pub hosts: String,
}

/// A subnet of the VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    /// Its name (the key in requests).
    pub name: String,
    /// Its CIDR block, inside the VPC's.
    pub cidr: String,
    /// Whether tasks get NAT to the uplink and published ports.
    pub public: bool,
    /// The gateway address (+1).
    pub gateway: Ipv4Addr,
    /// Addresses still free for tasks (AWS's 5 reserved ones never are).
    pub available_ips: u64,
    /// ENIs attached in it.
    pub enis: u64,
}

/// One security group rule: a protocol, a port range and a peer (a CIDR or a group, never
/// both). For ingress the peer is the source, for egress the destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// `tcp`, `udp`, `icmp` or `all`.
    pub protocol: String,
    /// First port (tcp/udp only); all ports when both ports are absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i64>,
    /// Last port; the same as `fromPort` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i64>,
    /// The peer as a CIDR block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// The peer as a security group: its members' current IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// `POST /security-groups` and `PUT /security-groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroupSpec {
    /// `[a-z0-9-]`, 1–40 bytes (e.g. `sg-web`). On PUT it may be absent; if present it must
    /// match the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Ingress rules: none means all ingress is denied (AWS's default).
    #[serde(default)]
    pub ingress: Vec<Rule>,
    /// Egress rules: absent means AWS's default (all traffic to 0.0.0.0/0); `[]` denies all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<Rule>>,
}

/// A security group as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    /// Its id.
    pub id: String,
    /// Free text.
    pub description: String,
    /// Ingress rules.
    pub ingress: Vec<Rule>,
    /// Egress rules.
    pub egress: Vec<Rule>,
    /// ENIs (task keys) that are members.
    #[serde(default)]
    pub members: Vec<String>,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One line naming the field or object and what is wrong with it.
    pub error: String,
}
