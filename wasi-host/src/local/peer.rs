//! Who is at the other end of an IPC connection: the IPC port serves only
//! the service's own Unix user.
//!
//! A loopback TCP peer is identified by its socket's owner: the client's
//! socket is the one whose local address is the connection's peer address
//! and whose remote address is the service's. Linux answers "which uid owns
//! the TCP socket with these four addresses" through netlink's `sock_diag`
//! (one exact look-up, tens of microseconds); where that is unavailable,
//! the same entry is found in `/proc/net/tcp` and `/proc/net/tcp6`, which
//! list every TCP socket of the network namespace with its owner's uid (a
//! few milliseconds: the kernel walks its whole socket hash table). A
//! Unix-domain socket peer is identified by
//! `SO_PEERCRED` (tokio's `peer_cred`). Where the owner cannot be found the
//! connection is refused, unless the user chose `ipc_trust =
//! "any-local-user"`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{Error, Result};

/// Which local users may drive the IPC port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpcTrust {
    /// Only processes of the service's own Unix user (the default).
    #[default]
    OwnUser,
    /// Any process of any user of this machine (0.1.0's behaviour): for
    /// platforms where the peer cannot be identified.
    AnyLocalUser,
}

impl IpcTrust {
    /// The value as `config.toml` and `--ipc-trust` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            IpcTrust::OwnUser => "own-user",
            IpcTrust::AnyLocalUser => "any-local-user",
        }
    }
}

impl std::str::FromStr for IpcTrust {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "own-user" => Ok(IpcTrust::OwnUser),
            "any-local-user" => Ok(IpcTrust::AnyLocalUser),
            _ => Err(Error::Peer(format!(
                "ipc_trust: {s:?} is neither \"own-user\" nor \"any-local-user\""
            ))),
        }
    }
}

/// Whether a connection from `peer` to the service's `local` address may
/// go on: `Err` says why not (logged; nothing is sent to the peer).
pub fn admit_tcp(trust: IpcTrust, local: SocketAddr, peer: SocketAddr) -> Result<()> {
    if trust == IpcTrust::AnyLocalUser {
        return Ok(());
    }
    let me = own_uid();
    match tcp_owner(local, peer) {
        Some(uid) if uid == me => Ok(()),
        Some(uid) => Err(Error::Peer(format!(
            "refused a connection from {peer}: it belongs to uid {uid}, the service to uid {me}"
        ))),
        None => Err(Error::Peer(format!(
            "refused a connection from {peer}: its owner cannot be identified (set ipc_trust = \"any-local-user\" to let every local user in)"
        ))),
    }
}

/// Whether a Unix-socket peer of uid `uid` (None: unknown) may go on.
pub fn admit_unix(trust: IpcTrust, uid: Option<u32>) -> Result<()> {
    let me = own_uid();
    match (trust, uid) {
        (IpcTrust::AnyLocalUser, _) => Ok(()),
        (_, Some(u)) if u == me => Ok(()),
        (_, Some(u)) => Err(Error::Peer(format!(
            "refused a unix-socket connection of uid {u}: the service is uid {me}"
        ))),
        (_, None) => Err(Error::Peer(
            "refused a unix-socket connection: its owner cannot be identified".into(),
        )),
    }
}

/// The service's own (effective) uid.
pub fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The uid owning the socket at `peer` that is connected to `local`; None
/// when it cannot be found (not Linux, or the peer already closed).
pub fn tcp_owner(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    match diag::owner(local, peer) {
        Ok(Some(uid)) => Some(uid),
        // Not found: sock_diag may be missing its TCP module (a trimmed
        // kernel answers ENOENT to everything), so the socket tables in
        // /proc decide; no sock_diag at all (a sandbox) likewise.
        Ok(None) | Err(_) => proc_owner(local, peer),
    }
}

/// TCP_ESTABLISHED. Only a live, connected client socket has an owner
/// worth trusting: a closed one in TIME_WAIT is listed with uid 0 and
/// inode 0 (it belongs to nobody any more), so a client that sent its
/// requests and closed before the check must not pass as root's.
const ESTABLISHED: u8 = 1;

/// [`tcp_owner`] through `/proc/net/tcp{,6}`.
pub fn proc_owner(local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    let (local, peer) = (unmap(local), unmap(peer));
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        if let Some(uid) = find_owner(&text, local, peer) {
            return Some(uid);
        }
    }
    None
}

/// The netlink `sock_diag` look-up (`linux/inet_diag.h`): one
/// `SOCK_DIAG_BY_FAMILY` request naming the socket exactly, answered by one
/// `inet_diag_msg` (or an error: `ENOENT` when there is no such socket).
#[cfg(target_os = "linux")]
pub mod diag {
    use std::net::{IpAddr, SocketAddr};

    use rustix::net::netlink::{SocketAddrNetlink, SOCK_DIAG};
    use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

    use super::ESTABLISHED;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;
    const IPPROTO_TCP: u8 = 6;
    /// `nlmsghdr` (16 bytes) + `inet_diag_req_v2` (56 bytes).
    const REQUEST_LEN: usize = 72;
    /// Where `idiag_uid` sits in the answer: `nlmsghdr`, then
    /// `inet_diag_msg`'s family/state/timer/retrans (4), `inet_diag_sockid`
    /// (48), expires/rqueue/wqueue (12).
    const UID_AT: usize = 16 + 4 + 48 + 12;
    /// `idiag_state`.
    const STATE_AT: usize = 16 + 1;
    /// `idiag_sport`, `idiag_dport` (big-endian).
    const PORTS_AT: usize = 16 + 4;
    /// `idiag_inode`, after the uid.
    const INODE_AT: usize = UID_AT + 4;

    /// The request for the TCP socket whose local address is `src` and
    /// remote address `dst`.
    pub(super) fn request(src: SocketAddr, dst: SocketAddr) -> [u8; REQUEST_LEN] {
        let mut m = [0u8; REQUEST_LEN];
        m[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        m[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
        let r = 16;
        m[r] = if src.is_ipv4() { AF_INET } else { AF_INET6 };
        m[r + 1] = IPPROTO_TCP;
        m[r + 4..r + 8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
        let id = r + 8;
        m[id..id + 2].copy_from_slice(&src.port().to_be_bytes());
        m[id + 2..id + 4].copy_from_slice(&dst.port().to_be_bytes());
        let put = |m: &mut [u8; REQUEST_LEN], at: usize, ip: IpAddr| match ip {
            IpAddr::V4(v4) => m[at..at + 4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => m[at..at + 16].copy_from_slice(&v6.octets()),
        };
        put(&mut m, id + 4, src.ip());
        put(&mut m, id + 20, dst.ip());
        // idiag_if = 0; the cookie INET_DIAG_NOCOOKIE (all ones): any socket.
        m[id + 40..id + 48].copy_from_slice(&[0xff; 8]);
        m
    }

    /// `N` bytes of an answer at `at`; a short answer is an error.
    fn field<const N: usize>(answer: &[u8], at: usize) -> std::io::Result<[u8; N]> {
        answer
            .get(at..at + N)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "short sock_diag answer")
            })
    }

    /// The uid in an answer about the socket with ports `sport` → `dport`;
    /// `Ok(None)` for "no such socket", and for one that is not an
    /// established connection still open by its owner (see
    /// [`ESTABLISHED`]) or is another socket than the one asked for.
    pub(super) fn parse(answer: &[u8], sport: u16, dport: u16) -> std::io::Result<Option<u32>> {
        match u16::from_ne_bytes(field(answer, 4)?) {
            NLMSG_ERROR => {
                let errno = i32::from_ne_bytes(field(answer, 16)?);
                if errno == -(rustix::io::Errno::NOENT.raw_os_error()) {
                    Ok(None)
                } else {
                    Err(std::io::Error::from_raw_os_error(-errno))
                }
            }
            SOCK_DIAG_BY_FAMILY => {
                let [state] = field::<1>(answer, STATE_AT)?;
                let ports: [u8; 4] = field(answer, PORTS_AT)?;
                let inode = u32::from_ne_bytes(field(answer, INODE_AT)?);
                let same = ports[..2] == sport.to_be_bytes() && ports[2..] == dport.to_be_bytes();
                Ok((state == ESTABLISHED && inode != 0 && same)
                    .then(|| u32::from_ne_bytes(field(answer, UID_AT).unwrap_or_default())))
            }
            other => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected sock_diag answer type {other}"),
            )),
        }
    }

    /// The uid owning the client socket at `peer` connected to `local`:
    /// `Err` when netlink cannot answer at all, `Ok(None)` when there is no
    /// such socket.
    pub fn owner(local: SocketAddr, peer: SocketAddr) -> std::io::Result<Option<u32>> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(SOCK_DIAG),
        )?;
        let kernel = SocketAddrNetlink::new(0, 0);
        rustix::net::sendto(&fd, &request(peer, local), SendFlags::empty(), &kernel)?;
        let mut buf = [0u8; 512];
        let (got, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())?;
        parse(&buf[..got.min(buf.len())], peer.port(), local.port())
    }
}

/// Elsewhere there is no sock_diag: always the fallback.
#[cfg(not(target_os = "linux"))]
pub mod diag {
    use std::net::SocketAddr;

    /// Always unavailable.
    pub fn owner(_local: SocketAddr, _peer: SocketAddr) -> std::io::Result<Option<u32>> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// In one socket table, the uid of the socket whose local address is `peer`
/// and remote address `local` (addresses already [`unmap`]ped).
fn find_owner(table: &str, local: SocketAddr, peer: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        let e = Entry::parse(line)?;
        (e.local == peer && e.remote == local && e.state == ESTABLISHED && e.inode != 0)
            .then_some(e.uid)
    })
}

/// One line of `/proc/net/tcp{,6}`.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    uid: u32,
    inode: u64,
}

impl Entry {
    /// `sl local_address rem_address st tx:rx tr:when retrnsmt uid ...`
    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split_whitespace().collect();
        Some(Self {
            local: unmap(parse_addr(f.get(1)?)?),
            remote: unmap(parse_addr(f.get(2)?)?),
            state: u8::from_str_radix(f.get(3)?, 16).ok()?,
            uid: f.get(7)?.parse().ok()?,
            inode: f.get(9)?.parse().ok()?,
        })
    }
}

/// `0100007F:1F64` (IPv4) or 32 hex digits `:PORT` (IPv6): the address as
/// the kernel keeps it (network byte order) printed as native-endian 32-bit
/// words, the port as a plain hex number.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne(bytes: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(bytes))
    }

    #[test]
    fn table_lines_parse_in_the_kernels_byte_order() {
        let v4 = format!(
            "   3: {}:D431 {}:1E64 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 20 4 30 10 -1",
            ne([127, 0, 0, 1]),
            ne([127, 0, 0, 1])
        );
        let e = Entry::parse(&v4).expect("parse");
        assert_eq!(e.local, "127.0.0.1:54321".parse().expect("addr"));
        assert_eq!(e.remote, "127.0.0.1:7780".parse().expect("addr"));
        assert_eq!((e.state, e.uid, e.inode), (1, 1000, 4242));
        let one = ne([0, 0, 0, 1]);
        let zero = ne([0, 0, 0, 0]);
        let v6 = format!(
            "   0: {zero}{zero}{zero}{one}:1E64 {zero}{zero}{zero}{one}:D431 01 00000000:00000000 00:00000000 00000000     0        0 77 1"
        );
        let e = Entry::parse(&v6).expect("parse");
        assert_eq!(e.local, "[::1]:7780".parse().expect("addr"));
        assert_eq!(e.uid, 0);
        for bad in [
            "",
            "  sl  local_address",
            "0: 0100007F 0100007F:1",
            "0: XYZ:1 0:0 01 0 0 0 12",
        ] {
            assert!(Entry::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_owner_of_a_real_loopback_connection_is_found() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let local = server.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(local).expect("connect");
        let (_accepted, peer) = server.accept().expect("accept");
        assert_eq!(peer, client.local_addr().expect("addr"));
        assert_eq!(tcp_owner(local, peer), Some(own_uid()));
        // Both ways of finding it agree.
        assert_eq!(proc_owner(local, peer), Some(own_uid()));
        #[cfg(target_os = "linux")]
        assert_eq!(
            diag::owner(local, peer).expect("sock_diag"),
            Some(own_uid())
        );
        assert!(admit_tcp(IpcTrust::OwnUser, local, peer).is_ok());
        // Not the service's own socket (local and peer swapped), and not a
        // socket that does not exist.
        let gone: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(tcp_owner(local, gone), None);
        assert_eq!(proc_owner(local, gone), None);
        let why = admit_tcp(IpcTrust::OwnUser, local, gone).expect_err("unknown peer");
        assert!(matches!(why, Error::Peer(_)), "{why}");
        assert!(why.to_string().contains("any-local-user"), "{why}");
        assert!(admit_tcp(IpcTrust::AnyLocalUser, local, gone).is_ok());
    }

    #[test]
    fn the_owner_over_ipv6_loopback_too() {
        let Ok(server) = std::net::TcpListener::bind("[::1]:0") else {
            // No IPv6 on this machine: nothing to connect over.
            assert!(std::net::TcpListener::bind("127.0.0.1:0").is_ok());
            return;
        };
        let local = server.local_addr().expect("addr");
        let _client = std::net::TcpStream::connect(local).expect("connect");
        let (_accepted, peer) = server.accept().expect("accept");
        assert_eq!(tcp_owner(local, peer), Some(own_uid()));
        assert_eq!(proc_owner(local, peer), Some(own_uid()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sock_diag_answers_parse_and_garbage_is_an_error() {
        let a: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:7772".parse().expect("addr");
        let req = diag::request(a, b);
        assert_eq!(&req[24..26], &40000u16.to_be_bytes());
        assert_eq!(&req[26..28], &7772u16.to_be_bytes());
        assert_eq!(&req[28..32], &[127, 0, 0, 1]);
        assert!(diag::parse(&[], 1, 2).is_err());
        assert!(diag::parse(&[0; 40], 1, 2).is_err());
        let mut enoent = [0u8; 36];
        enoent[4..6].copy_from_slice(&2u16.to_ne_bytes());
        enoent[16..20].copy_from_slice(&(-2i32).to_ne_bytes());
        assert_eq!(diag::parse(&enoent, 1, 2).expect("no such socket"), None);
        // An answer with every field distinct, so a wrong offset shows.
        let mut ok: Vec<u8> = (0u8..=95).collect();
        ok[4..6].copy_from_slice(&20u16.to_ne_bytes());
        ok[17] = 1; // established
        ok[20..22].copy_from_slice(&40000u16.to_be_bytes());
        ok[22..24].copy_from_slice(&7772u16.to_be_bytes());
        ok[80..84].copy_from_slice(&1234u32.to_ne_bytes());
        ok[84..88].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(diag::parse(&ok, 40000, 7772).expect("parse"), Some(1234));
        assert_eq!(
            diag::parse(&ok, 40001, 7772).expect("parse"),
            None,
            "another socket"
        );
        let mut closed = ok.clone();
        closed[17] = 6; // TIME_WAIT
        assert_eq!(diag::parse(&closed, 40000, 7772).expect("parse"), None);
        let mut orphan = ok.clone();
        orphan[84..88].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(diag::parse(&orphan, 40000, 7772).expect("parse"), None);
    }

    #[test]
    fn unix_peers_are_admitted_by_uid() {
        let me = own_uid();
        assert!(admit_unix(IpcTrust::OwnUser, Some(me)).is_ok());
        assert!(admit_unix(IpcTrust::OwnUser, Some(me + 1)).is_err());
        assert!(admit_unix(IpcTrust::OwnUser, None).is_err());
        assert!(admit_unix(IpcTrust::AnyLocalUser, Some(me + 1)).is_ok());
        assert_eq!("own-user".parse::<IpcTrust>().ok(), Some(IpcTrust::OwnUser));
        assert!("everyone".parse::<IpcTrust>().is_err());
    }
}
