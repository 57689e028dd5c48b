//! Persistence templates (ip_vs_core.c `ip_vs_sched_persist`, ip_vs_conn.c).
//!
//! A template binds a client network (the client address masked by `-M`; the client port is
//! ignored) to a dest for the persistence timeout. While connections it controls are open it
//! stays alive; it expires `timeout` after its last use once none are. A template is kept while
//! its dest exists, even at weight 0 or over its threshold, as in the kernel, unless
//! `expire_quiescent_template` is set and the dest has weight 0.

use crate::config::PersistMask;
use crate::time::Timestamp;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The key of a template: the client's address under the persistence mask.
pub type TemplateKey = IpAddr;

/// Masks a client address for persistence.
#[must_use]
pub fn mask_client(addr: IpAddr, mask: PersistMask) -> TemplateKey {
    match (addr, mask) {
        (IpAddr::V4(a), PersistMask::V4(m)) => IpAddr::V4((u32::from(a) & u32::from(m)).into()),
        (IpAddr::V6(a), PersistMask::V6(prefix)) => {
            let bits = u128::from(a);
            let keep = if prefix >= 128 {
                u128::MAX
            } else {
                !(u128::MAX >> prefix)
            };
            IpAddr::V6(Ipv6Addr::from(bits & keep))
        }
        // A mixed family cannot be configured; keep the address whole.
        (other, _) => other,
    }
}

/// One template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The dest it points at.
    pub dest: SocketAddr,
    /// The dest's generation, to tell a re-added dest from the original.
    pub(crate) generation: u64,
    /// Connections it controls that are still open.
    pub controlled: u32,
    /// When its timer fires next; it expires then if it controls nothing.
    pub expires: Timestamp,
}

/// The templates of one service.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    map: HashMap<TemplateKey, Template>,
}

impl Templates {
    /// The live template for a client network, if any. A template whose timer has fired while
    /// it still controls connections is re-armed, as `ip_vs_conn_expire` does.
    pub fn lookup(
        &mut self,
        key: &TemplateKey,
        now: Timestamp,
        timeout_ms: u64,
    ) -> Option<&mut Template> {
        let t = self.map.get_mut(key)?;
        if t.expires <= now {
            if t.controlled == 0 {
                return None;
            }
            let late = now.0 - t.expires.0;
            t.expires = Timestamp(t.expires.0 + (late / timeout_ms.max(1) + 1) * timeout_ms);
        }
        Some(t)
    }

    /// Creates or replaces a template.
    pub fn insert(&mut self, key: TemplateKey, template: Template) -> Option<Template> {
        self.map.insert(key, template)
    }

    /// Removes a template.
    pub fn remove(&mut self, key: &TemplateKey) -> Option<Template> {
        self.map.remove(key)
    }

    /// A template by key, without touching its timer.
    #[must_use]
    pub fn get(&self, key: &TemplateKey) -> Option<&Template> {
        self.map.get(key)
    }

    /// A template by key, mutable, without touching its timer.
    pub fn get_mut(&mut self, key: &TemplateKey) -> Option<&mut Template> {
        self.map.get_mut(key)
    }

    /// Removes and returns every template that has expired by `now`.
    pub fn drain_expired(&mut self, now: Timestamp) -> Vec<Template> {
        let expired: Vec<TemplateKey> = self
            .map
            .iter()
            .filter(|(_, t)| t.controlled == 0 && t.expires <= now)
            .map(|(k, _)| *k)
            .collect();
        expired.iter().filter_map(|k| self.map.remove(k)).collect()
    }

    /// Removes and returns every template.
    pub fn drain(&mut self) -> Vec<Template> {
        self.map.drain().map(|(_, t)| t).collect()
    }

    /// Iterates the templates.
    pub fn iter(&self) -> impl Iterator<Item = (&TemplateKey, &Template)> {
        self.map.iter()
    }

    /// How many templates there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn ipv4_mask_keeps_the_network() {
        let m = PersistMask::V4(Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(
            mask_client("198.18.7.9".parse().unwrap(), m),
            "198.18.7.0".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_prefix_keeps_the_prefix() {
        let m = PersistMask::V6(64);
        assert_eq!(
            mask_client("2001:db8:1:2:3:4:5:6".parse().unwrap(), m),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            mask_client("2001:db8::1".parse().unwrap(), PersistMask::V6(128)),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_template_controlling_connections_outlives_its_timer() {
        let mut t = Templates::default();
        let key: IpAddr = "198.18.0.1".parse().unwrap();
        let dest = "198.18.1.1:80".parse().unwrap();
        t.insert(
            key,
            Template {
                dest,
                generation: 0,
                controlled: 1,
                expires: Timestamp(1000),
            },
        );
        assert!(t.lookup(&key, Timestamp(2500), 1000).is_some());
        assert_eq!(t.get(&key).unwrap().expires, Timestamp(3000));
        t.get_mut(&key).unwrap().controlled = 0;
        assert!(t.drain_expired(Timestamp(2999)).is_empty());
        assert_eq!(t.drain_expired(Timestamp(3000)).len(), 1);
    }
}
