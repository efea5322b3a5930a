//! `swarmpack control`: starts and watches matches for the bracket software or the producer's
//! console, over a JSON API ([`api`]), and tells them what happens by signed webhooks
//! ([`webhook`]).
//!
//! Each match is its own `swarmpack run` process ([`supervise`]), so one match's crash never
//! touches another. A run that dies is started again (the run picks the match up where its
//! spool and the origin left it) after 1, 2, 4, 8 and 16 s; after [`MAX_CRASHES`] crashes in a
//! row without a window published, the match is failed. The controller's own state is on disk
//! ([`store`]): restarted, it adopts the runs still alive and restarts the ones that died, and
//! it never starts a second run of a match that is running (the run's spool lock also refuses
//! one).
//!
//! Events: `run` writes feed, window and origin events to `events.jsonl` in the match's state
//! directory, and `match.ended` at its clean end; the controller adds `match.started`,
//! `match.live` (the first window published) and `match.failed`, and queues them all in the
//! outbox.
//!
//! May call (the whole room): `audience`, `events`, `hex`, `ingest`, `keys`, `package`, `private_fs`, `profile`, `retry`, `run`, `sync`, `timecode`.

pub mod api;
pub mod audience;
pub mod cluster;
mod qoe;
pub mod records;
pub mod request;
pub mod supervise;
pub mod webhook;

use crate::events::{Event, EventType};
pub use qoe::DeliveryRefused;
use records::{MatchRecord, MatchState, Store};
use request::MatchSpec;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::process::Child;
use supervise::Launcher;
use webhook::Outbox;

/// Crashes in a row (no window published in between) before a match is failed.
pub const MAX_CRASHES: u32 = 5;

pub struct Controller {
    store: Store,
    launcher: Launcher,
    matches: BTreeMap<String, MatchRecord>,
    /// Runs this controller started (adopted ones are watched through their run lock).
    children: HashMap<String, Child>,
    /// Highlight and archive jobs this controller started, reaped once they end (what they
    /// did is read from their exit files, see [`supervise::job_exit`]).
    job_children: Vec<Child>,
    outbox: Option<Outbox>,
    /// `control --cluster`: what becomes of each event before the outbox (its id made
    /// stable, or dropped when another node sends it); None: every event goes out as it is.
    gate: Option<EventGate>,
}

/// Maps (match ID, event) to the event to send, if any.
pub type EventGate = Box<dyn FnMut(&str, Event) -> Option<Event> + Send>;

/// Unix milliseconds now.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Controller {
    /// Opens the state and adopts what is running. `outbox` is None without a webhook URL.
    pub fn open(store: Store, launcher: Launcher, outbox: Option<Outbox>) -> Controller {
        let matches = store.load_all();
        let mut c = Controller {
            store,
            launcher,
            matches,
            children: HashMap::new(),
            job_children: Vec::new(),
            outbox,
            gate: None,
        };
        for (id, r) in &c.matches {
            if r.state.is_running() {
                match c.launcher.running(id) {
                    Some(pid) => tracing::info!("match {id}: adopted its run (pid {pid})"),
                    None => tracing::warn!("match {id}: its run is gone; restarting it"),
                }
            }
        }
        c.tick();
        c
    }

    /// Sends events through `gate` from now on (`control --cluster`).
    pub fn set_gate(&mut self, gate: EventGate) {
        self.gate = Some(gate);
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn get(&self, id: &str) -> Option<&MatchRecord> {
        self.matches.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &MatchRecord> {
        self.matches.values()
    }

    /// Whether a run of `id` is going (or starting, or stopping).
    pub fn is_running(&self, id: &str) -> bool {
        self.matches.get(id).is_some_and(|r| r.state.is_running())
            || self.launcher.running(id).is_some()
    }

    /// Starts a match (the caller checked it is not running).
    pub fn create(&mut self, spec: MatchSpec) -> Result<&MatchRecord, records::StoreError> {
        self.create_with(spec, Vec::new(), None)
    }

    /// Starts a match whose runs get `run_args` too, its events ids made stable with
    /// `event_prefix` (`control --cluster`).
    pub fn create_with(
        &mut self,
        spec: MatchSpec,
        run_args: Vec<String>,
        event_prefix: Option<String>,
    ) -> Result<&MatchRecord, records::StoreError> {
        let id = spec.match_id.clone();
        let before = self.matches.get(&id);
        let record = MatchRecord {
            events_offset: before.map_or(0, |r| r.events_offset),
            next_event: before.map_or(0, |r| r.next_event),
            jobs: before.map_or(Vec::new(), |r| r.jobs.clone()),
            event_prefix,
            run_args,
            ..MatchRecord::starting(spec)
        };
        // A match started again under the same ID starts from its profile's policy.
        let _ = std::fs::remove_file(self.store.match_dir(&id).join("delivery.jsonl"));
        self.matches.insert(id.clone(), record);
        self.start_run(&id);
        let r = &self.matches[&id];
        self.store.save(r)?;
        Ok(r)
    }

    /// Asks the match's run to stop cleanly.
    pub fn stop(&mut self, id: &str) -> Option<&MatchRecord> {
        // A known match first: only then is its run lock looked at.
        self.matches.get(id)?;
        let running = self.launcher.running(id);
        let r = self.matches.get_mut(id)?;
        if r.state.is_running() {
            r.stop_requested = true;
            r.state = MatchState::Stopping;
            if let Some(pid) = running.filter(|p| *p > 0).or(r.pid) {
                supervise::terminate(pid);
            }
            tracing::info!("match {id}: stopping");
            if let Err(e) = self.store.save(r) {
                tracing::error!("{e}");
            }
        }
        self.matches.get(id)
    }

    /// Makes the match's run leave without ending the match (another node runs it now): no
    /// `match.ended`, no restart.
    pub fn leave(&mut self, id: &str, why: &str) {
        let running = self.launcher.running(id);
        let Some(r) = self.matches.get_mut(id) else {
            return;
        };
        if r.state.is_running() {
            r.state = MatchState::Ended;
            r.last_error = Some(why.to_string());
            if let Some(pid) = running.filter(|p| *p > 0).or(r.pid) {
                supervise::leave(pid);
            }
            tracing::warn!("match {id}: its run leaves: {why}");
            if let Err(e) = self.store.save(r) {
                tracing::error!("{e}");
            }
        }
        if let Some(mut child) = self.children.remove(id) {
            // Reaped in the background: it drains what it packaged first.
            std::thread::spawn(move || child.wait());
        }
    }

    /// Hands a marker to the match's run (`run --markers`): it is in the live playlists from
    /// their next update.
    pub fn add_marker(
        &mut self,
        id: &str,
        marker: &crate::package::marker::Marker,
    ) -> std::io::Result<()> {
        use std::io::Write;
        let mut line = serde_json::to_vec(marker).expect("a marker serialises");
        line.push(b'\n');
        let mut f =
            crate::private_fs::private_append(&self.store.match_dir(id).join("markers.jsonl"))?;
        // One write: the run never reads half a line as a whole one.
        f.write_all(&line)?;
        tracing::info!("match {id}: marker {} at {}", marker.label, marker.start);
        Ok(())
    }

    /// Starts cutting a highlight (`clip`: label, from, to) or archiving the match; its
    /// `clip.ready` or `archive.ready` follows when it is on the origin.
    /// Clip and archive jobs not yet finished, over every match.
    pub fn jobs_running(&self) -> usize {
        self.matches.values().map(|r| r.jobs.len()).sum()
    }

    pub fn start_job(&mut self, id: &str, clip: Option<(&str, &str, &str)>) -> std::io::Result<()> {
        let Some(r) = self.matches.get(id) else {
            return Err(std::io::Error::other("no such match"));
        };
        let name = clip.map_or("archive".to_string(), |(l, ..)| format!("clip-{l}"));
        let child = self
            .launcher
            .start_job(&r.spec, &self.store.match_dir(id), &name, clip)?;
        tracing::info!("match {id}: {name} started (pid {})", child.id());
        self.job_children.push(child);
        let r = self.matches.get_mut(id).expect("present");
        if !r.jobs.contains(&name) {
            r.jobs.push(name);
        }
        if let Err(e) = self.store.save(r) {
            tracing::error!("{e}");
        }
        Ok(())
    }

    /// Jobs that finished (this controller's, or an earlier one's): their ready events, or
    /// the failure noted.
    fn reap_jobs(&mut self) {
        self.job_children
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        let mut done = Vec::new();
        for (id, r) in &self.matches {
            let dir = self.store.match_dir(id);
            for name in &r.jobs {
                if let Some(code) = supervise::job_exit(&dir, name) {
                    done.push((id.clone(), name.clone(), code == 0));
                }
            }
        }
        for (id, name, ok) in done {
            let r = self.matches.get_mut(&id).expect("present");
            r.jobs.retain(|n| *n != name);
            let label = name.strip_prefix("clip-").map(str::to_string);
            if !ok {
                let log = self.store.match_dir(&id).join("jobs.log");
                let why = supervise::last_error(&log).unwrap_or_else(|| "see jobs.log".into());
                tracing::error!("match {id}: {name} failed: {why}");
                r.last_error = Some(format!("{name}: {why}"));
            } else {
                let (kind, data) = match &label {
                    Some(l) => (
                        EventType::ClipReady,
                        json!({"label": l, "manifest": format!("{id}/clips/{l}/clip.json"),
                               "torrent": format!("{id}/clips/{l}/clip.torrent"),
                               "master": format!("{id}/clips/{l}/vod.m3u8")}),
                    ),
                    None => (
                        EventType::ArchiveReady,
                        json!({"manifest": format!("{id}/archive.json"),
                               "torrent": format!("{id}/archive.torrent"),
                               "master": format!("{id}/vod.m3u8")}),
                    ),
                };
                self.own_event(&id, kind, data);
            }
            if let Err(e) = self.store.save(&self.matches[&id]) {
                tracing::error!("{e}");
            }
        }
    }

    /// Queues one of the controller's own events (id `evt_{match}_c{n}`).
    fn own_event(&mut self, id: &str, kind: EventType, mut data: serde_json::Value) {
        let Some(r) = self.matches.get_mut(id) else {
            return;
        };
        data["match"] = json!(id);
        let event_id = match &r.event_prefix {
            // The same id for the same milestone on every node.
            Some(prefix) => {
                let name = serde_json::to_value(kind).ok();
                let name = name.as_ref().and_then(|k| k.as_str()).unwrap_or("event");
                let name = name.replace('.', "-");
                match kind {
                    // Once per match, whichever node sees it.
                    EventType::MatchStarted
                    | EventType::MatchLive
                    | EventType::MatchEnded
                    | EventType::MatchFailed => format!("{prefix}_{name}"),
                    // May happen again (a second degradation, a second archive).
                    _ => format!("{prefix}_{name}_{}", now_ms()),
                }
            }
            None => format!("evt_{id}_c{}", r.next_event),
        };
        let event = Event::new(event_id, kind, data);
        r.next_event += 1;
        tracing::info!("match {id}: {kind:?}");
        self.enqueue(id, event);
    }

    /// Puts `event` of match `id` in the outbox, through the gate if there is one.
    fn enqueue(&mut self, id: &str, event: Event) {
        let event = match &mut self.gate {
            Some(gate) => match gate(id, event) {
                Some(e) => e,
                None => return,
            },
            None => event,
        };
        if let Some(outbox) = &mut self.outbox
            && let Err(e) = outbox.enqueue(event)
        {
            tracing::error!("{e}");
        }
    }

    fn start_run(&mut self, id: &str) {
        let Some(r) = self.matches.get(id) else {
            return;
        };
        let dir = self.store.match_dir(id);
        match self.launcher.start(&r.spec, &dir, &r.run_args) {
            Ok(child) => {
                let pid = child.id();
                self.children.insert(id.to_string(), child);
                let r = self.matches.get_mut(id).expect("present");
                r.pid = Some(pid);
                r.runs += 1;
                let run = r.runs;
                tracing::info!("match {id}: run {run} started (pid {pid})");
                if run == 1 {
                    self.own_event(id, EventType::MatchStarted, json!({"pid": pid}));
                }
            }
            Err(e) => {
                let r = self.matches.get_mut(id).expect("present");
                r.last_error = Some(format!("cannot start swarmpack run: {e}"));
                r.crashes += 1;
                tracing::error!("match {id}: cannot start swarmpack run: {e}");
            }
        }
    }

    /// Reads the run's new events: queues them and applies what they say to the record.
    fn read_events(&mut self, id: &str) {
        let path = self.store.match_dir(id).join("events.jsonl");
        let Some(r) = self.matches.get(id) else {
            return;
        };
        let offset = r.events_offset;
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        let Some(fresh) = bytes.get(offset as usize..) else {
            return;
        };
        let (events, used, bad) = crate::events::read_lines(fresh);
        for at in bad {
            tracing::warn!(
                "{}: a line at {} does not parse",
                path.display(),
                offset as usize + at
            );
        }
        let mut live = false;
        for e in events {
            let r = self.matches.get_mut(id).expect("present");
            match e.kind {
                EventType::WindowPublished => {
                    r.newest_window = e.data["window"].as_u64().or(r.newest_window);
                    r.crashes = 0;
                    live = true;
                }
                EventType::FeedLost | EventType::FeedRestored => {
                    if let Some(angle) = e.data["angle"].as_str() {
                        let feed = if e.kind == EventType::FeedLost {
                            "lost"
                        } else {
                            "live"
                        };
                        r.feeds.insert(angle.to_string(), feed.to_string());
                    }
                }
                EventType::MatchEnded => {
                    r.state = MatchState::Ended;
                }
                _ => {}
            }
            self.enqueue(id, e);
        }
        let r = self.matches.get_mut(id).expect("present");
        if live && !r.live_announced {
            r.live_announced = true;
            if r.state == MatchState::Starting {
                r.state = MatchState::Live;
            }
            self.own_event(id, EventType::MatchLive, json!({}));
        } else if live && r.state == MatchState::Starting {
            r.state = MatchState::Live;
        }
        let r = self.matches.get_mut(id).expect("present");
        r.events_offset = offset + used as u64;
    }

    /// One look at every match: new events, runs that ended or died, restarts due.
    pub fn tick(&mut self) {
        self.reap_jobs();
        let ids: Vec<String> = self.matches.keys().cloned().collect();
        for id in ids {
            let before = serde_json::to_vec(&self.matches[&id]).ok();
            self.watch(&id);
            if serde_json::to_vec(&self.matches[&id]).ok() != before
                && let Err(e) = self.store.save(&self.matches[&id])
            {
                tracing::error!("{e}");
            }
        }
    }

    fn watch(&mut self, id: &str) {
        if !self.matches[id].state.is_running() {
            return;
        }
        // A child of ours is reaped here; an adopted run is seen through its run lock.
        let exited = match self.children.get_mut(id) {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.code()),
                Ok(None) => None,
                Err(_) => Some(None),
            },
            None => self.launcher.running(id).is_none().then_some(None),
        };
        self.read_events(id);
        let Some(code) = exited else {
            return;
        };
        self.children.remove(id);
        // Anything written just before the end.
        self.read_events(id);
        if let Some(pid) = self.launcher.running(id) {
            // Another run of this match holds its spool (one started just before a controller
            // restart, say): that one is the match's run now.
            tracing::info!("match {id}: adopted its run (pid {pid})");
            self.matches.get_mut(id).expect("present").pid = Some(pid);
            return;
        }
        let log = self.store.match_dir(id).join("run.log");
        let r = self.matches.get_mut(id).expect("present");
        r.pid = None;
        if r.state == MatchState::Ended {
            // The run's own match.ended (its clean end) went out with its events.
            tracing::info!("match {id}: ended");
            return;
        }
        if r.stop_requested {
            // Asked to stop: it is over, whatever the exit (an origin that never took the
            // last objects is an error worth showing, not a reason to start it again).
            r.state = MatchState::Ended;
            if code != Some(0) {
                r.last_error = supervise::last_error(&log)
                    .or_else(|| Some(format!("the run exited ({code:?}) while stopping")));
            }
            let data = json!({"runs": r.runs, "error": r.last_error});
            self.own_event(id, EventType::MatchEnded, data);
            return;
        }
        let now = now_ms();
        if r.restart_after_ms == 0 {
            r.crashes += 1;
            r.last_error = supervise::last_error(&log).or_else(|| {
                Some(format!(
                    "the run exited ({code:?}) without ending the match"
                ))
            });
            // Bad input (exit 2) will not get better by trying again.
            if r.crashes > MAX_CRASHES || code == Some(2) {
                r.state = MatchState::Failed;
                let error = r.last_error.clone();
                tracing::error!("match {id}: failed after {} run(s): {error:?}", r.runs);
                self.own_event(id, EventType::MatchFailed, json!({"error": error}));
                return;
            }
            let wait = 1000i64 << (r.crashes - 1).min(4);
            r.restart_after_ms = now + wait;
            tracing::warn!(
                "match {id}: its run died ({}); restarting in {} s",
                r.last_error.as_deref().unwrap_or("?"),
                wait / 1000
            );
        }
        if now >= r.restart_after_ms {
            r.restart_after_ms = 0;
            self.start_run(id);
        }
    }
}

/// Delivers the outbox's due webhooks to `url`, once; returns how many went out. A receiver
/// that is down or answers anything but 2xx gets the event again later
/// ([`Outbox::failed`]).
pub fn deliver_due(outbox: &Outbox, url: &str, secret: &webhook::Secret) -> usize {
    let mut sent = 0;
    for (path, pending) in outbox.due(now_ms()) {
        let now = chrono::Utc::now().timestamp();
        let mut req = ureq::post(url)
            .timeout(std::time::Duration::from_secs(10))
            .set("content-type", "application/json");
        for (name, value) in webhook::headers(secret, &pending.event, now) {
            req = req.set(name, &value);
        }
        match req.send_bytes(&pending.event.body()) {
            Ok(_) => {
                outbox.delivered(&path);
                sent += 1;
            }
            Err(e) => {
                let id = pending.event.id.clone();
                let why = match &e {
                    ureq::Error::Status(code, _) => format!("HTTP {code}"),
                    ureq::Error::Transport(t) => t.to_string(),
                };
                match outbox.failed(&path, pending, now_ms(), rand::random::<f64>()) {
                    Some(wait) => tracing::warn!(
                        "webhook {id} to {url}: {why}; next attempt in {:.1} s",
                        wait.as_secs_f64()
                    ),
                    None => tracing::error!(
                        "webhook {id} to {url}: {why}; given up after {} attempts (kept in outbox/dead)",
                        webhook::MAX_ATTEMPTS
                    ),
                }
                // The rest would likely fail the same way: they wait for the next round.
                break;
            }
        }
    }
    sent
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
