//! `[qoe]`: the audience's telemetry. Players report what fans experience (CMCD v2 event
//! mode) to a collector: by default the one beside the key server (`/cmcd` next to
//! `/keys`), or `collector` (a `swarmpack collect`). The run writes the collector's URL into
//! the signed `p2p.json`; `telemetry = false` leaves it out, and players then send nothing.

use super::{Checker, ProfileError};
use serde::Deserialize;

/// Where the match's players report, if anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qoe {
    /// The collector's base URL (players post to `{collector}/{match}`); `None`: telemetry off.
    pub collector: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQoe {
    telemetry: Option<bool>,
    collector: Option<String>,
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
    pub(super) fn qoe(
        &self,
        raw: Option<&RawQoe>,
        key_uri_base: &str,
    ) -> Result<Qoe, ProfileError> {
        let raw_default = RawQoe::default();
        let raw = raw.unwrap_or(&raw_default);
        if raw.telemetry == Some(false) {
            return Ok(Qoe { collector: None });
        }
        let collector = match &raw.collector {
            Some(url) => {
                self.url("qoe.collector", url, &["http", "https"])?;
                url.trim_end_matches('/').to_string()
            }
            None => collector_beside(key_uri_base),
        };
        Ok(Qoe {
            collector: Some(collector),
        })
    }
}
