//! The durable state: the table's configuration and the sync daemons, as a snapshot (one JSON
//! file replaced atomically: write a temporary file, fsync it, rename it over, fsync the
//! directory) and a journal of what changed since (one JSON line per acknowledged change,
//! fsynced before the answer), so an acknowledged change costs one appended line, not a
//! rewrite of the whole table.
//!
//! Every journal entry carries a sequence number, and the snapshot the number of the last
//! entry it includes. Every [`COMPACT_EVERY`] entries the journal is rotated (new entries go to
//! the next file) and a background thread writes a snapshot of the state as of the rotation,
//! then deletes the journal files it covers. Loading replays, over the snapshot, the entries
//! of every remaining journal with a higher number; a crash at any step leaves a snapshot and
//! journals that together hold every acknowledged change. A journal's last line cut short by
//! a crash was never acknowledged and is dropped.
//!
//! A snapshot or journal that cannot be read or parsed is refused with a message naming the
//! file and the problem, and left untouched: rvsd does not start over an unreadable state.

use rvs_core::{Command, TableConfig};
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
    /// The last journal entry the snapshot includes (0: none; files before the journal).
    #[serde(default)]
    seq: u64,
    #[serde(flatten)]
    state: State,
}

/// One acknowledged change, as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    /// A command the table accepted (replayed through `Table::apply`).
    Command(Command),
    /// The sync daemons as they now are.
    Daemons(Vec<SyncDaemon>),
}

#[derive(Serialize, Deserialize)]
struct Line {
    seq: u64,
    #[serde(flatten)]
    entry: Entry,
}

/// Journal entries between compactions (`RVS_COMPACT_EVERY` overrides it, for tests).
pub const COMPACT_EVERY: u64 = 1000;

fn compact_every() -> u64 {
    std::env::var("RVS_COMPACT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(COMPACT_EVERY)
}

/// The journal file with number `n`.
fn journal_name(n: u64) -> String {
    format!("rvs-journal.{n:08}.jsonl")
}

fn journal_number(name: &str) -> Option<u64> {
    name.strip_prefix("rvs-journal.")?
        .strip_suffix(".jsonl")?
        .parse()
        .ok()
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
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    /// The locked file; the lock ends when the store is dropped (or the process dies).
    _lock: File,
    /// The journal appended to, and its number.
    journal: Option<(u64, File)>,
    /// The last sequence number written.
    seq: u64,
    /// Entries in the current journal file.
    in_journal: u64,
    /// The snapshot writer (one at a time, in the background or not).
    snapshots: std::sync::Arc<std::sync::Mutex<u64>>,
    /// The background compaction under way.
    compaction: Option<std::thread::JoinHandle<()>>,
    /// Entries between compactions.
    compact_every: u64,
    /// Journal entries the last load replayed.
    replayed: u64,
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
            _lock: lock,
            journal: None,
            seq: 0,
            in_journal: 0,
            snapshots: std::sync::Arc::new(std::sync::Mutex::new(0)),
            compaction: None,
            compact_every: compact_every(),
            replayed: 0,
        })
    }

    /// Compacts every `n` entries instead of [`COMPACT_EVERY`].
    #[must_use]
    pub fn compacting_every(mut self, n: u64) -> Self {
        self.compact_every = n.max(1);
        self
    }

    /// Journal entries the last [`StateStore::load`] replayed over the snapshot.
    #[must_use]
    pub const fn replayed(&self) -> u64 {
        self.replayed
    }

    /// Waits for a compaction under way (tests and shutdown).
    pub fn settle(&mut self) {
        if let Some(h) = self.compaction.take() {
            let _ = h.join();
        }
    }

    /// The journal files there are, oldest first.
    fn journals(&self) -> Result<Vec<(u64, PathBuf)>, StateError> {
        let mut out: Vec<(u64, PathBuf)> = fs::read_dir(&self.dir)
            .map_err(|source| StateError::Read {
                path: self.dir.clone(),
                source,
            })?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let n = journal_number(e.file_name().to_str()?)?;
                Some((n, e.path()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// The state file's path.
    #[must_use]
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Loads the state: the snapshot (a missing one is an empty state), then the journal's
    /// entries after it. Journals are appended to from here on.
    ///
    /// # Errors
    /// [`StateError::Read`] or [`StateError::Corrupt`]; no file is modified.
    pub fn load(&mut self) -> Result<State, StateError> {
        let path = self.path();
        let (mut state, snap_seq) = match fs::read(&path) {
            Ok(bytes) => {
                let on_disk: OnDisk =
                    serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                        path: path.clone(),
                        problem: e.to_string(),
                    })?;
                if on_disk.version != FORMAT_VERSION {
                    return Err(StateError::Corrupt {
                        path,
                        problem: format!(
                            "format version {} is not {FORMAT_VERSION}",
                            on_disk.version
                        ),
                    });
                }
                (on_disk.state, on_disk.seq)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (State::default(), 0),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        // The table must also be valid as a whole.
        let mut table =
            rvs_core::Table::from_config(&state.table).map_err(|e| StateError::Corrupt {
                path: self.path(),
                problem: e.to_string(),
            })?;
        let mut seq = snap_seq;
        let journals = self.journals()?;
        let last = journals.len().saturating_sub(1);
        for (i, (_, jpath)) in journals.iter().enumerate() {
            let text = fs::read_to_string(jpath).map_err(|source| StateError::Read {
                path: jpath.clone(),
                source,
            })?;
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for (k, raw) in lines.iter().enumerate() {
                let corrupt = |problem: String| StateError::Corrupt {
                    path: jpath.clone(),
                    problem: format!("line {}: {problem}", k + 1),
                };
                let line: Line = match serde_json::from_str(raw.trim_end()) {
                    Ok(l) => l,
                    // Cut short by a crash before it was acknowledged: the fsync comes first.
                    Err(_) if i == last && k + 1 == lines.len() && !raw.ends_with('\n') => break,
                    Err(e) => return Err(corrupt(e.to_string())),
                };
                if line.seq <= seq {
                    continue;
                }
                match line.entry {
                    Entry::Command(c) => {
                        table.apply(c).map_err(|e| corrupt(e.to_string()))?;
                    }
                    Entry::Daemons(d) => state.daemons = d,
                }
                seq = line.seq;
                self.replayed += 1;
            }
        }
        state.table = table.config();
        self.seq = seq;
        *self
            .snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snap_seq;
        Ok(state)
    }

    /// Records an acknowledged change: appends it to the journal and fsyncs it; when this
    /// returns `Ok`, a crash cannot lose it. `after` makes the state with the change, for
    /// the compaction this may start (only then: it costs a copy of the table).
    ///
    /// # Errors
    /// [`StateError::Write`]; nothing is recorded then.
    pub fn record(
        &mut self,
        entry: &Entry,
        after: impl FnOnce() -> State,
    ) -> Result<(), StateError> {
        let seq = self.seq + 1;
        let line = serde_json::to_string(&Line {
            seq,
            entry: entry.clone(),
        })
        .map_err(|e| StateError::Write {
            path: self.dir.clone(),
            operation: "serialize",
            source: std::io::Error::other(e),
        })?;
        let (n, _) = self.journal()?;
        let jpath = self.dir.join(journal_name(n));
        let (_, file) = self.journal.as_mut().expect("opened just above");
        let err = |operation| {
            let path = jpath.clone();
            move |source| StateError::Write {
                path,
                operation,
                source,
            }
        };
        file.write_all(format!("{line}\n").as_bytes())
            .map_err(err("append"))?;
        file.sync_data().map_err(err("fsync"))?;
        self.seq = seq;
        self.in_journal += 1;
        if self.in_journal >= self.compact_every {
            self.compact(after());
        }
        Ok(())
    }

    /// The journal being appended to, created (and its directory entry made durable) first.
    fn journal(&mut self) -> Result<(u64, &mut File), StateError> {
        if self.journal.is_none() {
            let n = self.journals()?.last().map_or(1, |(n, _)| n + 1);
            let path = self.dir.join(journal_name(n));
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| StateError::Write {
                    path: path.clone(),
                    operation: "create",
                    source,
                })?;
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| StateError::Write {
                    path: self.dir.clone(),
                    operation: "fsync directory",
                    source,
                })?;
            self.journal = Some((n, file));
            self.in_journal = 0;
        }
        let (n, file) = self.journal.as_mut().expect("opened above");
        Ok((*n, file))
    }

    /// Rotates the journal and writes a snapshot of `state` (as of the last entry) on a
    /// thread, which then deletes the journals it covers. One compaction at a time.
    fn compact(&mut self, state: State) {
        if self.compaction.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let Some((n, _)) = self.journal.take() else {
            return;
        };
        self.in_journal = 0;
        let (dir, seq, lock) = (self.dir.clone(), self.seq, self.snapshots.clone());
        self.compaction = Some(std::thread::spawn(move || {
            if let Err(e) = write_snapshot(&dir, &lock, &state, seq) {
                tracing::warn!(error = %e, "compaction failed; the journal keeps the changes");
                return;
            }
            remove_journals_up_to(&dir, n);
        }));
    }

    /// Saves the whole state as a snapshot now (at start, and to undo a recorded change the
    /// plane then refused), and removes the journals it covers.
    ///
    /// # Errors
    /// [`StateError::Write`]; the previous snapshot and journals are intact.
    pub fn save(&mut self, state: &State) -> Result<(), StateError> {
        if let Some(h) = self.compaction.take() {
            let _ = h.join();
        }
        self.seq += 1;
        write_snapshot(&self.dir, &self.snapshots, state, self.seq)?;
        if let Some((n, _)) = self.journal.take() {
            remove_journals_up_to(&self.dir, n);
        } else if let Some((n, _)) = self.journals()?.last() {
            remove_journals_up_to(&self.dir, *n);
        }
        Ok(())
    }
}

/// Deletes the journal files numbered `n` and below (a snapshot covers them).
fn remove_journals_up_to(dir: &Path, n: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        if e.file_name()
            .to_str()
            .and_then(journal_number)
            .is_some_and(|k| k <= n)
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Writes the snapshot of `state` as of entry `seq`, atomically, unless a newer one is there.
fn write_snapshot(
    dir: &Path,
    lock: &std::sync::Mutex<u64>,
    state: &State,
    seq: u64,
) -> Result<(), StateError> {
    let mut written = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *written > seq {
        return Ok(());
    }
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!(".{STATE_FILE}.{seq}.tmp"));
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
        seq,
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
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err("fsync directory", dir))?;
    *written = seq;
    Ok(())
}

impl StateStore {}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{Command, ServiceConfig, ServiceKey, Table};

    #[test]
    fn a_saved_state_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
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

    fn add(t: &mut Table, i: u8) -> Command {
        let c = Command::AddService(ServiceConfig::new(ServiceKey::tcp(
            std::net::SocketAddr::from(([198, 18, 0, i], 80)),
        )));
        t.apply(c.clone()).unwrap();
        c
    }

    #[test]
    fn recorded_changes_replay_over_the_snapshot_across_compactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Table::new();
        {
            let mut store = StateStore::open(dir.path()).unwrap().compacting_every(3);
            store.load().unwrap();
            for i in 1..=10 {
                let c = add(&mut t, i);
                let after = State {
                    table: t.config(),
                    daemons: vec![],
                };
                store.record(&Entry::Command(c), || after).unwrap();
                store.settle();
            }
        }
        let mut store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap().table, t.config());
        let journals = store.journals().unwrap();
        assert!(
            journals.len() <= 2,
            "compactions removed the covered journals: {journals:?}"
        );
        // Appending goes on after a restart.
        let c = add(&mut t, 11);
        store.record(&Entry::Command(c), State::default).unwrap();
        drop(store);
        let mut store = StateStore::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap().table, t.config());
    }

    #[test]
    fn a_journal_line_cut_short_by_a_crash_is_dropped_and_a_bad_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Table::new();
        {
            let mut store = StateStore::open(dir.path()).unwrap();
            store.load().unwrap();
            let c = add(&mut t, 1);
            store.record(&Entry::Command(c), State::default).unwrap();
        }
        let (_, journal) = {
            let store = StateStore::open(dir.path()).unwrap();
            store.journals().unwrap().pop().unwrap()
        };
        let good = fs::read_to_string(&journal).unwrap();
        fs::write(&journal, format!("{good}{{\"seq\":2,\"comm")).unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        assert_eq!(
            store.load().unwrap().table,
            t.config(),
            "the torn line is dropped"
        );
        drop(store);
        fs::write(&journal, format!("{{\"seq\":1,\"nonsense\":0}}\n{good}")).unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
        let err = store.load().unwrap_err();
        assert!(
            matches!(err, StateError::Corrupt { .. }) && err.to_string().contains("line 1"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_state_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = StateStore::open(dir.path()).unwrap();
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
