//! IPv4 CIDR blocks: parsing, containment, overlap and AWS's reserved addresses.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: an address whose host bits are zero, and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    network: Ipv4Addr,
    prefix_len: u8,
}

/// Why a string is not an IPv4 CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/` between address and prefix length.
    #[error("{text:?} is not a CIDR block (expected a.b.c.d/n)")]
    MissingPrefix {
        /// The text given.
        text: String,
    },
    /// The address part is not an IPv4 address.
    #[error("{text:?} is not a CIDR block: {address:?} is not an IPv4 address")]
    BadAddress {
        /// The text given.
        text: String,
        /// The address part.
        address: String,
    },
    /// The prefix length is not 0..=32.
    #[error("{text:?} is not a CIDR block: prefix length {prefix:?} is not 0 to 32")]
    BadPrefix {
        /// The text given.
        text: String,
        /// The prefix part.
        prefix: String,
    },
    /// Host bits are set (e.g. 172.31.0.1/16).
    #[error("{text:?} is not a CIDR block: host bits are set (did you mean {network}?)")]
    HostBitsSet {
        /// The text given.
        text: String,
        /// The network the text probably meant.
        network: Cidr,
    },
}

impl Cidr {
    /// The network `network/prefix_len`, with host bits cleared.
    pub fn new_truncating(address: Ipv4Addr, prefix_len: u8) -> Self {
        let prefix_len = prefix_len.min(32);
        Self {
            network: Ipv4Addr::from(u32::from(address) & mask(prefix_len)),
            prefix_len,
        }
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length (0..=32).
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The broadcast (last) address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix_len))
    }

    /// The number of addresses in the block.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix_len))
    }

    /// The address `offset` addresses after the network address, if it is inside the block.
    pub fn nth(&self, offset: u64) -> Option<Ipv4Addr> {
        if offset >= self.size() {
            return None;
        }
        let base = u64::from(u32::from(self.network));
        u32::try_from(base + offset).ok().map(Ipv4Addr::from)
    }

    /// The offset of `ip` from the network address, if `ip` is inside the block.
    pub fn offset_of(&self, ip: Ipv4Addr) -> Option<u64> {
        self.contains(ip)
            .then(|| u64::from(u32::from(ip) - u32::from(self.network)))
    }

    /// Whether `ip` lies inside the block.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix_len) == u32::from(self.network)
    }

    /// Whether `other` lies entirely inside this block.
    pub fn contains_block(&self, other: &Cidr) -> bool {
        other.prefix_len >= self.prefix_len && self.contains(other.network)
    }

    /// Whether the two blocks share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains_block(other) || other.contains_block(self)
    }

    /// Whether AWS reserves `ip` in a subnet with this block: the network address, +1 (the
    /// VPC router, here the gateway on the host), +2 (DNS), +3 (reserved for future use) and
    /// the broadcast address. These are never handed to a task.
    pub fn is_aws_reserved(&self, ip: Ipv4Addr) -> bool {
        match self.offset_of(ip) {
            Some(off) => off <= 3 || ip == self.broadcast(),
            None => false,
        }
    }

    /// The gateway (router) address: network + 1.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.nth(1)
    }
}

fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| CidrError::MissingPrefix {
                text: text.to_owned(),
            })?;
        let ip: Ipv4Addr = address.parse().map_err(|_| CidrError::BadAddress {
            text: text.to_owned(),
            address: address.to_owned(),
        })?;
        let prefix_len: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32 && !prefix.starts_with('+'))
            .ok_or_else(|| CidrError::BadPrefix {
                text: text.to_owned(),
                prefix: prefix.to_owned(),
            })?;
        let cidr = Cidr::new_truncating(ip, prefix_len);
        if cidr.network != ip {
            return Err(CidrError::HostBitsSet {
                text: text.to_owned(),
                network: cidr,
            });
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(c("172.31.0.0/16").to_string(), "172.31.0.0/16");
        assert_eq!(c("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(c("10.0.0.5/32").broadcast(), Ipv4Addr::new(10, 0, 0, 5));
    }

    #[test]
    fn rejects_bad_text_naming_the_part() {
        for (text, want) in [
            ("172.31.0.0", "expected a.b.c.d/n"),
            ("172.31.0/16", "\"172.31.0\" is not an IPv4 address"),
            ("300.1.1.1/8", "is not an IPv4 address"),
            ("10.0.0.0/33", "prefix length \"33\""),
            ("10.0.0.0/-1", "prefix length"),
            ("10.0.0.0/", "prefix length"),
            ("172.31.0.1/16", "did you mean 172.31.0.0/16"),
        ] {
            let err = text.parse::<Cidr>().unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn overlap_and_containment() {
        assert!(c("172.31.0.0/16").contains_block(&c("172.31.16.0/20")));
        assert!(!c("172.31.16.0/20").contains_block(&c("172.31.0.0/16")));
        assert!(c("172.31.0.0/20").overlaps(&c("172.31.8.0/24")));
        assert!(!c("172.31.0.0/20").overlaps(&c("172.31.16.0/20")));
    }

    #[test]
    fn aws_reserves_five_addresses() {
        let s = c("172.31.0.0/24");
        let reserved: Vec<_> = (0..256)
            .filter_map(|i| s.nth(i))
            .filter(|ip| s.is_aws_reserved(*ip))
            .collect();
        assert_eq!(
            reserved,
            [0, 1, 2, 3, 255].map(|o| Ipv4Addr::new(172, 31, 0, o))
        );
        assert_eq!(s.gateway(), Some(Ipv4Addr::new(172, 31, 0, 1)));
    }
}
