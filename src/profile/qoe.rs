//! `[qoe]`: the audience's telemetry, and what to do when fans suffer. Players report what
//! fans experience (CMCD v2 event mode) to a collector: by default the one beside the key
//! server (`/cmcd` next to `/keys`), or `collector` (a `swarmpack collect`). The run writes the
//! collector's URL into the signed `p2p.json`; `telemetry = false` leaves it out, and players
//! then send nothing.
//!
//! Thresholds (README "Watching the audience"): `swarmpack control` reads the collector's
//! figures for each live match and, when the rebuffer ratio over `over` seconds rises above
//! `rebuffer_ratio`, or the share of bytes from peers falls below `peer_share` with more than
//! `min_viewers` viewers, sends `qoe.degraded` (and `qoe.recovered` once both are back), and
//! while degraded applies `[qoe.on_degraded]` (`[delivery]` keys) to the players' policy.
//!
//! May call: `delivery`.

use super::{Checker, Delivery, ProfileError, SegmentConfig};
use serde::Deserialize;

/// Where the match's players report, and when the controller acts.
#[derive(Clone, Debug, PartialEq)]
pub struct Qoe {
    /// The collector's base URL (players post to `{collector}/{match}`); `None`: telemetry off.
    pub collector: Option<String>,
    pub thresholds: Thresholds,
    /// The players' policy while degraded (the profile's `[delivery]` with these keys).
    pub on_degraded: Option<Delivery>,
}

/// When a match's audience counts as degraded (`None`: that figure is not watched).
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    pub rebuffer_ratio: Option<f64>,
    pub peer_share: Option<f64>,
    pub min_viewers: u32,
    /// Seconds the figures are taken over.
    pub over: u32,
}

impl Thresholds {
    pub fn watched(&self) -> bool {
        self.rebuffer_ratio.is_some() || self.peer_share.is_some()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQoe {
    telemetry: Option<bool>,
    collector: Option<String>,
    rebuffer_ratio: Option<f64>,
    peer_share: Option<f64>,
    min_viewers: Option<i64>,
    over: Option<i64>,
    on_degraded: Option<toml::Value>,
}

/// The collector beside a key server: its `/keys` path with `/cmcd` in its place.
pub fn collector_beside(key_uri_base: &str) -> String {
    let base = key_uri_base.trim_end_matches('/');
    match base.rsplit_once('/') {
        Some((root, _)) if root.contains("://") && root.len() > "https://".len() => {
            format!("{root}/cmcd")
        }
        _ => format!("{base}/cmcd"),
    }
}

impl Checker<'_> {
    fn share(&self, field: &str, v: Option<f64>) -> Result<Option<f64>, ProfileError> {
        match v {
            Some(x) if !(x.is_finite() && (0.0..=1.0).contains(&x)) => {
                Err(self.invalid(field, "a share from 0 to 1 (0.02 is 2%)", x))
            }
            _ => Ok(v),
        }
    }

    pub(super) fn qoe(
        &self,
        raw: Option<&RawQoe>,
        key_uri_base: &str,
        delivery: &Delivery,
        segment: &SegmentConfig,
    ) -> Result<Qoe, ProfileError> {
        let raw_default = RawQoe::default();
        let raw = raw.unwrap_or(&raw_default);
        let collector = match (&raw.collector, raw.telemetry) {
            (_, Some(false)) => None,
            (Some(url), _) => {
                self.url("qoe.collector", url, &["http", "https"])?;
                Some(url.trim_end_matches('/').to_string())
            }
            (None, _) => Some(collector_beside(key_uri_base)),
        };
        let thresholds = Thresholds {
            rebuffer_ratio: self.share("qoe.rebuffer_ratio", raw.rebuffer_ratio)?,
            peer_share: self.share("qoe.peer_share", raw.peer_share)?,
            min_viewers: self.int_in(
                "qoe.min_viewers",
                raw.min_viewers.unwrap_or(0),
                0,
                1_000_000,
            )?,
            over: self.int_in("qoe.over", raw.over.unwrap_or(60), 20, 600)?,
        };
        let on_degraded = match &raw.on_degraded {
            None => None,
            Some(table) => {
                let changes = serde_json::to_value(table).map_err(|e| {
                    self.invalid("qoe.on_degraded", "a table of [delivery] keys", e)
                })?;
                Some(super::delivery::patched(
                    delivery, &changes, segment, self.file,
                )?)
            }
        };
        if thresholds.watched() && collector.is_none() {
            return Err(self.invalid(
                "qoe.telemetry",
                "true when thresholds are set (they are judged on the players' reports)",
                "false",
            ));
        }
        Ok(Qoe {
            collector,
            thresholds,
            on_degraded,
        })
    }
}
