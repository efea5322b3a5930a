//! The controller's state on disk (`--state DIR`), so a restarted controller carries on:
//!
//! - `matches/{id}/match.json`: each match's request and state; beside it the run's
//!   `events.jsonl` (`run --events`) and `run.log` (its stderr);
//! - `idempotency/{sha256 of key}.json`: the first answer to each `Idempotency-Key`;
//! - `outbox/`: webhooks not yet delivered ([`super::webhook::Outbox`]);
//! - `spool/`: the runs' `--spool` (their run locks tell which are alive).
//!
//! Every file is written whole (a temporary file, fsync, rename) and readable by its owner
//! only.
//!
//! May call: `request`, `hex`, `private_fs`, `profile`.

use super::request::MatchSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a match is (CONTRACT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchState {
    Starting,
    Live,
    Stopping,
    Ended,
    Failed,
}

impl MatchState {
    /// Whether a run of the match is (or should be) going.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            MatchState::Starting | MatchState::Live | MatchState::Stopping
        )
    }
}

/// One match as the controller keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MatchRecord {
    pub spec: MatchSpec,
    pub state: MatchState,
    /// RFC 3339 UTC of the request that started it.
    pub created: String,
    /// Runs started for this match, the first included.
    pub runs: u32,
    /// Crashes since the last run that published a window.
    pub crashes: u32,
    /// The pid of the current run.
    pub pid: Option<u32>,
    pub last_error: Option<String>,
    /// How far `events.jsonl` has been read.
    pub events_offset: u64,
    pub newest_window: Option<u64>,
    /// Angle name to "live" or "lost", from the run's feed events.
    pub feeds: BTreeMap<String, String>,
    pub stop_requested: bool,
    /// Whether `match.live` went out.
    pub live_announced: bool,
    /// The next number for the controller's own event ids (`evt_{match}_c{n}`).
    pub next_event: u64,
    /// Unix milliseconds before which a crashed run is not restarted.
    #[serde(default)]
    pub restart_after_ms: i64,
    /// Whether `qoe.degraded` went out last (not `qoe.recovered`), and the players' policy
    /// before `[qoe.on_degraded]` replaced it.
    #[serde(default)]
    pub qoe_degraded: bool,
    #[serde(default)]
    pub qoe_before: Option<crate::profile::Delivery>,
    /// Highlight and archive jobs not yet finished: `archive` or `clip-{label}`.
    #[serde(default)]
    pub jobs: Vec<String>,
    /// `control --cluster`: the prefix of the match's stable event ids, the same on every
    /// node (`{prefix}_match-live`, `{prefix}_w{window}`); None: ids as a single controller
    /// makes them.
    #[serde(default)]
    pub event_prefix: Option<String>,
    /// More `run` arguments for every run of the match (`--redundant`, `--end-at`).
    #[serde(default)]
    pub run_args: Vec<String>,
}

impl MatchRecord {
    /// A match just asked for: starting, no run yet.
    pub fn starting(spec: MatchSpec) -> MatchRecord {
        MatchRecord {
            spec,
            state: MatchState::Starting,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            runs: 0,
            crashes: 0,
            pid: None,
            last_error: None,
            events_offset: 0,
            newest_window: None,
            feeds: BTreeMap::new(),
            stop_requested: false,
            live_announced: false,
            next_event: 0,
            restart_after_ms: 0,
            qoe_degraded: false,
            qoe_before: None,
            jobs: Vec::new(),
            event_prefix: None,
            run_args: Vec::new(),
        }
    }
}

/// The first answer to one `Idempotency-Key`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Remembered {
    pub fingerprint: String,
    pub status: u16,
    pub body: serde_json::Value,
}

use crate::private_fs::{private_dir, write_atomic};

#[derive(Debug, thiserror::Error)]
#[error("controller state {path}")]
pub struct StoreError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating, mode 0700) the state directory.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        for path in std::iter::once(dir.to_path_buf())
            .chain(["matches", "idempotency", "outbox", "spool"].map(|sub| dir.join(sub)))
        {
            private_dir(&path).map_err(|source| StoreError { path, source })?;
        }
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.dir.join("outbox")
    }
    pub fn spool_dir(&self) -> PathBuf {
        self.dir.join("spool")
    }
    pub fn match_dir(&self, id: &str) -> PathBuf {
        self.dir.join("matches").join(id)
    }

    /// Every match recorded, by ID. Unreadable records are logged and skipped.
    pub fn load_all(&self) -> BTreeMap<String, MatchRecord> {
        let mut out = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join("matches")) else {
            return out;
        };
        for e in entries.flatten() {
            let path = e.path().join("match.json");
            match std::fs::read(&path).map(|b| serde_json::from_slice::<MatchRecord>(&b)) {
                Ok(Ok(r)) => {
                    out.insert(r.spec.match_id.clone(), r);
                }
                Ok(Err(err)) => tracing::error!("{}: unreadable, skipped: {err}", path.display()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => tracing::error!("{}: {err}", path.display()),
            }
        }
        out
    }

    pub fn save(&self, record: &MatchRecord) -> Result<(), StoreError> {
        let dir = self.match_dir(&record.spec.match_id);
        let path = dir.join("match.json");
        private_dir(&dir)
            .and_then(|_| {
                write_atomic(
                    &path,
                    &serde_json::to_vec_pretty(record).expect("a record serialises"),
                )
            })
            .map_err(|source| StoreError { path, source })
    }

    fn idempotency_path(&self, key: &str) -> PathBuf {
        let name = crate::hex::encode(&crate::hex::sha256(key.as_bytes()));
        self.dir.join("idempotency").join(format!("{name}.json"))
    }

    pub fn remembered(&self, key: &str) -> Option<Remembered> {
        let bytes = std::fs::read(self.idempotency_path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn remember(&self, key: &str, answer: &Remembered) -> Result<(), StoreError> {
        let path = self.idempotency_path(key);
        write_atomic(&path, &serde_json::to_vec(answer).expect("json"))
            .map_err(|source| StoreError { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn records_and_answers_survive_reopening_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let answer = Remembered {
            fingerprint: "ab".into(),
            status: 201,
            body: serde_json::json!({"match": "final"}),
        };
        store.remember("key-1", &answer).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.remembered("key-1"), Some(answer));
        assert_eq!(store.remembered("key-2"), None);
        let mode = std::fs::metadata(store.idempotency_path("key-1"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let mode = std::fs::metadata(dir.path().join("outbox"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
