//! ipvsadm's argv, read exactly as ipvsadm 1.31 reads it (`parse_options` and the checks of
//! `process_options`), into an [`Invocation`].
//!
//! The structs mirror ipvsadm's own (`ipvs_service_t`, `ipvs_dest_t`, ...) so every quirk of
//! ordering carries over: `-M` before `-t [v6]` is read as an IPv4 mask and then reset to 128,
//! `-r` before `-t` copies port 0, and so on.

use crate::opts::{generic_opt_check, optc, tunnel_opt_check, Cmd, Options};
use crate::popt::{ArgKind, OptSpec, Popt};
use crate::resolve::Resolver;
use rvs_core::config::MAX_TIMEOUT;
use rvs_core::Protocol;
use rvs_proto::SyncState;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;
/// `IP_VS_SVC_F_PERSISTENT`.
pub const F_PERSISTENT: u32 = 0x1;
/// `IP_VS_SVC_F_ONEPACKET`.
pub const F_ONEPACKET: u32 = 0x4;
/// `IP_VS_CONN_F_MASQ`.
pub const FWD_MASQ: u32 = 0;
/// `IP_VS_CONN_F_TUNNEL`.
pub const FWD_TUNNEL: u32 = 2;
/// `IP_VS_CONN_F_DROUTE`.
pub const FWD_DROUTE: u32 = 3;
/// `IPVS_SVC_PERSISTENT_TIMEOUT`.
const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// `IP_VS_SCHEDNAME_MAXLEN - 1`.
const SCHEDNAME_MAX: usize = 15;
/// `IP_VS_PENAME_MAXLEN`.
const PENAME_MAX: usize = 16;
/// `IP_VS_IFNAME_MAXLEN - 1`.
const IFNAME_MAX: usize = 15;

/// Output format bits (`FMT_*`).
#[allow(
    missing_docs,
    reason = "each constant is ipvsadm's FMT_ flag of the same name"
)]
pub mod fmt {
    pub const NUMERIC: u32 = 0x0001;
    pub const RULE: u32 = 0x0002;
    pub const STATS: u32 = 0x0004;
    pub const RATE: u32 = 0x0008;
    pub const THRESHOLDS: u32 = 0x0010;
    pub const PERSISTENTCONN: u32 = 0x0020;
    pub const NOSORT: u32 = 0x0040;
    pub const EXACT: u32 = 0x0080;
    pub const TUN_INFO: u32 = 0x0100;
}

/// A virtual service as ipvsadm's `ipvs_service_t` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcSpec {
    /// `AF_INET`, `AF_INET6`, or 0 when unset.
    pub af: u16,
    /// The protocol, `None` until a service option is read (fwmark services use TCP).
    pub protocol: Option<Protocol>,
    /// The address.
    pub addr: IpAddr,
    /// The port, host order.
    pub port: u16,
    /// The firewall mark, 0 if none.
    pub fwmark: u32,
    /// The scheduler name as typed (at most 15 bytes), empty if unset.
    pub sched_name: String,
    /// `IP_VS_SVC_F_*` flags.
    pub flags: u32,
    /// Persistence timeout.
    pub timeout: u32,
    /// The netmask: raw network-order IPv4 mask, or the IPv6 prefix length.
    pub netmask: u32,
    /// The persistence engine, empty if unset.
    pub pe_name: String,
    /// rvs's `--proxy-protocol v1|v2`, if given.
    pub proxy_protocol: Option<rvs_core::ProxyProtocol>,
}

impl Default for SvcSpec {
    fn default() -> Self {
        Self {
            af: 0,
            protocol: None,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwmark: 0,
            sched_name: String::new(),
            flags: 0,
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: String::new(),
            proxy_protocol: None,
        }
    }
}

/// A real server as ipvsadm's `ipvs_dest_t` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestSpec {
    /// Address family.
    pub af: u16,
    /// Address.
    pub addr: IpAddr,
    /// Port, host order.
    pub port: u16,
    /// Forwarding method (`FWD_*`).
    pub conn_flags: u32,
    /// Weight.
    pub weight: i64,
    /// Upper threshold.
    pub u_threshold: u32,
    /// Lower threshold.
    pub l_threshold: u32,
    /// Tunnel type index (ipip 0, gue 1, gre 2).
    pub tun_type: usize,
    /// Tunnel port.
    pub tun_port: u16,
    /// Tunnel checksum flags (nocsum 0, csum 1, remcsum 2).
    pub tun_flags: u16,
}

impl Default for DestSpec {
    fn default() -> Self {
        Self {
            af: 0,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            conn_flags: FWD_DROUTE,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
        }
    }
}

/// The sync daemon options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Master or backup.
    pub state: Option<SyncState>,
    /// Multicast interface, empty if unset.
    pub mcast_ifn: String,
    /// Sync ID.
    pub syncid: u8,
    /// Max message length, 0 if unset.
    pub sync_maxlen: u16,
    /// UDP port, 0 if unset.
    pub mcast_port: u16,
    /// TTL, 0 if unset.
    pub mcast_ttl: u8,
    /// Multicast group, if set.
    pub mcast_group: Option<IpAddr>,
}

/// A fully read and checked command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command.
    pub cmd: Cmd,
    /// Service options.
    pub svc: SvcSpec,
    /// Real-server options.
    pub dest: DestSpec,
    /// `--set` values (tcp, tcpfin, udp).
    pub timeouts: [u32; 3],
    /// Daemon options.
    pub daemon: DaemonSpec,
    /// Which options were given.
    pub options: Options,
    /// Output format bits.
    pub format: u32,
}

/// What to do instead of running a command, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `-h`: print the usage to stdout, exit 0.
    Help,
    /// `-v`: print the version to stdout, exit 0.
    Version,
    /// `Try \`ipvsadm -h' ...` to stderr, exit 255.
    TryHelp,
    /// A message to stderr (a newline is added) and an exit code.
    Fail(String, u8),
}

fn fail(msg: impl Into<String>) -> Exit {
    Exit::Fail(msg.into(), 2)
}

/// Option tags: the popt `val`s of ipvsadm's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Add,
    Edit,
    Del,
    Clear,
    List,
    Zero,
    AddDest,
    EditDest,
    DelDest,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    Real,
    Masq,
    Ipip,
    Gate,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    Syncid,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    ProxyProtocol,
}

const fn o(long: &'static str, short: Option<char>, arg: ArgKind, tag: Tag) -> OptSpec<Tag> {
    OptSpec {
        long,
        short,
        arg,
        tag,
    }
}

use ArgKind::{None as N, Optional as O, Required as R};

/// ipvsadm's popt table, in its order.
const TABLE: &[OptSpec<Tag>] = &[
    o("add-service", Some('A'), N, Tag::Add),
    o("edit-service", Some('E'), N, Tag::Edit),
    o("delete-service", Some('D'), N, Tag::Del),
    o("clear", Some('C'), N, Tag::Clear),
    o("list", Some('L'), N, Tag::List),
    o("list", Some('l'), N, Tag::List),
    o("zero", Some('Z'), N, Tag::Zero),
    o("add-server", Some('a'), N, Tag::AddDest),
    o("edit-server", Some('e'), N, Tag::EditDest),
    o("delete-server", Some('d'), N, Tag::DelDest),
    o("set", None, N, Tag::Set),
    o("help", Some('h'), N, Tag::Help),
    o("version", Some('v'), N, Tag::Version),
    o("restore", Some('R'), N, Tag::Restore),
    o("save", Some('S'), N, Tag::Save),
    o("start-daemon", None, R, Tag::StartDaemon),
    o("stop-daemon", None, R, Tag::StopDaemon),
    o("tcp-service", Some('t'), R, Tag::Tcp),
    o("udp-service", Some('u'), R, Tag::Udp),
    o("sctp-service", None, R, Tag::Sctp),
    o("fwmark-service", Some('f'), R, Tag::Fwmark),
    o("scheduler", Some('s'), R, Tag::Scheduler),
    o("persistent", Some('p'), O, Tag::Persistent),
    o("netmask", Some('M'), R, Tag::Netmask),
    o("real-server", Some('r'), R, Tag::Real),
    o("masquerading", Some('m'), N, Tag::Masq),
    o("ipip", Some('i'), N, Tag::Ipip),
    o("gatewaying", Some('g'), N, Tag::Gate),
    o("weight", Some('w'), R, Tag::Weight),
    o("u-threshold", Some('x'), R, Tag::UThreshold),
    o("l-threshold", Some('y'), R, Tag::LThreshold),
    o("numeric", Some('n'), N, Tag::Numeric),
    o("connection", Some('c'), N, Tag::Connection),
    o("mcast-interface", None, R, Tag::McastInterface),
    o("syncid", None, R, Tag::Syncid),
    o("timeout", None, N, Tag::Timeout),
    o("daemon", None, N, Tag::Daemon),
    o("stats", None, N, Tag::Stats),
    o("rate", None, N, Tag::Rate),
    o("thresholds", None, N, Tag::Thresholds),
    o("persistent-conn", None, N, Tag::PersistentConn),
    o("nosort", None, N, Tag::NoSort),
    o("sort", None, N, Tag::Sort),
    o("exact", Some('X'), N, Tag::Exact),
    o("ipv6", Some('6'), N, Tag::Ipv6),
    o("ops", Some('o'), N, Tag::Ops),
    o("pe", None, R, Tag::Pe),
    o("sched-flags", Some('b'), R, Tag::SchedFlags),
    o("mcast-group", None, R, Tag::McastGroup),
    o("mcast-port", None, R, Tag::McastPort),
    o("mcast-ttl", None, R, Tag::McastTtl),
    o("sync-maxlen", None, R, Tag::SyncMaxlen),
    o("tun-info", None, N, Tag::TunInfo),
    o("tun-type", None, R, Tag::TunType),
    o("tun-port", None, R, Tag::TunPort),
    o("tun-nocsum", None, N, Tag::TunNocsum),
    o("tun-csum", None, N, Tag::TunCsum),
    o("tun-remcsum", None, N, Tag::TunRemcsum),
    // rvs's addition: not in ipvsadm, so it cannot change what an ipvsadm command line means.
    o("proxy-protocol", None, R, Tag::ProxyProtocol),
];

/// `string_to_number`: a whole decimal `strtol` in `min..=max`.
fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    let n = strtol(s)?;
    (min..=max).contains(&n).then_some(n)
}

/// `strtol(s, &end, 10)` that must consume the whole string: optional leading whitespace and
/// sign, then digits. `None` when nothing or not everything was consumed, or on overflow.
fn strtol(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `str_is_digit`: every character a digit (true for the empty string).
fn str_is_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// `inet_aton` as glibc has it: one to four parts (`a`, `a.b`, `a.b.c`, `a.b.c.d`, the last
/// filling the remaining bytes), each starting with a digit and read by `strtoul(.., 0)`
/// (decimal, octal after `0`, hex after `0x`: so no sign, and `0x` alone leaves an `x`
/// behind), then nothing or whitespace and anything.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut at = 0;
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    loop {
        if !b.get(at).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let (value, used) = strtoul0(&b[at..])?;
        at += used;
        if b.get(at) == Some(&b'.') {
            if parts.len() > 2 || value > 0xff {
                return None;
            }
            parts.push(value);
            at += 1;
        } else {
            parts.push(value);
            break;
        }
    }
    if b.get(at).is_some_and(|c| !c.is_ascii_whitespace()) {
        return None;
    }
    let last = *parts.last()?;
    let head = &parts[..parts.len() - 1];
    let max_last = [0xffff_ffff_u64, 0xff_ffff, 0xffff, 0xff][head.len()];
    if last > max_last {
        return None;
    }
    let mut n: u64 = 0;
    for (i, v) in head.iter().enumerate() {
        n |= v << (24 - 8 * i);
    }
    n |= last;
    Some(Ipv4Addr::from(u32::try_from(n).ok()?))
}

/// `strtoul(s, &end, 0)` from a digit: the value and the bytes used; `None` past 32 bits
/// (inet_aton refuses those).
fn strtoul0(b: &[u8]) -> Option<(u64, usize)> {
    let (radix, start) = match b {
        [b'0', b'x' | b'X', c, ..] if c.is_ascii_hexdigit() => (16, 2),
        [b'0', ..] => (8, 1),
        _ => (10, 0),
    };
    let mut v: u64 = 0;
    let mut at = start;
    while let Some(d) = b.get(at).and_then(|c| char::from(*c).to_digit(radix)) {
        v = v * u64::from(radix) + u64::from(d);
        if v > 0xffff_ffff {
            return None;
        }
        at += 1;
    }
    Some((v, at))
}

/// `atoi`: leading whitespace, a sign, then digits as far as they go; 0 without any.
fn atoi(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .take(18)
        .collect();
    let v: i64 = digits.parse().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

const SERVICE_ADDR: u8 = 1;
const SERVICE_PORT: u8 = 2;

/// `parse_service`: `host[:port]` or `[v6]:port` into `svc`; returns the `SERVICE_*` bits.
fn parse_service(buf: &str, svc: &mut SvcSpec, resolver: &dyn Resolver) -> u8 {
    if str_is_digit(buf) {
        return 0;
    }
    let mut host = buf;
    let mut port: Option<&str> = None;
    if let Some(rest) = buf.strip_prefix('[') {
        let Some((h, after)) = rest.split_once(']') else {
            return 0;
        };
        let Some(p) = after.strip_prefix(':') else {
            return 0;
        };
        host = h;
        port = Some(p);
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        svc.addr = IpAddr::V6(v6);
        svc.af = AF_INET6;
        svc.netmask = 128;
    } else {
        // ipvsadm looks for the port again inside what it took as the host: for `[v4]:port`
        // that finds none, so the port after `]` is dropped (the service gets port 0).
        port = None;
        if let Some((h, p)) = host.rsplit_once(':') {
            host = h;
            port = Some(p);
        }
        let v4 = inet_aton(host).or_else(|| resolver.host_to_addr(host));
        let Some(v4) = v4 else { return 0 };
        svc.addr = IpAddr::V4(v4);
        svc.af = AF_INET;
    }
    let mut result = SERVICE_ADDR;
    if let Some(p) = port {
        result |= SERVICE_PORT;
        if let Some(n) = string_to_number(p, 0, 65535) {
            svc.port = u16::try_from(n).unwrap_or(0);
        } else if let Some(n) = svc
            .protocol
            .and_then(|proto| resolver.service_to_port(p, proto))
        {
            svc.port = n;
        } else {
            return 0;
        }
    }
    result
}

/// `parse_timeout`.
fn parse_timeout(buf: Option<&str>, min: i64, max: i64) -> Result<u32, Exit> {
    let Some(buf) = buf else {
        return Ok(DEFAULT_PERSISTENT_TIMEOUT);
    };
    string_to_number(buf, min, max)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| fail(format!("invalid timeout value `{buf}' specified")))
}

/// `parse_fwmark`.
fn parse_fwmark(buf: &str) -> Result<u32, Exit> {
    strtol(buf)
        .filter(|&l| l > 0 && l <= i64::from(u32::MAX))
        .and_then(|l| u32::try_from(l).ok())
        .ok_or_else(|| fail(format!("invalid fwmark value `{buf}' specified")))
}

/// `parse_sched_flags`.
fn parse_sched_flags(sched: &str, arg: &str) -> Result<u32, Exit> {
    let sched = if sched.is_empty() { "wlc" } else { sched };
    let mut flags = 0;
    // strtok skips empty tokens; none at all (`-b ''`) means no flags.
    for flag in arg.split(',').filter(|w| !w.is_empty()) {
        let (bit, only) = match flag {
            "flag-1" => (0x08, None),
            "flag-2" => (0x10, None),
            "flag-3" => (0x20, None),
            "sh-fallback" => (0x08, Some("sh")),
            "sh-port" => (0x10, Some("sh")),
            "mh-fallback" => (0x08, Some("mh")),
            "mh-port" => (0x10, Some("mh")),
            _ => return Err(fail(format!("invalid scheduler flag `{flag}'"))),
        };
        flags |= bit;
        if only.is_some_and(|s| s != sched) {
            return Err(fail(format!("incompatible scheduler flag `{flag}'")));
        }
    }
    Ok(flags)
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn number<T: TryFrom<i64>>(arg: &str, min: i64, max: i64, what: &str) -> Result<T, Exit> {
    string_to_number(arg, min, max)
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| fail(format!("illegal {what} specified")))
}

/// Reads argv (without argv\[0\]) as ipvsadm does, with all of `process_options`' checks.
///
/// # Errors
/// The [`Exit`] ipvsadm would take instead: help, version, a failure text and code.
#[allow(clippy::too_many_lines, reason = "one arm per option, as in ipvsadm.c")]
pub fn parse(args: &[String], resolver: &dyn Resolver) -> Result<Invocation, Exit> {
    let mut popt = Popt::new(TABLE, args);
    let mut options = Options::default();
    let mut format = 0u32;
    let mut svc = SvcSpec::default();
    let mut dest = DestSpec::default();
    let mut daemon = DaemonSpec::default();
    let mut sched_flags_arg: Option<String> = None;

    let (first, arg) = match popt.next_opt() {
        Some(Ok(x)) => x,
        _ => return Err(Exit::TryHelp),
    };
    let daemon_state = |arg: Option<String>, msg: &str| match arg.as_deref() {
        Some("master") => Ok(Some(SyncState::Master)),
        Some("backup") => Ok(Some(SyncState::Backup)),
        _ => Err(fail(msg)),
    };
    let cmd = match first {
        Tag::Add => Cmd::Add,
        Tag::Edit => Cmd::Edit,
        Tag::Del => Cmd::Del,
        Tag::AddDest => Cmd::AddDest,
        Tag::EditDest => Cmd::EditDest,
        Tag::DelDest => Cmd::DelDest,
        Tag::Clear => Cmd::Flush,
        Tag::List => Cmd::List,
        Tag::Zero => Cmd::Zero,
        Tag::Set => Cmd::Timeout,
        Tag::Restore => Cmd::Restore,
        Tag::Save => Cmd::Save,
        Tag::StartDaemon => {
            daemon.state = daemon_state(arg, "illegal start-daemon parameter specified")?;
            Cmd::StartDaemon
        }
        Tag::StopDaemon => {
            daemon.state = daemon_state(arg, "illegal start_daemon specified")?;
            Cmd::StopDaemon
        }
        Tag::Help => return Err(Exit::Help),
        Tag::Version => return Err(Exit::Version),
        _ => return Err(Exit::TryHelp),
    };

    while let Some(next) = popt.next_opt() {
        let (tag, arg) = match next {
            Ok(x) => x,
            Err(e) => return Err(Exit::Fail(format!("{}: {}", e.bad_option, e.message), 255)),
        };
        let a = arg.as_deref().unwrap_or("");
        let set = |options: &mut Options, c| options.set(c).map_err(fail);
        match tag {
            Tag::Tcp | Tag::Udp | Tag::Sctp => {
                set(&mut options, optc::SERVICE)?;
                svc.protocol = Some(match tag {
                    Tag::Tcp => Protocol::Tcp,
                    Tag::Udp => Protocol::Udp,
                    _ => Protocol::Sctp,
                });
                if parse_service(a, &mut svc, resolver) & SERVICE_ADDR == 0 {
                    return Err(fail("illegal virtual server address[:port] specified"));
                }
            }
            Tag::Fwmark => {
                set(&mut options, optc::SERVICE)?;
                svc.af = AF_INET;
                svc.protocol = Some(Protocol::Tcp);
                svc.fwmark = parse_fwmark(a)?;
            }
            Tag::Scheduler => {
                set(&mut options, optc::SCHEDULER)?;
                svc.sched_name = truncate(a, SCHEDNAME_MAX);
            }
            Tag::Persistent => {
                set(&mut options, optc::PERSISTENT)?;
                svc.flags |= F_PERSISTENT;
                svc.timeout = parse_timeout(arg.as_deref(), 1, i64::from(MAX_TIMEOUT))?;
            }
            Tag::Netmask => {
                set(&mut options, optc::NETMASK)?;
                if svc.af == AF_INET6 {
                    let n = atoi(a);
                    if !(1..=128).contains(&n) {
                        return Err(fail("illegal ipv6 netmask specified"));
                    }
                    svc.netmask = u32::try_from(n).unwrap_or(0);
                } else {
                    let mask = inet_aton(a).or_else(|| resolver.host_to_addr(a));
                    let Some(mask) = mask else {
                        return Err(fail("illegal virtual server persistent mask specified"));
                    };
                    svc.netmask = u32::from_ne_bytes(mask.octets());
                }
            }
            Tag::Real => {
                set(&mut options, optc::SERVER)?;
                let mut t = svc.clone();
                let parsed = parse_service(a, &mut t, resolver);
                dest.af = t.af;
                dest.addr = t.addr;
                dest.port = t.port;
                if parsed & SERVICE_ADDR == 0 {
                    return Err(fail("illegal real server address[:port] specified"));
                }
                if parsed == SERVICE_ADDR {
                    dest.port = svc.port;
                }
            }
            Tag::Ipip | Tag::Gate | Tag::Masq => {
                set(&mut options, optc::FORWARD)?;
                dest.conn_flags = match tag {
                    Tag::Ipip => FWD_TUNNEL,
                    Tag::Gate => FWD_DROUTE,
                    _ => FWD_MASQ,
                };
            }
            Tag::Weight => {
                set(&mut options, optc::WEIGHT)?;
                dest.weight = number(a, 0, 65535, "weight")?;
            }
            Tag::UThreshold => {
                set(&mut options, optc::UTHRESHOLD)?;
                dest.u_threshold = number(a, 0, i64::from(i32::MAX), "u_threshold")?;
            }
            Tag::LThreshold => {
                set(&mut options, optc::LTHRESHOLD)?;
                dest.l_threshold = number(a, 0, i64::from(i32::MAX), "l_threshold")?;
            }
            Tag::Connection => set(&mut options, optc::CONNECTION)?,
            Tag::Numeric => {
                set(&mut options, optc::NUMERIC)?;
                format |= fmt::NUMERIC;
            }
            Tag::McastInterface => {
                set(&mut options, optc::MCAST)?;
                daemon.mcast_ifn = truncate(a, IFNAME_MAX);
            }
            Tag::Syncid => {
                set(&mut options, optc::SYNCID)?;
                daemon.syncid = number(a, 0, 255, "syncid")?;
            }
            Tag::Timeout => set(&mut options, optc::TIMEOUT)?,
            Tag::Daemon => set(&mut options, optc::DAEMON)?,
            Tag::Stats => {
                set(&mut options, optc::STATS)?;
                format |= fmt::STATS;
            }
            Tag::Rate => {
                set(&mut options, optc::RATE)?;
                format |= fmt::RATE;
            }
            Tag::Thresholds => {
                set(&mut options, optc::THRESHOLDS)?;
                format |= fmt::THRESHOLDS;
            }
            Tag::PersistentConn => {
                set(&mut options, optc::PERSISTENTCONN)?;
                format |= fmt::PERSISTENTCONN;
            }
            Tag::NoSort => {
                set(&mut options, optc::NOSORT)?;
                format |= fmt::NOSORT;
            }
            Tag::Sort => {}
            Tag::Exact => {
                set(&mut options, optc::EXACT)?;
                format |= fmt::EXACT;
            }
            Tag::Ipv6 => {
                if svc.fwmark == 0 {
                    return Err(fail("-6 used before -f\n"));
                }
                svc.af = AF_INET6;
                svc.netmask = 128;
            }
            Tag::Ops => {
                set(&mut options, optc::ONEPACKET)?;
                svc.flags |= F_ONEPACKET;
            }
            Tag::Pe => {
                set(&mut options, optc::PE)?;
                svc.pe_name = truncate(a, PENAME_MAX);
            }
            Tag::SchedFlags => {
                set(&mut options, optc::SCHED_FLAGS)?;
                sched_flags_arg = Some(truncate(a, 127));
            }
            Tag::McastGroup => {
                set(&mut options, optc::MCAST_GROUP)?;
                let group = if a.contains(':') {
                    a.parse::<Ipv6Addr>()
                        .ok()
                        .filter(Ipv6Addr::is_multicast)
                        .map(IpAddr::V6)
                } else {
                    a.parse::<Ipv4Addr>()
                        .ok()
                        .filter(Ipv4Addr::is_multicast)
                        .map(IpAddr::V4)
                };
                let family = if a.contains(':') { "IPv6" } else { "IPv4" };
                daemon.mcast_group =
                    Some(group.ok_or_else(|| fail(format!("invalid {family} mcast-group `{a}'")))?);
            }
            Tag::McastPort => {
                set(&mut options, optc::MCAST_PORT)?;
                daemon.mcast_port = number(a, 1, 65535, "mcast-port")?;
            }
            Tag::McastTtl => {
                set(&mut options, optc::MCAST_TTL)?;
                daemon.mcast_ttl = number(a, 1, 255, "mcast-ttl")?;
            }
            Tag::SyncMaxlen => {
                set(&mut options, optc::SYNC_MAXLEN)?;
                daemon.sync_maxlen = number(a, 1, 65535 - 20 - 8, "sync-maxlen")?;
            }
            Tag::TunInfo => {
                set(&mut options, optc::TUN_INFO)?;
                format |= fmt::TUN_INFO;
            }
            Tag::TunType => {
                set(&mut options, optc::TUN_TYPE)?;
                dest.tun_type = crate::opts::TUN_NAMES
                    .iter()
                    .position(|n| *n == a)
                    .ok_or_else(|| fail("illegal tunnel type specified"))?;
            }
            Tag::TunPort => {
                set(&mut options, optc::TUN_PORT)?;
                dest.tun_port = number(a, 1, 65535, "tunnel port")?;
            }
            Tag::TunNocsum => set(&mut options, optc::TUN_NOCSUM)?,
            Tag::TunCsum => {
                set(&mut options, optc::TUN_CSUM)?;
                dest.tun_flags |= 1;
            }
            Tag::TunRemcsum => {
                set(&mut options, optc::TUN_REMCSUM)?;
                dest.tun_flags |= 2;
            }
            Tag::ProxyProtocol => {
                if svc.proxy_protocol.is_some() {
                    return Err(fail("multiple 'proxy-protocol' options specified"));
                }
                svc.proxy_protocol = Some(match a {
                    "v1" => rvs_core::ProxyProtocol::V1,
                    "v2" => rvs_core::ProxyProtocol::V2,
                    _ => {
                        return Err(fail(format!(
                            "illegal PROXY protocol version `{a}' specified (use v1 or v2)"
                        )))
                    }
                });
            }
            _ => {
                return Err(fail(format!("invalid option `{}'", popt.last_word())));
            }
        }
    }

    let mut leftovers: Vec<String> = popt.leftovers().collect();
    let mut timeouts = [0u32; 3];
    if cmd == Cmd::Timeout {
        if leftovers.len() < 3 {
            return Err(fail("--set option requires 3 timeout values"));
        }
        for (i, v) in leftovers.drain(..3).enumerate() {
            timeouts[i] = parse_timeout(Some(&v), 0, i64::from(MAX_TIMEOUT))?;
        }
    }
    if let Some(extra) = leftovers.first() {
        return Err(fail(format!("unexpected argument {extra}")));
    }
    if let Some(arg) = sched_flags_arg {
        svc.flags &= !0x38;
        svc.flags |= parse_sched_flags(&svc.sched_name, &arg)?;
    }

    let inv = Invocation {
        cmd,
        svc,
        dest,
        timeouts,
        daemon,
        options,
        format,
    };
    check(inv)
}

/// The checks `process_options` makes after reading the options.
fn check(mut inv: Invocation) -> Result<Invocation, Exit> {
    generic_opt_check(inv.cmd, inv.options).map_err(fail)?;
    if inv.svc.proxy_protocol.is_some() && !matches!(inv.cmd, Cmd::Add | Cmd::Edit) {
        return Err(fail(format!(
            "Illegal 'proxy-protocol' option with the '{}' command",
            inv.cmd.name()
        )));
    }
    if matches!(inv.cmd, Cmd::Add | Cmd::Edit) {
        if inv.svc.fwmark == 0 && inv.svc.port == 0 && inv.svc.flags & F_PERSISTENT == 0 {
            return Err(fail("Zero port specified for non-persistent service"));
        }
        if inv.svc.flags & F_ONEPACKET != 0
            && inv.svc.fwmark == 0
            && inv.svc.protocol != Some(Protocol::Udp)
        {
            return Err(fail(
                "One-Packet Scheduling is only for UDP virtual services",
            ));
        }
        if inv.svc.sched_name.is_empty() {
            "wlc".clone_into(&mut inv.svc.sched_name);
        }
    }
    if inv.cmd == Cmd::StartDaemon && inv.daemon.mcast_ifn.is_empty() {
        "eth0".clone_into(&mut inv.daemon.mcast_ifn);
    }
    if matches!(inv.cmd, Cmd::AddDest | Cmd::EditDest) {
        let fwd = inv.dest.conn_flags;
        if inv.svc.fwmark == 0 && (fwd == FWD_TUNNEL || fwd == FWD_DROUTE) {
            inv.dest.port = inv.svc.port;
        }
        if inv.dest.af != inv.svc.af && fwd != FWD_TUNNEL {
            return Err(fail(
                "Different address family is allowed only for tunneling servers",
            ));
        }
        let tunnel_opts = [
            optc::TUN_TYPE,
            optc::TUN_PORT,
            optc::TUN_NOCSUM,
            optc::TUN_CSUM,
            optc::TUN_REMCSUM,
        ];
        if inv.options.any(&tunnel_opts) && fwd != FWD_TUNNEL {
            return Err(fail("Tunnel options conflict with forward method"));
        }
        tunnel_opt_check(inv.dest.tun_type, inv.options).map_err(fail)?;
    }
    if inv.cmd == Cmd::List {
        let o = inv.options;
        if (o.any(&[optc::CONNECTION, optc::TIMEOUT, optc::DAEMON])
            && o.any(&[optc::STATS, optc::RATE, optc::THRESHOLDS]))
            || (o.any(&[optc::TIMEOUT, optc::DAEMON]) && o.has(optc::PERSISTENTCONN))
        {
            return Err(fail("options conflicts in the list command"));
        }
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_takes_the_classic_shorthands() {
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(
            inet_aton("255.255.255.0"),
            Some(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("256.1.1.1"), None);
        assert_eq!(inet_aton("08.1.1.1"), None, "8 is not an octal digit");
    }

    #[test]
    fn strtol_needs_the_whole_string() {
        assert_eq!(strtol(" 42"), Some(42));
        assert_eq!(strtol("-3"), Some(-3));
        assert_eq!(strtol("12a"), None);
        assert_eq!(strtol(""), None);
    }
}
