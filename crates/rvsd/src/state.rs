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

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// A store in `dir`, created if missing.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        fs::create_dir_all(dir).map_err(|source| StateError::Write {
            path: dir.to_owned(),
            operation: "create directory",
            source,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
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
