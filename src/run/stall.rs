//! A file or test feed that stops producing (a decoder that gives up, caps the encoder cannot
//! take, a stuck element) would leave `run` waiting forever: nothing of it ever reaches a
//! segment boundary. This watch ends the run instead, naming the angle and the element where
//! the media stops. Network feeds are not watched: their slate keeps every segment coming.
//!
//! Pure: frame counts, segments and instants in; a verdict out.
//!
//! A leaf: calls no other room.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long an angle may go without a new frame, or with frames but without a segment.
pub const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Default)]
struct Angle {
    frames: u64,
    /// When `frames` last grew.
    frame_at: Option<Instant>,
    /// When each rung last gave a segment (or when watching began).
    segment_at: BTreeMap<String, Instant>,
}

pub(super) struct StallWatch {
    angles: BTreeMap<String, Angle>,
    started: Instant,
    patience: Duration,
}

impl StallWatch {
    /// Watches `angles` (with their rungs) from `now`.
    pub fn new(angles: &[String], rungs: &[String], now: Instant, patience: Duration) -> Self {
        let angles = angles
            .iter()
            .map(|a| {
                let segment_at = rungs.iter().map(|r| (r.clone(), now)).collect();
                (
                    a.clone(),
                    Angle {
                        segment_at,
                        ..Angle::default()
                    },
                )
            })
            .collect();
        StallWatch {
            angles,
            started: now,
            patience,
        }
    }

    /// The angle's frame count at `now`.
    pub fn frames(&mut self, angle: &str, total: u64, now: Instant) {
        if let Some(a) = self.angles.get_mut(angle)
            && (total > a.frames || a.frame_at.is_none() && total > 0)
        {
            a.frames = total;
            a.frame_at = Some(now);
        }
    }

    /// A segment of `angle`/`rung` arrived.
    pub fn segment(&mut self, angle: &str, rung: &str, now: Instant) {
        if let Some(t) = self
            .angles
            .get_mut(angle)
            .and_then(|a| a.segment_at.get_mut(rung))
        {
            *t = now;
        }
    }

    /// The rung ended (after its last segment): no more segments are due from it.
    pub fn ended(&mut self, angle: &str, rung: &str) {
        if let Some(a) = self.angles.get_mut(angle) {
            a.segment_at.remove(rung);
        }
    }

    /// Why the match cannot go on, if it cannot: (angle, what stopped).
    pub fn check(&self, now: Instant) -> Option<(String, String)> {
        for (name, a) in &self.angles {
            if a.segment_at.is_empty() {
                continue;
            }
            let since_frame = now.duration_since(a.frame_at.unwrap_or(self.started));
            if since_frame > self.patience {
                let what = if a.frames == 0 {
                    "no video frame ever came out of its source (element vsrc): the file cannot \
                     be demuxed or decoded"
                        .to_string()
                } else {
                    format!(
                        "its source (element vsrc) gave no video frame for {} s after {} frames",
                        since_frame.as_secs(),
                        a.frames
                    )
                };
                return Some((name.clone(), what));
            }
            if let Some((rung, at)) = a
                .segment_at
                .iter()
                .find(|(_, at)| now.duration_since(**at) > self.patience)
            {
                return Some((
                    name.clone(),
                    format!(
                        "frames arrive but rung {rung} gave no segment for {} s: its encoder \
                         (element enc_{rung}) or muxer (mux_{rung}) produces nothing (caps it \
                         cannot encode?)",
                        now.duration_since(*at).as_secs()
                    ),
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(t0: Instant) -> StallWatch {
        StallWatch::new(
            &["main".into()],
            &["720p".into(), "360p".into()],
            t0,
            Duration::from_secs(20),
        )
    }

    #[test]
    fn a_healthy_angle_is_left_alone() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        for s in 1..100u64 {
            let now = t0 + Duration::from_secs(s);
            w.frames("main", s * 30, now);
            if s % 2 == 0 {
                w.segment("main", "720p", now);
                w.segment("main", "360p", now);
            }
            assert_eq!(w.check(now), None, "at {s} s");
        }
    }

    #[test]
    fn a_source_that_never_starts_or_stops_is_named() {
        let t0 = Instant::now();
        let w = watch(t0);
        let (angle, why) = w.check(t0 + Duration::from_secs(21)).unwrap();
        assert_eq!(angle, "main");
        assert!(why.contains("no video frame ever came out"), "{why}");
        let mut w = watch(t0);
        w.frames("main", 300, t0 + Duration::from_secs(10));
        w.segment("main", "720p", t0 + Duration::from_secs(10));
        w.segment("main", "360p", t0 + Duration::from_secs(10));
        assert_eq!(w.check(t0 + Duration::from_secs(29)), None);
        let (_, why) = w.check(t0 + Duration::from_secs(31)).unwrap();
        assert!(
            why.contains("gave no video frame for 21 s after 300 frames"),
            "{why}"
        );
    }

    #[test]
    fn frames_without_segments_name_the_encoder() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        for s in 1..=25u64 {
            let now = t0 + Duration::from_secs(s);
            w.frames("main", s * 30, now);
            w.segment("main", "360p", now);
        }
        let (_, why) = w.check(t0 + Duration::from_secs(25)).unwrap();
        assert!(why.contains("rung 720p gave no segment"), "{why}");
        assert!(why.contains("enc_720p"), "{why}");
    }

    #[test]
    fn ended_rungs_are_not_waited_for() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        w.ended("main", "720p");
        w.ended("main", "360p");
        assert_eq!(w.check(t0 + Duration::from_secs(100)), None);
    }
}
