//! `/proc/sys` values set for a while: each old value is remembered and put back, newest
//! first, when the [`Sysctls`] is dropped. Keys are paths under `/proc/sys` with slashes
//! (`net/ipv4/conf/eth0.100/arp_ignore`, the form sysctl(8) also takes), so an interface name
//! with a dot stays one component; `/proc/sys/net` is the network namespace's of the thread
//! that opens the file.

use crate::{host_error, HostError};
use std::path::PathBuf;

/// Sysctls this process changed.
#[derive(Debug, Default)]
pub struct Sysctls {
    undo: Vec<(PathBuf, String)>,
}

/// The file of a key (`net/ipv4/conf/eth0/rp_filter`).
fn path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key)
}

/// Refuses keys that would leave `/proc/sys`.
fn checked(key: &str) -> Result<&str, HostError> {
    if key.is_empty() || key.starts_with('/') || key.split('/').any(|c| c.is_empty() || c == "..") {
        return Err(host_error(
            format!("use sysctl {key:?}"),
            "a key is a path under /proc/sys, such as net/ipv4/conf/all/arp_ignore",
        ));
    }
    Ok(key)
}

/// The current value of `key`.
///
/// # Errors
/// When the file cannot be read (no such key, or a namespace without it).
pub fn read(key: &str) -> Result<String, HostError> {
    std::fs::read_to_string(path(checked(key)?))
        .map(|v| v.trim().to_owned())
        .map_err(|e| host_error(format!("read sysctl {key}"), e))
}

impl Sysctls {
    /// None changed yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, remembering the old value.
    ///
    /// # Errors
    /// When it cannot be read or written; nothing is remembered then.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), HostError> {
        let old = read(checked(key)?)?;
        std::fs::write(path(key), value).map_err(|e| host_error(format!("set sysctl {key}"), e))?;
        tracing::info!(sysctl = key, old = %old, new = value, "set");
        self.undo.push((path(key), old));
        Ok(())
    }
}

impl Drop for Sysctls {
    fn drop(&mut self) {
        for (file, old) in self.undo.drain(..).rev() {
            if let Err(e) = std::fs::write(&file, &old) {
                tracing::warn!(sysctl = %file.display(), error = %e, "could not put a sysctl back");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_name_their_proc_files_and_stay_under_proc_sys() {
        assert_eq!(
            super::path(super::checked("net/ipv4/conf/eth0.100/arp_ignore").unwrap()),
            std::path::Path::new("/proc/sys/net/ipv4/conf/eth0.100/arp_ignore")
        );
        for bad in ["", "/etc/passwd", "net/../../etc/passwd", "net//ipv4"] {
            let e = super::checked(bad).unwrap_err();
            assert!(e.why.contains("a path under /proc/sys"), "{bad}: {e}");
        }
    }
}
