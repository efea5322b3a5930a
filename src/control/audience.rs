//! What the fans of a running match experience now, for `GET /v1/matches/{id}`: the newest
//! step of the collector its players report to (the profile's `[qoe]`, README "Watching the
//! audience"), read from `{collector}/{match}/figures`. Nothing when telemetry is off or the
//! collector does not answer within a second (the API answers anyway).
//!
//! May call: `audience`.

use crate::audience::history::Point;
use std::time::Duration;

/// The newest closed step (viewers, startup, rebuffer ratio, behind live, peer share) of
/// `match_id` at `collector`, or `None`.
pub fn now(collector: &str, match_id: &str) -> Option<serde_json::Value> {
    newest(&figures(collector, match_id)?)
}

/// The collector's answer for `match_id` (`{"step", "points"}`), or `None`.
fn figures(collector: &str, match_id: &str) -> Option<serde_json::Value> {
    let url = format!("{}/{match_id}/figures", collector.trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(1))
        .build();
    match agent.get(&url).call() {
        Ok(r) => serde_json::from_str(&r.into_string().ok()?).ok(),
        Err(e) => {
            tracing::debug!("audience of {match_id} from {url}: {e}");
            None
        }
    }
}

/// The last 10 minutes of `match_id` at `collector`, oldest step first, or `None`.
pub fn points(collector: &str, match_id: &str) -> Option<Vec<Point>> {
    serde_json::from_value(figures(collector, match_id)?.get("points")?.clone()).ok()
}

/// The newest point of a `figures` answer, without its collector-relative time.
pub fn newest(figures: &serde_json::Value) -> Option<serde_json::Value> {
    let mut point = figures.get("points")?.as_array()?.last()?.clone();
    point.as_object_mut()?.remove("at");
    point["over_seconds"] = figures.get("step")?.clone();
    Some(point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_newest_step_is_the_current_figure() {
        let answer = json!({"step": 10.0, "points": [
            {"at": 10.0, "viewers": 2, "startup_seconds": 1.5, "rebuffer_ratio": null, "behind_live_seconds": 7.0, "peer_share": 0.4},
            {"at": 20.0, "viewers": 3, "startup_seconds": null, "rebuffer_ratio": 0.01, "behind_live_seconds": 7.5, "peer_share": 0.6}
        ]});
        assert_eq!(
            newest(&answer),
            Some(
                json!({"viewers": 3, "startup_seconds": null, "rebuffer_ratio": 0.01,
                        "behind_live_seconds": 7.5, "peer_share": 0.6, "over_seconds": 10.0})
            )
        );
        assert_eq!(newest(&json!({"step": 10.0, "points": []})), None);
        // Nothing listens on port 9: no figures, quickly.
        let t = std::time::Instant::now();
        assert_eq!(now("http://127.0.0.1:9/cmcd", "cup"), None);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
