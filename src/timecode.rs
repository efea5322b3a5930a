//! The master timecode: epoch-locked segment numbering shared by every angle and rung.
//!
//! A segment's identity is the UTC instant it starts at. With a segment duration `d`,
//! `seq = floor(unix_seconds(start) / d)` and `window = floor(seq / window_len)`. Two
//! swarmpack processes with synchronised clocks therefore number the same instant the same
//! way, which is what lets angles, rungs and restarts line up without talking to each other.
//!
//! Unix time has no leap seconds (every day is 86 400 s), so the arithmetic here is plain
//! integer arithmetic on nanoseconds and never needs a leap-second table.
//!
//! Everything here is pure: callers pass the instant in; nothing reads the system clock.
//!
//! A leaf: calls no other room.

use chrono::{DateTime, TimeZone, Utc};
use std::fmt;

/// Nanoseconds per second.
pub const NS_PER_SEC: u64 = 1_000_000_000;
/// Nanoseconds per millisecond.
pub const NS_PER_MS: u64 = 1_000_000;

/// A UTC instant in nanoseconds since the Unix epoch (leap-free, like `time_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcNs(pub u64);

impl UtcNs {
    /// How far before a boundary a frame still counts as on it: frame timestamps are
    /// `n * 1 s / fps` rounded to nanoseconds, and two elements that re-stamp frames (a
    /// `videorate` counting from its own first frame, say) can disagree by a nanosecond or
    /// two about the frame that starts a segment. 1 ms is far below any frame duration.
    pub const FRAME_SLACK_NS: u64 = 1_000_000;

    /// The instant a frame stamped `self` counts as, for boundary decisions (IDR forcing, the
    /// slate's hold): nudged forward by [`UtcNs::FRAME_SLACK_NS`], so every probe agrees.
    pub fn for_boundaries(self) -> UtcNs {
        UtcNs(self.0 + Self::FRAME_SLACK_NS)
    }

    /// The system's UTC clock now (the epoch when it reads before 1970).
    pub fn now() -> UtcNs {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UtcNs(since.as_nanos() as u64)
    }

    /// An RFC 3339 date-time (any offset), as the API and `clip --from` take the master
    /// timecode; None when it does not parse or is before 1970.
    pub fn parse_rfc3339(text: &str) -> Option<UtcNs> {
        let t = DateTime::parse_from_rfc3339(text.trim()).ok()?;
        let ns = t.timestamp_nanos_opt()?;
        u64::try_from(ns).ok().map(UtcNs)
    }

    /// The instant as a chrono UTC date-time, for EXT-X-PROGRAM-DATE-TIME.
    pub fn to_datetime(self) -> DateTime<Utc> {
        let secs = (self.0 / NS_PER_SEC) as i64;
        let nanos = (self.0 % NS_PER_SEC) as u32;
        Utc.timestamp_opt(secs, nanos)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// Epoch-locked segment number: `floor(unix_seconds(start) / segment_duration)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(u64);

impl Seq {
    pub const fn new(n: u64) -> Seq {
        Seq(n)
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The seq after this one.
    pub const fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Window number: `floor(seq / segments_per_window)`. A window's key period equals it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowIndex(u64);

impl WindowIndex {
    pub const fn new(n: u64) -> WindowIndex {
        WindowIndex(n)
    }

    /// The number (also the window's key period).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for WindowIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The match's segment grid: segment duration and segments per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeline {
    segment_ns: u64,
    window_len: u64,
}

impl Timeline {
    /// `segment_ms`: segment duration in milliseconds (> 0); `window_len`: segments per window (> 0).
    pub fn new(segment_ms: u64, window_len: u64) -> Self {
        assert!(segment_ms > 0 && window_len > 0, "validated by the profile");
        Timeline {
            segment_ns: segment_ms * NS_PER_MS,
            window_len,
        }
    }

    /// Segment duration in nanoseconds.
    pub fn segment_ns(&self) -> u64 {
        self.segment_ns
    }

    /// Segment duration in seconds.
    pub fn segment_secs(&self) -> f64 {
        self.segment_ns as f64 / NS_PER_SEC as f64
    }

    /// How many segments ahead of the wall clock a published seq may be.
    pub const CLOCK_SLACK_SEGMENTS: u64 = 3;

    /// Segments per window.
    pub fn window_len(&self) -> u64 {
        self.window_len
    }

    /// The segment that contains `t` (floor).
    pub fn seq_at(&self, t: UtcNs) -> Seq {
        Seq(t.0 / self.segment_ns)
    }

    /// The newest seq any encoder of the match can have made by `now`: the segment in
    /// progress, plus [`Timeline::CLOCK_SLACK_SEGMENTS`] for machines whose clocks disagree a
    /// little (and `--fast` test runs, which run a segment or two ahead). A playlist entry
    /// beyond it names the future, whatever signs it.
    pub fn newest_possible(&self, now: UtcNs) -> Seq {
        Seq(self.seq_at(now).0 + Self::CLOCK_SLACK_SEGMENTS)
    }

    /// The segment whose start boundary is nearest to `t`. Used to name a keyframe that was
    /// forced at a boundary: the frame may sit a fraction of a frame either side of it.
    pub fn nearest_seq(&self, t: UtcNs) -> Seq {
        Seq((t.0 + self.segment_ns / 2) / self.segment_ns)
    }

    /// The UTC instant at which `seq` starts.
    pub fn seq_start(&self, seq: Seq) -> UtcNs {
        UtcNs(seq.0 * self.segment_ns)
    }

    /// The first segment boundary at or after `t`.
    pub fn boundary_at_or_after(&self, t: UtcNs) -> UtcNs {
        UtcNs(t.0.div_ceil(self.segment_ns) * self.segment_ns)
    }

    /// The window that holds `seq`.
    pub fn window_of(&self, seq: Seq) -> WindowIndex {
        WindowIndex(seq.0 / self.window_len)
    }

    /// The first and last seq of `window` (inclusive).
    pub fn window_seqs(&self, window: WindowIndex) -> (Seq, Seq) {
        let first = window.0 * self.window_len;
        (Seq(first), Seq(first + self.window_len - 1))
    }

    /// Whether `seq` is the last segment of its window.
    pub fn closes_window(&self, seq: Seq) -> bool {
        (seq.0 + 1).is_multiple_of(self.window_len)
    }

    /// How many whole segments cover `secs` seconds of media (at least one).
    pub fn segments_for(&self, secs: f64) -> u64 {
        let ns = (secs * NS_PER_SEC as f64).round() as u64;
        ns.div_ceil(self.segment_ns).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> UtcNs {
        let dt = DateTime::parse_from_rfc3339(rfc3339).expect("test instant");
        UtcNs(dt.timestamp() as u64 * NS_PER_SEC + dt.timestamp_subsec_nanos() as u64)
    }

    #[test]
    fn seq_is_floor_of_unix_seconds_over_duration() {
        let tl = Timeline::new(2000, 5);
        // 2026-11-22T18:00:00Z = 1795370400 s; 1795370400 / 2 = 897685200.
        assert_eq!(tl.seq_at(at("2026-11-22T18:00:00Z")), Seq(897_685_200));
        assert_eq!(
            tl.seq_at(at("2026-11-22T18:00:01.999999999Z")),
            Seq(897_685_200)
        );
        assert_eq!(tl.seq_at(at("2026-11-22T18:00:02Z")), Seq(897_685_201));
    }

    #[test]
    fn fractional_durations_lock_to_the_epoch() {
        let tl = Timeline::new(1500, 4);
        assert_eq!(tl.seq_at(UtcNs(0)), Seq(0));
        assert_eq!(tl.seq_at(UtcNs(1_499_999_999)), Seq(0));
        assert_eq!(tl.seq_at(UtcNs(1_500_000_000)), Seq(1));
        assert_eq!(tl.seq_start(Seq(3)), UtcNs(4_500_000_000));
        // Every seq start maps back to itself.
        for s in [0u64, 1, 7, 1_196_913_600, 1_196_913_601] {
            assert_eq!(tl.seq_at(tl.seq_start(Seq(s))), Seq(s));
        }
    }

    #[test]
    fn leap_seconds_do_not_exist_in_the_numbering() {
        // 2016-12-31 had a leap second (23:59:60). Unix time skips it, so the first segment of
        // 2017 is exactly 1483228800 / 2, and the day before has exactly 43200 two-second segments.
        let tl = Timeline::new(2000, 5);
        let new_year = at("2017-01-01T00:00:00Z");
        assert_eq!(new_year.0 / NS_PER_SEC, 1_483_228_800);
        assert_eq!(tl.seq_at(new_year), Seq(741_614_400));
        let day_before = at("2016-12-31T00:00:00Z");
        assert_eq!(tl.seq_at(new_year).0 - tl.seq_at(day_before).0, 43_200);
    }

    #[test]
    fn nearest_seq_tolerates_a_keyframe_either_side_of_the_boundary() {
        let tl = Timeline::new(2000, 5);
        let b = tl.seq_start(Seq(100));
        assert_eq!(tl.nearest_seq(b), Seq(100));
        assert_eq!(tl.nearest_seq(UtcNs(b.0 - 16_000_000)), Seq(100));
        assert_eq!(tl.nearest_seq(UtcNs(b.0 + 33_000_000)), Seq(100));
        assert_eq!(tl.nearest_seq(UtcNs(b.0 + 999_999_999)), Seq(100));
        assert_eq!(tl.nearest_seq(UtcNs(b.0 + 1_000_000_000)), Seq(101));
    }

    #[test]
    fn boundaries_round_up_and_are_idempotent() {
        let tl = Timeline::new(2000, 5);
        assert_eq!(tl.boundary_at_or_after(UtcNs(0)), UtcNs(0));
        assert_eq!(tl.boundary_at_or_after(UtcNs(1)), UtcNs(2 * NS_PER_SEC));
        assert_eq!(
            tl.boundary_at_or_after(UtcNs(2 * NS_PER_SEC)),
            UtcNs(2 * NS_PER_SEC)
        );
        assert_eq!(
            tl.boundary_at_or_after(UtcNs(2 * NS_PER_SEC + 1)),
            UtcNs(4 * NS_PER_SEC)
        );
    }

    #[test]
    fn windows_group_whole_runs_of_seqs() {
        let tl = Timeline::new(2000, 5);
        assert_eq!(tl.window_of(Seq(0)), WindowIndex(0));
        assert_eq!(tl.window_of(Seq(4)), WindowIndex(0));
        assert_eq!(tl.window_of(Seq(5)), WindowIndex(1));
        assert_eq!(tl.window_seqs(WindowIndex(3)), (Seq(15), Seq(19)));
        assert!(tl.closes_window(Seq(19)));
        assert!(!tl.closes_window(Seq(20)));
        // A window of one segment closes at every segment.
        let single = Timeline::new(1000, 1);
        assert!(single.closes_window(Seq(41)));
        assert_eq!(single.window_of(Seq(41)), WindowIndex(41));
    }

    #[test]
    fn pdt_is_the_boundary_instant_in_utc() {
        let tl = Timeline::new(2000, 5);
        let dt = tl.seq_start(Seq(897_685_201)).to_datetime();
        assert_eq!(
            dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2026-11-22T18:00:02.000Z"
        );
    }

    #[test]
    fn segments_for_rounds_partial_segments_up() {
        let tl = Timeline::new(2000, 5);
        assert_eq!(tl.segments_for(14.0), 7);
        assert_eq!(tl.segments_for(13.0), 7);
        assert_eq!(tl.segments_for(0.1), 1);
        assert_eq!(Timeline::new(1500, 4).segments_for(3.0), 2);
    }
}
