//! Attach and detach: the ENI's kernel objects, in order, each registered for undo the
//! moment it exists, so a failed attach leaves nothing behind.

use crate::api::{self, AttachRequest};
use crate::engine::{Engine, EniRecord};
use crate::error::{InputError, NetdError};
use crate::firewall::{combo_name, fnv1a};
use crate::ipam::IpamRefusal;
use crate::model::{self, GroupId, ValidAttach};
use crate::sys::{files, netlink::Rtnl, netns, sysctl};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::PathBuf;

/// One step to undo if the attach fails later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Give the address back.
    ReleaseIp {
        /// Subnet.
        subnet: String,
        /// Address.
        ip: Ipv4Addr,
    },
    /// Remove the ENI record.
    RemoveRecord {
        /// Record name (without `.json`).
        name: String,
    },
    /// Unpin and remove the netns.
    RemoveNetns {
        /// The bind mount.
        path: PathBuf,
    },
    /// Delete the host veth (its peer goes with it).
    DeleteLink {
        /// Host veth name.
        name: String,
    },
}

/// The steps registered so far; run in reverse unless committed.
#[derive(Debug, Default)]
pub struct Rollback {
    steps: Vec<Undo>,
}

impl Rollback {
    /// Register an undo step for the object that now exists.
    pub fn on_failure(&mut self, step: Undo) {
        self.steps.push(step);
    }

    /// The steps to run, last first.
    pub fn into_reverse(self) -> impl Iterator<Item = Undo> {
        self.steps.into_iter().rev()
    }
}

/// The MAC of a task's `eth0`: locally administered, unicast, and unique because the IP is.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x0a, 0x58, o[0], o[1], o[2], o[3]]
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Engine {
    /// `POST /enis`. Returns the ENI and whether it was created now (false: the same
    /// request was already done, as after a client retry).
    pub fn attach(&mut self, req: &AttachRequest) -> Result<(api::Eni, bool), NetdError> {
        let _quiet = self.pool.as_ref().map(crate::pool::NetnsPool::hold_off);
        let v = model::validate_attach(req)?;
        let subnet = self.pick_subnet(v.subnet.as_deref())?;
        let groups = self.check_groups(&v)?;
        if let Some(existing) = self.enis.get(&v.task) {
            let same = existing.subnet == subnet.name
                && existing.groups == groups
                && existing.published == v.published;
            if same {
                return Ok((self.eni_to_wire(existing), false));
            }
            return Err(NetdError::Conflict {
                what: format!(
                    "task: {:?} already has an ENI with other settings",
                    v.task.as_str()
                ),
            });
        }
        self.check_published(&v, subnet.public, &subnet.name)?;
        let ip = self.ipam.allocate(&subnet.name).map_err(|r| match r {
            IpamRefusal::Exhausted => NetdError::Exhausted {
                subnet: subnet.name.clone(),
                cidr: subnet.cidr.to_string(),
            },
            _ => NetdError::Input(InputError::new(
                "subnet",
                format!("{:?} is not usable", subnet.name),
            )),
        })?;
        let mut rb = Rollback::default();
        rb.on_failure(Undo::ReleaseIp {
            subnet: subnet.name.clone(),
            ip,
        });
        let rec = EniRecord {
            task: v.task.clone(),
            name: self.fresh_name(&v.task),
            subnet: subnet.name.clone(),
            ip,
            mac: mac_text(mac_for(ip)),
            groups,
            published: v.published.clone(),
            hostname: v.hostname.clone(),
        };
        match self.build(&rec, subnet.gateway(), subnet.cidr.prefix_len(), &mut rb) {
            Ok(()) => {
                let wire = self.eni_to_wire(&rec);
                tracing::info!(task = %rec.task, ip = %rec.ip, veth = %rec.name, "eni attached");
                self.enis.insert(rec.task.clone(), rec);
                Ok((wire, true))
            }
            Err(e) => {
                self.run_undo(rb);
                Err(e)
            }
        }
    }

    fn check_groups(&self, v: &ValidAttach) -> Result<Vec<String>, NetdError> {
        let ids: Vec<GroupId> = if v.groups.is_empty() {
            vec![GroupId::parse("securityGroups", "default")?]
        } else {
            v.groups.clone()
        };
        for (i, g) in ids.iter().enumerate() {
            if !self.groups.contains_key(g) {
                return Err(NetdError::Input(InputError::new(
                    &format!("securityGroups[{i}]"),
                    format!("no security group {:?}", g.as_str()),
                )));
            }
        }
        Ok(ids.iter().map(|g| g.to_string()).collect())
    }

    fn check_published(
        &self,
        v: &ValidAttach,
        public: bool,
        subnet: &str,
    ) -> Result<(), NetdError> {
        if v.published.is_empty() {
            return Ok(());
        }
        if !public {
            return Err(NetdError::Input(InputError::new(
                "portMappings",
                format!(
                    "subnet {subnet:?} is private: only tasks in a public subnet publish ports"
                ),
            )));
        }
        for (i, p) in v.published.iter().enumerate() {
            if let Some(owner) = self.enis.values().find(|r| {
                r.published
                    .iter()
                    .any(|q| q.udp == p.udp && q.host_port == p.host_port)
            }) {
                return Err(NetdError::Conflict {
                    what: format!(
                        "portMappings[{i}].hostPort: {} is already published by task {:?}",
                        p.host_port,
                        owner.task.as_str()
                    ),
                });
            }
        }
        Ok(())
    }

    /// `berth` + 8 hex from the task, perturbed until no record or link uses it.
    fn fresh_name(&mut self, task: &model::TaskKey) -> String {
        let mut attempt = 0u32;
        loop {
            let h = fnv1a(format!("{task}#{attempt}").as_bytes());
            let name = format!("berth{:08x}", h & 0xffff_ffff);
            // Every record is a file named after its veth: a lookup, not a scan of them all.
            let taken = self.eni_dir().join(format!("{name}.json")).exists()
                || matches!(self.host.link_index(&name), Ok(Some(_)))
                || self.netns_path(&name).exists();
            if !taken {
                return name;
            }
            attempt += 1;
        }
    }

    /// Record, then namespace, veth, addresses, routes, firewall elements.
    fn build(
        &mut self,
        rec: &EniRecord,
        gateway: Ipv4Addr,
        prefix_len: u8,
        rb: &mut Rollback,
    ) -> Result<(), NetdError> {
        let started = std::time::Instant::now();
        let dir = self.eni_dir();
        let file = format!("{}.json", rec.name);
        let bytes = serde_json::to_vec_pretty(rec).unwrap_or_default();
        files::write_atomic(&dir, &file, &bytes, files::Durability::Process).map_err(|source| {
            NetdError::Store {
                op: "write",
                path: dir.join(&file),
                source,
            }
        })?;
        rb.on_failure(Undo::RemoveRecord {
            name: rec.name.clone(),
        });
        let recorded = started.elapsed();

        let path = self.netns_path(&rec.name);
        let pooled = self.pool.as_ref().and_then(|p| p.take());
        let made = match pooled {
            Some(ready) => ready.claim(&path),
            None => netns::create(&path),
        };
        let (ns_file, mut ns) = made.map_err(|f| NetdError::Netns {
            op: f.op,
            path: path.clone(),
            source: f.source,
        })?;
        rb.on_failure(Undo::RemoveNetns { path: path.clone() });
        let pinned = started.elapsed();

        let host_index = self
            .host
            .create_veth(&rec.name, "eth0", ns_file.as_fd(), mac_for(rec.ip))
            .map_err(|source| NetdError::Netlink {
                op: "create veth",
                object: format!("{} (peer eth0 in {})", rec.name, path.display()),
                source,
            })?;
        rb.on_failure(Undo::DeleteLink {
            name: rec.name.clone(),
        });
        drop(ns_file);
        let linked = started.elapsed();

        configure_task_side(&mut ns, rec.ip, prefix_len, gateway)?;
        configure_host_side(
            &mut self.host,
            &self.ipv6_conf,
            &rec.name,
            host_index,
            rec.ip,
            gateway,
        )?;
        let configured = started.elapsed();

        let fw = Self::fw_eni(rec);
        let combo = combo_name(&fw.groups);
        let is_new = !self.combos.contains(&combo);
        self.nft(&self.topo.attach_script(&fw, is_new))?;
        self.combos.insert(combo);
        tracing::debug!(?recorded, ?pinned, ?linked, ?configured, total = ?started.elapsed(), "attach steps");
        Ok(())
    }

    /// Run undo steps, last first; each failure is logged and the rest still run.
    pub(crate) fn run_undo(&mut self, rb: Rollback) {
        for step in rb.into_reverse() {
            if let Err(e) = self.undo(&step) {
                tracing::warn!(step = ?step, error = %crate::error::error_chain(&e), "rollback step failed");
            }
        }
    }

    fn undo(&mut self, step: &Undo) -> Result<(), NetdError> {
        match step {
            Undo::ReleaseIp { subnet, ip } => {
                self.ipam.release(subnet, *ip);
                Ok(())
            }
            Undo::RemoveRecord { name } => {
                let dir = self.eni_dir();
                let file = format!("{name}.json");
                files::remove(&dir, &file, files::Durability::Process).map_err(|source| {
                    NetdError::Store {
                        op: "remove",
                        path: dir.join(file),
                        source,
                    }
                })
            }
            Undo::RemoveNetns { path } => netns::remove(path).map_err(|source| NetdError::Netns {
                op: "remove",
                path: path.clone(),
                source,
            }),
            Undo::DeleteLink { name } => delete_link_by_name(&mut self.host, name),
        }
    }

    /// `DELETE /enis/{task}`: firewall elements, veth, namespace, record, address. Every
    /// step runs even when one fails; the first failure is returned.
    pub fn detach(&mut self, task: &str) -> Result<(), NetdError> {
        let rec = self.record(task)?.clone();
        let mut first_error = None;
        if let Err(e) = self.nft(&self.topo.detach_script(&Self::fw_eni(&rec))) {
            // The elements may be partly gone; a rebuild without this ENI is exact.
            tracing::warn!(task = %rec.task, error = %e, "removing elements failed, rebuilding table");
            self.enis.remove(&rec.task);
            if let Err(e) = self.rebuild_table() {
                first_error.get_or_insert(e);
            }
        }
        self.enis.remove(&rec.task);
        let steps = [
            Undo::DeleteLink {
                name: rec.name.clone(),
            },
            Undo::RemoveNetns {
                path: self.netns_path(&rec.name),
            },
            Undo::RemoveRecord {
                name: rec.name.clone(),
            },
            Undo::ReleaseIp {
                subnet: rec.subnet.clone(),
                ip: rec.ip,
            },
        ];
        for step in &steps {
            if let Err(e) = self.undo(step) {
                first_error.get_or_insert(e);
            }
        }
        tracing::info!(task = %rec.task, ip = %rec.ip, "eni detached");
        first_error.map_or(Ok(()), Err)
    }
}

/// The link that carries every subnet's gateway address on the host: `lo`, which every
/// namespace has (a dummy link would need the `dummy` module, absent on some kernels). The
/// host answers ARP for a local address arriving on any interface (`arp_ignore` 0, the
/// default), so tasks find their gateway through their veth.
pub const GATEWAY_LINK: &str = "lo";

/// Put every gateway (/32) on [`GATEWAY_LINK`]. Idempotent.
pub(crate) fn ensure_gateways(host: &mut Rtnl, gateways: &[Ipv4Addr]) -> Result<(), NetdError> {
    let err =
        |op: &'static str, object: String| move |source| NetdError::Netlink { op, object, source };
    let index = host
        .link_index(GATEWAY_LINK)
        .map_err(err("look up", GATEWAY_LINK.to_owned()))?
        .ok_or_else(|| NetdError::Netlink {
            op: "look up",
            object: GATEWAY_LINK.to_owned(),
            source: std::io::Error::from_raw_os_error(nix::errno::Errno::ENODEV as i32),
        })?;
    host.set_up(index)
        .map_err(err("bring up", GATEWAY_LINK.to_owned()))?;
    for gw in gateways {
        host.add_address(index, *gw, 32, true)
            .map_err(err("add address", format!("{gw}/32 on {GATEWAY_LINK}")))?;
    }
    Ok(())
}

/// Delete a host link by name; already gone is success.
pub(crate) fn delete_link_by_name(host: &mut Rtnl, name: &str) -> Result<(), NetdError> {
    let err = |op: &'static str| {
        let object = name.to_owned();
        move |source| NetdError::Netlink { op, object, source }
    };
    match host.link_index(name).map_err(err("look up link"))? {
        Some(index) => host.delete_link(index).map_err(err("delete link")),
        None => Ok(()),
    }
}

/// ECS's link-local address of the task metadata and credentials endpoints. It sits on the
/// task namespace's own `lo`, where berth-agent listens inside the namespace: each task
/// reaches its own endpoint, and nothing outside the namespace has a route to it.
pub const METADATA_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);

/// Inside the task's namespace: the address on eth0 without a subnet route, a link route to
/// the gateway and the default route through it. Every packet, also to a neighbour in the
/// same subnet, goes through the host, where the security groups are. Plus
/// [`METADATA_ADDRESS`]/32 on `lo` (always index 1 in a namespace). Idempotent.
pub(crate) fn configure_task_side(
    ns: &mut Rtnl,
    ip: Ipv4Addr,
    prefix_len: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetdError> {
    let err =
        |op: &'static str, object: String| move |source| NetdError::Netlink { op, object, source };
    let eth0 = ns
        .link_index("eth0")
        .map_err(err("look up", "eth0 in task netns".into()))?
        .ok_or_else(|| NetdError::Netlink {
            op: "look up",
            object: "eth0 in task netns".into(),
            source: std::io::Error::from_raw_os_error(nix::errno::Errno::ENODEV as i32),
        })?;
    ns.set_up(eth0)
        .map_err(err("bring up", "eth0 in task netns".into()))?;
    ns.add_address(1, METADATA_ADDRESS, 32, true).map_err(err(
        "add address",
        format!("{METADATA_ADDRESS}/32 on lo in task netns"),
    ))?;
    ns.add_address(eth0, ip, prefix_len, false)
        .map_err(err("add address", format!("{ip}/{prefix_len} on eth0")))?;
    ns.replace_route(gateway, 32, None, eth0, None)
        .map_err(err("add route", format!("{gateway}/32 dev eth0")))?;
    ns.replace_route(Ipv4Addr::UNSPECIFIED, 0, Some(gateway), eth0, None)
        .map_err(err("add route", format!("default via {gateway}")))
}

/// On the host: the veth (`index`, or looked up by `name`) up with IPv6 off (see
/// [`sysctl::Ipv6Conf::disable`]) and a /32 route to the task, sourced from its gateway. The
/// gateway address itself sits once on `lo` (see [`GATEWAY_LINK`]), not on every veth, so the
/// kernel's local route for it does not grow an alias per ENI. Idempotent.
pub(crate) fn configure_host_side(
    host: &mut Rtnl,
    ipv6_conf: &sysctl::Ipv6Conf,
    name: &str,
    index: Option<u32>,
    ip: Ipv4Addr,
    gateway: Ipv4Addr,
) -> Result<(), NetdError> {
    let err =
        |op: &'static str, object: String| move |source| NetdError::Netlink { op, object, source };
    let index = match index {
        Some(i) => i,
        None => host
            .link_index(name)
            .map_err(err("look up", name.to_owned()))?
            .ok_or_else(|| NetdError::Netlink {
                op: "look up",
                object: name.to_owned(),
                source: std::io::Error::from_raw_os_error(nix::errno::Errno::ENODEV as i32),
            })?,
    };
    ipv6_conf
        .disable(name)
        .map_err(|source| NetdError::Sysctl {
            op: "turn IPv6 off",
            link: name.to_owned(),
            source,
        })?;
    host.set_up(index)
        .map_err(err("bring up", name.to_owned()))?;
    host.replace_route(ip, 32, None, index, Some(gateway))
        .map_err(err("add route", format!("{ip}/32 dev {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_local_unicast_and_follow_the_ip() {
        let m = mac_for(Ipv4Addr::new(172, 31, 0, 5));
        assert_eq!(m[0] & 0b11, 0b10);
        assert_eq!(mac_text(m), "0a:58:ac:1f:00:05");
    }

    #[test]
    fn rollback_runs_last_first() {
        let mut rb = Rollback::default();
        rb.on_failure(Undo::ReleaseIp {
            subnet: "s".into(),
            ip: Ipv4Addr::LOCALHOST,
        });
        rb.on_failure(Undo::RemoveRecord { name: "r".into() });
        rb.on_failure(Undo::DeleteLink { name: "l".into() });
        let order: Vec<Undo> = rb.into_reverse().collect();
        assert_eq!(order[0], Undo::DeleteLink { name: "l".into() });
        assert_eq!(
            order[2],
            Undo::ReleaseIp {
                subnet: "s".into(),
                ip: Ipv4Addr::LOCALHOST
            }
        );
    }
}
