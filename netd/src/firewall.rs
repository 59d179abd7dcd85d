//! The nftables ruleset for the VPC, generated as `nft -f` scripts (pure text, unit-tested).
//!
//! One table, `inet <table>`, that netd owns. A packet's cost does not grow with tasks:
//! - set `g_<group>`: the IPs of the group's members (source/destination-group rules);
//! - set `c_<hash>`: the IPs of the ENIs with one *combination* of groups, and chains
//!   `c_<hash>_in` / `c_<hash>_out` that jump to each of those groups' chains, shared by
//!   every ENI with the same groups;
//! - chains `dispatch_in` / `dispatch_out`: one rule per combination, `ip daddr @c_<hash>
//!   goto c_<hash>_in` (and `saddr` … `_out`);
//! - chains `g_<group>_in` / `g_<group>_out`: the group's rules, a few per group.
//!
//! An attach or detach only adds or removes elements of plain sets. A verdict map from ENI
//! IP to chain would save the dispatch rules, but every element added to a map whose
//! elements `goto` makes the kernel re-validate the whole table, walking every element:
//! each attach would cost more the more ENIs are alive. Combinations are few (a task has at
//! most 5 groups), so the dispatch chains stay short.
//!
//! Forwarded packets: `ct state established,related accept` first (stateful; rule changes
//! never cut an allowed connection), then the sender's egress (`dispatch_out`: a group rule
//! that matches jumps on to the ingress stage, none matching drops), then the receiver's
//! ingress (`dispatch_in`: a matching rule accepts, none drops). Packets from the host itself to a task
//! meet the ingress stage in `output`; tasks reach the host only at their gateway (ICMP) and
//! the configured host services. Private subnets never leave the VPC; public ones are
//! masqueraded to the uplink, and published ports DNAT host:port to task:port.

use crate::cidr::Cidr;
use crate::model::{Group, GroupId, Peer, Protocol, Published, ValidRule};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// What the whole ruleset is built from (besides the ENIs).
#[derive(Debug, Clone)]
pub struct Topology {
    /// The table name (family inet).
    pub table: String,
    /// The VPC block.
    pub vpc: Cidr,
    /// (block, is public, gateway) per subnet.
    pub subnets: Vec<(Cidr, bool, Ipv4Addr)>,
    /// Host addresses tasks may reach.
    pub host_services: Vec<Cidr>,
}

/// One ENI as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwEni {
    /// Its IP.
    pub ip: Ipv4Addr,
    /// Its groups, in order.
    pub groups: Vec<GroupId>,
    /// Its published ports.
    pub published: Vec<Published>,
}

/// The name of the chain pair shared by ENIs with exactly these groups (order-insensitive).
pub fn combo_name(groups: &[GroupId]) -> String {
    let mut ids: Vec<&str> = groups.iter().map(GroupId::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    format!("c_{:08x}", fnv1a(ids.join(",").as_bytes()) & 0xffff_ffff)
}

/// FNV-1a, 64 bits: short stable names, not security.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Topology {
    /// The complete table: created if missing, emptied and refilled in the same transaction.
    pub fn full_script<'a>(
        &self,
        groups: impl IntoIterator<Item = &'a Group> + Clone,
        enis: &[FwEni],
    ) -> String {
        let t = &self.table;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "add table inet {t}\ndelete table inet {t}\nadd table inet {t}"
        );
        self.declare_sets(&mut s);
        for g in groups.clone() {
            let _ = writeln!(
                s,
                "add set inet {t} g_{} {{ type ipv4_addr; }}",
                g.id.nft_name()
            );
        }
        for g in groups {
            self.declare_group_chains(&mut s, &g.id);
            self.group_rules(&mut s, g);
        }
        self.base_chains(&mut s);
        let mut combos: Vec<Vec<GroupId>> = Vec::new();
        for e in enis {
            let mut key = e.groups.clone();
            key.sort();
            if !combos.contains(&key) {
                self.combo_chains(&mut s, &key);
                self.dispatch_rules(&mut s, &combo_name(&key));
                combos.push(key);
            }
        }
        for e in enis {
            self.add_eni_elements(&mut s, e);
        }
        s
    }

    fn declare_sets(&self, s: &mut String) {
        let t = &self.table;
        for line in [
            "add set inet {t} enis { type ipv4_addr; }",
            "add set inet {t} gateways { type ipv4_addr; }",
            "add map inet {t} pub_tcp { type inet_service : ipv4_addr . inet_service; }",
            "add map inet {t} pub_udp { type inet_service : ipv4_addr . inet_service; }",
            // Group egress rules `goto ingress`: the chain must exist before them.
            "add chain inet {t} ingress",
            "add chain inet {t} dispatch_in",
            "add chain inet {t} dispatch_out",
        ] {
            let _ = writeln!(s, "{}", line.replace("{t}", t));
        }
        let gws: Vec<String> = self.subnets.iter().map(|(_, _, g)| g.to_string()).collect();
        if !gws.is_empty() {
            let _ = writeln!(s, "add element inet {t} gateways {{ {} }}", gws.join(", "));
        }
    }

    fn declare_group_chains(&self, s: &mut String, id: &GroupId) {
        let (t, g) = (&self.table, id.nft_name());
        let _ = writeln!(
            s,
            "add chain inet {t} g_{g}_in\nadd chain inet {t} g_{g}_out"
        );
    }

    /// The group's two chains' rules (the chains must exist and be empty).
    fn group_rules(&self, s: &mut String, g: &Group) {
        let (t, name) = (&self.table, g.id.nft_name());
        for r in &g.ingress {
            let _ = writeln!(
                s,
                "add rule inet {t} g_{name}_in {}accept",
                rule_match(r, "saddr")
            );
        }
        for r in &g.egress {
            let _ = writeln!(
                s,
                "add rule inet {t} g_{name}_out {}goto ingress",
                rule_match(r, "daddr")
            );
        }
    }

    /// The combination's member set and its two chains (emptied if they exist).
    fn combo_chains(&self, s: &mut String, groups: &[GroupId]) {
        let (t, c) = (&self.table, combo_name(groups));
        let _ = writeln!(s, "add set inet {t} {c} {{ type ipv4_addr; }}");
        for dir in ["in", "out"] {
            let _ = writeln!(
                s,
                "add chain inet {t} {c}_{dir}\nflush chain inet {t} {c}_{dir}"
            );
            for g in groups {
                let _ = writeln!(
                    s,
                    "add rule inet {t} {c}_{dir} jump g_{}_{dir}",
                    g.nft_name()
                );
            }
            let _ = writeln!(s, "add rule inet {t} {c}_{dir} drop");
        }
    }

    /// The combination's two dispatch rules: its members go to its chains.
    fn dispatch_rules(&self, s: &mut String, c: &str) {
        let t = &self.table;
        let _ = writeln!(
            s,
            "add rule inet {t} dispatch_in ip daddr @{c} goto {c}_in\n\
             add rule inet {t} dispatch_out ip saddr @{c} goto {c}_out"
        );
    }

    fn base_chains(&self, s: &mut String) {
        let t = &self.table;
        let vpc = self.vpc;
        let _ = writeln!(s, "add rule inet {t} ingress jump dispatch_in");
        let _ = writeln!(s, "add rule inet {t} ingress ip daddr {vpc} drop");
        let _ = writeln!(s, "add rule inet {t} ingress accept");

        let _ = writeln!(
            s,
            "add chain inet {t} forward {{ type filter hook forward priority 0; policy accept; }}"
        );
        let _ = writeln!(
            s,
            "add rule inet {t} forward ct state established,related accept"
        );
        // ENIs are IPv4-only: an IPv6 packet from a task (link-local addresses always exist)
        // would otherwise pass every `ip` rule unmatched.
        let _ = writeln!(
            s,
            "add rule inet {t} forward iifname \"berth*\" meta nfproto ipv6 drop"
        );
        for (cidr, public, _) in &self.subnets {
            if !public {
                let _ = writeln!(
                    s,
                    "add rule inet {t} forward ip saddr {cidr} ip daddr != {vpc} drop"
                );
                let _ = writeln!(
                    s,
                    "add rule inet {t} forward ip daddr {cidr} ip saddr != {vpc} drop"
                );
            }
        }
        let _ = writeln!(s, "add rule inet {t} forward jump dispatch_out");
        let _ = writeln!(s, "add rule inet {t} forward ip saddr {vpc} drop");
        let _ = writeln!(s, "add rule inet {t} forward ip daddr {vpc} goto ingress");

        let _ = writeln!(
            s,
            "add chain inet {t} input {{ type filter hook input priority 0; policy accept; }}"
        );
        let _ = writeln!(
            s,
            "add rule inet {t} input ct state established,related accept"
        );
        let _ = writeln!(
            s,
            "add rule inet {t} input iifname \"berth*\" meta nfproto ipv6 drop"
        );
        let _ = writeln!(
            s,
            "add rule inet {t} input ip saddr @enis ip daddr @gateways meta l4proto icmp accept"
        );
        for svc in &self.host_services {
            let _ = writeln!(
                s,
                "add rule inet {t} input ip saddr @enis ip daddr {svc} accept"
            );
        }
        let _ = writeln!(s, "add rule inet {t} input ip saddr {vpc} drop");

        let _ = writeln!(
            s,
            "add chain inet {t} output {{ type filter hook output priority 0; policy accept; }}"
        );
        let _ = writeln!(
            s,
            "add rule inet {t} output ct state established,related accept"
        );
        let _ = writeln!(s, "add rule inet {t} output ip daddr {vpc} goto ingress");

        for (chain, hook) in [("prerouting", "prerouting"), ("nat_output", "output")] {
            let _ = writeln!(s, "add chain inet {t} {chain} {{ type nat hook {hook} priority -100; policy accept; }}");
            for proto in ["tcp", "udp"] {
                let _ = writeln!(s, "add rule inet {t} {chain} fib daddr type local dnat ip to {proto} dport map @pub_{proto}");
            }
        }
        let _ = writeln!(s, "add chain inet {t} postrouting {{ type nat hook postrouting priority 100; policy accept; }}");
        for (cidr, public, _) in &self.subnets {
            if *public {
                let _ = writeln!(
                    s,
                    "add rule inet {t} postrouting ip saddr {cidr} ip daddr != {vpc} masquerade"
                );
            }
        }
    }

    fn add_eni_elements(&self, s: &mut String, e: &FwEni) {
        self.eni_elements(s, e, "add");
    }

    fn eni_elements(&self, s: &mut String, e: &FwEni, verb: &str) {
        let (t, ip, c) = (&self.table, e.ip, combo_name(&e.groups));
        let _ = writeln!(s, "{verb} element inet {t} enis {{ {ip} }}");
        for g in &e.groups {
            let _ = writeln!(s, "{verb} element inet {t} g_{} {{ {ip} }}", g.nft_name());
        }
        let _ = writeln!(s, "{verb} element inet {t} {c} {{ {ip} }}");
        for p in &e.published {
            let proto = if p.udp { "udp" } else { "tcp" };
            let data = if verb == "add" {
                format!(" : {ip} . {}", p.container_port)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "{verb} element inet {t} pub_{proto} {{ {}{data} }}",
                p.host_port
            );
        }
    }

    /// Attach: the ENI's elements, plus its combination's chains when `is_new_combo`.
    pub fn attach_script(&self, e: &FwEni, is_new_combo: bool) -> String {
        let mut s = String::new();
        if is_new_combo {
            let mut key = e.groups.clone();
            key.sort();
            self.combo_chains(&mut s, &key);
            self.dispatch_rules(&mut s, &combo_name(&key));
        }
        self.add_eni_elements(&mut s, e);
        s
    }

    /// Detach: remove the ENI's elements.
    pub fn detach_script(&self, e: &FwEni) -> String {
        let mut s = String::new();
        self.eni_elements(&mut s, e, "delete");
        s
    }

    /// A new group: its member set and empty-then-filled chains.
    pub fn create_group_script(&self, g: &Group) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "add set inet {} g_{} {{ type ipv4_addr; }}",
            self.table,
            g.id.nft_name()
        );
        self.declare_group_chains(&mut s, &g.id);
        self.group_rules(&mut s, g);
        s
    }

    /// Replace a group's rules in one transaction: the chains are flushed and refilled, so
    /// a packet sees either the old rules or the new ones. Established connections are
    /// accepted before any group chain and are never cut.
    pub fn replace_group_script(&self, g: &Group) -> String {
        let (t, name) = (&self.table, g.id.nft_name());
        let mut s = String::new();
        let _ = writeln!(
            s,
            "flush chain inet {t} g_{name}_in\nflush chain inet {t} g_{name}_out"
        );
        self.group_rules(&mut s, g);
        s
    }

    /// Remove the combinations `stale` (by name, as [`combo_name`] gives them) that no ENI
    /// uses: the dispatch chains are refilled with the rules of those in `kept` only, then
    /// the stale chains and sets go.
    pub fn delete_combos_script(&self, stale: &[String], kept: &[String]) -> String {
        let t = &self.table;
        let mut s = String::new();
        if stale.is_empty() {
            return s;
        }
        let _ = writeln!(
            s,
            "flush chain inet {t} dispatch_in\nflush chain inet {t} dispatch_out"
        );
        for c in kept {
            self.dispatch_rules(&mut s, c);
        }
        for c in stale {
            let _ = writeln!(
                s,
                "delete chain inet {t} {c}_in\ndelete chain inet {t} {c}_out\ndelete set inet {t} {c}"
            );
        }
        s
    }

    /// Remove an unused, unreferenced group's chains and set.
    pub fn delete_group_script(&self, id: &GroupId) -> String {
        let (t, g) = (&self.table, id.nft_name());
        format!("delete chain inet {t} g_{g}_in\ndelete chain inet {t} g_{g}_out\ndelete set inet {t} g_{g}\n")
    }
}

/// The match part of a rule (`ip saddr 10.0.0.0/8 tcp dport 80-90 `), `dir` naming the
/// peer's side: `saddr` for ingress, `daddr` for egress.
fn rule_match(r: &ValidRule, dir: &str) -> String {
    let mut m = String::new();
    match &r.peer {
        Peer::Cidr(c) if c.prefix_len() == 0 => {}
        Peer::Cidr(c) => {
            let _ = write!(m, "ip {dir} {c} ");
        }
        Peer::Group(g) => {
            let _ = write!(m, "ip {dir} @g_{} ", g.nft_name());
        }
    }
    let proto = match r.protocol {
        Protocol::Tcp => Some("tcp"),
        Protocol::Udp => Some("udp"),
        Protocol::Icmp => {
            m.push_str("meta l4proto icmp ");
            None
        }
        Protocol::All => None,
    };
    if let Some(p) = proto {
        match r.ports {
            Some((a, b)) if a == b => {
                let _ = write!(m, "{p} dport {a} ");
            }
            Some((a, b)) => {
                let _ = write!(m, "{p} dport {a}-{b} ");
            }
            None => {
                let _ = write!(m, "meta l4proto {p} ");
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Rule, SecurityGroupSpec};
    use crate::model::{validate_group, GroupId};

    fn topo() -> Topology {
        Topology {
            table: "berth".into(),
            vpc: "172.31.0.0/16".parse().unwrap(),
            subnets: vec![
                (
                    "172.31.0.0/20".parse().unwrap(),
                    true,
                    Ipv4Addr::new(172, 31, 0, 1),
                ),
                (
                    "172.31.16.0/20".parse().unwrap(),
                    false,
                    Ipv4Addr::new(172, 31, 16, 1),
                ),
            ],
            host_services: vec!["169.254.170.2/32".parse().unwrap()],
        }
    }

    fn gid(s: &str) -> GroupId {
        GroupId::parse("id", s).unwrap()
    }

    fn web() -> Group {
        let spec = SecurityGroupSpec {
            id: Some("web-1".into()),
            description: String::new(),
            ingress: vec![
                Rule {
                    protocol: "tcp".into(),
                    from_port: Some(8080),
                    to_port: None,
                    cidr: None,
                    group: Some("app".into()),
                },
                Rule {
                    protocol: "icmp".into(),
                    from_port: None,
                    to_port: None,
                    cidr: Some("10.0.0.0/8".into()),
                    group: None,
                },
                Rule {
                    protocol: "udp".into(),
                    from_port: Some(1000),
                    to_port: Some(2000),
                    cidr: Some("0.0.0.0/0".into()),
                    group: None,
                },
            ],
            egress: Some(vec![]),
        };
        validate_group(&spec, None, &|g: &GroupId| g.as_str() == "app").unwrap()
    }

    #[test]
    fn group_rules_render_as_set_lookups_and_ranges() {
        let s = topo().create_group_script(&web());
        assert_eq!(
            s,
            "add set inet berth g_web_1 { type ipv4_addr; }\n\
             add chain inet berth g_web_1_in\nadd chain inet berth g_web_1_out\n\
             add rule inet berth g_web_1_in ip saddr @g_app tcp dport 8080 accept\n\
             add rule inet berth g_web_1_in ip saddr 10.0.0.0/8 meta l4proto icmp accept\n\
             add rule inet berth g_web_1_in udp dport 1000-2000 accept\n"
        );
        let replace = topo().replace_group_script(&web());
        assert!(replace.starts_with(
            "flush chain inet berth g_web_1_in\nflush chain inet berth g_web_1_out\n"
        ));
    }

    #[test]
    fn unused_combinations_go_before_the_group_they_jump_to() {
        let c = combo_name(&[gid("web-1")]);
        let k = combo_name(&[gid("app")]);
        let s = format!(
            "{}{}",
            topo().delete_combos_script(std::slice::from_ref(&c), std::slice::from_ref(&k)),
            topo().delete_group_script(&gid("web-1"))
        );
        assert_eq!(
            s,
            format!(
                "flush chain inet berth dispatch_in\nflush chain inet berth dispatch_out\n\
                 add rule inet berth dispatch_in ip daddr @{k} goto {k}_in\n\
                 add rule inet berth dispatch_out ip saddr @{k} goto {k}_out\n\
                 delete chain inet berth {c}_in\ndelete chain inet berth {c}_out\n\
                 delete set inet berth {c}\n\
                 delete chain inet berth g_web_1_in\ndelete chain inet berth g_web_1_out\n\
                 delete set inet berth g_web_1\n"
            )
        );
        assert_eq!(
            topo().delete_combos_script(&[], std::slice::from_ref(&k)),
            ""
        );
    }

    #[test]
    fn combos_are_shared_whatever_the_order() {
        assert_eq!(
            combo_name(&[gid("a"), gid("b")]),
            combo_name(&[gid("b"), gid("a")])
        );
        assert_ne!(combo_name(&[gid("a")]), combo_name(&[gid("a"), gid("b")]));
    }

    #[test]
    fn attach_adds_elements_only_and_detach_removes_them() {
        let e = FwEni {
            ip: Ipv4Addr::new(172, 31, 0, 9),
            groups: vec![gid("web-1")],
            published: vec![Published {
                udp: false,
                host_port: 18080,
                container_port: 8080,
            }],
        };
        let c = combo_name(&e.groups);
        let a = topo().attach_script(&e, false);
        assert!(!a.contains("chain"));
        assert!(a.contains(&format!("add element inet berth {c} {{ 172.31.0.9 }}")));
        assert!(!a.contains("goto"), "attach touches no verdict: {a}");
        assert!(a.contains("add element inet berth pub_tcp { 18080 : 172.31.0.9 . 8080 }"));
        let d = topo().detach_script(&e);
        assert!(d.contains("delete element inet berth g_web_1 { 172.31.0.9 }"));
        assert!(d.contains("delete element inet berth pub_tcp { 18080 }"));
        let first = topo().attach_script(&e, true);
        assert!(first.contains(&format!("add set inet berth {c} {{ type ipv4_addr; }}")));
        assert!(first.contains(&format!("add rule inet berth {c}_in drop")));
        assert!(first.contains(&format!(
            "add rule inet berth dispatch_in ip daddr @{c} goto {c}_in"
        )));
    }

    #[test]
    fn full_table_is_stateful_first_and_isolates_private_subnets() {
        let s = topo().full_script([&web()], &[]);
        let forward: Vec<&str> = s
            .lines()
            .filter(|l| l.starts_with("add rule inet berth forward"))
            .collect();
        assert_eq!(
            forward[0],
            "add rule inet berth forward ct state established,related accept"
        );
        assert!(s.contains("forward ip saddr 172.31.16.0/20 ip daddr != 172.31.0.0/16 drop"));
        assert!(
            s.contains("postrouting ip saddr 172.31.0.0/20 ip daddr != 172.31.0.0/16 masquerade")
        );
        assert!(!s.contains("postrouting ip saddr 172.31.16.0/20"));
        assert!(
            s.starts_with("add table inet berth\ndelete table inet berth\nadd table inet berth\n")
        );
        assert!(s.contains("input iifname \"berth*\" meta nfproto ipv6 drop"));
    }
}
