//! The last 10 minutes of each match's audience, in steps of 10 s, for the operator's charts
//! (the preview page) and the current figures (the control API): viewers at the end of each
//! step, and over the step the mean startup of the sessions that started, the rebuffer ratio,
//! the mean seconds behind live and the share of bytes from peers (TURN relays not counted as
//! peers). A step in which nothing was reported has no value (`null`), not a zero.
//!
//! A leaf: calls no other room.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// Seconds per step, and steps kept (10 minutes).
pub const STEP: f64 = 10.0;
pub const POINTS: usize = 60;

/// One step of one match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The step's end, in the collector's seconds.
    pub at: f64,
    pub viewers: u64,
    pub startup_seconds: Option<f64>,
    pub rebuffer_ratio: Option<f64>,
    pub behind_live_seconds: Option<f64>,
    pub peer_share: Option<f64>,
}

/// What a step collects while it runs.
#[derive(Clone, Debug, Default)]
pub struct Step {
    startup: (f64, u64),
    stalled: f64,
    watched: f64,
    behind: (f64, u64),
    peer: u64,
    relay: u64,
    http: u64,
}

impl Step {
    pub fn startup(&mut self, seconds: f64) {
        self.startup.0 += seconds;
        self.startup.1 += 1;
    }

    pub fn watched(&mut self, seconds: f64, stalled: f64) {
        self.watched += seconds;
        self.stalled += stalled;
    }

    pub fn behind(&mut self, seconds: f64) {
        self.behind.0 += seconds;
        self.behind.1 += 1;
    }

    pub fn bytes(&mut self, peer: u64, relay: u64, http: u64) {
        self.peer += peer;
        self.relay += relay;
        self.http += http;
    }

    fn point(&self, at: f64, viewers: u64) -> Point {
        let mean = |(sum, n): (f64, u64)| (n > 0).then(|| sum / n as f64);
        let total = self.peer + self.http;
        Point {
            at,
            viewers,
            startup_seconds: mean(self.startup),
            rebuffer_ratio: (self.watched > 0.0).then(|| (self.stalled / self.watched).min(1.0)),
            behind_live_seconds: mean(self.behind),
            peer_share: (total > 0)
                .then(|| self.peer.saturating_sub(self.relay) as f64 / total as f64),
        }
    }
}

#[derive(Debug)]
struct Match {
    start: f64,
    step: Step,
    points: VecDeque<Point>,
}

/// Every match's steps.
#[derive(Debug, Default)]
pub struct History {
    matches: HashMap<String, Match>,
}

impl History {
    /// The running step of `match_id` at `now` (after closing the ones that ended);
    /// `viewers` is the match's viewers now.
    pub fn step(&mut self, match_id: &str, now: f64, viewers: u64) -> &mut Step {
        let m = self
            .matches
            .entry(match_id.to_owned())
            .or_insert_with(|| Match {
                start: now,
                step: Step::default(),
                points: VecDeque::new(),
            });
        roll(m, now, viewers);
        &mut m.step
    }

    /// The closed steps of `match_id` up to `now`, oldest first.
    pub fn points(&mut self, match_id: &str, now: f64, viewers: u64) -> Vec<Point> {
        match self.matches.get_mut(match_id) {
            Some(m) => {
                roll(m, now, viewers);
                m.points.iter().cloned().collect()
            }
            None => Vec::new(),
        }
    }
}

/// Closes every step of `m` that ended by `now`: the first with what it collected, any after
/// it (nothing reported) with the viewers alone.
fn roll(m: &mut Match, now: f64, viewers: u64) {
    while now >= m.start + STEP {
        m.start += STEP;
        let step = std::mem::take(&mut m.step);
        m.points.push_back(step.point(m.start, viewers));
        if m.points.len() > POINTS {
            m.points.pop_front();
        }
        // A long silence: jump to the current step rather than fill in more than POINTS.
        if now - m.start > STEP * POINTS as f64 {
            m.start += ((now - m.start) / STEP - POINTS as f64).floor().max(0.0) * STEP;
        }
    }
}
