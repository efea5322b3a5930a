//! `[delivery]`: the fans' player's policy, latency against offload. The run writes it, with
//! every default filled in, into the signed `p2p.json`, so an operator chooses per match without
//! rebuilding the player (README "Latency against offload"; the measurements behind the
//! defaults are in docs/PERFORMANCE.md).
//!
//! Times are seconds of media. The defaults follow the segment duration: a player 3 segments
//! behind the end of the newest segment, what lies within half a segment of the playhead over
//! HTTP at once when no peer has it, and for each new segment one viewer of each neighbourhood
//! fetching it over HTTP as soon as it is published.
//!
//! May call: its parent room (`profile`) only.

use super::{Checker, ProfileError, SegmentConfig};
use serde::{Deserialize, Serialize};

/// What a viewer does when its only path to a peer is a TURN relay.
pub const RELAY_POLICIES: &[&str] = &["last-resort", "keep"];

/// The player's policy, as published in `p2p.json` (`"delivery"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Segment duration, so the player needs no playlist to apply the rest.
    pub segment: f64,
    /// Seconds between the playhead and the end of the newest segment in the playlist (hls.js
    /// `liveSyncDuration`). Fans see about this plus half a segment behind the action.
    pub behind_live: f64,
    /// Seconds after the playhead fetched over HTTP at once when no peer has them.
    pub urgent: f64,
    /// Viewers in each neighbourhood that fetch a new segment over HTTP as soon as the playlist
    /// names it: the first at once, each further one (a backup, for churn) half a segment later
    /// and only if the segment has not reached it from a peer. 0: none, segments enter the
    /// swarm through p2p-media-loader's random HTTP fetches.
    pub early_fetchers: u32,
    /// `last-resort`: a relayed connection is closed when a direct one exists; `keep`: never.
    pub relay: String,
    /// Seconds without a peer after which the player plays as plain HLS (until one connects).
    pub alone_after: f64,
    /// Seconds a joining viewer waits for peers before its first HTTP fetch.
    pub startup_wait: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelivery {
    behind_live: Option<f64>,
    urgent: Option<f64>,
    early_fetchers: Option<i64>,
    relay: Option<String>,
    alone_after: Option<f64>,
    startup_wait: Option<f64>,
}

/// `current` with the keys of `changes` (a JSON object of `[delivery]` keys; `segment` may be
/// there and must be the profile's), checked as the profile's table is; `source` names where
/// the changes came from in errors (a request, a file).
pub fn patched(
    current: &Delivery,
    changes: &serde_json::Value,
    segment: &SegmentConfig,
    source: &std::path::Path,
) -> Result<Delivery, ProfileError> {
    let checker = Checker { file: source };
    let mut changes = changes.clone();
    if let Some(map) = changes.as_object_mut()
        && let Some(seg) = map.remove("segment")
        && seg.as_f64() != Some(segment.duration_secs())
    {
        return Err(checker.invalid(
            "delivery.segment",
            &format!(
                "the profile's segment duration, {}",
                segment.duration_secs()
            ),
            seg,
        ));
    }
    let raw: RawDelivery = serde_json::from_value(changes).map_err(|e| {
        checker.invalid(
            "delivery",
            "an object of behind_live, urgent, early_fetchers, relay, alone_after, startup_wait",
            e,
        )
    })?;
    let merged = RawDelivery {
        behind_live: raw.behind_live.or(Some(current.behind_live)),
        urgent: raw.urgent.or(Some(current.urgent)),
        early_fetchers: raw
            .early_fetchers
            .or(Some(i64::from(current.early_fetchers))),
        relay: raw.relay.or_else(|| Some(current.relay.clone())),
        alone_after: raw.alone_after.or(Some(current.alone_after)),
        startup_wait: raw.startup_wait.or(Some(current.startup_wait)),
    };
    checker.delivery(Some(&merged), segment)
}

impl Delivery {
    /// The defaults for segments of `segment` seconds.
    pub fn defaults(segment: f64) -> Delivery {
        Delivery {
            segment,
            behind_live: 3.0 * segment,
            urgent: 0.5 * segment,
            early_fetchers: 1,
            relay: RELAY_POLICIES[0].to_string(),
            alone_after: 2.0 * segment,
            startup_wait: 0.0,
        }
    }
}

impl Checker<'_> {
    fn seconds_in(
        &self,
        field: &str,
        v: f64,
        lo: f64,
        hi: f64,
        why: &str,
    ) -> Result<f64, ProfileError> {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(self.invalid(
                format!("delivery.{field}"),
                &format!("seconds from {lo} to {hi}{why}"),
                v,
            ))
        }
    }

    pub(super) fn delivery(
        &self,
        raw: Option<&RawDelivery>,
        segment: &SegmentConfig,
    ) -> Result<Delivery, ProfileError> {
        let seg = segment.duration_secs();
        let mut d = Delivery::defaults(seg);
        let Some(raw) = raw else { return Ok(d) };
        // The playhead needs the newest segment's predecessor whole, and the live playlist
        // must still hold the segment it plays.
        let most = (segment.dvr_secs - seg).max(2.0 * seg);
        if let Some(v) = raw.behind_live {
            d.behind_live = self.seconds_in(
                "behind_live",
                v,
                2.0 * seg,
                most,
                " (two segments to the live playlist's length less one)",
            )?;
        }
        if let Some(v) = raw.urgent {
            d.urgent = self.seconds_in(
                "urgent",
                v,
                0.5 * seg,
                d.behind_live,
                " (half a segment to behind_live)",
            )?;
        }
        if let Some(v) = raw.early_fetchers {
            d.early_fetchers = self.int_in("delivery.early_fetchers", v, 0, 8)?;
        }
        if let Some(v) = &raw.relay {
            d.relay = self.one_of("delivery.relay", v, RELAY_POLICIES)?;
        }
        if let Some(v) = raw.alone_after {
            d.alone_after =
                self.seconds_in("alone_after", v, seg, 600.0, " (a segment to ten minutes)")?;
        }
        if let Some(v) = raw.startup_wait {
            d.startup_wait =
                self.seconds_in("startup_wait", v, 0.0, d.behind_live, " (0 to behind_live)")?;
        }
        Ok(d)
    }
}
