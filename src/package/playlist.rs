//! HLS playlists as typed m3u8-rs values: live media playlists with a sliding DVR window,
//! one multivariant playlist per angle, and the match's top multivariant playlist with the
//! angles as EXT-X-MEDIA TYPE=VIDEO alternatives (RFC 8216 §4.3.4.1).
//!
//! May call: `hex`, `codec`, `marker`, `segment_key`, `segment_sig`, `profile`, `timecode`.

use crate::package::codec;
use crate::package::marker::Marker;
use crate::package::segment_sig::{GapSignature, SegmentSignature};
use crate::profile::{Profile, Rung};
use crate::timecode::{NS_PER_SEC, Seq, Timeline, UtcNs};
use chrono::FixedOffset;
use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, Key, KeyMethod, MasterPlaylist, MediaPlaylist,
    MediaSegment, Resolution, VariantStream,
};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// HLS protocol version: floating-point EXTINF (3) and EXT-X-KEY IV (2).
const HLS_VERSION: usize = 3;

pub use super::segment_key::SegmentKey;

/// One line item of a media playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaylistEntry {
    pub seq: Seq,
    /// Seconds.
    pub duration: f64,
    /// EXT-X-PROGRAM-DATE-TIME: the segment's start on the master timecode.
    pub pdt: UtcNs,
    /// Preceded by EXT-X-DISCONTINUITY (a gap in the numbering, or a restart).
    pub discontinuity: bool,
    /// EXT-X-KEY for this segment, if encrypted.
    pub key: Option<SegmentKey>,
    /// `#EXT-X-SWARMPACK-SEGMENT`, when the match signs its segments.
    pub signature: Option<SegmentSignature>,
    /// Preceded by EXT-X-GAP (RFC 8216bis 4.4.4.7): the origin never got this segment.
    pub gap: bool,
    /// `#EXT-X-SWARMPACK-GAP`: the match key says this seq will never have bytes.
    pub gap_signature: Option<GapSignature>,
}

pub use super::segment_key::GAP_TAG;

/// A live media playlist that keeps the last `dvr_segments` entries.
#[derive(Clone, Debug)]
pub struct LivePlaylist {
    target_duration: u64,
    dvr_segments: usize,
    entries: VecDeque<PlaylistEntry>,
    /// Discontinuities that have slid out of the window (EXT-X-DISCONTINUITY-SEQUENCE).
    discontinuity_sequence: u64,
    ended: bool,
    /// Markers by start, each written before the segment it falls in.
    markers: Vec<(UtcNs, Marker)>,
}

impl LivePlaylist {
    pub fn new(timeline: &Timeline, dvr_segments: usize) -> Self {
        LivePlaylist {
            target_duration: timeline.segment_ns().div_ceil(NS_PER_SEC),
            dvr_segments: dvr_segments.max(3),
            entries: VecDeque::new(),
            discontinuity_sequence: 0,
            ended: false,
            markers: Vec::new(),
        }
    }

    /// Adds a marker (once per ID); false when it was there already or has no start.
    pub fn add_marker(&mut self, marker: &Marker) -> bool {
        let Some(at) = marker.start_ns() else {
            return false;
        };
        if self.markers.iter().any(|(_, m)| m.id == marker.id) {
            return false;
        }
        let i = self.markers.partition_point(|(t, _)| *t <= at);
        self.markers.insert(i, (at, marker.clone()));
        true
    }

    /// The markers that fall in the segment starting at `pdt` and lasting `duration` s.
    fn markers_in(&self, pdt: UtcNs, duration: f64) -> impl Iterator<Item = &Marker> {
        let end = UtcNs(pdt.0 + (duration * NS_PER_SEC as f64).round() as u64);
        self.markers
            .iter()
            .filter(move |(t, _)| *t >= pdt && *t < end)
            .map(|(_, m)| m)
    }

    /// The newest seq in the playlist.
    pub fn last_seq(&self) -> Option<Seq> {
        self.entries.back().map(|e| e.seq)
    }

    pub fn entries(&self) -> impl Iterator<Item = &PlaylistEntry> {
        self.entries.iter()
    }

    /// Appends a segment and slides the DVR window.
    pub fn push(&mut self, entry: PlaylistEntry) {
        self.entries.push_back(entry);
        while self.entries.len() > self.dvr_segments {
            if let Some(gone) = self.entries.pop_front()
                && gone.discontinuity
            {
                self.discontinuity_sequence += 1;
            }
        }
        // Markers before the DVR window went with their segments.
        if let Some(front) = self.entries.front() {
            let from = front.pdt;
            self.markers.retain(|(t, _)| *t >= from);
        }
    }

    /// Marks the end of the match (EXT-X-ENDLIST).
    /// Takes back what an earlier run published (its entries and discontinuity count).
    pub fn restore(&mut self, entries: Vec<PlaylistEntry>, discontinuity_sequence: u64) {
        self.entries = entries.into();
        self.discontinuity_sequence = discontinuity_sequence;
        self.ended = false;
        while self.entries.len() > self.dvr_segments {
            if let Some(gone) = self.entries.pop_front()
                && gone.discontinuity
            {
                self.discontinuity_sequence += 1;
            }
        }
    }

    /// Marks the segment `seq` as a gap (it never reached the origin), signed with `sig`.
    /// Returns whether the playlist still lists it.
    pub fn mark_gap(&mut self, seq: Seq, sig: Option<GapSignature>) -> bool {
        match self.entries.iter_mut().find(|e| e.seq == seq) {
            Some(e) => {
                e.gap = true;
                e.gap_signature = sig;
                true
            }
            None => false,
        }
    }

    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn to_m3u8(&self) -> MediaPlaylist {
        let segments = self
            .entries
            .iter()
            .map(|e| MediaSegment {
                uri: format!("{}.ts", e.seq),
                duration: e.duration as f32,
                discontinuity: e.discontinuity,
                key: e.key.as_ref().map(|k| Key {
                    method: KeyMethod::AES128,
                    uri: Some(k.uri.clone()),
                    iv: Some(format!("0x{}", crate::hex::encode(&k.iv))),
                    keyformat: None,
                    keyformatversions: None,
                }),
                program_date_time: Some(e.pdt.to_datetime().with_timezone(&utc_offset())),
                unknown_tags: self
                    .markers_in(e.pdt, e.duration)
                    .map(Marker::to_tag)
                    .chain(e.signature.iter().map(SegmentSignature::to_tag))
                    .chain(e.gap_signature.iter().map(GapSignature::to_tag))
                    .chain(e.gap.then(|| m3u8_rs::ExtTag {
                        tag: GAP_TAG.to_string(),
                        rest: None,
                    }))
                    .collect(),
                ..Default::default()
            })
            .collect();
        MediaPlaylist {
            version: Some(HLS_VERSION),
            target_duration: self.target_duration,
            media_sequence: self.entries.front().map_or(0, |e| e.seq.get()),
            segments,
            discontinuity_sequence: self.discontinuity_sequence,
            end_list: self.ended,
            playlist_type: None,
            independent_segments: true,
            ..Default::default()
        }
    }

    pub fn render(&self) -> String {
        render_media(&self.to_m3u8())
    }
}

/// Writes a media playlist with millisecond EXTINF precision.
pub fn render_media(p: &MediaPlaylist) -> String {
    m3u8_rs::WRITE_OPT_FLOAT_PRECISION.store(3, Ordering::Relaxed);
    let mut out = Vec::new();
    p.write_to(&mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("m3u8-rs writes UTF-8")
}

/// Writes a multivariant playlist.
pub fn render_master(p: &MasterPlaylist) -> String {
    let mut out = Vec::new();
    p.write_to(&mut out).expect("writing to a Vec cannot fail");
    String::from_utf8(out).expect("m3u8-rs writes UTF-8")
}

fn variant(
    profile: &Profile,
    rung: &Rung,
    uri: String,
    video_group: Option<String>,
) -> VariantStream {
    VariantStream {
        uri,
        bandwidth: rung.bandwidth_bps(),
        average_bandwidth: Some((rung.video_kbps as u64 + rung.audio_kbps as u64) * 1000),
        codecs: Some(codec::codecs(&profile.encoder.profile, rung)),
        resolution: Some(Resolution {
            width: rung.width as u64,
            height: rung.height as u64,
        }),
        frame_rate: Some((rung.fps.as_f64() * 1000.0).round() / 1000.0),
        video: video_group,
        ..Default::default()
    }
}

/// `{match}/{angle}/master.m3u8`: every rung of one angle.
pub fn angle_master(profile: &Profile) -> MasterPlaylist {
    MasterPlaylist {
        version: Some(HLS_VERSION),
        independent_segments: true,
        variants: profile
            .rungs
            .iter()
            .map(|r| variant(profile, r, format!("{}/index.m3u8", r.name), None))
            .collect(),
        ..Default::default()
    }
}

/// `{match}/master.m3u8`: each rung once; each rung's VIDEO group lists every angle as an
/// alternative rendition. The first angle is the default and is also the variant's URI.
pub fn match_master(profile: &Profile, angles: &[String]) -> MasterPlaylist {
    let mut alternatives = Vec::new();
    let mut variants = Vec::new();
    for rung in &profile.rungs {
        let group = format!("video-{}", rung.name);
        for (i, angle) in angles.iter().enumerate() {
            alternatives.push(AlternativeMedia {
                media_type: AlternativeMediaType::Video,
                uri: Some(format!("{angle}/{}/index.m3u8", rung.name)),
                group_id: group.clone(),
                name: angle.clone(),
                default: i == 0,
                autoselect: true,
                ..Default::default()
            });
        }
        let default_uri = format!("{}/{}/index.m3u8", angles[0], rung.name);
        variants.push(variant(profile, rung, default_uri, Some(group)));
    }
    MasterPlaylist {
        version: Some(HLS_VERSION),
        independent_segments: true,
        alternatives,
        variants,
        ..Default::default()
    }
}

/// The media playlists a multivariant playlist names (variants and alternatives), each once,
/// relative to it; None if the bytes are not a multivariant playlist.
pub fn media_uris(master: &[u8]) -> Option<Vec<String>> {
    let Ok(m3u8_rs::Playlist::MasterPlaylist(m)) = m3u8_rs::parse_playlist_res(master) else {
        return None;
    };
    let mut uris: Vec<String> = m.variants.into_iter().map(|v| v.uri).collect();
    uris.extend(m.alternatives.into_iter().filter_map(|a| a.uri));
    uris.sort();
    uris.dedup();
    Some(uris)
}

fn utc_offset() -> FixedOffset {
    FixedOffset::east_opt(0).expect("zero offset is valid")
}

#[cfg(test)]
mod tests;
