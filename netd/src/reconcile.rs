//! Start-up: load the records, check each ENI against the kernel, keep the complete ones
//! (re-applying their configuration, which is idempotent), tear down the rest and any
//! orphan, then rebuild the nft table in one transaction.

use crate::api::SecurityGroupSpec;
use crate::config::Config;
use crate::engine::{file_name, Engine, EniRecord};
use crate::eni::{configure_host_side, configure_task_side, delete_link_by_name};
use crate::error::NetdError;
use crate::firewall::Topology;
use crate::ipam::Ipam;
use crate::model::{self, GroupId};
use crate::sys::{files, netlink::Rtnl, netns};
use std::collections::{BTreeMap, HashSet};

/// What start-up found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// ENIs kept.
    pub kept: usize,
    /// ENIs whose objects were incomplete or invalid, removed.
    pub removed: usize,
    /// Links and namespaces without a record, removed.
    pub orphans: usize,
}

impl Engine {
    /// Start from `cfg` and the state on disk.
    pub fn start(cfg: Config) -> Result<(Engine, Reconciled), NetdError> {
        Engine::ensure_dirs(&cfg)?;
        enable_forwarding()?;
        let host = Rtnl::open().map_err(|source| NetdError::Netlink {
            op: "open socket",
            object: "host namespace".into(),
            source,
        })?;
        let ipv6_conf =
            crate::sys::sysctl::Ipv6Conf::open().map_err(|source| NetdError::Sysctl {
                op: "open",
                link: "/proc/sys/net/ipv6/conf".into(),
                source,
            })?;
        let topo = Topology {
            table: cfg.table.clone(),
            vpc: cfg.vpc,
            subnets: cfg
                .subnets
                .iter()
                .map(|s| (s.cidr, s.public, s.gateway()))
                .collect(),
            host_services: cfg.host_services.clone(),
        };
        let ipam = Ipam::new(cfg.subnets.iter().map(|s| (s.name.as_str(), s.cidr)));
        let mut engine = Engine {
            cfg,
            topo,
            groups: BTreeMap::new(),
            enis: BTreeMap::new(),
            ipam,
            combos: HashSet::new(),
            host,
            ipv6_conf,
            nft_lib: std::cell::RefCell::new(None),
            pool: None,
        };
        if !engine.cfg.is_nft_binary_forced {
            *engine.nft_lib.borrow_mut() = crate::sys::libnftables::Libnftables::open();
        }
        tracing::debug!(
            in_process = engine.nft_lib.borrow().is_some(),
            "nftables backend"
        );
        let gateways: Vec<_> = engine.cfg.subnets.iter().map(|s| s.gateway()).collect();
        crate::eni::ensure_gateways(&mut engine.host, &gateways)?;
        engine.load_groups()?;
        let report = engine.load_enis()?;
        engine.rebuild_table()?;
        engine.pool = Some(crate::pool::NetnsPool::start(engine.cfg.netns_pool));
        Ok((engine, report))
    }

    fn load_groups(&mut self) -> Result<(), NetdError> {
        let dir = self.group_dir();
        let records = files::read_records(&dir).map_err(|source| NetdError::Store {
            op: "read directory",
            path: dir.clone(),
            source,
        })?;
        let mut specs = Vec::new();
        for (name, bytes) in records {
            let spec: SecurityGroupSpec =
                serde_json::from_slice(&bytes).map_err(|e| NetdError::Corrupt {
                    path: dir.join(&name),
                    message: e.to_string(),
                })?;
            specs.push(spec);
        }
        let ids: HashSet<GroupId> = specs
            .iter()
            .filter_map(|s| GroupId::parse("id", s.id.as_deref().unwrap_or_default()).ok())
            .collect();
        for seed in self.cfg.groups.clone() {
            if !ids.contains(&seed.id) {
                self.save_group(&seed)?;
                self.groups.insert(seed.id.clone(), seed);
            }
        }
        let known: HashSet<GroupId> = ids
            .iter()
            .cloned()
            .chain(self.groups.keys().cloned())
            .collect();
        for spec in specs {
            let g = model::validate_group(&spec, None, &|id| known.contains(id)).map_err(|e| {
                NetdError::Corrupt {
                    path: dir.join(format!("{}.json", spec.id.as_deref().unwrap_or_default())),
                    message: e.to_string(),
                }
            })?;
            self.groups.insert(g.id.clone(), g);
        }
        Ok(())
    }

    fn load_enis(&mut self) -> Result<Reconciled, NetdError> {
        let dir = self.eni_dir();
        let records = files::read_records(&dir).map_err(|source| NetdError::Store {
            op: "read directory",
            path: dir.clone(),
            source,
        })?;
        let mut report = Reconciled::default();
        let mut names = HashSet::new();
        for (file, bytes) in records {
            let parsed: Result<EniRecord, _> = serde_json::from_slice(&bytes);
            let rec = match parsed {
                Ok(r) if format!("{}.json", r.name) == file => r,
                _ => {
                    tracing::warn!(file = %dir.join(&file).display(), "unreadable ENI record removed");
                    let _ = files::remove(&dir, &file, files::Durability::Process);
                    report.removed += 1;
                    continue;
                }
            };
            names.insert(rec.name.clone());
            if self.restore(&rec) {
                report.kept += 1;
                self.enis.insert(rec.task.clone(), rec);
            } else {
                self.teardown_stale(&rec);
                names.remove(&rec.name);
                report.removed += 1;
            }
        }
        report.orphans = self.remove_orphans(&names);
        Ok(report)
    }

    /// Whether a record is valid and its kernel objects are all there; if so its addresses,
    /// routes and address claim are (re)applied.
    fn restore(&mut self, rec: &EniRecord) -> bool {
        let Some(subnet) = self.cfg.subnet(&rec.subnet).cloned() else {
            tracing::warn!(task = %rec.task, subnet = %rec.subnet, "subnet no longer configured");
            return false;
        };
        let groups_ok = !rec.groups.is_empty()
            && rec
                .groups
                .iter()
                .all(|g| GroupId::parse("g", g).is_ok_and(|id| self.groups.contains_key(&id)));
        if !groups_ok || self.enis.contains_key(&rec.task) {
            return false;
        }
        let path = self.netns_path(&rec.name);
        let has_link = matches!(self.host.link_index(&rec.name), Ok(Some(_)));
        if !netns::is_pinned(&path) || !has_link {
            return false;
        }
        let reapplied = netns::open_rtnl(&path)
            .map_err(|f| NetdError::Netns {
                op: f.op,
                path: path.clone(),
                source: f.source,
            })
            .and_then(|mut ns| {
                configure_task_side(&mut ns, rec.ip, subnet.cidr.prefix_len(), subnet.gateway())
            })
            .and_then(|()| {
                configure_host_side(
                    &mut self.host,
                    &self.ipv6_conf,
                    &rec.name,
                    None,
                    rec.ip,
                    subnet.gateway(),
                )
            });
        if let Err(e) = reapplied {
            tracing::warn!(task = %rec.task, error = %crate::error::error_chain(&e), "ENI incomplete");
            return false;
        }
        if self.ipam.claim(&rec.subnet, rec.ip).is_err() {
            tracing::warn!(task = %rec.task, ip = %rec.ip, "address already claimed or unusable");
            return false;
        }
        true
    }

    fn teardown_stale(&mut self, rec: &EniRecord) {
        tracing::info!(task = %rec.task, veth = %rec.name, "removing incomplete or invalid ENI");
        if let Err(e) = delete_link_by_name(&mut self.host, &rec.name) {
            tracing::warn!(error = %crate::error::error_chain(&e), "remove stale veth");
        }
        if let Err(e) = netns::remove(&self.netns_path(&rec.name)) {
            tracing::warn!(error = %e, "remove stale netns");
        }
        if let Err(e) = files::remove(
            &self.eni_dir(),
            &format!("{}.json", rec.name),
            files::Durability::Process,
        ) {
            tracing::warn!(error = %e, "remove stale record");
        }
    }

    /// Host veths named like ours and netns files that no record names.
    fn remove_orphans(&mut self, names: &HashSet<String>) -> usize {
        let mut removed = 0;
        let links = self.host.links().unwrap_or_default();
        for (index, name) in links {
            if is_our_veth(&name) && !names.contains(&name) {
                tracing::info!(veth = %name, "removing orphan veth");
                if self.host.delete_link(index).is_ok() {
                    removed += 1;
                }
            }
        }
        let entries = std::fs::read_dir(&self.cfg.netns_dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for path in entries {
            if !names.contains(&file_name(&path)) {
                tracing::info!(netns = %path.display(), "removing orphan netns");
                if netns::remove(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// `berth` + 8 lowercase hex: the names netd gives host veths.
pub fn is_our_veth(name: &str) -> bool {
    name.len() == 13
        && name.starts_with("berth")
        && name[5..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Routing between the task veths needs IPv4 forwarding in netd's namespace.
fn enable_forwarding() -> Result<(), NetdError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    std::fs::write(path, "1").map_err(|source| NetdError::Store {
        op: "enable forwarding: write",
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_veth_names_are_orphan_candidates() {
        assert!(is_our_veth("berth0a1b2c3d"));
        for n in [
            "berth0",
            "eth0",
            "berth0A1B2C3D",
            "bt12345678v",
            "berth0a1b2c3d4",
        ] {
            assert!(!is_our_veth(n), "{n}");
        }
    }
}
