//! `berth inspect TASK`: a task's isolation, every value read from the kernel.
//!
//! The agent (DescribeTasks), berth-runtime (`state`: the init pid) and netd (the ENI's netns
//! path and the groups' ids) only say *where to look*. What is shown comes from /proc
//! (namespaces, confinement, the root mount), the cgroup files, rtnetlink inside and outside
//! the task's network namespace, and `nft list` of netd's table. A fact that cannot be read
//! (a stopped task: no live pid, no netns) is listed under `gone` instead.

pub mod cgroup;
pub mod netlink;
pub mod nft;
pub mod procfs;
pub mod render;
pub mod topology;

use cgroup::CgroupFacts;
use procfs::{Confinement, RootMount};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// One container, as the agent and the runtime name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRef {
    /// The container's name in the task definition.
    pub name: String,
    /// berth-runtime's id.
    pub runtime_id: Option<String>,
    /// The init pid berth-runtime reports (`None`: stopped or deleted).
    pub pid: Option<i32>,
    /// berth-runtime's status (`running`, `stopped`, `deleted`, …).
    pub runtime_status: String,
}

/// Where to look: what the agent, the runtime and netd say about the task.
#[derive(Debug, Clone)]
pub struct Pointers {
    /// The task id.
    pub task_id: String,
    /// Its ARN.
    pub task_arn: String,
    /// ECS lastStatus.
    pub last_status: String,
    /// ECS desiredStatus.
    pub desired_status: String,
    /// Its containers.
    pub containers: Vec<ContainerRef>,
    /// netd's netns path for the ENI (`None`: netd has no ENI for the task).
    pub netns_path: Option<PathBuf>,
    /// netd's name for the host end of the veth.
    pub host_interface: Option<String>,
    /// netd's group ids (to name the `g_<name>` chains; `-` is `_` in nft).
    pub group_ids: Vec<String>,
    /// Why something could not be asked (netd unreachable, …).
    pub notes: Vec<String>,
}

/// The task, as the agent names it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFacts {
    /// Id.
    pub id: String,
    /// ARN.
    pub arn: String,
    /// lastStatus (the agent's, for orientation).
    pub last_status: String,
    /// desiredStatus.
    pub desired_status: String,
}

/// One namespace of one container.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NsFacts {
    /// `net`, `mnt`, `pid`, `uts`, `ipc`, `cgroup`, `user`.
    pub kind: String,
    /// The inode of /proc/PID/ns/KIND.
    pub inode: u64,
    /// Held by more than one container of the task.
    pub is_shared: bool,
    /// The task's containers in it (this one included).
    pub shared_with: Vec<String>,
    /// The same as PID 1's (the host's).
    pub is_host: bool,
}

/// One overlay lower directory.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    /// The directory.
    pub dir: String,
    /// The image store's diff-id for it, when it is a store layer.
    pub digest: Option<String>,
}

/// The root filesystem as the container's init sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RootfsFacts {
    /// `overlay`, or another type for a copied rootfs.
    pub fstype: String,
    /// The mount source.
    pub source: String,
    /// The lower directories, top first.
    pub layers: Vec<Layer>,
    /// The upper directory (the container's writes).
    pub upperdir: Option<String>,
    /// The work directory.
    pub workdir: Option<String>,
}

/// One container's facts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerFacts {
    /// Its name.
    pub name: String,
    /// berth-runtime's id.
    pub runtime_id: Option<String>,
    /// Its init's pid, when alive.
    pub pid: Option<i32>,
    /// berth-runtime's status.
    pub runtime_status: String,
    /// Its namespaces.
    pub namespaces: Vec<NsFacts>,
    /// Its own cgroup.
    pub cgroup: Option<CgroupFacts>,
    /// Its root mount.
    pub rootfs: Option<RootfsFacts>,
    /// Its init's seccomp, no_new_privs and capabilities.
    pub security: Option<Confinement>,
}

/// A link, named and numbered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkFacts {
    /// Its name.
    pub name: String,
    /// Its ifindex (in its namespace).
    pub index: u32,
    /// Its MAC.
    pub mac: Option<String>,
}

/// The ENI, read through rtnetlink.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EniFacts {
    /// The pinned netns.
    pub netns_path: String,
    /// Its inode (the containers' net namespace when they joined it).
    pub netns_inode: u64,
    /// The task end of the veth (inside the netns).
    pub task_interface: LinkFacts,
    /// The host end of the veth (the task end's peer).
    pub host_interface: Option<LinkFacts>,
    /// The task's address.
    pub ip: String,
    /// Its prefix length.
    pub prefix_length: u8,
    /// The task end's MAC.
    pub mac: Option<String>,
    /// The subnet (the address's network).
    pub subnet: String,
    /// The default route's gateway.
    pub gateway: Option<String>,
}

/// One security group's chains as nft lists them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupFacts {
    /// The group id (netd's), or the nft name when netd did not say.
    pub id: String,
    /// Its ingress chain.
    pub ingress_chain: String,
    /// The ingress chain's rules, as `nft list chain` prints them.
    pub ingress: Vec<String>,
    /// Its egress chain.
    pub egress_chain: String,
    /// The egress chain's rules.
    pub egress: Vec<String>,
    /// Its member set `g_<name>`'s addresses.
    pub members: Vec<String>,
}

/// A published port (a DNAT map element pointing at the ENI).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortFacts {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The host port.
    pub host_port: u64,
    /// The task's port.
    pub container_port: u64,
}

/// Everything `berth inspect` shows (`--output json` prints this).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The task.
    pub task: TaskFacts,
    /// The host's namespace inodes, by kind: PID 1's.
    pub host_namespaces: BTreeMap<String, u64>,
    /// Whose they are: `/proc/1`, or `/proc/self` (berth inspect's own: where netd runs) when
    /// PID 1's cannot be read (no ptrace access to it, e.g. inside a container).
    pub host_namespaces_from: String,
    /// The task cgroup (its hard limits).
    pub task_cgroup: Option<CgroupFacts>,
    /// The containers.
    pub containers: Vec<ContainerFacts>,
    /// The ENI.
    pub eni: Option<EniFacts>,
    /// The ENI's security groups, from the chains its address is sent to.
    pub security_groups: Vec<GroupFacts>,
    /// Published ports.
    pub published_ports: Vec<PortFacts>,
    /// What could not be read, and why (a stopped task's pids and netns, …).
    pub gone: Vec<String>,
}

/// The namespace inodes of `pid`, by kind (kinds that cannot be read are left out).
pub fn namespaces_of(pid: i32) -> BTreeMap<String, u64> {
    procfs::NAMESPACES
        .iter()
        .filter_map(|kind| {
            let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
            let inode = procfs::parse_ns_link(kind, &link.to_string_lossy())?;
            Some(((*kind).to_owned(), inode))
        })
        .collect()
}

/// Which containers hold each (kind, inode): pure, for the "shared" marks.
pub fn mark_sharing(
    per_container: &[(String, BTreeMap<String, u64>)],
    host: &BTreeMap<String, u64>,
) -> Vec<Vec<NsFacts>> {
    per_container
        .iter()
        .map(|(_, nss)| {
            nss.iter()
                .map(|(kind, inode)| {
                    let holders: Vec<String> = per_container
                        .iter()
                        .filter(|(_, other)| other.get(kind) == Some(inode))
                        .map(|(n, _)| n.clone())
                        .collect();
                    NsFacts {
                        kind: kind.clone(),
                        inode: *inode,
                        is_shared: holders.len() > 1,
                        shared_with: holders,
                        is_host: host.get(kind) == Some(inode),
                    }
                })
                .collect()
        })
        .collect()
}

fn rootfs_of(pid: i32) -> Option<RootfsFacts> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    let RootMount {
        fstype,
        source,
        lowerdirs,
        upperdir,
        workdir,
        ..
    } = procfs::parse_root_mount(&text)?;
    Some(RootfsFacts {
        fstype,
        source,
        layers: lowerdirs
            .into_iter()
            .map(|dir| Layer {
                digest: procfs::layer_digest(&dir),
                dir,
            })
            .collect(),
        upperdir,
        workdir,
    })
}

/// The network of an address with `prefix` bits (pure).
pub fn network_of(ip: Ipv4Addr, prefix: u8) -> String {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    format!("{}/{prefix}", Ipv4Addr::from(u32::from(ip) & mask))
}

/// The ENI from two rtnetlink dumps: the task namespace's and the caller's (the host's).
pub fn eni_from(
    netns_path: &Path,
    netns_inode: u64,
    inside: &netlink::Snapshot,
    host: Option<&netlink::Snapshot>,
) -> Option<EniFacts> {
    // The task end: the veth (a link with a peer) holding a routable IPv4 address (netd's
    // `eth0`); `lo` also holds the metadata endpoint's link-local 169.254.170.2.
    let (addr, link) = inside.addresses.iter().find_map(|a| {
        let link = inside.links.iter().find(|l| l.index == a.index)?;
        let is_eni = link.peer_index.is_some() && !a.ip.is_loopback() && !a.ip.is_link_local();
        is_eni.then_some((a, link))
    })?;
    let host_link = host.and_then(|h| {
        let peer = link.peer_index?;
        h.links
            .iter()
            .find(|l| l.index == peer && l.peer_index == Some(link.index))
    });
    let gateway = inside
        .routes
        .iter()
        .find(|r| r.destination.is_none() && r.prefix_len == 0)
        .and_then(|r| r.gateway)
        .map(|g| g.to_string());
    Some(EniFacts {
        netns_path: netns_path.display().to_string(),
        netns_inode,
        task_interface: LinkFacts {
            name: link.name.clone(),
            index: link.index,
            mac: link.mac.clone(),
        },
        host_interface: host_link.map(|l| LinkFacts {
            name: l.name.clone(),
            index: l.index,
            mac: l.mac.clone(),
        }),
        ip: addr.ip.to_string(),
        prefix_length: addr.prefix_len,
        mac: link.mac.clone(),
        subnet: network_of(addr.ip, addr.prefix_len),
        gateway,
    })
}

/// The nft name of a group id (netd maps `-` to `_`).
pub fn nft_name(id: &str) -> String {
    id.replace('-', "_")
}

fn security_groups(
    nft: &nft::Nft,
    ip: &str,
    group_ids: &[String],
    gone: &mut Vec<String>,
) -> Vec<GroupFacts> {
    // The combination whose member set holds the address: the dispatch chain names each
    // combination's set and chain.
    let dispatch = match nft.list_json("chain", "dispatch_in") {
        Ok(v) => nft::dispatch_rules(&v),
        Err(e) => {
            gone.push(format!("security groups: {e}"));
            return Vec::new();
        }
    };
    let combo_in = dispatch.into_iter().find_map(|(set, chain)| {
        let members = nft.list_json("set", &set).map(|v| nft::set_elements(&v));
        match members {
            Ok(m) if m.iter().any(|e| e == ip) => Some(chain),
            Ok(_) => None,
            Err(e) => {
                gone.push(format!("security groups: {e}"));
                None
            }
        }
    });
    let Some(combo_in) = combo_in else {
        gone.push(format!(
            "security groups: {ip} is in no combination set of chain inet {} dispatch_in",
            nft.table
        ));
        return Vec::new();
    };
    let targets = match nft.list_json("chain", &combo_in) {
        Ok(v) => nft::jump_targets(&v),
        Err(e) => {
            gone.push(format!("security groups: {e}"));
            Vec::new()
        }
    };
    let mut out = Vec::new();
    for target in targets {
        let Some(name) = target
            .strip_prefix("g_")
            .and_then(|t| t.strip_suffix("_in"))
        else {
            continue;
        };
        let id = group_ids
            .iter()
            .find(|g| nft_name(g) == name)
            .cloned()
            .unwrap_or_else(|| name.to_owned());
        let (ingress_chain, egress_chain) = (format!("g_{name}_in"), format!("g_{name}_out"));
        let mut rules = |chain: &str| {
            nft.chain_rules(chain).unwrap_or_else(|e| {
                gone.push(format!("security group {id}: {e}"));
                Vec::new()
            })
        };
        let ingress = rules(&ingress_chain);
        let egress = rules(&egress_chain);
        let members = nft
            .list_json("set", &format!("g_{name}"))
            .map(|v| nft::set_elements(&v))
            .unwrap_or_default();
        out.push(GroupFacts {
            id,
            ingress_chain,
            ingress,
            egress_chain,
            egress,
            members,
        });
    }
    out
}

fn published(nft: &nft::Nft, ip: &str) -> Vec<PortFacts> {
    let mut out = Vec::new();
    for proto in ["tcp", "udp"] {
        if let Ok(v) = nft.list_json("map", &format!("pub_{proto}")) {
            out.extend(
                nft::published_to(&v, ip)
                    .into_iter()
                    .map(|(host_port, container_port)| PortFacts {
                        protocol: proto.to_owned(),
                        host_port,
                        container_port,
                    }),
            );
        }
    }
    out
}

/// Read every fact of the task from the kernel, starting from `p`'s pointers.
pub fn collect(p: &Pointers, nft: &nft::Nft) -> Inspection {
    let mut gone = p.notes.clone();
    let (mut host_namespaces, mut host_namespaces_from) = (namespaces_of(1), "/proc/1");
    if host_namespaces.is_empty() {
        host_namespaces = namespaces_of(std::process::id().try_into().unwrap_or(i32::MAX));
        host_namespaces_from = "/proc/self";
    }
    let layout = match berth_cgroups::detect() {
        Ok(l) => Some(l),
        Err(e) => {
            gone.push(format!("cgroups: {e}"));
            None
        }
    };

    let mut live: Vec<(String, BTreeMap<String, u64>)> = Vec::new();
    for c in &p.containers {
        let nss = c.pid.map(namespaces_of).unwrap_or_default();
        if nss.is_empty() {
            gone.push(format!(
                "container {}: no live init process (runtime status: {}): namespaces, cgroup \
                 membership, rootfs mount and confinement cannot be read",
                c.name, c.runtime_status
            ));
        }
        live.push((c.name.clone(), nss));
    }
    let marks = mark_sharing(&live, &host_namespaces);

    let mut containers = Vec::new();
    let mut container_cgroup_paths = Vec::new();
    for (c, namespaces) in p.containers.iter().zip(marks) {
        let alive = !namespaces.is_empty();
        let pid = c.pid.filter(|_| alive);
        let cgroup_path = pid.and_then(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
            cgroup::process_cgroup_path(layout.as_ref()?, &procfs::parse_proc_cgroup(&text))
        });
        let cg = match (&layout, &cgroup_path) {
            (Some(l), Some(path)) => {
                container_cgroup_paths.push(path.clone());
                Some(cgroup::read_cgroup(l, path))
            }
            _ => None,
        };
        let security = pid.and_then(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            match procfs::parse_confinement(&text) {
                Ok(c) => Some(c),
                Err(e) => {
                    gone.push(format!("container {}: /proc/{pid}/status: {e}", c.name));
                    None
                }
            }
        });
        containers.push(ContainerFacts {
            name: c.name.clone(),
            runtime_id: c.runtime_id.clone(),
            pid,
            runtime_status: c.runtime_status.clone(),
            namespaces,
            cgroup: cg,
            rootfs: pid.and_then(rootfs_of),
            security,
        });
    }

    // The task cgroup holds the containers' cgroups; with none alive, it is where the agent
    // makes it (`/berth/<task id>`), if it still exists.
    let task_cgroup_path = container_cgroup_paths
        .first()
        .and_then(|p| Path::new(p).parent().map(|d| d.display().to_string()))
        .unwrap_or_else(|| format!("/{}/{}", berth_cgroups::PARENT, p.task_id));
    let task_cgroup = layout.as_ref().and_then(|l| {
        let f = cgroup::read_cgroup(l, &task_cgroup_path);
        if f.exists {
            Some(f)
        } else {
            gone.push(format!("task cgroup {task_cgroup_path}: no such cgroup"));
            None
        }
    });

    let eni = match &p.netns_path {
        None => {
            gone.push("eni: netd has no ENI for the task (detached)".into());
            None
        }
        Some(path) => read_eni(path, &mut gone),
    };
    if let (Some(e), Some(named)) = (&eni, &p.host_interface) {
        match &e.host_interface {
            Some(h) if &h.name != named => gone.push(format!(
                "eni: netd names the host end {named}, but the kernel pairs eth0 with {}",
                h.name
            )),
            _ => {}
        }
    }
    let (security_groups, published_ports) = match &eni {
        Some(e) => (
            security_groups(nft, &e.ip, &p.group_ids, &mut gone),
            published(nft, &e.ip),
        ),
        None => (Vec::new(), Vec::new()),
    };

    Inspection {
        task: TaskFacts {
            id: p.task_id.clone(),
            arn: p.task_arn.clone(),
            last_status: p.last_status.clone(),
            desired_status: p.desired_status.clone(),
        },
        host_namespaces,
        host_namespaces_from: host_namespaces_from.to_owned(),
        task_cgroup,
        containers,
        eni,
        security_groups,
        published_ports,
        gone,
    }
}

fn read_eni(path: &Path, gone: &mut Vec<String>) -> Option<EniFacts> {
    use std::os::unix::fs::MetadataExt;
    let inode = match std::fs::metadata(path) {
        Ok(m) => m.ino(),
        Err(e) => {
            gone.push(format!("eni: netns {}: {e}", path.display()));
            return None;
        }
    };
    let inside = match netlink::snapshot_in(path) {
        Ok(s) => s,
        Err(e) => {
            gone.push(format!("eni: rtnetlink inside {}: {e}", path.display()));
            return None;
        }
    };
    let host = match netlink::snapshot() {
        Ok(s) => Some(s),
        Err(e) => {
            gone.push(format!("eni: rtnetlink in the host namespace: {e}"));
            None
        }
    };
    let eni = eni_from(path, inode, &inside, host.as_ref());
    match &eni {
        None => gone.push(format!(
            "eni: no IPv4 address on any link inside {}",
            path.display()
        )),
        Some(e) if e.host_interface.is_none() => gone.push(format!(
            "eni: the host end of {} (peer ifindex) is not in this network namespace: run \
             berth inspect in netd's namespace",
            e.task_interface.name
        )),
        Some(_) => {}
    }
    eni
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn the_shared_net_namespace_is_marked_and_private_ones_are_not() {
        let host = ns(&[("net", 1), ("mnt", 2), ("pid", 3)]);
        let per = vec![
            (
                "web".to_owned(),
                ns(&[("net", 10), ("mnt", 11), ("pid", 12)]),
            ),
            (
                "side".to_owned(),
                ns(&[("net", 10), ("mnt", 21), ("pid", 22)]),
            ),
        ];
        let marks = mark_sharing(&per, &host);
        let net = marks[0].iter().find(|n| n.kind == "net").unwrap();
        assert!(net.is_shared && !net.is_host);
        assert_eq!(net.shared_with, vec!["web", "side"]);
        let mnt = marks[1].iter().find(|n| n.kind == "mnt").unwrap();
        assert!(!mnt.is_shared && !mnt.is_host);
        let on_host = mark_sharing(&[("h".to_owned(), ns(&[("net", 1)]))], &host);
        assert!(on_host[0][0].is_host);
    }

    #[test]
    fn the_subnet_is_the_address_s_network() {
        assert_eq!(
            network_of("10.233.1.7".parse().unwrap(), 24),
            "10.233.1.0/24"
        );
        assert_eq!(
            network_of("172.31.17.9".parse().unwrap(), 20),
            "172.31.16.0/20"
        );
        assert_eq!(network_of("1.2.3.4".parse().unwrap(), 0), "0.0.0.0/0");
    }

    #[test]
    fn the_eni_pairs_the_task_end_with_its_host_peer() {
        let inside = netlink::Snapshot {
            links: vec![
                netlink::Link {
                    index: 1,
                    name: "lo".into(),
                    mac: None,
                    peer_index: None,
                    peer_netns_id: None,
                    kind: None,
                    is_up: true,
                },
                netlink::Link {
                    index: 2,
                    name: "eth0".into(),
                    mac: Some("0a:58:0a:e9:01:04".into()),
                    peer_index: Some(7),
                    peer_netns_id: Some(0),
                    kind: Some("veth".into()),
                    is_up: true,
                },
            ],
            addresses: vec![
                netlink::Address {
                    index: 1,
                    ip: Ipv4Addr::LOCALHOST,
                    prefix_len: 8,
                },
                netlink::Address {
                    index: 1,
                    ip: "169.254.170.2".parse().unwrap(),
                    prefix_len: 32,
                },
                netlink::Address {
                    index: 2,
                    ip: "10.233.1.4".parse().unwrap(),
                    prefix_len: 24,
                },
            ],
            routes: vec![netlink::Route {
                destination: None,
                prefix_len: 0,
                gateway: Some("10.233.1.1".parse().unwrap()),
                oif: Some(2),
            }],
        };
        let host = netlink::Snapshot {
            links: vec![
                netlink::Link {
                    index: 7,
                    name: "berth0123abcd".into(),
                    mac: None,
                    peer_index: Some(2),
                    peer_netns_id: Some(3),
                    kind: Some("veth".into()),
                    is_up: true,
                },
                netlink::Link {
                    index: 8,
                    name: "other".into(),
                    mac: None,
                    peer_index: Some(5),
                    peer_netns_id: Some(4),
                    kind: Some("veth".into()),
                    is_up: true,
                },
            ],
            ..Default::default()
        };
        let e = eni_from(Path::new("/run/berth/netns/x"), 99, &inside, Some(&host)).unwrap();
        assert_eq!(e.ip, "10.233.1.4");
        assert_eq!(e.subnet, "10.233.1.0/24");
        assert_eq!(e.gateway.as_deref(), Some("10.233.1.1"));
        assert_eq!(e.mac.as_deref(), Some("0a:58:0a:e9:01:04"));
        assert_eq!(e.host_interface.unwrap().name, "berth0123abcd");
        assert!(eni_from(Path::new("/x"), 1, &inside, None)
            .unwrap()
            .host_interface
            .is_none());
    }
}
