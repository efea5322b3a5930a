//! Angle groups: when a window that covers other machines' renditions closes, and what it
//! chains to. Pure: the time comes in with [`super::Input::Tick`], the origin's answers with
//! [`super::Input::ChainAnswer`]; out go asks ([`super::Output::AskChain`]) and decisions.
//!
//! - A remote rendition whose playlist has been seen on the origin is waited for until a
//!   window is [`grace`] overdue; then that window closes without it. One never seen (its
//!   machine has not started) is waited for only a segment and 1.5 s.
//! - Before a window closes, the origin is asked for the previous window's manifest: whoever
//!   composed it, the new window chains to it. If the origin does not hold it yet, the window
//!   waits: for this machine's own (on its way out), or twice the grace for another's.
//!
//! A leaf: calls only the timecode.

use super::input::Held;
use crate::rendition::Rendition;
use crate::timecode::{Seq, Timeline, UtcNs};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long a window waits past its end for a remote rendition that is live: three segments
/// and 2 s, ample for a live machine to publish and for the follower to read it.
pub fn grace(timeline: &Timeline) -> Duration {
    3 * Duration::from_nanos(timeline.segment_ns()) + Duration::from_secs(2)
}

/// How long it waits for one never seen: a segment and 1.5 s, so that a machine that started
/// in the window has listed its first segment.
fn unseen_grace(timeline: &Timeline) -> Duration {
    Duration::from_nanos(timeline.segment_ns()) + Duration::from_millis(1500)
}

/// The question about one window.
#[derive(Debug)]
struct Query {
    window: u64,
    since: Instant,
    next_try: Instant,
    asked: bool,
    answer: Option<Result<Held, String>>,
}

/// What to do with the oldest ready window.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Close it, first adopting this window's manifest (SHA-256 hex) as the newest, if any.
    Close(Option<(u64, String)>),
    /// Another machine composed it: take the origin's manifest as it is.
    TakeOver(String),
    /// Ask the origin what it holds.
    Ask,
    /// Nothing yet.
    Wait,
}

/// The policy's state: which remote renditions were seen, the open question, the time.
#[derive(Debug)]
pub(super) struct WindowClose {
    timeline: Timeline,
    seen: HashSet<Rendition>,
    query: Option<Query>,
    now: Option<Instant>,
}

impl WindowClose {
    pub fn new(timeline: Timeline) -> WindowClose {
        WindowClose {
            timeline,
            seen: HashSet::new(),
            query: None,
            now: None,
        }
    }

    /// A remote rendition's playlist is on the origin: its machine is live.
    pub fn seen(&mut self, rendition: &Rendition) {
        self.seen.insert(rendition.clone());
    }

    /// The time is `now`; at `utc`, the seq before which each of `remote` is given up.
    pub fn tick(
        &mut self,
        now: Instant,
        utc: UtcNs,
        remote: &[Rendition],
    ) -> HashMap<Rendition, Seq> {
        self.now = Some(now);
        let cutoff = |grace: Duration| {
            self.timeline
                .seq_at(UtcNs(utc.0.saturating_sub(grace.as_nanos() as u64)))
        };
        let (seen, unseen) = (
            cutoff(grace(&self.timeline)),
            cutoff(unseen_grace(&self.timeline)),
        );
        remote
            .iter()
            .map(|r| (r.clone(), if self.seen.contains(r) { seen } else { unseen }))
            .collect()
    }

    /// The origin's answer about `window` (an answer about another window is stale).
    pub fn answer(&mut self, window: u64, answer: Result<Held, String>) {
        if let Some(q) = self.query.as_mut().filter(|q| q.window == window) {
            q.asked = false;
            q.answer = Some(answer);
        }
    }

    /// The next step for ready window `w`; `closed_prev` says whether this machine closed
    /// the window before itself.
    pub fn step(&mut self, w: u64, closed_prev: bool) -> Step {
        let Some(prev) = w.checked_sub(1) else {
            return Step::Close(None);
        };
        let Some(now) = self.now else {
            return Step::Wait;
        };
        let query = match &mut self.query {
            Some(q) if q.window == w => q,
            _ => self.query.insert(Query {
                window: w,
                since: now,
                next_try: now,
                asked: false,
                answer: None,
            }),
        };
        let Some(answer) = query.answer.take() else {
            if query.asked || now < query.next_try {
                return Step::Wait;
            }
            query.asked = true;
            return Step::Ask;
        };
        let step = match answer {
            Ok(Held {
                composed: Some(composed),
                ..
            }) => {
                tracing::debug!("window {w}: another machine composed it first; taken as it is");
                Step::TakeOver(composed)
            }
            Ok(Held {
                prev: Some(sha256), ..
            }) => Step::Close(Some((prev, sha256))),
            // This machine's own, still on its way to the origin; or another's, waited for.
            Ok(_) if closed_prev || now - query.since < grace(&self.timeline) * 2 => {
                query.next_try = now + Duration::from_millis(250);
                return Step::Wait;
            }
            Ok(Held { newest, .. }) => {
                tracing::info!(
                    "window {w}: no machine composed window {prev}; chaining to the origin's newest ({})",
                    newest
                        .as_ref()
                        .map_or("none: a new chain".to_string(), |(n, _)| format!(
                            "window {n}"
                        ))
                );
                Step::Close(newest.filter(|(n, _)| *n < w))
            }
            Err(e) => {
                tracing::warn!("{e}; window {w} waits to learn what it chains to");
                query.next_try = now + Duration::from_secs(1);
                return Step::Wait;
            }
        };
        self.query = None;
        step
    }
}
