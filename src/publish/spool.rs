//! The on-disk spool: every object is written here before its first upload attempt and
//! deleted once the origin has it, so an origin outage or a crash loses nothing. A later
//! run over the same spool directory finds the leftovers and publishes them first, in order.
//!
//! One record per object: `{id:016}.data` (the bytes), then `{id:016}.meta` (JSON: path,
//! kind, length), written last and renamed into place, so a record without its `.meta` was
//! interrupted before it was queued and is discarded. Records are not fsynced: they survive
//! the process dying (SIGKILL, a crash) and rely on the OS for power loss, which keeps the
//! publish latency down.

use super::queue::Entry;
use crate::package::ObjectKind;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {dir}: {action}: {source}")]
    Io {
        dir: PathBuf,
        action: String,
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
}

impl Spool {
    /// Opens (creating) `dir` and returns the records left by an earlier run, oldest first.
    pub fn open(dir: &Path) -> Result<(Spool, Vec<Entry>), SpoolError> {
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
        };
        let mut entries = Vec::new();
        for id in &found {
            entries.push(spool.read_meta(*id)?);
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

    /// Stores one object and returns its queue entry.
    pub fn put(&self, path: &str, kind: ObjectKind, bytes: &[u8]) -> Result<Entry, SpoolError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            id,
            path: path.to_string(),
            kind,
            len: bytes.len() as u64,
        };
        std::fs::write(self.data_path(id), bytes)
            .map_err(|e| self.io(format!("cannot write the record for {path}"), e))?;
        let meta = serde_json::to_vec(&Meta {
            path: entry.path.clone(),
            kind: kind.name().to_string(),
            len: entry.len,
        })
        .expect("plain struct serializes");
        let tmp = self.dir.join(format!("{id:016}.tmp"));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&meta))
            .and_then(|()| std::fs::rename(&tmp, self.meta_path(id)));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(self.data_path(id));
            self.io(format!("cannot write the record for {path}"), e)
        })?;
        Ok(entry)
    }

    /// The bytes of a queued object.
    pub fn read(&self, entry: &Entry) -> Result<Vec<u8>, SpoolError> {
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
        std::fs::rename(self.data_path(entry.id), &data)
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
        // Meta first: a crash in between leaves data without meta, which `open` discards.
        let _ = std::fs::remove_file(self.meta_path(id));
        let _ = std::fs::remove_file(self.data_path(id));
    }
}

/// Where records the origin refused are kept (`{spool}/dead-letter/`).
pub const DEAD_LETTER: &str = "dead-letter";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, left) = Spool::open(dir.path()).unwrap();
        assert!(left.is_empty());
        let a = spool
            .put("m/a/hi/1.ts", ObjectKind::Segment, b"one")
            .unwrap();
        let b = spool
            .put("m/a/hi/index.m3u8", ObjectKind::MediaPlaylist, b"two!")
            .unwrap();
        let c = spool.put("m/a/hi/2.ts", ObjectKind::Segment, b"3").unwrap();
        spool.remove(a.id);
        drop(spool);
        let (spool, left) = Spool::open(dir.path()).unwrap();
        assert_eq!(left, vec![b.clone(), c.clone()]);
        assert_eq!(spool.read(&b).unwrap(), b"two!");
        let d = spool.put("m/x", ObjectKind::Pointer, b"").unwrap();
        assert!(d.id > c.id, "ids keep increasing across runs");
    }

    #[test]
    fn a_quarantined_record_leaves_the_queue_with_its_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(tmp.path()).unwrap();
        let e = spool
            .put("m/a/r/7.ts", ObjectKind::Segment, b"abc")
            .unwrap();
        let data = spool.quarantine(&e, "HTTP 403").unwrap();
        assert_eq!(std::fs::read(&data).unwrap(), b"abc");
        let note = std::fs::read_to_string(data.with_extension("json")).unwrap();
        assert!(
            note.contains("\"reason\": \"HTTP 403\"") && note.contains("m/a/r/7.ts"),
            "{note}"
        );
        let (_, leftovers) = Spool::open(tmp.path()).unwrap();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn depth_counts_complete_records_only() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(depth(&dir.path().join("none")), Depth::default());
        let (spool, _) = Spool::open(dir.path()).unwrap();
        let a = spool.put("m/1.ts", ObjectKind::Segment, b"12345").unwrap();
        spool.put("m/2.ts", ObjectKind::Segment, b"678").unwrap();
        std::fs::write(dir.path().join("0000000000000099.data"), b"half").unwrap();
        let d = depth(dir.path());
        assert_eq!((d.objects, d.bytes), (2, 8));
        assert!(d.oldest.is_some());
        spool.remove(a.id);
        assert_eq!((depth(dir.path()).objects, depth(dir.path()).bytes), (1, 3));
    }

    #[test]
    fn half_written_records_are_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path()).unwrap();
        let a = spool
            .put("m/a/hi/1.ts", ObjectKind::Segment, b"one")
            .unwrap();
        std::fs::remove_file(spool.meta_path(a.id)).unwrap();
        let (_, left) = Spool::open(dir.path()).unwrap();
        assert!(left.is_empty());
        assert!(!spool.data_path(a.id).exists());
    }

    #[test]
    fn damage_is_reported_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path()).unwrap();
        let a = spool
            .put("m/a/hi/1.ts", ObjectKind::Segment, b"one")
            .unwrap();
        std::fs::write(spool.data_path(a.id), b"on").unwrap();
        let e = spool.read(&a).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{:016}.data", a.id)) && e.contains("expected 3"),
            "{e}"
        );
        std::fs::write(spool.meta_path(a.id), b"{").unwrap();
        let e = Spool::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is damaged"), "{e}");
    }
}
