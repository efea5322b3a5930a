//! The on-disk spool: every object is written here before its first upload attempt and
//! deleted once the origin has it, so an origin outage or a crash loses nothing. A later
//! run over the same spool directory finds the leftovers and publishes them first, in order.
//!
//! One record per object: `{id:016}.data` (the bytes), then `{id:016}.meta` (JSON: path,
//! kind, length), written last and renamed into place, so a record without its `.meta` was
//! interrupted before it was queued and is discarded.
//!
//! - **Durability.** With [`Durability::Fsync`] the data, the meta and the directory are
//!   flushed to stable storage before `put` returns, so a record survives a power cut. With
//!   [`Durability::Buffered`] records survive the process dying (SIGKILL, a crash) and rely
//!   on the OS for power loss. docs/PERFORMANCE.md has the measured cost.
//! - **Damage.** A record whose `.meta` is empty or unreadable (a power cut without fsync) is
//!   moved to the dead letters at open, with the reason, instead of stopping the match.
//! - **A full disk.** When a record cannot be written (no space, quota, a read-only or
//!   failing disk), the object is held in memory instead, up to [`MEMORY_BUDGET`], and
//!   published from there: the match stays on air, an error is logged every 10 s and
//!   counted, and a crash while the disk is full loses what memory holds. Past the budget
//!   `put` fails.
//!
//! May call: `package`, `queue`, `sync`.

use super::queue::Entry;
use crate::package::ObjectKind;
use crate::sync::lock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes held in memory while the disk refuses records.
pub const MEMORY_BUDGET: u64 = 512 * 1024 * 1024;
/// How often a disk that keeps refusing records is logged.
const DISK_LOG_EVERY: Duration = Duration::from_secs(10);

/// Whether `put` waits for stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the data, the meta and the directory: survives a power cut.
    Fsync,
    /// Leave flushing to the OS: survives the process dying, not a power cut.
    Buffered,
}

/// Counters of the spool's faults, readable from any thread.
#[derive(Debug, Default)]
pub struct SpoolStats {
    /// Records the disk refused (each then held in memory, or lost past the budget).
    pub write_failures: AtomicU64,
    /// Bytes held in memory now.
    pub memory_bytes: AtomicU64,
    /// Damaged records moved to the dead letters when the spool was opened.
    pub damaged_at_open: AtomicU64,
}

/// Objects the disk refused, held until published.
#[derive(Debug, Default)]
struct Memory {
    held: HashMap<u64, Vec<u8>>,
    bytes: u64,
    last_logged: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {dir}: {action}: {source}")]
    Io {
        dir: PathBuf,
        action: String,
        source: std::io::Error,
    },
    #[error(
        "spool {dir}: cannot write the record for {path}, and memory already holds {held} bytes \
         of the {budget} the spool may keep there while its disk refuses records"
    )]
    Full {
        dir: PathBuf,
        path: String,
        held: u64,
        budget: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("spool {dir}: record {file} is damaged: {reason}")]
    Damaged {
        dir: PathBuf,
        file: String,
        reason: String,
    },
}

/// `{id}.meta` / `{id}.data` → the id and the extension.
fn record_name(name: &str) -> Option<(u64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    Some((stem.parse().ok()?, ext))
}

/// What a spool directory holds right now: objects not yet on the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    pub objects: u64,
    pub bytes: u64,
    /// When the oldest waiting object was spooled.
    pub oldest: Option<std::time::SystemTime>,
}

/// Reads a spool's depth without opening it (another process may own it): complete records
/// only. A missing directory is an empty spool.
pub fn depth(dir: &Path) -> Depth {
    let mut d = Depth::default();
    let Ok(items) = std::fs::read_dir(dir) else {
        return d;
    };
    for item in items.flatten() {
        let name = item.file_name();
        let Some((id, "meta")) = name.to_str().and_then(record_name) else {
            continue;
        };
        let Ok(data) = std::fs::metadata(dir.join(format!("{id:016}.data"))) else {
            continue; // published between the listing and now
        };
        d.objects += 1;
        d.bytes += data.len();
        if let Ok(t) = data.modified() {
            d.oldest = Some(d.oldest.map_or(t, |o| o.min(t)));
        }
    }
    d
}

#[derive(Serialize, Deserialize)]
struct Meta {
    path: String,
    kind: String,
    len: u64,
}

/// A spool directory (one per match).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    next_id: AtomicU64,
    durability: Durability,
    memory: Mutex<Memory>,
    memory_budget: u64,
    stats: Arc<SpoolStats>,
}

impl Spool {
    /// Opens (creating) `dir` and returns the records left by an earlier run, oldest first.
    /// Damaged records go to the dead letters (logged and counted).
    pub fn open(dir: &Path, durability: Durability) -> Result<(Spool, Vec<Entry>), SpoolError> {
        let io = |action: &str, source| SpoolError::Io {
            dir: dir.to_path_buf(),
            action: action.to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create the directory", e))?;
        let mut found = Vec::new();
        let mut datas = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|e| io("cannot list", e))? {
            let name = item
                .map_err(|e| io("cannot list", e))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            let Some((id, ext)) = record_name(&name) else {
                continue;
            };
            match ext {
                "meta" => found.push(id),
                "data" => datas.push(id),
                _ => {}
            }
        }
        found.sort_unstable();
        let spool = Spool {
            dir: dir.to_path_buf(),
            next_id: AtomicU64::new(0),
            durability,
            memory: Mutex::default(),
            memory_budget: MEMORY_BUDGET,
            stats: Arc::default(),
        };
        let mut entries = Vec::new();
        for id in &found {
            match spool.read_meta(*id) {
                Ok(entry) => entries.push(entry),
                Err(e) => spool.quarantine_damaged(*id, &e)?,
            }
        }
        // Data without meta: a write that never completed (never queued, never published).
        for id in datas.iter().filter(|id| found.binary_search(id).is_err()) {
            let _ = std::fs::remove_file(spool.data_path(*id));
        }
        let next = found.iter().chain(&datas).max().map_or(0, |m| m + 1);
        spool.next_id.store(next, Ordering::Relaxed);
        Ok((spool, entries))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spool's fault counters.
    pub fn stats(&self) -> Arc<SpoolStats> {
        self.stats.clone()
    }

    /// Moves a record whose `.meta` cannot be read to the dead letters, with `damage`.
    fn quarantine_damaged(&self, id: u64, damage: &SpoolError) -> Result<(), SpoolError> {
        let dead = self.dir.join(DEAD_LETTER);
        std::fs::create_dir_all(&dead)
            .map_err(|e| self.io(format!("cannot create {}", dead.display()), e))?;
        for ext in ["data", "meta"] {
            let from = self.dir.join(format!("{id:016}.{ext}"));
            if from.exists() {
                std::fs::rename(&from, dead.join(format!("{id:016}.{ext}")))
                    .map_err(|e| self.io(format!("cannot move {}", from.display()), e))?;
            }
        }
        let note = serde_json::json!({ "reason": damage.to_string() });
        let json = dead.join(format!("{id:016}.json"));
        std::fs::write(&json, format!("{note:#}\n"))
            .map_err(|e| self.io(format!("cannot write {}", json.display()), e))?;
        self.stats.damaged_at_open.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            "{damage}; moved to {} (the match goes on without it)",
            dead.display()
        );
        Ok(())
    }

    fn data_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016}.data"))
    }

    fn meta_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016}.meta"))
    }

    fn io(&self, action: String, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            dir: self.dir.clone(),
            action,
            source,
        }
    }

    fn read_meta(&self, id: u64) -> Result<Entry, SpoolError> {
        let file = format!("{id:016}.meta");
        let text = std::fs::read(self.meta_path(id))
            .map_err(|e| self.io(format!("cannot read {file}"), e))?;
        let damaged = |reason: String| SpoolError::Damaged {
            dir: self.dir.clone(),
            file: file.clone(),
            reason,
        };
        let meta: Meta = serde_json::from_slice(&text).map_err(|e| damaged(e.to_string()))?;
        let kind = ObjectKind::from_name(&meta.kind)
            .ok_or_else(|| damaged(format!("unknown kind {:?}", meta.kind)))?;
        Ok(Entry {
            id,
            path: meta.path,
            kind,
            len: meta.len,
        })
    }

    /// Stores one object and returns its queue entry: on disk, or in memory while the disk
    /// refuses records (see the module documentation).
    pub fn put(&self, path: &str, kind: ObjectKind, bytes: &[u8]) -> Result<Entry, SpoolError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            id,
            path: path.to_string(),
            kind,
            len: bytes.len() as u64,
        };
        match self.write_record(&entry, bytes) {
            Ok(()) => {
                let mut memory = lock(&self.memory);
                if memory.last_logged.take().is_some() {
                    tracing::info!(
                        "spool {}: the disk takes records again ({} object(s) still in memory)",
                        self.dir.display(),
                        memory.held.len()
                    );
                }
                Ok(entry)
            }
            Err(source) => self.hold_in_memory(entry, bytes, source),
        }
    }

    fn write_record(&self, entry: &Entry, bytes: &[u8]) -> std::io::Result<()> {
        let id = entry.id;
        let meta = serde_json::to_vec(&Meta {
            path: entry.path.clone(),
            kind: entry.kind.name().to_string(),
            len: entry.len,
        })
        .expect("plain struct serializes");
        let tmp = self.dir.join(format!("{id:016}.tmp"));
        let written = self
            .write_file(&self.data_path(id), bytes)
            .and_then(|()| self.write_file(&tmp, &meta))
            .and_then(|()| std::fs::rename(&tmp, self.meta_path(id)))
            .and_then(|()| match self.durability {
                Durability::Fsync => std::fs::File::open(&self.dir)?.sync_all(),
                Durability::Buffered => Ok(()),
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(self.meta_path(id));
            let _ = std::fs::remove_file(self.data_path(id));
        }
        written
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        f.write_all(bytes)?;
        match self.durability {
            Durability::Fsync => f.sync_data(),
            Durability::Buffered => Ok(()),
        }
    }

    fn hold_in_memory(
        &self,
        entry: Entry,
        bytes: &[u8],
        source: std::io::Error,
    ) -> Result<Entry, SpoolError> {
        self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
        let mut memory = lock(&self.memory);
        if memory.bytes + entry.len > self.memory_budget {
            return Err(SpoolError::Full {
                dir: self.dir.clone(),
                path: entry.path,
                held: memory.bytes,
                budget: self.memory_budget,
                source,
            });
        }
        memory.bytes += entry.len;
        memory.held.insert(entry.id, bytes.to_vec());
        self.stats
            .memory_bytes
            .store(memory.bytes, Ordering::Relaxed);
        if memory
            .last_logged
            .is_none_or(|t| t.elapsed() >= DISK_LOG_EVERY)
        {
            memory.last_logged = Some(Instant::now());
            tracing::error!(
                "spool {}: cannot write the record for {} ({source}); holding {} object(s), \
                 {} bytes in memory (at most {}) and publishing from there: the \
                 match stays on air, but a crash now loses them. Free space on this disk.",
                self.dir.display(),
                entry.path,
                memory.held.len(),
                memory.bytes,
                self.memory_budget
            );
        }
        Ok(entry)
    }

    /// The bytes of a queued object.
    pub fn read(&self, entry: &Entry) -> Result<Vec<u8>, SpoolError> {
        if let Some(bytes) = lock(&self.memory).held.get(&entry.id) {
            return Ok(bytes.clone());
        }
        let bytes = std::fs::read(self.data_path(entry.id))
            .map_err(|e| self.io(format!("cannot read the record for {}", entry.path), e))?;
        if bytes.len() as u64 != entry.len {
            return Err(SpoolError::Damaged {
                dir: self.dir.clone(),
                file: format!("{:016}.data", entry.id),
                reason: format!("{} bytes, expected {}", bytes.len(), entry.len),
            });
        }
        Ok(bytes)
    }

    /// Moves a record the origin refused to `{spool}/dead-letter/`: its bytes as
    /// `{id}.data` and `{id}.json` with the path, kind, length and `reason`, for an operator
    /// to look at. The record leaves the queue.
    pub fn quarantine(&self, entry: &Entry, reason: &str) -> Result<PathBuf, SpoolError> {
        let dead = self.dir.join(DEAD_LETTER);
        std::fs::create_dir_all(&dead)
            .map_err(|e| self.io(format!("cannot create {}", dead.display()), e))?;
        let data = dead.join(format!("{:016}.data", entry.id));
        match self.forget_in_memory(entry.id) {
            Some(bytes) => std::fs::write(&data, bytes),
            None => std::fs::rename(self.data_path(entry.id), &data),
        }
        .map_err(|e| self.io(format!("cannot move the record for {}", entry.path), e))?;
        let note = serde_json::json!({
            "path": entry.path,
            "kind": entry.kind.name(),
            "len": entry.len,
            "reason": reason,
        });
        let json = dead.join(format!("{:016}.json", entry.id));
        std::fs::write(&json, format!("{note:#}\n"))
            .map_err(|e| self.io(format!("cannot write {}", json.display()), e))?;
        let _ = std::fs::remove_file(self.meta_path(entry.id));
        Ok(data)
    }

    /// Forgets a record (published, or made obsolete by a newer copy).
    pub fn remove(&self, id: u64) {
        if self.forget_in_memory(id).is_some() {
            return;
        }
        // Meta first: a crash in between leaves data without meta, which `open` discards.
        let _ = std::fs::remove_file(self.meta_path(id));
        let _ = std::fs::remove_file(self.data_path(id));
    }
}

impl Spool {
    fn forget_in_memory(&self, id: u64) -> Option<Vec<u8>> {
        let mut memory = lock(&self.memory);
        let bytes = memory.held.remove(&id)?;
        memory.bytes -= bytes.len() as u64;
        self.stats
            .memory_bytes
            .store(memory.bytes, Ordering::Relaxed);
        Some(bytes)
    }
}

/// Where records the origin refused are kept (`{spool}/dead-letter/`).
pub const DEAD_LETTER: &str = "dead-letter";

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
