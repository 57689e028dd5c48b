//! libipvs's sort order, including its quirks.
//!
//! `ipvs_cmp_services` and `ipvs_cmp_dests` subtract addresses as unsigned 32-bit numbers and
//! keep the difference in an `int`, so differences of 2^31 or more wrap and 10.0.0.1 sorts
//! after 192.168.0.1. Such a comparator is not a total order, so the result depends on the
//! sorting algorithm: glibc's `qsort` is a top-down merge sort (`msort_with_tmp`), reproduced
//! here by hand (Rust's own sorts may panic on a comparator that is not a total order).

use rvs_core::ServiceKey;
use std::net::{IpAddr, SocketAddr};

/// glibc's `msort_with_tmp`: split in halves (n/2 first), sort each, merge taking from the left
/// while `cmp(left, right) <= 0`.
pub fn glibc_msort<T: Clone>(v: &mut [T], cmp: impl Fn(&T, &T) -> i32 + Copy) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let (mut i, mut j) = (0, n1);
    let mut merged = Vec::with_capacity(n);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i].clone());
            i += 1;
        } else {
            merged.push(v[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.clone_from_slice(&merged);
}

/// `ntohl(a) - ntohl(b)` stored in an `int`.
fn diff32(a: u32, b: u32) -> i32 {
    #[expect(clippy::cast_possible_wrap, reason = "the wrap is libipvs's behaviour")]
    let r = a.wrapping_sub(b) as i32;
    r
}

fn words(ip: &IpAddr) -> [u32; 4] {
    match ip {
        IpAddr::V4(v4) => [u32::from(*v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            std::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

fn cmp_addr(a: &IpAddr, b: &IpAddr, v6: bool) -> i32 {
    let (wa, wb) = (words(a), words(b));
    if v6 {
        let mut r = 0;
        for i in 0..4 {
            if r != 0 {
                break;
            }
            r = diff32(wa[i], wb[i]);
        }
        r
    } else {
        diff32(wa[0], wb[0])
    }
}

/// `ipvs_cmp_dests`.
pub fn cmp_dests(a: &SocketAddr, b: &SocketAddr) -> i32 {
    let r = cmp_addr(&a.ip(), &b.ip(), a.is_ipv6());
    if r != 0 {
        return r;
    }
    i32::from(a.port()) - i32::from(b.port())
}

/// `ipvs_cmp_services`: fwmark, family, protocol, address, port.
pub fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> i32 {
    let fw = |k: &ServiceKey| match k {
        ServiceKey::FwMark { mark, .. } => *mark,
        ServiceKey::Inet { .. } => 0,
    };
    let r = diff32(fw(a), fw(b));
    if r != 0 {
        return r;
    }
    let r = i32::from(a.family().number()) - i32::from(b.family().number());
    if r != 0 {
        return r;
    }
    // Fwmark services carry protocol TCP in libipvs.
    let proto = |k: &ServiceKey| i32::from(k.protocol().map_or(6, rvs_core::Protocol::number));
    let r = proto(a) - proto(b);
    if r != 0 {
        return r;
    }
    let addr = |k: &ServiceKey| match k {
        ServiceKey::Inet { addr, .. } => *addr,
        ServiceKey::FwMark { family, .. } => match family {
            rvs_core::Family::Inet => SocketAddr::from(([0, 0, 0, 0], 0)),
            rvs_core::Family::Inet6 => SocketAddr::from(([0u16; 8], 0)),
        },
    };
    let (sa, sb) = (addr(a), addr(b));
    let r = cmp_addr(&sa.ip(), &sb.ip(), a.family() == rvs_core::Family::Inet6);
    if r != 0 {
        return r;
    }
    i32::from(sa.port()) - i32::from(sb.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_difference_puts_10_after_192() {
        let a: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "192.168.0.1:80".parse().unwrap();
        assert!(cmp_dests(&a, &b) > 0);
        let mut v = vec![a, b];
        glibc_msort(&mut v, cmp_dests);
        assert_eq!(v, vec![b, a]);
    }

    #[test]
    fn msort_is_a_normal_sort_for_total_orders() {
        let mut v = vec![5, 3, 9, 1, 1, 7];
        glibc_msort(&mut v, |a, b| a - b);
        assert_eq!(v, vec![1, 1, 3, 5, 7, 9]);
    }
}
