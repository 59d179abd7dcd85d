//! berth-netd: every task gets its own "ENI" — a network namespace, a veth, an IP from its
//! subnet — and security groups in nftables (issue 5; design in docs/network.md).
//!
//! [`api`] (wire types and a blocking client) is always built; everything else needs the
//! default `daemon` feature, so the agent links only the API.

pub mod api;
pub mod cidr;

#[cfg(feature = "daemon")]
pub mod config;
#[cfg(feature = "daemon")]
pub mod engine;
#[cfg(feature = "daemon")]
pub mod eni;
#[cfg(feature = "daemon")]
pub mod error;
#[cfg(feature = "daemon")]
pub mod firewall;
#[cfg(feature = "daemon")]
pub mod ipam;
#[cfg(feature = "daemon")]
pub mod model;
#[cfg(feature = "daemon")]
pub mod pool;
#[cfg(feature = "daemon")]
pub mod reconcile;
#[cfg(feature = "daemon")]
pub mod server;
#[cfg(feature = "daemon")]
pub mod sys;
