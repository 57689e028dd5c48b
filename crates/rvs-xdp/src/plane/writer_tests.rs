//! The map writer against [`MemoryMaps`]: what each change writes, without root.

use super::*;
use crate::plane::memory::MemoryMaps;
use rvs_core::{DestConfig, ForwardMethod, SchedulerKind, ServiceConfig};

fn vip(port: u16) -> ServiceKey {
    ServiceKey::tcp(SocketAddr::from(([198, 18, 0, 1], port)))
}

fn real(i: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 1, i], 80))
}

fn writer() -> MapWriter<MemoryMaps> {
    MapWriter::new(
        MemoryMaps::default(),
        abi::Config::default(),
        Arc::new(AtomicU32::new(0)),
    )
    .unwrap()
}

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

fn mac_of(ip: IpAddr) -> Option<[u8; 6]> {
    (ip == IpAddr::from([198, 18, 1, 2])).then_some(MAC)
}

/// The dest index the writer gave a real server.
fn id(w: &MapWriter<MemoryMaps>, key: ServiceKey, addr: SocketAddr) -> u32 {
    w.layout.dest_ids[&(key, addr)]
}

fn apply(w: &mut MapWriter<MemoryMaps>, changes: &[Change]) -> Events {
    let mut events = Events::default();
    w.apply(changes, &mac_of, &mut events).unwrap();
    events
}

fn service(key: ServiceKey, scheduler: SchedulerKind, dests: &[(SocketAddr, u32)]) -> Vec<Change> {
    let mut changes = vec![Change::ServiceAdded(
        ServiceConfig::new(key).with_scheduler(scheduler),
    )];
    for (addr, weight) in dests {
        changes.push(Change::DestAdded {
            service: key,
            dest: DestConfig::new(*addr, ForwardMethod::Route).with_weight(*weight),
        });
    }
    changes
}

fn edit(key: ServiceKey, addr: SocketAddr, weight: u32) -> Change {
    Change::DestEdited {
        service: key,
        dest: DestConfig::new(addr, ForwardMethod::Route).with_weight(weight),
    }
}

#[test]
fn an_rr_service_gets_its_key_its_dests_and_its_cycle() {
    let mut w = writer();
    let events = apply(
        &mut w,
        &service(vip(80), SchedulerKind::Wrr, &[(real(2), 2), (real(3), 1)]),
    );
    let m = &w.maps;
    let entry = m.services[&svc_key(&vip(80)).unwrap()];
    assert_eq!((entry.id, entry.pick), (0, abi::PICK_CURSOR));
    let (a, b) = (id(&w, vip(80), real(2)), id(&w, vip(80), real(3)));
    // wrr 2:1 is a cycle of three picks, two of a, by dest index + 1, as the core has it.
    assert_eq!(entry.len, 3);
    let service = w.table.service(&vip(80)).unwrap();
    let cycle: Vec<u32> = ring::sequence(service)
        .iter()
        .map(|d| if *d == real(2) { a + 1 } else { b + 1 })
        .collect();
    assert_eq!(
        &m.region(SlotTable::Ring, 0)[..4],
        [&cycle[..], &[0]].concat()
    );
    assert_eq!(cycle.iter().filter(|s| **s == a + 1).count(), 2);
    assert_eq!(m.cursors[&0], 0);
    let dest = m.dests[&a];
    assert_eq!(
        (dest.available, dest.weight, dest.mac, dest.method),
        (1, 2, MAC, abi::FWD_ROUTE)
    );
    assert_eq!(
        m.dests[&b].mac, [0; 6],
        "no neighbour entry: the resolver finds it"
    );
    assert_eq!(w.layout.dest_count.load(Ordering::Acquire), 2);
    let mut wanted = events.wanted.clone();
    wanted.sort_unstable();
    let mut want = vec![(a, real(2).ip()), (b, real(3).ip())];
    want.sort_unstable();
    assert_eq!(wanted, want);
    assert!(events.owned.iter().all(|(_, service)| *service == 0));
}

#[test]
fn planning_writes_nothing_and_fwmark_services_have_no_plan() {
    let mut w = writer();
    apply(
        &mut w,
        &service(vip(80), SchedulerKind::Rr, &[(real(2), 1)]),
    );
    w.table
        .apply_change(&Change::DestAdded {
            service: vip(80),
            dest: DestConfig::new(real(3), ForwardMethod::Route),
        })
        .unwrap();
    let writes = w.maps.writes;
    let first = plan(&w.table, &w.layout, vip(80), &mac_of).unwrap();
    let again = plan(&w.table, &w.layout, vip(80), &mac_of).unwrap();
    assert_eq!(first, again, "a plan depends on the mirror and layout only");
    assert_eq!(w.maps.writes, writes);
    assert_eq!(w.layout.dest_count.load(Ordering::Acquire), 1);
    let Some(ServicePlan {
        action: ServiceAction::Write { dests, ring, .. },
        ..
    }) = first
    else {
        panic!("a write plan")
    };
    let mut ids: Vec<(u32, bool)> = dests.iter().map(|d| (d.id, d.new)).collect();
    ids.sort_unstable();
    assert_eq!(ids, [(0, false), (1, true)]);
    // The cycle of one becomes a cycle of two: only its first two slots can move.
    assert!(ring.moved.iter().all(|p| *p < 2) && ring.moved.contains(&1));
    let mark = ServiceKey::FwMark {
        family: rvs_core::Family::Inet,
        mark: 1,
    };
    assert_eq!(plan(&w.table, &w.layout, mark, &mac_of).unwrap(), None);
}

#[test]
fn a_weight_change_on_an_mh_service_writes_only_the_slots_that_moved() {
    let mut w = writer();
    let dests: Vec<(SocketAddr, u32)> = (2..=5).map(|i| (real(i), 1)).collect();
    apply(&mut w, &service(vip(80), SchedulerKind::Mh, &dests));
    assert!(
        w.slot_writes() >= u64::from(abi::MH_SIZE),
        "the first table is written whole"
    );
    let (slots, writes) = (w.slot_writes(), w.maps.writes);
    apply(&mut w, &[edit(vip(80), real(2), 3)]);
    let moved = w.slot_writes() - slots;
    assert!(
        moved > 0 && moved < u64::from(abi::MH_SIZE) / 2,
        "a weight change moves some slots: {moved}"
    );
    // The slots, four dest entries, the cursor and the key: nothing else.
    assert_eq!(w.maps.writes - writes, moved + 4 + 1 + 1);
    // What the map holds is the core's table, by dest index + 1.
    let service = w.table.service(&vip(80)).unwrap();
    let want: Vec<u32> = rvs_core::sched::mh_table(service.dests())
        .into_iter()
        .map(|i| i.map_or(0, |i| i + 1))
        .collect();
    assert_eq!(w.maps.region(SlotTable::Mh, 0), want);
    // An edit the program cannot see writes no slot.
    let slots = w.slot_writes();
    apply(&mut w, &[edit(vip(80), real(2), 3)]);
    assert_eq!(w.slot_writes(), slots);
}

#[test]
fn a_dest_that_leaves_keeps_its_index_and_starts_from_zero_when_it_joins_again() {
    let mut w = writer();
    apply(
        &mut w,
        &service(vip(80), SchedulerKind::Rr, &[(real(2), 1), (real(3), 1)]),
    );
    let (gone, kept) = (id(&w, vip(80), real(2)), id(&w, vip(80), real(3)));
    let events = apply(
        &mut w,
        &[Change::DestRemoved {
            service: vip(80),
            dest: real(2),
        }],
    );
    assert_eq!(events.forgotten, [gone]);
    assert_eq!(
        w.maps.dests[&gone].available, 0,
        "templates no longer pick it"
    );
    assert_eq!(&w.maps.region(SlotTable::Ring, 0)[..2], [kept + 1, 0]);
    let events = apply(
        &mut w,
        &[Change::DestAdded {
            service: vip(80),
            dest: DestConfig::new(real(2), ForwardMethod::Route),
        }],
    );
    assert_eq!(events.zeroed, [gone], "its counters start from zero");
    assert_eq!(w.maps.zeroed, [gone]);
    assert_eq!(w.maps.dests[&gone].available, 1);
    assert_eq!(
        w.layout.dest_count.load(Ordering::Acquire),
        2,
        "no new index"
    );
}

#[test]
fn a_removed_service_loses_its_key_and_ring_and_its_id_goes_to_the_next() {
    let mut w = writer();
    apply(
        &mut w,
        &service(vip(80), SchedulerKind::Rr, &[(real(2), 1)]),
    );
    apply(&mut w, &[Change::ServiceRemoved { service: vip(80) }]);
    assert!(w.maps.services.is_empty());
    assert!(w.maps.region(SlotTable::Ring, 0).iter().all(|s| *s == 0));
    assert_eq!(w.maps.dests[&0].available, 0, "open flows keep the entry");
    apply(
        &mut w,
        &service(vip(81), SchedulerKind::Rr, &[(real(3), 1)]),
    );
    assert_eq!(w.maps.services[&svc_key(&vip(81)).unwrap()].id, 0);
    assert_eq!(w.maps.region(SlotTable::Ring, 0)[0], 2, "dest index 1, + 1");
}

#[test]
fn a_failed_slot_write_is_redone_whole_on_the_next_change() {
    let mut w = writer();
    apply(
        &mut w,
        &service(vip(80), SchedulerKind::Rr, &[(real(2), 1)]),
    );
    w.maps.fail_after = Some(w.maps.writes + 3);
    let mut events = Events::default();
    let e = w
        .apply(
            &[Change::DestAdded {
                service: vip(80),
                dest: DestConfig::new(real(3), ForwardMethod::Route),
            }],
            &mac_of,
            &mut events,
        )
        .unwrap_err();
    assert!(e.to_string().contains("injected failure"), "{e}");
    assert_eq!(
        events.wanted.len(),
        2,
        "the dests written before are heard of"
    );
    w.maps.fail_after = None;
    let slots = w.slot_writes();
    apply(&mut w, &[edit(vip(80), real(3), 1)]);
    assert_eq!(
        w.slot_writes() - slots,
        u64::from(abi::RING_SIZE),
        "the region is rewritten whole"
    );
    let ring = w.maps.region(SlotTable::Ring, 0);
    let mut cycle = ring[..2].to_vec();
    cycle.sort_unstable();
    assert_eq!((cycle, ring[2]), (vec![1, 2], 0));
}

#[test]
fn raising_the_upper_threshold_clears_the_overload_flag() {
    let mut w = writer();
    let with_threshold = |u| Change::DestEdited {
        service: vip(80),
        dest: DestConfig {
            u_threshold: u,
            ..DestConfig::new(real(2), ForwardMethod::Route)
        },
    };
    apply(
        &mut w,
        &service(vip(80), SchedulerKind::Wlc, &[(real(2), 1)]),
    );
    apply(&mut w, &[with_threshold(10)]);
    w.maps.counts.insert(
        0,
        abi::Count {
            overloaded: 1,
            ..abi::Count::default()
        },
    );
    apply(&mut w, &[with_threshold(5)]);
    assert_eq!(
        w.maps.counts[&0].overloaded, 1,
        "a lower threshold keeps it"
    );
    apply(&mut w, &[with_threshold(20)]);
    assert_eq!(w.maps.counts[&0].overloaded, 0);
}

#[test]
fn a_full_service_map_is_an_error_that_says_so() {
    let mut w = writer();
    let changes: Vec<Change> = (0..abi::MAX_SERVICES)
        .map(|i| Change::ServiceAdded(ServiceConfig::new(vip(u16::try_from(1000 + i).unwrap()))))
        .collect();
    apply(&mut w, &changes);
    let mut events = Events::default();
    let e = w
        .apply(
            &[Change::ServiceAdded(ServiceConfig::new(vip(80)))],
            &mac_of,
            &mut events,
        )
        .unwrap_err();
    assert!(e.to_string().contains("the service map is full"), "{e}");
}

#[test]
fn new_timeouts_rewrite_the_config() {
    let mut w = writer();
    let t = rvs_core::Timeouts {
        tcp: 100,
        tcp_fin: 10,
        udp: 30,
    };
    apply(&mut w, &[Change::TimeoutsSet(t)]);
    let c = w.maps.config;
    assert_eq!(
        (c.tcp_timeout, c.tcpfin_timeout, c.udp_timeout),
        (100, 10, 30)
    );
}
