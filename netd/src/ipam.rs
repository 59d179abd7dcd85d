//! Address allocation per subnet. The ENI records on disk are the allocations (each record
//! names its IP, written atomically before any kernel object exists), so this is an in-memory
//! index rebuilt from them on start: no address is handed out twice, AWS's reserved
//! addresses never are, and allocation is next-fit so a released address is not reused at
//! once (conntrack entries and peers' caches of the old owner age out first).

use crate::cidr::Cidr;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The free/used state of every subnet.
#[derive(Debug, Default)]
pub struct Ipam {
    subnets: BTreeMap<String, Pool>,
}

#[derive(Debug)]
struct Pool {
    cidr: Cidr,
    used: BTreeSet<Ipv4Addr>,
    /// Offset where the next search starts.
    cursor: u64,
}

/// Why an address could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpamRefusal {
    /// The subnet is not known.
    UnknownSubnet,
    /// Every usable address is in use.
    Exhausted,
    /// The address is outside the subnet or reserved.
    NotUsable,
    /// The address is already in use.
    InUse,
}

impl Ipam {
    /// An index over `subnets` (name, block), all free.
    pub fn new<'a>(subnets: impl IntoIterator<Item = (&'a str, Cidr)>) -> Self {
        let subnets = subnets
            .into_iter()
            .map(|(name, cidr)| {
                (
                    name.to_owned(),
                    Pool {
                        cidr,
                        used: BTreeSet::new(),
                        cursor: 4,
                    },
                )
            })
            .collect();
        Self { subnets }
    }

    /// Take the next free address of `subnet`.
    pub fn allocate(&mut self, subnet: &str) -> Result<Ipv4Addr, IpamRefusal> {
        let pool = self
            .subnets
            .get_mut(subnet)
            .ok_or(IpamRefusal::UnknownSubnet)?;
        let size = pool.cidr.size();
        for step in 0..size {
            let offset = (pool.cursor + step) % size;
            let Some(ip) = pool.cidr.nth(offset) else {
                continue;
            };
            if pool.cidr.is_aws_reserved(ip) || pool.used.contains(&ip) {
                continue;
            }
            pool.used.insert(ip);
            pool.cursor = (offset + 1) % size;
            return Ok(ip);
        }
        Err(IpamRefusal::Exhausted)
    }

    /// Mark `ip` as used (restoring a record).
    pub fn claim(&mut self, subnet: &str, ip: Ipv4Addr) -> Result<(), IpamRefusal> {
        let pool = self
            .subnets
            .get_mut(subnet)
            .ok_or(IpamRefusal::UnknownSubnet)?;
        if !pool.cidr.contains(ip) || pool.cidr.is_aws_reserved(ip) {
            return Err(IpamRefusal::NotUsable);
        }
        if !pool.used.insert(ip) {
            return Err(IpamRefusal::InUse);
        }
        if let Some(off) = pool.cidr.offset_of(ip) {
            pool.cursor = pool.cursor.max((off + 1) % pool.cidr.size());
        }
        Ok(())
    }

    /// Give `ip` back. Releasing a free address is a no-op.
    pub fn release(&mut self, subnet: &str, ip: Ipv4Addr) {
        if let Some(pool) = self.subnets.get_mut(subnet) {
            pool.used.remove(&ip);
        }
    }

    /// Addresses still free in `subnet`.
    pub fn available(&self, subnet: &str) -> u64 {
        self.subnets
            .get(subnet)
            .map(|p| usable(p.cidr).saturating_sub(p.used.len() as u64))
            .unwrap_or(0)
    }

    /// Addresses in use in `subnet`.
    pub fn used(&self, subnet: &str) -> u64 {
        self.subnets
            .get(subnet)
            .map(|p| p.used.len() as u64)
            .unwrap_or(0)
    }
}

/// Addresses a task can get: all but AWS's 5 reserved.
fn usable(cidr: Cidr) -> u64 {
    cidr.size().saturating_sub(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam(cidr: &str) -> Ipam {
        Ipam::new([("s", cidr.parse().unwrap())])
    }

    #[test]
    fn hands_out_every_usable_address_once_then_refuses() {
        let mut i = ipam("10.0.0.0/28");
        let mut got = BTreeSet::new();
        for _ in 0..11 {
            assert!(got.insert(i.allocate("s").unwrap()));
        }
        assert_eq!(i.allocate("s"), Err(IpamRefusal::Exhausted));
        let want: BTreeSet<_> = (4..15).map(|o| Ipv4Addr::new(10, 0, 0, o)).collect();
        assert_eq!(got, want);
        assert_eq!(i.available("s"), 0);
    }

    #[test]
    fn released_addresses_come_back_only_after_the_others() {
        let mut i = ipam("10.0.0.0/24");
        let a = i.allocate("s").unwrap();
        let b = i.allocate("s").unwrap();
        i.release("s", a);
        let c = i.allocate("s").unwrap();
        assert!(c != a && c != b);
    }

    #[test]
    fn claims_refuse_reserved_duplicate_and_foreign_addresses() {
        let mut i = ipam("10.0.0.0/24");
        assert_eq!(
            i.claim("s", Ipv4Addr::new(10, 0, 0, 2)),
            Err(IpamRefusal::NotUsable)
        );
        assert_eq!(
            i.claim("s", Ipv4Addr::new(10, 0, 0, 255)),
            Err(IpamRefusal::NotUsable)
        );
        assert_eq!(
            i.claim("s", Ipv4Addr::new(10, 0, 1, 9)),
            Err(IpamRefusal::NotUsable)
        );
        assert_eq!(i.claim("s", Ipv4Addr::new(10, 0, 0, 9)), Ok(()));
        assert_eq!(
            i.claim("s", Ipv4Addr::new(10, 0, 0, 9)),
            Err(IpamRefusal::InUse)
        );
        assert_ne!(i.allocate("s").unwrap(), Ipv4Addr::new(10, 0, 0, 9));
        assert_eq!(i.allocate("x"), Err(IpamRefusal::UnknownSubnet));
    }
}
