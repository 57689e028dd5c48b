//! Live connections and UDP flows, for `-Lc`: who, where, which state, and when they were last
//! active (an atomic the relay touches on every read, so listing costs the relay nothing).

use rvs_core::{ConnState, Protocol};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// One live connection or flow.
#[derive(Debug)]
pub struct Entry {
    /// The protocol.
    pub protocol: Protocol,
    /// The client.
    pub client: SocketAddr,
    /// The virtual address it reached.
    pub vip: SocketAddr,
    /// The real server.
    pub dest: SocketAddr,
    state: AtomicU8,
    last_active_ms: AtomicU64,
}

const STATES: [ConnState; 4] = [
    ConnState::Established,
    ConnState::FinWait,
    ConnState::Close,
    ConnState::Udp,
];

impl Entry {
    /// A new entry, active at `now_ms`.
    #[must_use]
    pub fn new(
        protocol: Protocol,
        client: SocketAddr,
        vip: SocketAddr,
        dest: SocketAddr,
        state: ConnState,
        now_ms: u64,
    ) -> Self {
        let e = Self {
            protocol,
            client,
            vip,
            dest,
            state: AtomicU8::new(0),
            last_active_ms: AtomicU64::new(now_ms),
        };
        e.set_state(state);
        e
    }

    /// Marks activity.
    pub fn touch(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    /// When it was last active.
    #[must_use]
    pub fn last_active_ms(&self) -> u64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    /// Its state.
    #[must_use]
    pub fn state(&self) -> ConnState {
        STATES[usize::from(self.state.load(Ordering::Relaxed)).min(STATES.len() - 1)]
    }

    /// Changes its state.
    pub fn set_state(&self, s: ConnState) {
        let i = STATES.iter().position(|x| *x == s).unwrap_or(0);
        self.state
            .store(u8::try_from(i).unwrap_or(0), Ordering::Relaxed);
    }
}

/// All live entries by id.
#[derive(Debug, Default)]
pub struct Registry {
    next: AtomicU64,
    entries: Mutex<HashMap<u64, Arc<Entry>>>,
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Entry>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an entry; returns its id.
    pub fn insert(&self, e: Arc<Entry>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.map().insert(id, e);
        id
    }

    /// Removes an entry.
    pub fn remove(&self, id: u64) {
        self.map().remove(&id);
    }

    /// A snapshot of every entry.
    #[must_use]
    pub fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.map().values().cloned().collect()
    }

    /// How many entries there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
