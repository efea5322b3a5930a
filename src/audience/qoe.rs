//! Whether a match's audience is degraded, from the last steps of its history and the
//! profile's `[qoe]` thresholds. Pure: the controller fetches the points and acts on the
//! answer (webhooks, the players' policy).
//!
//! May call: `history`, `profile`.

use super::history::{Point, STEP};
use crate::profile::qoe::Thresholds;
use serde::Serialize;

/// The figures over the thresholds' span, and which thresholds they cross.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Judgement {
    pub degraded: bool,
    /// One line per crossed threshold, e.g. "rebuffer ratio 3.1% over 60 s, above 2%".
    pub reasons: Vec<String>,
    pub rebuffer_ratio: Option<f64>,
    pub peer_share: Option<f64>,
    pub viewers: u64,
}

/// The mean of the values present.
fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values
        .flatten()
        .fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// Judges the newest `t.over` seconds of `points` (oldest first). Steps without a figure do
/// not count; with none at all, nothing is crossed.
pub fn judge(t: &Thresholds, points: &[Point]) -> Judgement {
    let steps = ((f64::from(t.over) / STEP).ceil() as usize).max(1);
    let recent = &points[points.len().saturating_sub(steps)..];
    let viewers = recent.last().map_or(0, |p| p.viewers);
    let rebuffer = mean(recent.iter().map(|p| p.rebuffer_ratio));
    let share = mean(recent.iter().map(|p| p.peer_share));
    let mut reasons = Vec::new();
    if let (Some(limit), Some(r)) = (t.rebuffer_ratio, rebuffer)
        && r > limit
    {
        reasons.push(format!(
            "rebuffer ratio {:.1}% over {} s, above {:.1}%",
            100.0 * r,
            t.over,
            100.0 * limit
        ));
    }
    if let (Some(limit), Some(s)) = (t.peer_share, share)
        && s < limit
        && viewers > u64::from(t.min_viewers)
    {
        reasons.push(format!(
            "{:.0}% of bytes from peers over {} s with {viewers} viewers, below {:.0}%",
            100.0 * s,
            t.over,
            100.0 * limit
        ));
    }
    Judgement {
        degraded: !reasons.is_empty(),
        reasons,
        rebuffer_ratio: rebuffer,
        peer_share: share,
        viewers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(viewers: u64, rebuffer: Option<f64>, share: Option<f64>) -> Point {
        Point {
            viewers,
            rebuffer_ratio: rebuffer,
            peer_share: share,
            ..Point::default()
        }
    }

    #[test]
    fn thresholds_are_judged_over_their_span() {
        let t = Thresholds {
            rebuffer_ratio: Some(0.02),
            peer_share: Some(0.4),
            min_viewers: 10,
            over: 30,
        };
        // An old bad step outside the 30 s span does not count.
        let mut points = vec![point(20, Some(0.5), Some(0.1))];
        points.extend([0.01, 0.0, 0.02].map(|r| point(20, Some(r), Some(0.6))));
        let fine = judge(&t, &points);
        assert!(!fine.degraded, "{fine:?}");
        assert_eq!(fine.rebuffer_ratio, Some(0.01));
        points.push(point(20, Some(0.07), Some(0.3)));
        let bad = judge(&t, &points);
        assert!(bad.degraded);
        assert_eq!(bad.reasons.len(), 1, "{bad:?}");
        assert!(
            bad.reasons[0].starts_with("rebuffer ratio 3.0% over 30 s"),
            "{bad:?}"
        );
        // Few peers with few viewers is expected, not degraded.
        let few = [point(3, None, Some(0.1)), point(3, None, Some(0.1))];
        assert!(!judge(&t, &few).degraded);
        let many = [point(30, None, Some(0.1)), point(30, None, None)];
        let j = judge(&t, &many);
        assert!(
            j.degraded && j.reasons[0].contains("10% of bytes from peers"),
            "{j:?}"
        );
        assert!(!judge(&t, &[]).degraded, "no figures: nothing crossed");
    }
}
