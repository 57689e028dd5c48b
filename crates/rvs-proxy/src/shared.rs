//! State shared by the plane's tasks: the mirror table (scheduling, counts, counters), the live
//! connection registry, the clock and the timeouts.

use crate::registry::Registry;
use rvs_core::{Table, Timeouts, Timestamp};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shared by every task of the plane.
pub struct Shared {
    table: Mutex<Table>,
    /// Live connections and UDP flows, for `-Lc`.
    pub registry: Registry,
    origin: Instant,
    tcp: AtomicU32,
    tcp_fin: AtomicU32,
    udp: AtomicU32,
    /// Connections to a real server that refused or timed out, replaced by another pick.
    pub connect_retries: AtomicU64,
    /// Connections that found no available real server.
    pub no_dest: AtomicU64,
    /// Relay buffers.
    pub pool: crate::pool::Pool,
    /// Pipes for the splice relay.
    pub pipes: crate::splice::Pipes,
    /// [`Shared::now`] as of the last tick (every 100 ms): what relays stamp activity with,
    /// so a read costs no clock call. Idle timeouts are whole seconds.
    coarse_ms: AtomicU64,
}

impl Shared {
    /// Fresh shared state with the kernel's default timeouts.
    #[must_use]
    pub fn new() -> Self {
        let d = Timeouts::default();
        Self {
            table: Mutex::new(Table::new()),
            registry: Registry::default(),
            origin: Instant::now(),
            tcp: AtomicU32::new(d.tcp),
            tcp_fin: AtomicU32::new(d.tcp_fin),
            udp: AtomicU32::new(d.udp),
            connect_retries: AtomicU64::new(0),
            no_dest: AtomicU64::new(0),
            pool: crate::pool::Pool::default(),
            pipes: crate::splice::Pipes::default(),
            coarse_ms: AtomicU64::new(0),
        }
    }

    /// The mirror table. Held only for short, non-blocking sections.
    pub fn table(&self) -> MutexGuard<'_, Table> {
        // Every table change is validated before it is made, so a poisoned lock still guards
        // a whole table.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Milliseconds since the plane started, as the core's clock.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        Timestamp(u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The coarse clock: milliseconds as of the last [`Shared::tick_coarse`].
    #[must_use]
    pub fn coarse_now(&self) -> u64 {
        self.coarse_ms.load(Ordering::Relaxed)
    }

    /// Advances the coarse clock to now.
    pub fn tick_coarse(&self) {
        self.coarse_ms.store(self.now().0, Ordering::Relaxed);
    }

    /// Sets the timeouts in force.
    pub fn set_timeouts(&self, t: Timeouts) {
        self.tcp.store(t.tcp, Ordering::Relaxed);
        self.tcp_fin.store(t.tcp_fin, Ordering::Relaxed);
        self.udp.store(t.udp, Ordering::Relaxed);
    }

    /// Idle timeout of an established TCP connection.
    #[must_use]
    pub fn tcp_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.tcp.load(Ordering::Relaxed)))
    }

    /// Idle timeout of a half-closed TCP connection.
    #[must_use]
    pub fn tcp_fin_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.tcp_fin.load(Ordering::Relaxed)))
    }

    /// Idle timeout of a UDP flow.
    #[must_use]
    pub fn udp_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.udp.load(Ordering::Relaxed)))
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}
