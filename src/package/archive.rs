//! After the match: the whole match as video on demand, from its signed window manifests.
//! Pure: manifests and segment bytes in; VOD playlists, one whole-match torrent and one signed
//! whole-match manifest out. Reading the origin and publishing are `crate::archive`'s job.

use super::manifest::{self, FORMAT, ManifestSegment, Signer, TorrentRef, WindowManifest};
use super::playlist::{LivePlaylist, PlaylistEntry, SegmentKey, render_media};
use super::torrent::{self, TorrentFile, TorrentMeta};
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
    /// `{angle}/{rung}/vod.m3u8`, one per rendition.
    pub playlists: Vec<String>,
    pub segments: usize,
    pub torrent: TorrentRef,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("the match has no windows to archive")]
    Empty,
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

/// Builds the archive of `match_id` from its window manifests (oldest first, each with the
/// SHA-256 of its file) and the stored bytes of every segment they list.
pub fn build(
    match_id: &str,
    windows: &[(WindowManifest, String)],
    bytes: &BTreeMap<String, Vec<u8>>,
    dist: &Distribution,
    signer: &dyn Signer,
) -> Result<Vec<Object>, ArchiveError> {
    let first = windows.first().ok_or(ArchiveError::Empty)?;
    let timeline = Timeline::new((first.0.segment_duration * 1000.0).round() as u64, 1);
    let mut renditions: BTreeMap<(String, String), Vec<&ManifestSegment>> = BTreeMap::new();
    for (doc, _) in windows {
        for s in &doc.segments {
            renditions
                .entry((s.angle.clone(), s.rung.clone()))
                .or_default()
                .push(s);
        }
    }
    let mut out = Vec::new();
    let mut files = Vec::new();
    let mut playlists = Vec::new();
    let (mut first_seq, mut last_end) = (u64::MAX, 0u64);
    for ((angle, rung), mut segs) in renditions {
        segs.sort_by_key(|s| s.seq);
        let mut vod = LivePlaylist::new(&timeline, segs.len().max(3));
        let mut prev: Option<u64> = None;
        for s in &segs {
            let stored = bytes.get(&s.path).map(Vec::as_slice).unwrap_or_default();
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
            vod.push(PlaylistEntry {
                seq: Seq(s.seq),
                duration: s.duration,
                pdt: timeline.seq_start(Seq(s.seq)),
                discontinuity: prev.is_some_and(|p| p + 1 != s.seq),
                key: manifest::iv_from_hex(&s.iv).map(|iv| SegmentKey {
                    uri: s.key_uri.clone(),
                    iv,
                }),
            });
            prev = Some(s.seq);
            first_seq = first_seq.min(s.seq);
            let end = timeline.seq_start(Seq(s.seq)).0 + (s.duration * NS_PER_SEC as f64) as u64;
            last_end = last_end.max(end);
            files.push((angle.clone(), rung.clone(), format!("{}.ts", s.seq), stored));
        }
        vod.end();
        let mut m3u8 = vod.to_m3u8();
        m3u8.playlist_type = Some(m3u8_rs::MediaPlaylistType::Vod);
        let rel = format!("{angle}/{rung}/vod.m3u8");
        out.push(Object {
            path: format!("{match_id}/{rel}"),
            bytes: render_media(&m3u8).into_bytes(),
            kind: ObjectKind::MediaPlaylist,
        });
        playlists.push(rel);
    }

    let torrent_files: Vec<TorrentFile> = files
        .iter()
        .map(|(a, r, n, b)| TorrentFile {
            path: [a, r, n],
            bytes: b,
        })
        .collect();
    let start = timeline.seq_start(Seq(first_seq));
    let meta = TorrentMeta {
        name: match_id.to_string(),
        trackers: dist.trackers.clone(),
        web_seed: dist.web_seed.clone(),
        creation_date: (start.0 / NS_PER_SEC) as i64,
        comment: format!("swarmpack archive of match {match_id}"),
    };
    let t = torrent::build(&torrent_files, &meta).map_err(|_| ArchiveError::Empty)?;
    for pad in &t.pads {
        out.push(Object {
            path: format!("{match_id}/.pad/{pad}"),
            bytes: vec![0; *pad as usize],
            kind: ObjectKind::Pad,
        });
    }
    let doc = ArchiveManifest {
        format: FORMAT,
        match_id: match_id.to_string(),
        start_pdt: rfc3339(start),
        duration: (last_end - start.0) as f64 / NS_PER_SEC as f64,
        windows: windows
            .iter()
            .map(|(d, sha)| ArchivedWindow {
                window: d.window,
                manifest_sha256: sha.clone(),
            })
            .collect(),
        playlists,
        segments: files.len(),
        torrent: TorrentRef {
            path: "archive.torrent".into(),
            infohash_v1: manifest::hex(&t.v1),
            infohash_v2: manifest::hex(&t.v2),
            magnet: manifest::magnet(&t.v1, &t.v2, match_id, &dist.trackers, &dist.web_seed),
        },
    };
    out.push(Object {
        path: format!("{match_id}/archive.torrent"),
        bytes: t.bytes,
        kind: ObjectKind::Torrent,
    });
    out.extend(Object::signed(
        format!("{match_id}/archive.json"),
        manifest::to_file_bytes(&doc),
        ObjectKind::Manifest,
        signer,
    ));
    Ok(out)
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
    fn ivs_parse_from_manifest_hex() {
        assert_eq!(manifest::iv_from_hex(&"0a".repeat(16)), Some([10; 16]));
        assert_eq!(manifest::iv_from_hex("0a"), None);
        assert_eq!(manifest::iv_from_hex(""), None);
    }
}
