//! The durable state: the table's configuration and the sync daemons, in one JSON file that
//! is replaced atomically (write a temporary file, fsync it, rename it over, fsync the
//! directory), so a crash at any moment leaves either the old or the new state, complete.
//!
//! A state file that cannot be read or parsed is refused with a message naming the file and
//! the problem, and left untouched: rvsd does not start over an unreadable state.

use rvs_core::TableConfig;
use rvs_proto::SyncDaemon;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file name inside the state directory.
pub const STATE_FILE: &str = "rvs-state.json";
/// The format version written and accepted.
const FORMAT_VERSION: u32 = 1;

/// What is persisted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The table's configuration.
    pub table: TableConfig,
    /// Running sync daemons.
    #[serde(default)]
    pub daemons: Vec<SyncDaemon>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    #[serde(flatten)]
    state: State,
}

/// Why the state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file exists but could not be read.
    #[error("cannot read state file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The file is not a valid rvs state.
    #[error("state file {path} is corrupt ({problem}); it was left untouched: repair or move it away to start empty")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Another process holds the state directory.
    #[error("the state directory {dir} is in use by another rvsd ({holder}); stop it first, or give this one its own --state-dir")]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// Who holds it, as its lock file says (`pid 1234`).
        holder: String,
    },
    /// Writing failed; the previous state is intact.
    #[error("cannot write state to {path}: {operation} failed: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The failing step (`create`, `write`, `fsync`, `rename`, `fsync directory`).
        operation: &'static str,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The lock file inside the state directory: one rvsd holds it (flock) while it runs.
pub const LOCK_FILE: &str = "rvsd.lock";

/// The state directory, held exclusively by this process while the store lives.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    /// The locked file; the lock ends when the last clone is dropped (or the process dies).
    _lock: std::sync::Arc<File>,
}

impl StateStore {
    /// A store in `dir`, created if missing, locked against every other rvsd: a second
    /// daemon on the same directory is refused here, before it touches anything else.
    ///
    /// # Errors
    /// [`StateError::Locked`] naming the holder, or when the directory cannot be created.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let write_err = |operation, path: PathBuf| {
            move |source| StateError::Write {
                path,
                operation,
                source,
            }
        };
        fs::create_dir_all(dir).map_err(write_err("create directory", dir.to_owned()))?;
        let lock_path = dir.join(LOCK_FILE);
        let mut lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(write_err("open the lock file", lock_path.clone()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&lock_path)
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "holder unknown".to_owned());
                return Err(StateError::Locked {
                    dir: dir.to_owned(),
                    holder,
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(write_err("lock", lock_path)(e));
            }
        }
        // Who holds it, for the next one's message; the lock, not this text, is the guard.
        lock.set_len(0)
            .and_then(|()| {
                use std::io::Seek;
                lock.rewind()?;
                writeln!(lock, "pid {}", std::process::id())
            })
            .map_err(write_err("write the lock file", lock_path))?;
        Ok(Self {
            dir: dir.to_owned(),
            _lock: std::sync::Arc::new(lock),
        })
    }

    /// The state file's path.
    #[must_use]
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Loads the state; a missing file is an empty state.
    ///
    /// # Errors
    /// [`StateError::Read`] or [`StateError::Corrupt`]; the file is not modified.
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let on_disk: OnDisk = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        if on_disk.version != FORMAT_VERSION {
            return Err(StateError::Corrupt {
                path,
                problem: format!("format version {} is not {FORMAT_VERSION}", on_disk.version),
            });
        }
        // The table must also be valid as a whole.
        rvs_core::Table::from_config(&on_disk.state.table).map_err(|e| StateError::Corrupt {
            path: self.path(),
            problem: e.to_string(),
        })?;
        Ok(on_disk.state)
    }

    /// Saves the state durably: when this returns `Ok`, a crash cannot lose it.
    ///
    /// # Errors
    /// [`StateError::Write`]; the previous state file is intact.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.path();
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let err = |operation, p: &Path| {
            let p = p.to_owned();
            move |source| StateError::Write {
                path: p,
                operation,
                source,
            }
        };
        let body = serde_json::to_vec_pretty(&OnDisk {
            version: FORMAT_VERSION,
            state: state.clone(),
        })
        .map_err(|e| StateError::Write {
            path: tmp.clone(),
            operation: "serialize",
            source: std::io::Error::other(e),
        })?;
        let mut f = File::create(&tmp).map_err(err("create", &tmp))?;
        f.write_all(&body).map_err(err("write", &tmp))?;
        f.sync_all().map_err(err("fsync", &tmp))?;
        drop(f);
        fs::rename(&tmp, &path).map_err(err("rename", &path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err("fsync directory", &self.dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{Command, ServiceConfig, ServiceKey, Table};

    #[test]
    fn a_saved_state_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap(), State::default());
        let mut t = Table::new();
        t.apply(Command::AddService(ServiceConfig::new(ServiceKey::tcp(
            "198.18.0.1:80".parse().unwrap(),
        ))))
        .unwrap();
        let state = State {
            table: t.config(),
            daemons: vec![],
        };
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), state);
    }

    #[test]
    fn a_second_store_on_the_same_directory_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateStore::open(dir.path()).unwrap();
        let err = StateStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Locked { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        StateStore::open(dir.path()).expect("free again once the holder is gone");
    }

    #[test]
    fn a_corrupt_state_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        fs::write(store.path(), b"{\"version\":1,\"table\":{\"services\":[{").unwrap();
        let err = store.load().unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("left untouched"));
        assert_eq!(
            fs::read(store.path()).unwrap(),
            b"{\"version\":1,\"table\":{\"services\":[{"
        );
    }
}
