//! What a running match tells `--events FILE` (see [`crate::events`]): feeds lost and
//! restored (from the ingest's own feed watch), each window once its manifest is on the
//! origin, the origin going down and coming back (from the publisher's schedule), and the
//! match's clean end (a run that dies writes none: that is how a crash is told apart).
//!
//! May call: `events`, `metrics`, `package`, `publish`.

use crate::events::{EventLog, EventType};
use crate::metrics::Metrics;
use crate::package::ObjectKind;
use crate::publish::Published;
use serde_json::json;
use std::sync::Arc;

pub(super) struct RunEvents {
    log: Option<Arc<EventLog>>,
    match_id: String,
    origin_down: bool,
}

impl RunEvents {
    pub fn new(log: Option<EventLog>, match_id: &str) -> RunEvents {
        RunEvents {
            log: log.map(Arc::new),
            match_id: match_id.to_string(),
            origin_down: false,
        }
    }

    fn emit(&self, kind: EventType, data: serde_json::Value) {
        if let Some(log) = &self.log {
            log.emit(kind, data);
        }
    }

    pub fn feed(&self, angle: &str, live: bool, status: &str) {
        let kind = if live {
            EventType::FeedRestored
        } else {
            EventType::FeedLost
        };
        self.emit(
            kind,
            json!({"match": self.match_id, "angle": angle, "status": status}),
        );
    }

    /// The match ended cleanly (its duration, or a stop), everything on the origin.
    pub fn ended(&self, segments: u64) {
        self.emit(
            EventType::MatchEnded,
            json!({"match": self.match_id, "segments": segments}),
        );
    }

    /// The publisher's view of the origin, checked often: a change is an event.
    pub fn origin(&mut self, down: bool) {
        if std::mem::replace(&mut self.origin_down, down) != down {
            let kind = if down {
                EventType::OriginDown
            } else {
                EventType::OriginUp
            };
            self.emit(kind, json!({"match": self.match_id}));
        }
    }

    /// The channel for the publisher's per-object events: publish latency into `metrics`,
    /// and `window.published` when a window manifest (`{match}/windows/{N}.json`) is on the
    /// origin. None when neither wants them.
    pub fn published_channel(
        &self,
        metrics: Option<Arc<Metrics>>,
    ) -> Option<crossbeam_channel::Sender<Published>> {
        let latency = metrics.map(crate::metrics::latency_recorder);
        let Some(log) = self.log.clone() else {
            return latency;
        };
        let (tx, rx) = crossbeam_channel::unbounded::<Published>();
        let match_id = self.match_id.clone();
        std::thread::Builder::new()
            .name("swarmpack-events".into())
            .spawn(move || {
                for p in rx {
                    if let Some(window) = window_of(&match_id, &p) {
                        log.emit(
                            EventType::WindowPublished,
                            json!({"match": match_id, "window": window, "manifest": p.path}),
                        );
                    }
                    if let Some(latency) = &latency {
                        let _ = latency.send(p);
                    }
                }
            })
            .expect("spawn the events thread");
        Some(tx)
    }
}

/// The window number of a published window manifest.
fn window_of(match_id: &str, p: &Published) -> Option<u64> {
    if p.kind != ObjectKind::Manifest {
        return None;
    }
    p.path
        .strip_prefix(match_id)?
        .strip_prefix("/windows/")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn published(path: &str, kind: ObjectKind) -> Published {
        Published {
            id: 1,
            path: path.into(),
            kind,
            len: 1,
            queued: Instant::now(),
            done: Instant::now(),
        }
    }

    #[test]
    fn only_window_manifests_publish_windows() {
        let m = |p, k| window_of("final", &published(p, k));
        assert_eq!(m("final/windows/42.json", ObjectKind::Manifest), Some(42));
        assert_eq!(m("final/windows/42.json.sig", ObjectKind::Manifest), None);
        assert_eq!(m("final/live.json", ObjectKind::Pointer), None);
        assert_eq!(m("other/windows/42.json", ObjectKind::Manifest), None);
        assert_eq!(m("final/windows/42.torrent", ObjectKind::Torrent), None);
    }

    #[test]
    fn the_origin_is_an_event_only_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let mut ev = RunEvents::new(Some(EventLog::open(&path, "final").unwrap()), "final");
        for down in [false, true, true, false, false] {
            ev.origin(down);
        }
        let (events, ..) = crate::events::read_lines(&std::fs::read(&path).unwrap());
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventType::OriginDown, EventType::OriginUp]);
    }
}
