//! The syscall boundary of `berth inspect`'s network facts: a read-only rtnetlink dump of the
//! links, IPv4 addresses and IPv4 routes of one network namespace (the caller's, or one named
//! by a path, entered on a short-lived thread with `setns`). Interpretation is in `eni.rs`.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// One link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// ifindex.
    pub index: u32,
    /// Name.
    pub name: String,
    /// MAC, `aa:bb:…`.
    pub mac: Option<String>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// `IFLA_LINK_NETNSID`: set when the peer lives in another namespace.
    pub peer_netns_id: Option<i32>,
    /// `veth`, `loopback` has none, …
    pub kind: Option<String>,
    /// IFF_UP.
    pub is_up: bool,
}

/// One IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The link it is on.
    pub index: u32,
    /// The address.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
}

/// One IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination (`None`: the default route).
    pub destination: Option<Ipv4Addr>,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Next hop.
    pub gateway: Option<Ipv4Addr>,
    /// Output link.
    pub oif: Option<u32>,
}

/// What a namespace's rtnetlink dump shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Links.
    pub links: Vec<Link>,
    /// IPv4 addresses.
    pub addresses: Vec<Address>,
    /// IPv4 routes of the main table.
    pub routes: Vec<Route>,
}

const RT_TABLE_MAIN: u8 = 254;

fn dump(
    socket: &Socket,
    sequence: u32,
    message: RouteNetlinkMessage,
) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = sequence;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send_to(&buf, &SocketAddr::new(0, 0), 0)?;
    let mut answers = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let length = usize::try_from(reply.header.length).unwrap_or(usize::MAX);
            if length == 0 {
                return Ok(answers);
            }
            offset += (length + 3) & !3;
            if reply.header.sequence_number != sequence {
                continue;
            }
            match reply.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                NetlinkPayload::Done(_) => return Ok(answers),
                NetlinkPayload::InnerMessage(m) => answers.push(m),
                _ => {}
            }
        }
    }
}

fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn link(l: LinkMessage) -> Link {
    let mut out = Link {
        index: l.header.index,
        name: String::new(),
        mac: None,
        peer_index: None,
        peer_netns_id: None,
        kind: None,
        is_up: l.header.flags.contains(LinkFlags::Up),
    };
    for a in l.attributes {
        match a {
            LinkAttribute::IfName(n) => out.name = n,
            LinkAttribute::Address(b) => out.mac = Some(mac(&b)),
            LinkAttribute::Link(i) => out.peer_index = Some(i),
            LinkAttribute::LinkNetNsId(i) => out.peer_netns_id = Some(i),
            LinkAttribute::LinkInfo(infos) => {
                out.kind = infos.into_iter().find_map(|i| match i {
                    LinkInfo::Kind(InfoKind::Veth) => Some("veth".to_owned()),
                    LinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    out
}

fn inet(a: &RouteAddress) -> Option<Ipv4Addr> {
    match a {
        RouteAddress::Inet(ip) => Some(*ip),
        _ => None,
    }
}

/// Dump the calling thread's network namespace.
pub fn snapshot() -> io::Result<Snapshot> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    let mut snap = Snapshot::default();
    for m in dump(
        &socket,
        1,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
    )? {
        if let RouteNetlinkMessage::NewLink(l) = m {
            snap.links.push(link(l));
        }
    }
    let mut am = AddressMessage::default();
    am.header.family = AddressFamily::Inet;
    for m in dump(&socket, 2, RouteNetlinkMessage::GetAddress(am))? {
        if let RouteNetlinkMessage::NewAddress(a) = m {
            let ip = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(ip.to_owned()),
                _ => None,
            });
            let ip = ip.or_else(|| {
                a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Address(IpAddr::V4(ip)) => Some(ip.to_owned()),
                    _ => None,
                })
            });
            if let Some(ip) = ip {
                snap.addresses.push(Address {
                    index: a.header.index,
                    ip,
                    prefix_len: a.header.prefix_len,
                });
            }
        }
    }
    let mut rm = RouteMessage::default();
    rm.header.address_family = AddressFamily::Inet;
    for m in dump(&socket, 3, RouteNetlinkMessage::GetRoute(rm))? {
        if let RouteNetlinkMessage::NewRoute(r) = m {
            let is_main = r.header.table == RT_TABLE_MAIN
                || r.attributes.iter().any(
                    |a| matches!(a, RouteAttribute::Table(t) if *t == u32::from(RT_TABLE_MAIN)),
                );
            if !is_main || r.header.address_family != AddressFamily::Inet {
                continue;
            }
            let mut route = Route {
                destination: None,
                prefix_len: r.header.destination_prefix_length,
                gateway: None,
                oif: None,
            };
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(d) => route.destination = inet(d),
                    RouteAttribute::Gateway(g) => route.gateway = inet(g),
                    RouteAttribute::Oif(i) => route.oif = Some(*i),
                    _ => {}
                }
            }
            snap.routes.push(route);
        }
    }
    Ok(snap)
}

/// Dump the network namespace pinned at `netns` (an nsfs bind mount or /proc/PID/ns/net),
/// from a thread that enters it and ends: the caller's namespace is never changed.
pub fn snapshot_in(netns: &Path) -> io::Result<Snapshot> {
    let file = std::fs::File::open(netns)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)?;
            snapshot()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netlink reader thread panicked")))
    })
}
