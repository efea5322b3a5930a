//! After the match: the whole match as video on demand, from its signed window manifests.
//! Pure: manifests and segment bytes in (one segment at a time); VOD playlists, one
//! whole-match torrent and one signed whole-match manifest out. Reading the origin and publishing are `crate::archive`'s job.
//!
//! May call: `hex`, `layout`, `manifest`, `playlist`, `segment_sig`, `torrent`, `timecode`.

use super::manifest::{self, FORMAT, ManifestSegment, Signer, TorrentRef, WindowManifest};
use super::playlist::{LivePlaylist, PlaylistEntry, SegmentKey, render_master, render_media};
use super::segment_sig::SegmentSignature;
use super::torrent::{self, TorrentMeta};
use super::{Object, ObjectKind};
use crate::timecode::{NS_PER_SEC, Seq, Timeline, UtcNs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One window of the chain, as it counts in the archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedWindow {
    pub window: u64,
    pub manifest_sha256: String,
}

/// The signed whole-match manifest (`{match}/archive.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveManifest {
    pub format: u32,
    #[serde(rename = "match")]
    pub match_id: String,
    /// RFC 3339 UTC: the start of the first segment.
    pub start_pdt: String,
    /// Seconds of media per rendition (first segment start to last segment end).
    pub duration: f64,
    /// Every window of the hash chain, oldest first, with its manifest's SHA-256: the
    /// per-segment hashes, keys and IVs are in those manifests.
    pub windows: Vec<ArchivedWindow>,
    /// VOD multivariant playlists (`vod.m3u8`, `{angle}/vod.m3u8`), twins of the live ones.
    #[serde(default)]
    pub masters: Vec<String>,
    /// `{angle}/{rung}/vod.m3u8`, one per rendition.
    pub playlists: Vec<String>,
    pub segments: usize,
    pub torrent: TorrentRef,
    /// Set on a highlight package (`{match}/clips/{label}/clip.json`): what it was cut from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<ClipRange>,
}

/// The cut a highlight package was made with: whole segments `first_seq..=last_seq`, the
/// ones that overlap the requested `from`..`to` (RFC 3339 UTC, the master timecode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClipRange {
    pub label: String,
    pub from: String,
    pub to: String,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Where the archive's objects go below the match, and what they are called: the whole-match
/// archive beside the live playlists, or a highlight package in `clips/{label}/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// "" or `clips/{label}/`.
    dir: String,
    /// The way from a VOD playlist back to the match directory ("" beside the segments).
    up: String,
    torrent: &'static str,
    manifest: &'static str,
    clip: Option<ClipRange>,
}

impl Layout {
    /// `{match}/{angle}/{rung}/vod.m3u8`, `archive.torrent`, `archive.json`.
    pub fn archive() -> Layout {
        Layout {
            dir: String::new(),
            up: String::new(),
            torrent: "archive.torrent",
            manifest: "archive.json",
            clip: None,
        }
    }

    /// `{match}/clips/{label}/{angle}/{rung}/vod.m3u8` naming the match's own segments,
    /// `clip.torrent` and `clip.json` there.
    pub fn clip(range: ClipRange) -> Layout {
        Layout {
            dir: format!("clips/{}/", range.label),
            up: "../../../../".into(),
            torrent: "clip.torrent",
            manifest: "clip.json",
            clip: Some(range),
        }
    }
}

/// The windows of `chain` cut to the segments `first..=last` (windows left with none are
/// dropped); each keeps the SHA-256 of its whole manifest, which the package cites.
pub fn cut(
    chain: &[(WindowManifest, String)],
    first: u64,
    last: u64,
) -> Vec<(WindowManifest, String)> {
    chain
        .iter()
        .filter_map(|(doc, sha)| {
            let mut doc = doc.clone();
            doc.segments.retain(|s| (first..=last).contains(&s.seq));
            (!doc.segments.is_empty()).then(|| (doc, sha.clone()))
        })
        .collect()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("the match has no windows to archive")]
    Empty,
    #[error("{0}: its bytes were never added to the archive")]
    Missing(String),
    #[error("{path}: {problem}")]
    Master { path: String, problem: String },
    #[error(
        "{path}: {found} bytes with SHA-256 {sha}, but its window manifest says {length} and {expected}"
    )]
    Corrupt {
        path: String,
        found: usize,
        sha: String,
        length: u64,
        expected: String,
    },
}

/// Where the whole-match torrent and viewers find the match: from a window's magnet link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Distribution {
    pub trackers: Vec<String>,
    pub web_seed: String,
}

impl Distribution {
    /// Trackers (`tr`) and web seed (`ws`) of a magnet link.
    pub fn from_magnet(magnet: &str) -> Distribution {
        let mut d = Distribution::default();
        let query = magnet.split_once('?').map_or("", |(_, q)| q);
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "tr" => d.trackers.push(v.into_owned()),
                "ws" => d.web_seed = v.into_owned(),
                _ => {}
            }
        }
        d
    }
}

/// The archive of one match, built one segment at a time: the playlists come from the window
/// manifests alone, and each segment's bytes are checked and hashed into the whole-match
/// torrent as they arrive ([`Archive::add`], in [`Archive::segments`] order), so memory stays
/// flat however long the match was.
pub struct Archive<'a> {
    match_id: String,
    layout: Layout,
    windows: &'a [(WindowManifest, String)],
    dist: Distribution,
    timeline: Timeline,
    /// Every segment, in torrent path order (angle, rung, file name).
    order: Vec<&'a ManifestSegment>,
    piece: u64,
    hashed: Vec<torrent::HashedFile>,
}

impl<'a> Archive<'a> {
    /// Plans the archive of `match_id` from its window manifests (oldest first, each with
    /// the SHA-256 of its file).
    pub fn new(
        match_id: &str,
        windows: &'a [(WindowManifest, String)],
        dist: &Distribution,
        layout: Layout,
    ) -> Result<Archive<'a>, ArchiveError> {
        let first = windows.first().ok_or(ArchiveError::Empty)?;
        let timeline = Timeline::new((first.0.segment_duration * 1000.0).round() as u64, 1);
        let mut order: Vec<&ManifestSegment> =
            windows.iter().flat_map(|(d, _)| &d.segments).collect();
        if order.is_empty() {
            return Err(ArchiveError::Empty);
        }
        order.sort_by_cached_key(|s| (s.angle.clone(), s.rung.clone(), format!("{}.ts", s.seq)));
        let max = order.iter().map(|s| s.length).max().unwrap_or(0);
        Ok(Archive {
            match_id: match_id.to_string(),
            layout,
            windows,
            dist: dist.clone(),
            timeline,
            order,
            piece: torrent::piece_length_for(max),
            hashed: Vec::new(),
        })
    }

    /// The path (below the match) of every segment, in the order [`Archive::add`] wants them.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|s| s.path.as_str())
    }

    /// The signed length of each segment, in [`Archive::segments`] order: the most a read of
    /// it from the origin may take.
    pub fn segment_lengths(&self) -> impl Iterator<Item = u64> + '_ {
        self.order.iter().map(|s| s.length)
    }

    /// Checks the stored bytes of the next segment against its window manifest and hashes
    /// them into the torrent.
    pub fn add(&mut self, stored: &[u8]) -> Result<(), ArchiveError> {
        let i = self.hashed.len();
        let s = *self.order.get(i).ok_or(ArchiveError::Empty)?;
        let sha = manifest::sha256_hex(stored);
        if sha != s.sha256 || stored.len() as u64 != s.length {
            return Err(ArchiveError::Corrupt {
                path: s.path.clone(),
                found: stored.len(),
                sha,
                length: s.length,
                expected: s.sha256.clone(),
            });
        }
        let name = format!("{}.ts", s.seq);
        let last = i + 1 == self.order.len();
        self.hashed.push(torrent::hash_file(
            [&s.angle, &s.rung, &name],
            stored,
            self.piece,
            last,
        ));
        Ok(())
    }

    /// Every rendition's VOD playlist, signed tags and markers included, into `out`; returns
    /// their paths, the first seq and the end of the last segment (ns).
    fn vod_playlists(&self, signer: &dyn Signer, out: &mut Vec<Object>) -> (Vec<String>, u64, u64) {
        let (match_id, timeline) = (&self.match_id, &self.timeline);
        let mut renditions: BTreeMap<(&str, &str), Vec<&ManifestSegment>> = BTreeMap::new();
        for s in &self.order {
            renditions.entry((&s.angle, &s.rung)).or_default().push(s);
        }
        let mut playlists = Vec::new();
        let (mut first_seq, mut last_end) = (u64::MAX, 0u64);
        for ((angle, rung), mut segs) in renditions {
            segs.sort_by_key(|s| s.seq);
            let mut vod = LivePlaylist::new(timeline, segs.len().max(3));
            let mut prev: Option<u64> = None;
            for s in &segs {
                let key = manifest::iv_from_hex(&s.iv).map(|iv| SegmentKey {
                    uri: s.key_uri.clone(),
                    iv,
                });
                vod.push(PlaylistEntry {
                    seq: Seq::new(s.seq),
                    duration: s.duration,
                    pdt: timeline.seq_start(Seq::new(s.seq)),
                    discontinuity: prev.is_some_and(|p| p + 1 != s.seq),
                    key: key.clone(),
                    signature: Some(sign_listed(signer, match_id, s, key.as_ref())),
                    gap: false,
                    gap_signature: None,
                });
                prev = Some(s.seq);
                first_seq = first_seq.min(s.seq);
                let start = timeline.seq_start(Seq::new(s.seq)).0;
                last_end = last_end.max(start + (s.duration * NS_PER_SEC as f64) as u64);
            }
            for (doc, _) in self.windows {
                for m in &doc.markers {
                    vod.add_marker(m);
                }
            }
            vod.end();
            let mut m3u8 = vod.to_m3u8();
            m3u8.playlist_type = Some(m3u8_rs::MediaPlaylistType::Vod);
            let up = &self.layout.up;
            if !up.is_empty() {
                for seg in &mut m3u8.segments {
                    seg.uri = format!("{up}{angle}/{rung}/{}", seg.uri);
                }
            }
            let rel = format!("{}{angle}/{rung}/vod.m3u8", self.layout.dir);
            out.push(Object {
                path: crate::layout::in_match(match_id, &rel),
                bytes: render_media(&m3u8).into_bytes(),
                kind: ObjectKind::MediaPlaylist,
            });
            playlists.push(rel);
        }
        (playlists, first_seq, last_end)
    }

    /// Every object of the archive, once every segment was added: `vod.m3u8` per rendition,
    /// the VOD multivariant playlists (from the live ones in `masters`: path below the match
    /// and bytes), pad files, `archive.torrent` and the signed `archive.json`.
    pub fn finish(
        self,
        masters: &[(String, Vec<u8>)],
        signer: &dyn Signer,
    ) -> Result<Vec<Object>, ArchiveError> {
        if self.hashed.len() != self.order.len() {
            let missing = &self.order[self.hashed.len()].path;
            return Err(ArchiveError::Missing(missing.clone()));
        }
        let (match_id, timeline, dist) = (&self.match_id, &self.timeline, &self.dist);
        let mut out = Vec::new();
        let (playlists, first_seq, last_end) = self.vod_playlists(signer, &mut out);
        let mut masters_out = Vec::new();
        for (path, live) in masters {
            let rel = format!(
                "{}{}",
                self.layout.dir,
                path.replace("master.m3u8", "vod.m3u8")
            );
            out.push(Object {
                path: crate::layout::in_match(match_id, &rel),
                bytes: vod_master(path, live)?.into_bytes(),
                kind: ObjectKind::MasterPlaylist,
            });
            masters_out.push(rel);
        }

        let start = timeline.seq_start(Seq::new(first_seq));
        let meta = TorrentMeta {
            name: match_id.to_string(),
            trackers: dist.trackers.clone(),
            web_seed: dist.web_seed.clone(),
            creation_date: (start.0 / NS_PER_SEC) as i64,
            comment: match &self.layout.clip {
                Some(c) => format!("swarmpack highlight {} of match {match_id}", c.label),
                None => format!("swarmpack archive of match {match_id}"),
            },
        };
        let t =
            torrent::assemble(&self.hashed, self.piece, &meta).map_err(|_| ArchiveError::Empty)?;
        for pad in &t.pads {
            out.push(Object {
                path: crate::layout::pad(match_id, *pad),
                bytes: vec![0; *pad as usize],
                kind: ObjectKind::Pad,
            });
        }
        let doc = ArchiveManifest {
            format: FORMAT,
            match_id: match_id.to_string(),
            start_pdt: rfc3339(start),
            duration: (last_end - start.0) as f64 / NS_PER_SEC as f64,
            windows: self
                .windows
                .iter()
                .map(|(d, sha)| ArchivedWindow {
                    window: d.window,
                    manifest_sha256: sha.clone(),
                })
                .collect(),
            masters: masters_out,
            playlists,
            segments: self.order.len(),
            clip: self.layout.clip.clone(),
            torrent: TorrentRef {
                path: format!("{}{}", self.layout.dir, self.layout.torrent),
                infohash_v1: manifest::hex(&t.v1),
                infohash_v2: manifest::hex(&t.v2),
                magnet: manifest::magnet(&t.v1, &t.v2, match_id, &dist.trackers, &dist.web_seed),
            },
        };
        out.push(Object {
            path: format!("{match_id}/{}{}", self.layout.dir, self.layout.torrent),
            bytes: t.bytes,
            kind: ObjectKind::Torrent,
        });
        out.extend(Object::signed(
            format!("{match_id}/{}{}", self.layout.dir, self.layout.manifest),
            manifest::to_file_bytes(&doc),
            ObjectKind::Manifest,
            signer,
        ));
        Ok(out)
    }
}

/// The VOD twin of a live multivariant playlist: the same variants and angle alternatives,
/// each pointing at its rendition's `vod.m3u8` instead of the live `index.m3u8`.
pub fn vod_master(path: &str, live: &[u8]) -> Result<String, ArchiveError> {
    let bad = |why: String| ArchiveError::Master {
        path: path.to_string(),
        problem: why,
    };
    let mut master = match m3u8_rs::parse_playlist_res(live) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
        Ok(_) => return Err(bad("a media playlist, not a multivariant one".into())),
        Err(e) => return Err(bad(format!("not a playlist: {e}"))),
    };
    let vod = |uri: &str| match uri.strip_suffix("index.m3u8") {
        Some(dir) => Ok(format!("{dir}vod.m3u8")),
        None => Err(bad(format!("{uri} is not a live rendition (…/index.m3u8)"))),
    };
    for v in &mut master.variants {
        v.uri = vod(&v.uri)?;
    }
    for a in &mut master.alternatives {
        if let Some(uri) = &a.uri {
            a.uri = Some(vod(uri)?);
        }
    }
    Ok(render_master(&master))
}

/// The `#EXT-X-SWARMPACK-SEGMENT` signature of a segment as its (verified) window manifest
/// lists it: the VOD playlists carry the same tags as the live ones.
fn sign_listed(
    signer: &dyn Signer,
    match_id: &str,
    s: &ManifestSegment,
    key: Option<&SegmentKey>,
) -> SegmentSignature {
    let sha = crate::hex::decode_array::<32>(&s.sha256).unwrap_or_default();
    let path = crate::layout::in_match(match_id, &s.path);
    SegmentSignature::sign_digest(signer, &path, s.length, sha, key)
}

fn rfc3339(t: UtcNs) -> String {
    t.to_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnets_give_trackers_and_web_seed() {
        let m = manifest::magnet(
            &[1; 20],
            &[2; 32],
            "final",
            &["udp://t:6969/announce".into(), "http://u/a?x=1".into()],
            "http://origin/",
        );
        let d = Distribution::from_magnet(&m);
        assert_eq!(d.trackers, vec!["udp://t:6969/announce", "http://u/a?x=1"]);
        assert_eq!(d.web_seed, "http://origin/");
    }

    #[test]
    fn vod_masters_point_at_vod_renditions() {
        let live = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID=\"video-180p\",NAME=\"main\",DEFAULT=YES,AUTOSELECT=YES,URI=\"main/180p/index.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID=\"video-180p\",NAME=\"pov\",AUTOSELECT=YES,URI=\"pov/180p/index.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=400000,VIDEO=\"video-180p\"\nmain/180p/index.m3u8\n";
        let vod = vod_master("master.m3u8", live.as_bytes()).unwrap();
        assert!(!vod.contains("index.m3u8"), "{vod}");
        assert_eq!(vod.matches("/180p/vod.m3u8").count(), 3, "{vod}");
        assert!(vod.contains("NAME=\"pov\""), "{vod}");
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n1.ts\n";
        let err = vod_master("main/master.m3u8", media.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("main/master.m3u8: a media playlist")
        );
        let odd = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nelsewhere.m3u8\n";
        let err = vod_master("master.m3u8", odd.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("elsewhere.m3u8 is not a live rendition")
        );
    }

    #[test]
    fn ivs_parse_from_manifest_hex() {
        assert_eq!(manifest::iv_from_hex(&"0a".repeat(16)), Some([10; 16]));
        assert_eq!(manifest::iv_from_hex("0a"), None);
        assert_eq!(manifest::iv_from_hex(""), None);
    }
}
