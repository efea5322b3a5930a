//! The publishing order, as a pure state machine: which queued object may go to the origin
//! now, and what happens after a failed attempt. No I/O and no clock of its own: callers pass
//! `now` and a jitter draw, so every decision is reproducible in tests.
//!
//! Ordering rules (each object waits for the earlier, unfinished objects it depends on):
//! - multivariant playlists, window torrents, manifests, signatures and `live.json` wait for
//!   *everything* queued before them (masters go up first; a window's documents go up after
//!   all its segments);
//! - a media playlist waits for the earlier segments in its own directory (a playlist never
//!   names a segment that is not on the origin yet) and for earlier copies of itself;
//! - segments, pads and `pubkey.pem` wait only for the multivariant playlists and for
//!   earlier copies of the same path.
//!
//! Replaceable objects (media playlists, `live.json`) are coalesced: a newer copy makes a
//! queued, not yet started older copy obsolete. That keeps a long outage's backlog small.
//!
//! May call: `package`, `retry`.

use crate::package::ObjectKind;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// One queued object (its bytes live in the spool).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Queue order; also the spool record name.
    pub id: u64,
    pub path: String,
    pub kind: ObjectKind,
    pub len: u64,
}

pub use crate::retry::RetryPolicy;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting { not_before: Option<Instant> },
    InFlight,
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    state: State,
    /// Failed attempts so far.
    failures: u32,
}

/// What a failed attempt leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Tried again after `after`.
    Retry {
        attempt: u32,
        of: u32,
        after: Duration,
    },
    /// Out of attempts: the origin is treated as down and objects wait in the spool; one
    /// object is tried again after `probe_after`.
    Held { probe_after: Duration },
    /// The origin refused this object [`REFUSED_ATTEMPTS`] times: it leaves the queue (to the
    /// spool's dead letters), and nothing waits for it any more.
    GivenUp(Entry),
}

/// Attempts at an object the origin refuses (a 4xx) before it is given up. Refusals never
/// count towards the origin being down.
pub const REFUSED_ATTEMPTS: u32 = 3;

/// The queue of objects still to publish.
#[derive(Debug)]
pub struct Schedule {
    slots: BTreeMap<u64, Slot>,
    policy: RetryPolicy,
    /// Set when an object ran out of attempts; cleared by the next success.
    down_until: Option<Instant>,
    bytes: u64,
}

/// How far into the queue a dispatch looks (bounds the cost during a long backlog).
const SCAN_LIMIT: usize = 4096;

impl Schedule {
    pub fn new(policy: RetryPolicy) -> Self {
        Schedule {
            slots: BTreeMap::new(),
            policy,
            down_until: None,
            bytes: 0,
        }
    }

    /// Objects not yet on the origin (including those being sent).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes not yet on the origin.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether objects are being held because the origin is down.
    pub fn origin_down(&self) -> bool {
        self.down_until.is_some()
    }

    /// Queues `entry` (ids must increase). Returns the ids of older queued copies it made
    /// obsolete; they are gone from the schedule and their spool records can be deleted.
    pub fn push(&mut self, entry: Entry) -> Vec<u64> {
        debug_assert!(
            self.slots
                .keys()
                .next_back()
                .is_none_or(|&last| last < entry.id)
        );
        let mut dropped = Vec::new();
        if entry.kind.is_replaceable() {
            dropped = self
                .slots
                .values()
                .filter(|s| s.entry.path == entry.path && matches!(s.state, State::Waiting { .. }))
                .map(|s| s.entry.id)
                .collect();
            for id in &dropped {
                if let Some(slot) = self.slots.remove(id) {
                    self.bytes -= slot.entry.len;
                }
            }
        }
        self.bytes += entry.len;
        self.slots.insert(
            entry.id,
            Slot {
                entry,
                state: State::Waiting { not_before: None },
                failures: 0,
            },
        );
        dropped
    }

    /// The next object that may be sent now, marked as in flight; `None` when nothing may
    /// start (dependencies, back-off, `max_in_flight`, or a down origin's probe interval).
    pub fn next_ready(&mut self, now: Instant, max_in_flight: usize) -> Option<Entry> {
        let in_flight = self
            .slots
            .values()
            .filter(|s| s.state == State::InFlight)
            .count();
        let limit = match self.down_until {
            Some(until) if now < until => return None,
            Some(_) => 1,
            None => max_in_flight,
        };
        if in_flight >= limit {
            return None;
        }
        let mut earlier_any = false;
        let mut earlier_master = false;
        let mut segment_dirs: HashSet<&str> = HashSet::new();
        let mut paths: HashSet<&str> = HashSet::new();
        let mut chosen = None;
        for slot in self.slots.values().take(SCAN_LIMIT) {
            let e = &slot.entry;
            let due = match slot.state {
                State::Waiting { not_before } => not_before.is_none_or(|t| t <= now),
                State::InFlight => false,
            };
            if due {
                let blocked = match e.kind {
                    ObjectKind::MasterPlaylist
                    | ObjectKind::Torrent
                    | ObjectKind::Manifest
                    | ObjectKind::Pointer => earlier_any,
                    ObjectKind::MediaPlaylist => {
                        earlier_master
                            || paths.contains(e.path.as_str())
                            || segment_dirs.contains(parent(&e.path))
                    }
                    ObjectKind::Segment | ObjectKind::Pad | ObjectKind::PublicKey => {
                        earlier_master || paths.contains(e.path.as_str())
                    }
                };
                if !blocked {
                    chosen = Some(e.id);
                    break;
                }
            }
            earlier_any = true;
            earlier_master |= e.kind == ObjectKind::MasterPlaylist;
            if e.kind == ObjectKind::Segment {
                segment_dirs.insert(parent(&e.path));
            }
            paths.insert(e.path.as_str());
        }
        let slot = self.slots.get_mut(&chosen?).expect("chosen from the map");
        slot.state = State::InFlight;
        Some(slot.entry.clone())
    }

    /// `id` is on the origin: it leaves the queue (and a down origin is back up).
    pub fn succeeded(&mut self, id: u64) -> Option<Entry> {
        self.down_until = None;
        let slot = self.slots.remove(&id)?;
        self.bytes -= slot.entry.len;
        Some(slot.entry)
    }

    /// An attempt at `id` failed at `now`; `jitter` is a uniform draw from 0..=1.
    pub fn failed(&mut self, id: u64, now: Instant, jitter: f64) -> AfterFailure {
        let (attempts, holding) = (self.policy.attempts, self.down_until.is_some());
        if let Some(retry) = self.retry(id, now, jitter, attempts, holding) {
            return retry;
        }
        let probe_after = self.policy.probe_delay(jitter);
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.state = State::Waiting { not_before: None };
            self.down_until = Some(now + probe_after);
        }
        AfterFailure::Held { probe_after }
    }

    /// The origin refused `id` (see [`REFUSED_ATTEMPTS`]); `jitter` is a uniform draw from 0..=1.
    pub fn refused(&mut self, id: u64, now: Instant, jitter: f64) -> AfterFailure {
        if let Some(retry) = self.retry(id, now, jitter, REFUSED_ATTEMPTS, false) {
            return retry;
        }
        match self.slots.remove(&id) {
            Some(slot) => {
                self.bytes -= slot.entry.len;
                AfterFailure::GivenUp(slot.entry)
            }
            None => AfterFailure::Held {
                probe_after: self.policy.probe_delay(jitter),
            },
        }
    }

    /// Counts a failed attempt at `id`; while it has attempts left (of `attempts`) and the
    /// origin is not being held, schedules the next one after a back-off.
    fn retry(
        &mut self,
        id: u64,
        now: Instant,
        jitter: f64,
        attempts: u32,
        holding: bool,
    ) -> Option<AfterFailure> {
        let slot = self.slots.get_mut(&id)?;
        slot.failures += 1;
        if slot.failures >= attempts || holding {
            return None;
        }
        let after = self.policy.delay(slot.failures, jitter);
        slot.state = State::Waiting {
            not_before: Some(now + after),
        };
        Some(AfterFailure::Retry {
            attempt: slot.failures,
            of: attempts,
            after,
        })
    }

    /// When something may become ready without a new push or a finished attempt.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self
            .slots
            .values()
            .filter_map(|s| match s.state {
                State::Waiting { not_before } => not_before,
                State::InFlight => None,
            })
            .min();
        match (self.down_until, backoff) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (Some(a), None) => Some(a),
            (None, b) => b,
        }
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, path: &str, kind: ObjectKind) -> Entry {
        Entry {
            id,
            path: path.to_string(),
            kind,
            len: 10,
        }
    }

    /// Drains everything ready at `now` (as if uploads were started, not finished).
    fn start_all(s: &mut Schedule, now: Instant) -> Vec<u64> {
        std::iter::from_fn(|| s.next_ready(now, usize::MAX).map(|e| e.id)).collect()
    }

    fn match_start(s: &mut Schedule) {
        s.push(entry(1, "m/master.m3u8", ObjectKind::MasterPlaylist));
        s.push(entry(2, "m/a/master.m3u8", ObjectKind::MasterPlaylist));
        s.push(entry(3, "m/pubkey.pem", ObjectKind::PublicKey));
    }

    #[test]
    fn masters_go_first_then_everything_else() {
        let now = Instant::now();
        let mut s = Schedule::new(RetryPolicy::default());
        match_start(&mut s);
        s.push(entry(4, "m/a/hi/10.ts", ObjectKind::Segment));
        assert_eq!(start_all(&mut s, now), vec![1]);
        s.succeeded(1);
        assert_eq!(start_all(&mut s, now), vec![2]);
        s.succeeded(2);
        assert_eq!(start_all(&mut s, now), vec![3, 4]);
    }

    #[test]
    fn playlist_waits_for_its_own_segments_only() {
        let now = Instant::now();
        let mut s = Schedule::new(RetryPolicy::default());
        s.push(entry(1, "m/a/hi/10.ts", ObjectKind::Segment));
        s.push(entry(2, "m/a/hi/index.m3u8", ObjectKind::MediaPlaylist));
        s.push(entry(3, "m/a/lo/10.ts", ObjectKind::Segment));
        s.push(entry(4, "m/a/lo/index.m3u8", ObjectKind::MediaPlaylist));
        assert_eq!(start_all(&mut s, now), vec![1, 3]);
        s.succeeded(3);
        assert_eq!(
            start_all(&mut s, now),
            vec![4],
            "lo's playlist after lo's segment"
        );
        s.succeeded(1);
        assert_eq!(start_all(&mut s, now), vec![2]);
    }

    #[test]
    fn a_refused_object_is_given_up_without_holding_the_origin_and_unblocks_its_playlist() {
        let t0 = Instant::now();
        let mut s = Schedule::new(RetryPolicy::default());
        s.push(entry(1, "m/a/hi/10.ts", ObjectKind::Segment));
        s.push(entry(2, "m/a/hi/index.m3u8", ObjectKind::MediaPlaylist));
        s.push(entry(3, "m/a/hi/11.ts", ObjectKind::Segment));
        assert_eq!(start_all(&mut s, t0), vec![1, 3]);
        s.succeeded(3);
        let mut t = t0;
        for attempt in 1..REFUSED_ATTEMPTS {
            match s.refused(1, t, 0.5) {
                AfterFailure::Retry {
                    attempt: a,
                    of,
                    after,
                } => {
                    assert_eq!((a, of), (attempt, REFUSED_ATTEMPTS));
                    t += after;
                }
                other => panic!("attempt {attempt}: {other:?}"),
            }
            assert!(!s.origin_down(), "a refusal is not the origin being down");
            assert_eq!(
                start_all(&mut s, t),
                vec![1],
                "retried; the playlist still waits"
            );
        }
        match s.refused(1, t, 0.5) {
            AfterFailure::GivenUp(e) => assert_eq!(e.path, "m/a/hi/10.ts"),
            other => panic!("{other:?}"),
        }
        assert!(!s.origin_down());
        assert_eq!(
            start_all(&mut s, t),
            vec![2],
            "nothing waits for it any more"
        );
        s.succeeded(2);
        assert!(s.is_empty());
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn window_documents_wait_for_everything_before_them() {
        let now = Instant::now();
        let mut s = Schedule::new(RetryPolicy::default());
        s.push(entry(1, "m/a/hi/10.ts", ObjectKind::Segment));
        s.push(entry(2, "m/.pad/100", ObjectKind::Pad));
        s.push(entry(3, "m/windows/5.torrent", ObjectKind::Torrent));
        s.push(entry(4, "m/windows/5.json", ObjectKind::Manifest));
        s.push(entry(5, "m/a/hi/11.ts", ObjectKind::Segment));
        assert_eq!(start_all(&mut s, now), vec![1, 2, 5]);
        s.succeeded(1);
        assert_eq!(start_all(&mut s, now), Vec::<u64>::new());
        s.succeeded(2);
        assert_eq!(start_all(&mut s, now), vec![3]);
        s.succeeded(3);
        assert_eq!(start_all(&mut s, now), vec![4]);
    }

    #[test]
    fn newer_playlists_replace_queued_ones_but_not_one_in_flight() {
        let now = Instant::now();
        let mut s = Schedule::new(RetryPolicy::default());
        s.push(entry(1, "m/a/hi/index.m3u8", ObjectKind::MediaPlaylist));
        assert_eq!(start_all(&mut s, now), vec![1]);
        assert!(
            s.push(entry(2, "m/a/hi/index.m3u8", ObjectKind::MediaPlaylist))
                .is_empty()
        );
        assert_eq!(
            s.push(entry(3, "m/a/hi/index.m3u8", ObjectKind::MediaPlaylist)),
            vec![2]
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.bytes(), 20);
        assert_eq!(
            start_all(&mut s, now),
            Vec::<u64>::new(),
            "waits for the copy in flight"
        );
        s.succeeded(1);
        assert_eq!(start_all(&mut s, now), vec![3]);
        // Segments are never coalesced.
        s.push(entry(4, "m/a/hi/1.ts", ObjectKind::Segment));
        assert!(
            s.push(entry(5, "m/a/hi/1.ts", ObjectKind::Segment))
                .is_empty()
        );
    }

    #[test]
    fn in_flight_limit_is_respected() {
        let now = Instant::now();
        let mut s = Schedule::new(RetryPolicy::default());
        for i in 1..=5 {
            s.push(entry(i, &format!("m/a/hi/{i}.ts"), ObjectKind::Segment));
        }
        assert!(s.next_ready(now, 2).is_some());
        assert!(s.next_ready(now, 2).is_some());
        assert!(s.next_ready(now, 2).is_none());
    }

    #[test]
    fn failures_back_off_then_hold_then_probe_one_at_a_time() {
        let t0 = Instant::now();
        let policy = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(300),
            probe_every: Duration::from_secs(2),
        };
        let mut s = Schedule::new(policy);
        s.push(entry(1, "m/a/hi/1.ts", ObjectKind::Segment));
        s.push(entry(2, "m/a/hi/index.m3u8", ObjectKind::MediaPlaylist));
        s.push(entry(3, "m/a/hi/2.ts", ObjectKind::Segment));
        assert_eq!(start_all(&mut s, t0), vec![1, 3]);
        s.succeeded(3);
        // Attempt 1 fails: full jitter draw gives the whole step.
        assert_eq!(
            s.failed(1, t0, 1.0),
            AfterFailure::Retry {
                attempt: 1,
                of: 3,
                after: Duration::from_millis(100)
            }
        );
        assert_eq!(
            start_all(&mut s, t0),
            Vec::<u64>::new(),
            "backing off; playlist waits"
        );
        assert_eq!(s.next_wakeup(), Some(t0 + Duration::from_millis(100)));
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(start_all(&mut s, t1), vec![1]);
        // No jitter: half the (doubled) step.
        assert_eq!(
            s.failed(1, t1, 0.0),
            AfterFailure::Retry {
                attempt: 2,
                of: 3,
                after: Duration::from_millis(100)
            }
        );
        let t2 = t1 + Duration::from_millis(100);
        assert_eq!(start_all(&mut s, t2), vec![1]);
        assert_eq!(
            s.failed(1, t2, 1.0),
            AfterFailure::Held {
                probe_after: Duration::from_secs(2)
            }
        );
        assert!(s.origin_down());
        s.push(entry(4, "m/a/hi/3.ts", ObjectKind::Segment));
        assert_eq!(
            start_all(&mut s, t2 + Duration::from_secs(1)),
            Vec::<u64>::new()
        );
        let t3 = t2 + Duration::from_secs(2);
        assert_eq!(start_all(&mut s, t3), vec![1], "one probe, the oldest");
        s.succeeded(1);
        assert!(!s.origin_down());
        assert_eq!(start_all(&mut s, t3), vec![2, 4]);
    }

    #[test]
    fn delay_grows_to_the_cap() {
        let p = RetryPolicy {
            attempts: 10,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(1),
            probe_every: Duration::from_secs(2),
        };
        let full: Vec<_> = (1..=5).map(|a| p.delay(a, 1.0).as_millis()).collect();
        assert_eq!(full, vec![200, 400, 800, 1000, 1000]);
        assert_eq!(p.delay(40, 0.5).as_millis(), 750);
    }
}
