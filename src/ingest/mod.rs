//! Ingest: the GStreamer edge. Each angle is one pipeline that decodes its feed once, scales
//! and encodes every rung, muxes MPEG-TS and hands the bytes to Rust through appsink, cut
//! at IDRs forced on the shared master timecode.
//!
//! May call (the whole room): `keys`, `package`, `profile`, `sync`, `timecode`.

pub mod describe;
pub mod downmix;
mod error;
pub mod feed;
pub mod ladder;
pub mod rtmp;
pub mod source;
pub mod srt;
pub mod template;

use crate::package::EncodedSegment;
use crate::timecode::{Timeline, UtcNs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use error::IngestError;
pub use ladder::AngleIngest;
pub use source::{SourceError, SourceSpec};
pub use template::Fragments;

/// What the ingest edge reports to the match.
#[derive(Debug)]
pub enum IngestEvent {
    /// A finished segment of one angle and rung.
    Segment(EncodedSegment),
    /// One rung of one angle has ended (after its last segment).
    RungEnded { angle: Arc<str>, rung: Arc<str> },
    /// The angle's pipeline failed; the message names the element.
    Error { angle: Arc<str>, message: String },
    /// A network feed was lost (`live: false`, the slate goes on air) or came back after a
    /// loss (`live: true`). Its first arrival is not an event.
    Feed {
        angle: Arc<str>,
        live: bool,
        status: String,
    },
}

/// Where a run's planned end falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlannedEnd {
    /// This many whole segments from the first boundary (`--duration`).
    Segments(u64),
    /// The first boundary at or after this instant (`--end-at`), the same for every run.
    At(UtcNs),
}

/// The match's shared time base: where running time 0 sits on the master timecode, and
/// where the match stops. Shared by every angle so that they cut at the same instants.
#[derive(Debug)]
pub struct MatchClock {
    /// UTC of running time 0 in every angle's pipeline (a segment boundary).
    pub anchor: UtcNs,
    pub timeline: Timeline,
    /// Where a planned end falls (`--duration` or `--end-at`), fixed at the first frame.
    planned_end: Option<PlannedEnd>,
    /// UTC at which every angle sends EOS (a boundary); 0 while unset.
    stop_at: AtomicU64,
    /// Newest video frame seen by any angle, UTC ns.
    head: AtomicU64,
}

impl MatchClock {
    pub fn new(anchor: UtcNs, timeline: Timeline, planned_end: Option<PlannedEnd>) -> Self {
        MatchClock {
            anchor,
            timeline,
            planned_end,
            stop_at: AtomicU64::new(0),
            head: AtomicU64::new(0),
        }
    }

    /// Called for every video frame: tracks the head and, on the first frame, fixes the
    /// stop point of a `--duration` or `--end-at` run.
    pub(crate) fn saw_frame(&self, utc: UtcNs) {
        if self.head.fetch_max(utc.0, Ordering::Relaxed) == 0
            && let Some(end) = self.planned_end
        {
            let first = self.timeline.boundary_at_or_after(utc);
            let stop = match end {
                PlannedEnd::Segments(n) => first.0 + n * self.timeline.segment_ns(),
                // Every run given the same instant stops on the same boundary, however late
                // it started (a redundant run joining, a node taking a match over).
                PlannedEnd::At(at) => self.timeline.boundary_at_or_after(at).0.max(first.0),
            };
            let _ = self
                .stop_at
                .compare_exchange(0, stop, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The stop point, if one is set.
    pub fn stop_at(&self) -> Option<UtcNs> {
        match self.stop_at.load(Ordering::Relaxed) {
            0 => None,
            t => Some(UtcNs(t)),
        }
    }

    /// Newest media instant seen in any angle.
    pub fn head(&self) -> Option<UtcNs> {
        match self.head.load(Ordering::Relaxed) {
            0 => None,
            t => Some(UtcNs(t)),
        }
    }

    /// Ends the match at the first boundary after the newest frame (a clean stop): the
    /// segment in progress is finished, not cut. Never moves an earlier stop later.
    pub fn stop_at_next_boundary(&self) -> UtcNs {
        let head = self.head().unwrap_or(self.anchor);
        let stop = self.timeline.boundary_at_or_after(UtcNs(head.0 + 1));
        let prev = self
            .stop_at
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                (cur == 0 || stop.0 < cur).then_some(stop.0)
            });
        match prev {
            Ok(_) => stop,
            Err(cur) => UtcNs(cur),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timecode::NS_PER_SEC;

    #[test]
    fn duration_stop_counts_whole_segments_from_the_first_boundary() {
        let c = MatchClock::new(
            UtcNs(100 * NS_PER_SEC),
            Timeline::new(2000, 5),
            Some(PlannedEnd::Segments(7)),
        );
        assert_eq!(c.stop_at(), None);
        c.saw_frame(UtcNs(101 * NS_PER_SEC));
        assert_eq!(c.stop_at(), Some(UtcNs(116 * NS_PER_SEC)));
        c.saw_frame(UtcNs(102 * NS_PER_SEC));
        assert_eq!(c.stop_at(), Some(UtcNs(116 * NS_PER_SEC)));
    }

    /// Issue 30: two runs of one match started seconds apart (a node taking it over) end on
    /// the same boundary when given the same instant.
    #[test]
    fn an_end_instant_stops_every_run_on_the_same_boundary() {
        let end = PlannedEnd::At(UtcNs(131 * NS_PER_SEC));
        for first_frame in [101, 110, 125] {
            let c = MatchClock::new(UtcNs(100 * NS_PER_SEC), Timeline::new(2000, 5), Some(end));
            c.saw_frame(UtcNs(first_frame * NS_PER_SEC));
            assert_eq!(c.stop_at(), Some(UtcNs(132 * NS_PER_SEC)), "{first_frame}");
        }
        // A run that starts after the instant ends at its first boundary.
        let c = MatchClock::new(UtcNs(100 * NS_PER_SEC), Timeline::new(2000, 5), Some(end));
        c.saw_frame(UtcNs(141 * NS_PER_SEC));
        assert_eq!(c.stop_at(), Some(UtcNs(142 * NS_PER_SEC)));
    }

    #[test]
    fn clean_stop_finishes_the_segment_in_progress() {
        let c = MatchClock::new(UtcNs(0), Timeline::new(2000, 5), None);
        c.saw_frame(UtcNs(5 * NS_PER_SEC));
        assert_eq!(c.stop_at_next_boundary(), UtcNs(6 * NS_PER_SEC));
        c.saw_frame(UtcNs(7 * NS_PER_SEC));
        // A second request never postpones the first.
        assert_eq!(c.stop_at_next_boundary(), UtcNs(6 * NS_PER_SEC));
    }

    #[test]
    fn a_frame_exactly_on_a_boundary_stops_at_the_next() {
        let c = MatchClock::new(UtcNs(0), Timeline::new(2000, 5), None);
        c.saw_frame(UtcNs(4 * NS_PER_SEC));
        assert_eq!(c.stop_at_next_boundary(), UtcNs(6 * NS_PER_SEC));
    }
}
