//! A small synchronous rtnetlink client: one `NETLINK_ROUTE` socket bound to the network
//! namespace it was opened in, one request at a time, every request acknowledged.
//!
//! Synchronous on purpose: netd opens a socket inside each new task namespace (a socket
//! stays in the namespace it was created in, whatever thread uses it later), and doing the
//! whole attach as plain calls on the worker thread keeps the rollback order obvious.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO,
    NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A route-netlink socket in one network namespace.
pub struct Rtnl {
    socket: Socket,
    sequence: u32,
}

/// The main routing table.
const RT_TABLE_MAIN: u8 = 254;

impl Rtnl {
    /// Open a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        Ok(Self {
            socket,
            sequence: 0,
        })
    }

    /// Send one request and collect the answers up to its ACK (or the end of a dump).
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send_to(&buf, &SocketAddr::new(0, 0), 0)?;
        let is_dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut answers = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = usize::try_from(reply.header.length).unwrap_or(usize::MAX);
                if length == 0 {
                    break;
                }
                offset += (length + 3) & !3;
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::Error(_) if !is_dump => return Ok(answers),
                    // A dump ends with DONE (its ACK, if any, is skipped next time by its
                    // sequence number).
                    NetlinkPayload::Done(_) if is_dump => return Ok(answers),
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
            }
        }
    }

    /// Create a veth pair: `host` here, `peer` created directly inside the namespace
    /// `peer_netns` (no move afterwards: moving costs ~35 ms of RCU waits); the host end
    /// up, the peer (down) with MAC `peer_mac`.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: BorrowedFd<'_>,
        peer_mac: [u8; 6],
    ) -> io::Result<Option<u32>> {
        // Both ends are created down, and the caller brings them up: the peer because the
        // kernel configures it before the two ends know each other (veth_open answers
        // ENOTCONN), the host end so that its sysctls are set before it comes up.
        let mut peer_msg = LinkMessage::default();
        peer_msg.attributes = vec![
            LinkAttribute::IfName(peer.to_owned()),
            LinkAttribute::Address(peer_mac.to_vec()),
            LinkAttribute::NetNsFd(peer_netns.as_raw_fd()),
        ];
        let mut msg = LinkMessage::default();
        msg.attributes = vec![
            LinkAttribute::IfName(host.to_owned()),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
            ]),
        ];
        // NLM_F_ECHO: kernels since 6.2 answer with the new link, saving a lookup of its
        // index by name; older ones answer with the ACK only.
        let answers = self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
        )?;
        Ok(answers.into_iter().find_map(|a| match a {
            RouteNetlinkMessage::NewLink(l) if l.header.index != 0 => Some(l.header.index),
            _ => None,
        }))
    }

    /// The index of the link named `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes = vec![LinkAttribute::IfName(name.to_owned())];
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(answers) => Ok(answers.into_iter().find_map(|a| match a {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(e) if e.raw_os_error() == Some(libc_enodev()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link's (index, name).
    pub fn links(&mut self) -> io::Result<Vec<(u32, String)>> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|a| match a {
                RouteNetlinkMessage::NewLink(l) => {
                    let name = l.attributes.iter().find_map(|at| match at {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })?;
                    Some((l.header.index, name))
                }
                _ => None,
            })
            .collect())
    }

    /// Bring link `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), 0).map(drop)
    }

    /// Delete link `index`; a link already gone is success.
    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Err(e) if e.raw_os_error() == Some(libc_enodev()) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Put `ip/prefix_len` on link `index` (replacing the same address: idempotent).
    /// `has_prefix_route: false` sets IFA_F_NOPREFIXROUTE, so the kernel adds no route for
    /// the subnet and every packet goes through the gateway.
    pub fn add_address(
        &mut self,
        index: u32,
        ip: Ipv4Addr,
        prefix_len: u8,
        has_prefix_route: bool,
    ) -> io::Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.attributes = vec![
            AddressAttribute::Local(IpAddr::V4(ip)),
            AddressAttribute::Address(IpAddr::V4(ip)),
        ];
        if !has_prefix_route {
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Noprefixroute));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Add or replace the route `destination/prefix_len` out of link `oif`, through
    /// `gateway` when given (else a link-scope route), with source `prefsrc` when given.
    pub fn replace_route(
        &mut self,
        destination: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        oif: u32,
        prefsrc: Option<Ipv4Addr>,
    ) -> io::Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.destination_prefix_length = prefix_len;
        msg.header.table = RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Static;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if prefix_len > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(destination)));
        }
        if let Some(gw) = gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        }
        if let Some(src) = prefsrc {
            msg.attributes
                .push(RouteAttribute::PrefSource(RouteAddress::Inet(src)));
        }
        msg.attributes.push(RouteAttribute::Oif(oif));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netns;
    use nix::sched::{unshare, CloneFlags};
    use std::os::fd::AsFd;

    #[test]
    fn a_new_veth_answers_with_its_index() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        // In a namespace of the test's own: the real host's links are never touched.
        std::thread::spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).unwrap();
            let mut host = Rtnl::open().unwrap();
            let (peer_ns, _peer) = netns::create_unpinned().unwrap();
            let echoed = host
                .create_veth("bt-echo0", "eth0", peer_ns.as_fd(), [2, 0, 0, 0, 0, 1])
                .unwrap();
            let looked_up = host.link_index("bt-echo0").unwrap();
            assert!(looked_up.is_some());
            // Kernels before 6.2 do not echo a new link.
            let release = nix::sys::utsname::uname().unwrap();
            let release = release.release().to_string_lossy().into_owned();
            let mut v = release
                .split(['.', '-'])
                .map(|p| p.parse::<u32>().unwrap_or(0));
            let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
            if (major, minor) >= (6, 2) {
                assert_eq!(echoed, looked_up, "kernel {release}");
            } else {
                assert!(echoed.is_none() || echoed == looked_up);
            }
        })
        .join()
        .unwrap();
    }
}
