//! The serde types are the API's and the state file's format: their JSON is kept in goldens
//! (testdata/api), so a change to it shows in review and is a decision, not an accident.
//! `BLESS=1 cargo test -p rvs-proto --test json_goldens` rewrites them.

use rvs_core::{
    Command, DestConfig, ForwardMethod, PersistMask, Persistence, SchedFlags, SchedulerKind,
    ServiceConfig, ServiceKey, Table, Timeouts, Tunnel, TunnelCsum, TunnelKind,
};
use rvs_proto::{SyncDaemon, SyncState, TableView};
use std::path::PathBuf;

fn golden(name: &str, json: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/api")
        .join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, format!("{json}\n")).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (BLESS=1 writes it)", path.display()));
    assert_eq!(want.trim_end(), json, "{} changed", path.display());
}

/// One command of every kind, with every option set somewhere.
fn commands() -> Vec<Command> {
    let web = ServiceKey::tcp("198.18.0.1:80".parse().unwrap());
    let mark = ServiceKey::FwMark {
        mark: 7,
        family: rvs_core::Family::Inet,
    };
    let mut persistent = ServiceConfig::new(web).with_scheduler(SchedulerKind::Sh);
    persistent.sched_flags = SchedFlags(0x18);
    persistent.persistence = Some(Persistence {
        timeout: 300,
        netmask: PersistMask::V4("255.255.255.0".parse().unwrap()),
    });
    persistent.proxy_protocol = Some(rvs_core::ProxyProtocol::V2);
    let mut threshold =
        DestConfig::new("198.18.1.1:80".parse().unwrap(), ForwardMethod::Masq).with_weight(3);
    threshold.u_threshold = 100;
    threshold.l_threshold = 50;
    vec![
        Command::AddService(persistent.clone()),
        Command::EditService(persistent),
        Command::AddService(ServiceConfig::new(mark).with_scheduler(SchedulerKind::Mh)),
        Command::AddDest {
            service: web,
            dest: threshold,
        },
        Command::AddDest {
            service: mark,
            dest: DestConfig::new(
                "198.18.1.2:0".parse().unwrap(),
                ForwardMethod::Tunnel(Tunnel {
                    kind: TunnelKind::Gue { port: 6080 },
                    csum: TunnelCsum::Csum,
                }),
            ),
        },
        Command::EditDest {
            service: web,
            dest: DestConfig::new("198.18.1.1:80".parse().unwrap(), ForwardMethod::Route),
        },
        Command::DelDest {
            service: web,
            dest: "198.18.1.1:80".parse().unwrap(),
        },
        Command::DelService { service: mark },
        Command::Zero { service: None },
        Command::SetTimeouts(Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }),
        Command::Clear,
    ]
}

#[test]
fn commands_keep_their_json() {
    let json = serde_json::to_string_pretty(&commands()).unwrap();
    golden("commands.json", &json);
    let back: Vec<Command> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, commands());
}

#[test]
fn the_table_view_keeps_its_json() {
    let mut table = Table::new();
    let batch: Vec<Command> = commands().into_iter().take(5).collect();
    let batch: Vec<Command> = batch
        .into_iter()
        .filter(|c| !matches!(c, Command::EditService(_)))
        .collect();
    table.apply(Command::batch(batch)).unwrap();
    let daemon = SyncDaemon {
        state: SyncState::Backup,
        mcast_ifn: "eth1".to_owned(),
        syncid: 3,
        sync_maxlen: Some(1472),
        mcast_group: Some("224.0.0.81".parse().unwrap()),
        mcast_port: Some(8848),
        mcast_ttl: Some(1),
    };
    let view = TableView::from_table(&table, vec![daemon], 4096);
    let json = serde_json::to_string_pretty(&view).unwrap();
    golden("table-view.json", &json);
    let back: TableView = serde_json::from_str(&json).unwrap();
    assert_eq!(back, view);
}
