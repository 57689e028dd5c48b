//! ipvsadm's listings and `-S` rules, from its printf formats (`print_title`,
//! `print_service_entry`, `print_largenum`, `list_timeout`, `list_daemon`, `print_conn`).

use crate::parse::fmt;
use crate::resolve::Resolver;
use crate::sort::{cmp_dests, cmp_services, glibc_msort};
use rvs_core::{
    ConnVirtual, ConnectionEntry, DestConfig, ForwardMethod, PersistMask, Protocol, ServiceKey,
    Timeouts, TunnelCsum, TunnelKind,
};
use rvs_proto::{DestView, ServiceView, SyncDaemon, TableView};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `addrport_to_anyname`.
pub fn addrport(
    addr: IpAddr,
    port: u16,
    proto: Option<Protocol>,
    format: u32,
    r: &dyn Resolver,
) -> String {
    let (open, close) = if addr.is_ipv4() { ("", "") } else { ("[", "]") };
    if format & fmt::NUMERIC != 0 {
        return format!("{open}{}{close}:{port}", ntop(addr));
    }
    let host = r.addr_to_host(addr).unwrap_or_else(|| ntop(addr));
    let service = proto
        .and_then(|p| r.port_to_service(port, p))
        .unwrap_or_else(|| port.to_string());
    format!("{open}{host}{close}:{service}")
}

/// `inet_ntop` as glibc writes it. Rust's `Ipv6Addr` display differs for IPv4-compatible
/// addresses (`::1.2.3.4`, which Rust shows as `::102:304`), so IPv6 is written here:
/// the first longest run of two or more zero words becomes `::`, and the last 32 bits are a
/// dotted quad after six zero words, or after five and `ffff`.
#[must_use]
pub fn ntop(addr: IpAddr) -> String {
    let v6 = match addr {
        IpAddr::V4(v4) => return v4.to_string(),
        IpAddr::V6(v6) => v6,
    };
    let words = v6.segments();
    let (mut best, mut cur): ((usize, usize), Option<(usize, usize)>) = ((0, 0), None);
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            let run = cur.map_or((i, 1), |(b, l)| (b, l + 1));
            cur = Some(run);
            if run.1 > best.1 {
                best = run;
            }
        } else {
            cur = None;
        }
    }
    let zeros = (best.1 >= 2).then_some(best);
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some((base, len)) = zeros.filter(|(b, l)| i >= *b && i < b + l) {
            out.push(':');
            i = base + len;
            if i == 8 {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        let embedded =
            zeros.is_some_and(|(b, l)| b == 0 && (l == 6 || (l == 5 && words[5] == 0xffff)));
        if i == 6 && embedded {
            let o = v6.octets();
            let _ = write!(out, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            break;
        }
        let _ = write!(out, "{:x}", words[i]);
        i += 1;
    }
    out
}

/// Truncates to `n` bytes, as writing a NUL at `buf[n]` does.
fn cut(mut s: String, n: usize) -> String {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `print_largenum`.
fn largenum(out: &mut String, i: u64, format: u32) {
    if format & fmt::EXACT != 0 {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>width$}");
        return;
    }
    let _ = match i {
        0..100_000_000 => write!(out, "{i:>9}"),
        100_000_000..1_000_000_000 => write!(out, "{:>8}K", i / 1000),
        1_000_000_000..100_000_000_000 => write!(out, "{:>8}M", i / 1_000_000),
        100_000_000_000..100_000_000_000_000 => write!(out, "{:>8}G", i / 1_000_000_000),
        _ => write!(out, "{:>8}T", i / 1_000_000_000_000),
    };
}

/// `print_title`.
pub fn title(format: u32) -> String {
    let p = "Prot LocalAddress:Port";
    if format & fmt::STATS != 0 {
        format!(
            "{p:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if format & fmt::RATE != 0 {
        format!(
            "{p:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if format & fmt::THRESHOLDS != 0 {
        format!(
            "{p:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format & fmt::PERSISTENTCONN != 0 {
        format!(
            "{p:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if format & fmt::TUN_INFO != 0 {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_owned()
    } else if format & fmt::RULE == 0 {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_owned()
    } else {
        String::new()
    }
}

/// `print_sched_flags`: the flag names, comma-separated.
fn sched_flags(sched: &str, flags: u32) -> String {
    let names: [(u32, &str); 3] = match sched {
        "sh" => [(0x08, "sh-fallback"), (0x10, "sh-port"), (0, "")],
        "mh" => [(0x08, "mh-fallback"), (0x10, "mh-port"), (0, "")],
        _ => [(0x08, "flag-1"), (0x10, "flag-2"), (0x20, "flag-3")],
    };
    names
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn fwd_name(f: &ForwardMethod) -> &'static str {
    f.name()
}

fn fwd_switch(f: &ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Masq => "-m",
        ForwardMethod::Tunnel(_) => "-i",
        ForwardMethod::Route => "-g",
    }
}

const TUN_FLAGS: [&str; 3] = ["-c", "+c", "r+c"];
const TUN_FLAG_OPTS: [&str; 3] = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];

fn csum_index(c: TunnelCsum) -> usize {
    match c {
        TunnelCsum::NoCsum => 0,
        TunnelCsum::Csum => 1,
        TunnelCsum::RemCsum => 2,
    }
}

/// `fwd_tun_info`.
fn tun_info(d: &DestConfig) -> Option<String> {
    let ForwardMethod::Tunnel(t) = d.forward else {
        return None;
    };
    let flags = TUN_FLAGS[csum_index(t.csum)];
    let s = match t.kind {
        TunnelKind::Ipip => "ipip".to_owned(),
        TunnelKind::Gue { port } => format!("gue:{port}:{flags}"),
        TunnelKind::Gre => format!("gre:{flags}"),
    };
    Some(cut(s, 15))
}

fn svc_flags(v: &ServiceView) -> u32 {
    let c = &v.config;
    let mut f = c.sched_flags.0;
    if c.persistence.is_some() {
        f |= crate::parse::F_PERSISTENT;
    }
    if c.one_packet {
        f |= crate::parse::F_ONEPACKET;
    }
    f
}

/// `print_service_entry`.
#[allow(
    clippy::too_many_lines,
    reason = "one branch per listing format, as in ipvsadm.c"
)]
pub fn service_entry(out: &mut String, v: &ServiceView, format: u32, r: &dyn Resolver) {
    let c = &v.config;
    let rule = format & fmt::RULE != 0;
    let proto = c.key.protocol();
    let svc_name = match c.key {
        ServiceKey::FwMark { mark, family } => {
            let v6 = family == rvs_core::Family::Inet6;
            // ipvsadm prints the mark with %d: 2^31 and above come out negative.
            let mark = i32::from_ne_bytes(mark.to_ne_bytes());
            match (rule, v6) {
                (true, true) => format!("-f {mark} -6"),
                (true, false) => format!("-f {mark}"),
                (false, true) => format!("FWM  {mark} IPv6"),
                (false, false) => format!("FWM  {mark}"),
            }
        }
        ServiceKey::Inet { protocol, addr } => {
            let vname = addrport(addr.ip(), addr.port(), Some(protocol), format, r);
            if rule {
                let stype = match protocol {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                cut(format!("{stype} {vname}"), 1023)
            } else {
                let s = cut(format!("{:<4} {vname}", protocol.name()), 1023);
                if addr.is_ipv4() {
                    cut(s, 33)
                } else {
                    s
                }
            }
        }
    };
    let sched = c.scheduler.name();
    let flags = svc_flags(v);
    let mask = |m: PersistMask| match m {
        PersistMask::V4(m) if m != Ipv4Addr::BROADCAST => Some(m.to_string()),
        PersistMask::V6(p) if p != 128 => Some(p.to_string()),
        _ => None,
    };
    if rule {
        let _ = write!(out, "-A {svc_name} -s {sched}");
        if let Some(p) = c.persistence {
            let _ = write!(out, " -p {}", p.timeout);
            if let Some(m) = mask(p.netmask) {
                let _ = write!(out, " -M {m}");
            }
        }
        if let Some(pe) = &c.pe_name {
            let _ = write!(out, " --pe {pe}");
        }
        if c.one_packet {
            out.push_str(" -o");
        }
        if flags & 0x38 != 0 {
            let _ = write!(out, " -b {}", sched_flags(sched, flags));
        }
        if let Some(pp) = c.proxy_protocol {
            let _ = write!(out, " --proxy-protocol {}", pp.name());
        }
    } else if format & (fmt::STATS | fmt::RATE) != 0 {
        let _ = write!(out, "{svc_name:<33}");
        let s = if format & fmt::STATS != 0 {
            let k = v.counters;
            [k.conns, k.in_pkts, k.out_pkts, k.in_bytes, k.out_bytes]
        } else {
            let k = v.rates;
            [k.cps, k.in_pps, k.out_pps, k.in_bps, k.out_bps]
        };
        for n in s {
            largenum(out, n, format);
        }
    } else {
        let _ = write!(out, "{svc_name} {sched}");
        if flags & 0x38 != 0 {
            let _ = write!(out, " ({})", sched_flags(sched, flags));
        }
        if let Some(p) = c.persistence {
            let _ = write!(out, " persistent {}", p.timeout);
            if let Some(m) = mask(p.netmask) {
                let _ = write!(out, " mask {m}");
            }
            if let Some(pe) = &c.pe_name {
                let _ = write!(out, " pe {pe}");
            }
        }
        if c.one_packet {
            out.push_str(" ops");
        }
        if let Some(pp) = c.proxy_protocol {
            let _ = write!(out, " proxy-protocol {}", pp.name());
        }
    }
    out.push('\n');

    // -L shows what the kernel would hold under a checker: the effective weights, without
    // dests out of the planes; -S the operator's intent: configured weights, no fallback.
    let mut dests: Vec<&DestView> = v
        .dests
        .iter()
        .filter(|d| if rule { !d.is_fallback() } else { d.listed() })
        .collect();
    if format & fmt::NOSORT == 0 {
        glibc_msort(&mut dests, |a, b| cmp_dests(&a.config.addr, &b.config.addr));
    }
    for d in dests {
        let dc = &d.config;
        let mut dname = addrport(dc.addr.ip(), dc.addr.port(), proto, format, r);
        if !rule && dc.addr.is_ipv4() {
            dname = cut(dname, 28);
        }
        let w = if rule {
            dc.weight
        } else {
            d.effective_weight()
        };
        let k = d.conns;
        if rule {
            let sw = fwd_switch(&dc.forward);
            match dc.forward {
                ForwardMethod::Tunnel(t) => {
                    let opt = TUN_FLAG_OPTS[csum_index(t.csum)];
                    let _ = match t.kind {
                        TunnelKind::Gre => writeln!(out, "-a {svc_name} -r {dname} {sw} -w {w} --tun-type gre {opt}"),
                        TunnelKind::Gue { port } => writeln!(out, "-a {svc_name} -r {dname} {sw} -w {w} --tun-type gue --tun-port {port} {opt}"),
                        TunnelKind::Ipip => writeln!(out, "-a {svc_name} -r {dname} {sw} -w {w} --tun-type ipip"),
                    };
                }
                _ => {
                    let _ = writeln!(out, "-a {svc_name} -r {dname} {sw} -w {w}");
                }
            }
        } else if format & fmt::STATS != 0 {
            let _ = write!(out, "  -> {dname:<28}");
            let s = d.counters;
            for n in [s.conns, s.in_pkts, s.out_pkts, s.in_bytes, s.out_bytes] {
                largenum(out, n, format);
            }
            out.push('\n');
        } else if format & fmt::RATE != 0 {
            let s = d.rates;
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                s.cps, s.in_pps, s.out_pps
            );
            largenum(out, s.in_bps, format);
            largenum(out, s.out_bps, format);
            out.push('\n');
        } else if format & fmt::THRESHOLDS != 0 {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                dc.u_threshold, dc.l_threshold, k.active, k.inactive
            );
        } else if format & fmt::PERSISTENTCONN != 0 {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {w:<9} {:<11} {:<10} {:<10}",
                k.persistent, k.active, k.inactive
            );
        } else if format & fmt::TUN_INFO != 0 {
            let ti = tun_info(dc).unwrap_or_else(|| "n/a".to_owned());
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {ti:<13} {w:<6} {:<10} {:<10}",
                fwd_name(&dc.forward),
                k.active,
                k.inactive
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {w:<6} {:<10} {:<10}",
                fwd_name(&dc.forward),
                k.active,
                k.inactive
            );
        }
    }
}

/// `list_all`: banner (not for `-S`), title, every service.
pub fn list_all(t: &TableView, format: u32, r: &dyn Resolver) -> String {
    let mut out = String::new();
    if format & fmt::RULE == 0 {
        let _ = writeln!(
            out,
            "IP Virtual Server version 1.2.1 (size={})",
            t.conn_table_size
        );
    }
    let mut services: Vec<&ServiceView> = t.services.iter().collect();
    if format & fmt::NOSORT == 0 {
        glibc_msort(&mut services, |a, b| {
            cmp_services(&a.config.key, &b.config.key)
        });
    }
    out.push_str(&title(format));
    for s in services {
        service_entry(&mut out, s, format, r);
    }
    out
}

/// `list_service`: title and one service.
pub fn list_service(v: &ServiceView, format: u32, r: &dyn Resolver) -> String {
    let mut out = title(format);
    service_entry(&mut out, v, format, r);
    out
}

/// `list_timeout`.
pub fn list_timeout(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcp_fin, t.udp
    )
}

/// `list_daemon`: master first, then backup.
pub fn list_daemon(daemons: &[SyncDaemon]) -> String {
    let mut out = String::new();
    for state in [rvs_proto::SyncState::Master, rvs_proto::SyncState::Backup] {
        let Some(d) = daemons.iter().find(|d| d.state == state) else {
            continue;
        };
        let _ = write!(
            out,
            "{} sync daemon (mcast={}, syncid={}",
            state.name(),
            d.mcast_ifn,
            d.syncid
        );
        if let Some(m) = d.sync_maxlen {
            let _ = write!(out, ", maxlen={m}");
        }
        if let Some(g) = d.mcast_group {
            let _ = write!(out, ", group={g}");
        }
        if let Some(p) = d.mcast_port {
            let _ = write!(out, ", port={p}");
        }
        if let Some(t) = d.mcast_ttl {
            let _ = write!(out, ", ttl={t}");
        }
        out.push_str(")\n");
    }
    out
}

/// `list_conn`: the header and one line per connection or template.
pub fn list_conn(conns: &[ConnectionEntry], format: u32, r: &dyn Resolver) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let pc = format & fmt::PERSISTENTCONN != 0;
    if pc {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in conns {
        let (proto_name, proto, vaddr) = match c.virtual_ {
            ConnVirtual::Addr { protocol, addr } => (protocol.name(), Some(protocol), addr),
            ConnVirtual::FwMark { mark } => {
                ("IP", None, SocketAddr::new(Ipv4Addr::from(mark).into(), 0))
            }
        };
        let expire = format!("{:02}:{:02}", c.expires_secs / 60, c.expires_secs % 60);
        let cname = addrport(c.client.ip(), c.client.port(), proto, format, r);
        let vname = addrport(vaddr.ip(), vaddr.port(), proto, format, r);
        let dname = addrport(c.dest.ip(), c.dest.port(), proto, format, r);
        match (&c.pe_name, &c.pe_data) {
            (Some(n), Some(d)) if pc => {
                let _ = writeln!(out, "{proto_name:<3} {expire:<6} {:<11} {cname:<18} {vname:<18} {dname:<16} {n:<18} {d}", c.state.name());
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{proto_name:<3} {expire:<6} {:<11} {cname:<18} {vname:<18} {dname}",
                    c.state.name()
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largenum_abbreviates_in_thousands() {
        let cases = [
            (99_999_999, "99999999"),
            (123_456_789, "123456K"),
            (12_345_678_901, "12345M"),
            (123_456_789_012_345, "123T"),
        ];
        for (n, want) in cases {
            let mut s = String::new();
            largenum(&mut s, n, 0);
            assert_eq!(s.trim_start(), want);
            assert_eq!(s.len(), 9);
        }
        let mut s = String::new();
        largenum(&mut s, 1_234_567_890_123, fmt::EXACT);
        assert_eq!(s, " 1234567890123");
    }
}

#[cfg(test)]
mod ntop_tests {
    use super::ntop;

    #[test]
    fn ipv6_is_written_as_glibc_writes_it() {
        for (a, want) in [
            ("::", "::"),
            ("::1", "::1"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.0.0.0", "::1.0.0.0"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
            ("fe80::", "fe80::"),
            ("0:0:1::", "0:0:1::"),
        ] {
            assert_eq!(ntop(a.parse().unwrap()), want, "{a}");
        }
    }
}
