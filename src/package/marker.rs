//! Markers: moments of a match (a goal, a kill, a round end, an ad break) placed on the master
//! timecode. Each becomes an `EXT-X-DATERANGE` (RFC 8216 §4.3.2.7) in every live media
//! playlist, before the segment it falls in, and goes into the window manifest of that
//! segment's window and from there into the archive's and highlights' VOD playlists.
//!
//! May call: `timecode`.

use crate::timecode::UtcNs;
use serde::{Deserialize, Serialize};

/// One marker. Its ID is `{label}-{start in Unix ms}`, so the same marker sent twice is one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    pub id: String,
    /// What happened: `X-LABEL`.
    pub label: String,
    /// `CLASS`: what kind of moment (e.g. `goal`, `ad-break`), for players to act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// `START-DATE`, RFC 3339 UTC with milliseconds: the master timecode.
    pub start: String,
    /// `DURATION` in seconds, when the moment lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct MarkerError {
    pub field: &'static str,
    pub problem: String,
}

/// Label and class: 1 to 64 of letters, digits, space, `-`, `_`, `.`, `:` (nothing that
/// could break out of a quoted attribute).
fn plain(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_.:".contains(c))
}

impl Marker {
    /// A marker of `label` at `start` (RFC 3339, any offset), checked.
    pub fn new(
        label: &str,
        class: Option<&str>,
        start: &str,
        duration: Option<f64>,
    ) -> Result<Marker, MarkerError> {
        let err = |field, problem: String| MarkerError { field, problem };
        let plain_rule = "1 to 64 letters, digits, spaces and - _ . :";
        if !plain(label) {
            return Err(err("label", format!("{label:?}: expected {plain_rule}")));
        }
        if let Some(c) = class
            && !plain(c)
        {
            return Err(err("class", format!("{c:?}: expected {plain_rule}")));
        }
        let at = UtcNs::parse_rfc3339(start).ok_or_else(|| {
            err(
                "start",
                format!("{start:?}: expected an RFC 3339 time, e.g. 2026-12-01T20:15:00.500Z"),
            )
        })?;
        if let Some(d) = duration
            && !(d >= 0.0 && d.is_finite())
        {
            return Err(err("duration", format!("{d}: expected seconds, 0 or more")));
        }
        let ms = at.0 / 1_000_000;
        let start = UtcNs(ms * 1_000_000)
            .to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Ok(Marker {
            id: format!("{}-{ms}", label.replace([' ', ':'], "_")),
            label: label.to_string(),
            class: class.map(str::to_string),
            start,
            duration,
        })
    }

    /// Its start on the master timecode.
    /// How far ahead of the wall clock a marker may start: further ahead it names no segment
    /// a live playlist will hold soon, and would only be kept in memory.
    pub const MAX_AHEAD_NS: u64 = 10 * 60 * crate::timecode::NS_PER_SEC;

    /// Whether the marker starts more than [`Marker::MAX_AHEAD_NS`] after `now`.
    pub fn too_far_ahead(&self, now: UtcNs) -> bool {
        self.start_ns()
            .is_some_and(|t| t.0 > now.0.saturating_add(Self::MAX_AHEAD_NS))
    }

    pub fn start_ns(&self) -> Option<UtcNs> {
        UtcNs::parse_rfc3339(&self.start)
    }

    /// The `#EXT-X-DATERANGE` line, as m3u8-rs writes an unknown tag.
    pub fn to_tag(&self) -> m3u8_rs::ExtTag {
        let mut attrs = format!("ID=\"{}\"", self.id);
        if let Some(class) = &self.class {
            attrs.push_str(&format!(",CLASS=\"{class}\""));
        }
        attrs.push_str(&format!(",START-DATE=\"{}\"", self.start));
        if let Some(d) = self.duration {
            attrs.push_str(&format!(",DURATION={d:.3}"));
        }
        attrs.push_str(&format!(",X-LABEL=\"{}\"", self.label));
        m3u8_rs::ExtTag {
            tag: "X-DATERANGE".into(),
            rest: Some(attrs),
        }
    }
}

/// The markers of a JSON-lines file (`run --markers`): the ones that parse, in order, and the
/// offset just past the last complete line.
pub fn read_lines(bytes: &[u8]) -> (Vec<Marker>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(nl) = bytes[at..].iter().position(|&b| b == b'\n') {
        if let Ok(m) = serde_json::from_slice::<Marker>(&bytes[at..at + nl]) {
            out.push(m);
        }
        at += nl + 1;
    }
    (out, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_a_daterange_tag() {
        let m = Marker::new(
            "Goal blue",
            Some("goal"),
            "2026-12-01T21:15:00.5+01:00",
            Some(5.0),
        )
        .unwrap();
        assert_eq!(m.start, "2026-12-01T20:15:00.500Z");
        assert_eq!(m.id, "Goal_blue-1796156100500");
        let playlist = m3u8_rs::MediaPlaylist {
            segments: vec![m3u8_rs::MediaSegment {
                uri: "1.ts".into(),
                duration: 1.0,
                unknown_tags: vec![m.to_tag()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = crate::package::playlist::render_media(&playlist);
        assert!(
            text.contains(
                "#EXT-X-DATERANGE:ID=\"Goal_blue-1796156100500\",CLASS=\"goal\",START-DATE=\"2026-12-01T20:15:00.500Z\",DURATION=5.000,X-LABEL=\"Goal blue\"\n"
            ),
            "{text}"
        );
        // And an HLS parser reads it back as a date range.
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        let dr = parsed.segments[0].daterange.as_ref().expect("a DATERANGE");
        assert_eq!(dr.id, "Goal_blue-1796156100500");
        assert_eq!(dr.class.as_deref(), Some("goal"));
    }

    #[test]
    fn bad_markers_name_the_field() {
        let t = "2026-12-01T20:15:00Z";
        let field = |r: Result<Marker, MarkerError>| r.unwrap_err().field;
        assert_eq!(field(Marker::new("a\"b", None, t, None)), "label");
        assert_eq!(field(Marker::new("", None, t, None)), "label");
        assert_eq!(field(Marker::new("goal", Some("x\ny"), t, None)), "class");
        assert_eq!(field(Marker::new("goal", None, "noon", None)), "start");
        assert_eq!(field(Marker::new("goal", None, t, Some(-1.0))), "duration");
    }

    #[test]
    fn lines_round_trip_and_a_partial_line_waits() {
        let m = Marker::new("kill", None, "2026-12-01T20:15:00Z", None).unwrap();
        let mut bytes = serde_json::to_vec(&m).unwrap();
        bytes.push(b'\n');
        let whole = bytes.len();
        bytes.extend_from_slice(b"{\"id\":");
        let (got, next) = read_lines(&bytes);
        assert_eq!((got, next), (vec![m], whole));
    }
}
