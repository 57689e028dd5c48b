//! The proxy's live connections (`-Lc`), read from the shared registry and table, so a
//! listing needs neither the plane nor the director's lock.

use crate::shared::Shared;
use rvs_core::{
    ConnState, ConnVirtual, ConnectionEntry, ConnectionReader, DataPlaneError, ServiceKey,
};
use std::net::SocketAddr;
use std::time::Duration;

impl ConnectionReader for Shared {
    fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        let now = self.now().0;
        let mut out: Vec<ConnectionEntry> = self
            .registry
            .snapshot()
            .iter()
            .map(|e| {
                let state = e.state();
                let timeout = match state {
                    ConnState::Udp => self.udp_timeout(),
                    ConnState::Established => self.tcp_timeout(),
                    _ => self.tcp_fin_timeout(),
                };
                let idle = Duration::from_millis(now.saturating_sub(e.last_active_ms()));
                ConnectionEntry {
                    client: e.client,
                    virtual_: ConnVirtual::Addr {
                        protocol: e.protocol,
                        addr: e.vip,
                    },
                    dest: e.dest,
                    state,
                    expires_secs: timeout.saturating_sub(idle).as_secs(),
                    pe_name: None,
                    pe_data: None,
                }
            })
            .collect();
        let table = self.table();
        for s in table.services() {
            let ServiceKey::Inet { protocol, addr } = s.key() else {
                continue;
            };
            for (client, t) in s.templates().iter() {
                out.push(ConnectionEntry {
                    client: SocketAddr::new(*client, 0),
                    virtual_: ConnVirtual::Addr { protocol, addr },
                    dest: t.dest,
                    state: ConnState::None,
                    expires_secs: t.expires.0.saturating_sub(now) / 1000,
                    pe_name: None,
                    pe_data: None,
                });
            }
        }
        out.sort_by_key(|e| (e.client, e.dest));
        Ok(out)
    }
}
