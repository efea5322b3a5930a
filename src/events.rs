//! Match events: what happens to a match that other programs want to hear of. `run --events
//! FILE` appends the ones it sees (feeds lost and restored, windows published, the origin
//! down and up) to FILE as JSON lines, and `swarmpack control` adds its own (started, live,
//! ended, failed) and delivers them all as Standard Webhooks (`crate::control::webhook`).
//!
//! Each event carries its id from the moment it is written, so every delivery of it, and every
//! re-read of the file after a restart, names the same event.
//!
//! May call: `private_fs`, `sync`.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The event types (CONTRACT.md, "The control API").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "match.started")]
    MatchStarted,
    #[serde(rename = "match.live")]
    MatchLive,
    #[serde(rename = "feed.lost")]
    FeedLost,
    #[serde(rename = "feed.restored")]
    FeedRestored,
    #[serde(rename = "window.published")]
    WindowPublished,
    #[serde(rename = "origin.down")]
    OriginDown,
    #[serde(rename = "origin.up")]
    OriginUp,
    #[serde(rename = "match.ended")]
    MatchEnded,
    #[serde(rename = "match.failed")]
    MatchFailed,
    #[serde(rename = "archive.ready")]
    ArchiveReady,
    #[serde(rename = "clip.ready")]
    ClipReady,
    #[serde(rename = "qoe.degraded")]
    QoeDegraded,
    #[serde(rename = "qoe.recovered")]
    QoeRecovered,
}

/// One event, as a line of an events file and as a webhook (its `id` goes in the
/// `webhook-id` header, the rest is the body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// RFC 3339 UTC, milliseconds.
    pub timestamp: String,
    pub data: serde_json::Value,
}

/// The webhook body of an event: `{"type","timestamp","data"}`.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: EventType,
    timestamp: &'a str,
    data: &'a serde_json::Value,
}

impl Event {
    /// An event of `kind` now, with `id`.
    pub fn new(id: String, kind: EventType, data: serde_json::Value) -> Event {
        Event {
            id,
            kind,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data,
        }
    }

    /// The webhook payload: the exact bytes that are signed and sent.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            kind: self.kind,
            timestamp: &self.timestamp,
            data: &self.data,
        })
        .expect("an event serialises")
    }
}

/// The complete events in `bytes` (an events file from `offset`), and the offset just past the
/// last complete line: a line still being written is left for the next read. Lines that do not
/// parse are skipped and returned by their offset, so one torn line never blocks the rest.
pub fn read_lines(bytes: &[u8]) -> (Vec<Event>, usize, Vec<usize>) {
    let mut events = Vec::new();
    let mut bad = Vec::new();
    let mut at = 0;
    while let Some(nl) = bytes[at..].iter().position(|&b| b == b'\n') {
        let line = &bytes[at..at + nl];
        if !line.is_empty() {
            match serde_json::from_slice::<Event>(line) {
                Ok(e) => events.push(e),
                Err(_) => bad.push(at),
            }
        }
        at += nl + 1;
    }
    (events, at, bad)
}

/// Appends events to a file, one JSON line each (`run --events FILE`). Ids are
/// `evt_{match}_{start}_{n}`: `start` is this writer's creation in Unix milliseconds, so a
/// restarted run never reuses an id.
pub struct EventLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    prefix: String,
    next: AtomicU64,
}

impl EventLog {
    pub fn open(path: &Path, match_id: &str) -> std::io::Result<EventLog> {
        let file = crate::private_fs::private_append(path)?;
        let start = chrono::Utc::now().timestamp_millis();
        Ok(EventLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            prefix: format!("evt_{match_id}_{start}"),
            next: AtomicU64::new(0),
        })
    }

    /// Writes one event; a write that fails is logged, never fatal to the match.
    pub fn emit(&self, kind: EventType, data: serde_json::Value) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let event = Event::new(format!("{}_{n}", self.prefix), kind, data);
        let mut line = serde_json::to_vec(&event).expect("an event serialises");
        line.push(b'\n');
        let mut file = crate::sync::lock(&self.file);
        // One write call per line: with O_APPEND a reader never sees two lines interleaved.
        if let Err(e) = file.write_all(&line) {
            tracing::warn!(
                "events file {}: cannot write {:?}: {e}",
                self.path.display(),
                event.kind
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_named_as_the_contract_says() {
        let e = Event {
            id: "evt_1".into(),
            kind: EventType::WindowPublished,
            timestamp: "2026-12-01T20:00:00.000Z".into(),
            data: serde_json::json!({"match": "final", "window": 7}),
        };
        assert_eq!(
            String::from_utf8(e.body()).unwrap(),
            r#"{"type":"window.published","timestamp":"2026-12-01T20:00:00.000Z","data":{"match":"final","window":7}}"#
        );
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
    }

    #[test]
    fn a_line_still_being_written_waits_and_a_torn_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = EventLog::open(&path, "final").unwrap();
        log.emit(EventType::FeedLost, serde_json::json!({"angle": "main"}));
        log.emit(
            EventType::FeedRestored,
            serde_json::json!({"angle": "main"}),
        );
        let mut bytes = std::fs::read(&path).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(b"{\"id\":\"x\",\"type\":\"feed.lo");
        let (events, next, bad) = read_lines(&bytes);
        assert_eq!(events.len(), 2);
        assert_eq!(next, whole, "the partial line is left for later");
        assert!(bad.is_empty());
        assert_eq!(events[0].kind, EventType::FeedLost);
        assert_ne!(events[0].id, events[1].id);
        assert!(events[0].id.starts_with("evt_final_"));
        bytes.extend_from_slice(b"\n");
        let (events, next, bad) = read_lines(&bytes);
        assert_eq!((events.len(), next, bad), (2, bytes.len(), vec![whole]));
    }
}
