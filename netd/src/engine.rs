//! The daemon's state and every operation on it. One worker thread owns the engine; the HTTP
//! handlers only parse requests and send them here (see `server`).

use crate::api::{self, SecurityGroupSpec};
use crate::config::Config;
use crate::error::{InputError, NetdError};
use crate::firewall::{FwEni, Topology};
use crate::ipam::Ipam;
use crate::model::{self, Group, GroupId, Published, TaskKey};
use crate::sys::{files, libnftables::Libnftables, netlink::Rtnl, nft};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What is persisted per ENI (`<state>/enis/<name>.json`), written before any kernel object
/// is made: the record is the IP allocation and the list of objects to clean up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EniRecord {
    /// The task.
    pub task: TaskKey,
    /// Host veth name and netns file name (`berth` + 8 hex).
    pub name: String,
    /// The subnet's name.
    pub subnet: String,
    /// The task's IP.
    pub ip: Ipv4Addr,
    /// The MAC of `eth0`.
    pub mac: String,
    /// Group ids, in order.
    pub groups: Vec<String>,
    /// Published ports.
    pub published: Vec<Published>,
    /// The hostname for `/etc/hosts`, if given.
    pub hostname: Option<String>,
}

/// netd's state: configuration, groups, ENIs, the address index and the host's netlink
/// socket.
pub struct Engine {
    pub(crate) cfg: Config,
    pub(crate) topo: Topology,
    pub(crate) groups: BTreeMap<GroupId, Group>,
    pub(crate) enis: BTreeMap<TaskKey, EniRecord>,
    pub(crate) ipam: Ipam,
    /// Combination chains present in the table now.
    pub(crate) combos: HashSet<String>,
    pub(crate) host: Rtnl,
    /// The host namespace's `/proc/sys/net/ipv6/conf`.
    pub(crate) ipv6_conf: crate::sys::sysctl::Ipv6Conf,
    /// In-process libnftables, when loaded; else each change runs the `nft` binary.
    pub(crate) nft_lib: std::cell::RefCell<Option<Libnftables>>,
    /// Namespaces made ahead of time.
    pub(crate) pool: Option<crate::pool::NetnsPool>,
}

impl Engine {
    /// The directory of ENI records.
    pub(crate) fn eni_dir(&self) -> PathBuf {
        self.cfg.run_dir.join("enis")
    }

    /// The directory of group records.
    pub(crate) fn group_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("groups")
    }

    /// Where the netns of an ENI named `name` is pinned.
    pub fn netns_path(&self, name: &str) -> PathBuf {
        self.cfg.netns_dir.join(name)
    }

    /// Apply an nft script to our table.
    pub(crate) fn nft(&self, script: &str) -> Result<(), NetdError> {
        let mut lib = self.nft_lib.borrow_mut();
        let applied = match lib.as_mut() {
            Some(lib) => lib.apply(script),
            None => nft::apply(&self.cfg.nft, script),
        };
        applied.map_err(|message| NetdError::Nft {
            table: self.cfg.table.clone(),
            message,
        })
    }

    /// The firewall's view of a record.
    pub(crate) fn fw_eni(rec: &EniRecord) -> FwEni {
        FwEni {
            ip: rec.ip,
            groups: rec
                .groups
                .iter()
                .filter_map(|g| GroupId::parse("group", g).ok())
                .collect(),
            published: rec.published.clone(),
        }
    }

    /// Rebuild the whole table from the current state (one transaction).
    pub(crate) fn rebuild_table(&mut self) -> Result<(), NetdError> {
        let enis: Vec<FwEni> = self.enis.values().map(Self::fw_eni).collect();
        let script = self.topo.full_script(self.groups.values(), &enis);
        self.nft(&script)?;
        self.combos = enis
            .iter()
            .map(|e| crate::firewall::combo_name(&e.groups))
            .collect();
        Ok(())
    }

    /// The wire form of an ENI.
    pub(crate) fn eni_to_wire(&self, rec: &EniRecord) -> api::Eni {
        let subnet = self.cfg.subnet(&rec.subnet);
        let prefix_length = subnet.map(|s| s.cidr.prefix_len()).unwrap_or(32);
        let gateway = subnet.map(|s| s.gateway()).unwrap_or(rec.ip);
        let hostname = rec
            .hostname
            .clone()
            .unwrap_or_else(|| format!("ip-{}", rec.ip.to_string().replace('.', "-")));
        let mut resolv_conf: String = self
            .cfg
            .dns_servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect();
        if !self.cfg.dns_search.is_empty() {
            resolv_conf.push_str(&format!("search {}\n", self.cfg.dns_search.join(" ")));
        }
        let hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{hostname}\n",
            rec.ip
        );
        api::Eni {
            task: rec.task.to_string(),
            eni_id: format!("eni-{}", rec.name.trim_start_matches("berth")),
            subnet: rec.subnet.clone(),
            ip: rec.ip,
            prefix_length,
            gateway,
            mac: rec.mac.clone(),
            host_interface: rec.name.clone(),
            interface_name: "eth0".into(),
            netns_path: self.netns_path(&rec.name),
            security_groups: rec.groups.clone(),
            port_mappings: rec.published.iter().map(|p| p.to_wire()).collect(),
            resolv_conf,
            hosts,
        }
    }

    /// `GET /enis`.
    pub fn list_enis(&self) -> Vec<api::Eni> {
        self.enis.values().map(|r| self.eni_to_wire(r)).collect()
    }

    /// `GET /enis/{task}`.
    pub fn get_eni(&self, task: &str) -> Result<api::Eni, NetdError> {
        self.record(task).map(|r| self.eni_to_wire(r))
    }

    pub(crate) fn record(&self, task: &str) -> Result<&EniRecord, NetdError> {
        TaskKey::parse("task", task)
            .ok()
            .and_then(|k| self.enis.get(&k))
            .ok_or_else(|| NetdError::NotFound {
                kind: "ENI for task",
                key: task.to_owned(),
            })
    }

    /// `GET /subnets`.
    pub fn list_subnets(&self) -> Vec<api::Subnet> {
        self.cfg
            .subnets
            .iter()
            .map(|s| api::Subnet {
                name: s.name.clone(),
                cidr: s.cidr.to_string(),
                public: s.public,
                gateway: s.gateway(),
                available_ips: self.ipam.available(&s.name),
                enis: self.ipam.used(&s.name),
            })
            .collect()
    }

    fn group_to_wire(&self, g: &Group) -> api::SecurityGroup {
        let mut w = g.to_wire();
        w.members = self
            .enis
            .values()
            .filter(|r| r.groups.iter().any(|x| x == g.id.as_str()))
            .map(|r| r.task.to_string())
            .collect();
        w
    }

    /// `GET /security-groups`.
    pub fn list_groups(&self) -> Vec<api::SecurityGroup> {
        self.groups
            .values()
            .map(|g| self.group_to_wire(g))
            .collect()
    }

    /// `GET /security-groups/{id}`.
    pub fn get_group(&self, id: &str) -> Result<api::SecurityGroup, NetdError> {
        self.group(id).map(|g| self.group_to_wire(g))
    }

    fn group(&self, id: &str) -> Result<&Group, NetdError> {
        GroupId::parse("id", id)
            .ok()
            .and_then(|g| self.groups.get(&g))
            .ok_or_else(|| NetdError::NotFound {
                kind: "security group",
                key: id.to_owned(),
            })
    }

    pub(crate) fn save_group(&self, g: &Group) -> Result<(), NetdError> {
        let w = g.to_wire();
        let spec = SecurityGroupSpec {
            id: Some(w.id),
            description: w.description,
            ingress: w.ingress,
            egress: Some(w.egress),
        };
        let dir = self.group_dir();
        let name = format!("{}.json", g.id);
        let bytes = serde_json::to_vec_pretty(&spec).unwrap_or_default();
        files::write_atomic(&dir, &name, &bytes, files::Durability::Reboot).map_err(|source| {
            NetdError::Store {
                op: "write",
                path: dir.join(name),
                source,
            }
        })
    }

    fn remove_group_file(&self, id: &GroupId) -> Result<(), NetdError> {
        let dir = self.group_dir();
        let name = format!("{id}.json");
        files::remove(&dir, &name, files::Durability::Reboot).map_err(|source| NetdError::Store {
            op: "remove",
            path: dir.join(name),
            source,
        })
    }

    /// `POST /security-groups`.
    pub fn create_group(
        &mut self,
        spec: &SecurityGroupSpec,
    ) -> Result<api::SecurityGroup, NetdError> {
        let g = model::validate_group(spec, None, &|id| self.groups.contains_key(id))?;
        if self.groups.contains_key(&g.id) {
            return Err(NetdError::Conflict {
                what: format!("id: security group {:?} already exists", g.id.as_str()),
            });
        }
        self.save_group(&g)?;
        if let Err(e) = self.nft(&self.topo.create_group_script(&g)) {
            let _ = self.remove_group_file(&g.id);
            return Err(e);
        }
        let wire = self.group_to_wire(&g);
        self.groups.insert(g.id.clone(), g);
        Ok(wire)
    }

    /// `PUT /security-groups/{id}`: replace the rules, applied in one nft transaction.
    pub fn put_group(
        &mut self,
        id: &str,
        spec: &SecurityGroupSpec,
    ) -> Result<api::SecurityGroup, NetdError> {
        let old = self.group(id)?.clone();
        let g = model::validate_group(spec, Some(id), &|gid| self.groups.contains_key(gid))?;
        // The rules reach running tasks first; the (fsynced) record follows, and if it
        // cannot be written the old rules go back so kernel and disk agree.
        self.nft(&self.topo.replace_group_script(&g))?;
        if let Err(e) = self.save_group(&g) {
            if let Err(undo) = self.nft(&self.topo.replace_group_script(&old)) {
                tracing::warn!(group = %old.id, error = %undo, "restoring old rules failed");
            }
            return Err(e);
        }
        let wire = self.group_to_wire(&g);
        self.groups.insert(g.id.clone(), g);
        Ok(wire)
    }

    /// `DELETE /security-groups/{id}`: only when no ENI uses it and no rule names it.
    pub fn delete_group(&mut self, id: &str) -> Result<(), NetdError> {
        let gid = self.group(id)?.id.clone();
        let users = self
            .enis
            .values()
            .filter(|r| r.groups.iter().any(|g| g == gid.as_str()))
            .count();
        if users > 0 {
            return Err(NetdError::Conflict {
                what: format!("security group {id:?} is used by {users} ENI(s)"),
            });
        }
        if let Some(other) = self
            .groups
            .values()
            .find(|o| o.id != gid && o.referenced_groups().contains(&gid))
        {
            return Err(NetdError::Conflict {
                what: format!(
                    "security group {id:?} is named by a rule of security group {:?}",
                    other.id.as_str()
                ),
            });
        }
        // Combination chains outlive their last ENI and may still jump into this group's
        // chains (the kernel refuses to delete a chain that is jumped to: EBUSY). Those no
        // ENI uses go in the same transaction; an attach re-creates a combination on demand.
        let in_use: HashSet<String> = self
            .enis
            .values()
            .map(|r| crate::firewall::combo_name(&Self::fw_eni(r).groups))
            .collect();
        let mut stale: Vec<String> = self.combos.difference(&in_use).cloned().collect();
        let mut kept: Vec<String> = self.combos.intersection(&in_use).cloned().collect();
        stale.sort_unstable();
        kept.sort_unstable();
        let script = format!(
            "{}{}",
            self.topo.delete_combos_script(&stale, &kept),
            self.topo.delete_group_script(&gid)
        );
        self.nft(&script)?;
        self.combos = in_use;
        self.remove_group_file(&gid)?;
        self.groups.remove(&gid);
        Ok(())
    }

    /// The configured subnet for a request (the first one when unnamed).
    pub(crate) fn pick_subnet(
        &self,
        name: Option<&str>,
    ) -> Result<crate::config::SubnetConfig, NetdError> {
        match name {
            None => self.cfg.subnets.first().cloned().ok_or_else(|| {
                NetdError::Input(InputError::new("subnet", "no subnet is configured".into()))
            }),
            Some(n) => self.cfg.subnet(n).cloned().ok_or_else(|| {
                let have: Vec<&str> = self.cfg.subnets.iter().map(|s| s.name.as_str()).collect();
                NetdError::Input(InputError::new(
                    "subnet",
                    format!("no subnet named {n:?} (have: {})", have.join(", ")),
                ))
            }),
        }
    }

    /// The state directory's subdirectories, created if missing.
    pub(crate) fn ensure_dirs(cfg: &Config) -> Result<(), NetdError> {
        for dir in [
            cfg.state_dir.clone(),
            cfg.run_dir.join("enis"),
            cfg.state_dir.join("groups"),
            cfg.netns_dir.clone(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| NetdError::Store {
                op: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Whether `path` names a file in `dir` (used to spot orphan netns files).
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
