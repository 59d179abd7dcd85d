//! The kernel boundary: netlink requests, namespaces, the `nft` binary, and durable files.
//! Everything above this module is policy and can be tested without root.

pub mod files;
pub mod libnftables;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod sysctl;
