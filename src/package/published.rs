//! The parsers of published documents: a signed `live.json`, media playlists (with their
//! signed tags and gaps) and the segments of windows never closed, turned back into the
//! packager's state ([`Resume`]) or checked for followers (angle groups, edge seeders,
//! archive). Pure: bytes in, state out; reading them from the origin is
//! `publish::match_state`'s side.
//!
//! Calls the playlist, manifest, segment-key, segment-signature and window rooms; none of
//! them calls back.

use super::manifest::LivePointer;
use super::playlist::PlaylistEntry;
use super::segment_key::SegmentKey;
use super::segment_sig::{GAP_TAG, GapSignature, SegmentSignature, TAG};
use super::window::WindowSegment;
use crate::timecode::{NS_PER_SEC, Seq, UtcNs};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResumeError {
    #[error("{path}: {message}")]
    Playlist { path: String, message: String },
    #[error(
        "{path}: the signature does not verify with this match's key; refusing to extend a hash chain \
         that is not ours (use another --match, or remove the match from the origin)"
    )]
    ForeignPointer { path: String },
    #[error("{path}: {message}")]
    Pointer { path: String, message: String },
    #[error(
        "{path}: signed with this match's key but names match {found:?}: another match's live.json, \
         refusing to extend its hash chain"
    )]
    ForeignMatch { path: String, found: String },
}

/// One media playlist as published.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoredPlaylist {
    pub entries: Vec<PlaylistEntry>,
    pub discontinuity_sequence: u64,
}

/// The state an earlier run left on the origin.
#[derive(Default)]
pub struct Resume {
    /// The newest windows already published, oldest first (as `live.json` lists them).
    pub closed: Vec<u64>,
    /// SHA-256 of the newest published manifest: the next window chains to it.
    pub newest_manifest_sha256: Option<String>,
    /// (angle, rung) and its published playlist.
    pub playlists: Vec<(String, String, RestoredPlaylist)>,
    /// Published segments of windows that were never closed, to close them now.
    pub open_segments: Vec<WindowSegment>,
}

impl Resume {
    /// Whether an earlier run left anything to continue.
    pub fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.playlists.is_empty()
    }

    /// The newest window already closed and published.
    pub fn newest_closed(&self) -> Option<u64> {
        self.closed.last().copied()
    }
}

/// Checks `live.json` against its signature and the match's Ed25519 public key, and that it
/// names `match_id`.
pub fn parse_pointer(
    path: &str,
    match_id: &str,
    bytes: &[u8],
    sig: &[u8],
    public_key: &[u8],
) -> Result<LivePointer, ResumeError> {
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key);
    key.verify(bytes, sig)
        .map_err(|_| ResumeError::ForeignPointer {
            path: path.to_string(),
        })?;
    parse_pointer_unsigned(path, match_id, bytes)
}

/// Parses `live.json` without its signature, checking only that it names `match_id`. For a
/// torn pair only (a crash between `live.json` and `live.json.sig`): what it says must then be
/// checked against the signed window manifests it names.
pub fn parse_pointer_unsigned(
    path: &str,
    match_id: &str,
    bytes: &[u8],
) -> Result<LivePointer, ResumeError> {
    let pointer: LivePointer = serde_json::from_slice(bytes).map_err(|e| ResumeError::Pointer {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    if pointer.match_id != match_id {
        return Err(ResumeError::ForeignMatch {
            path: path.to_string(),
            found: pointer.match_id,
        });
    }
    Ok(pointer)
}

/// Reads a published media playlist back into entries.
pub fn parse_playlist(path: &str, bytes: &[u8]) -> Result<RestoredPlaylist, ResumeError> {
    let bad = |message: String| ResumeError::Playlist {
        path: path.to_string(),
        message,
    };
    let playlist = match m3u8_rs::parse_playlist_res(bytes) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        Ok(_) => {
            return Err(bad(
                "a multivariant playlist, expected a media playlist".into()
            ));
        }
        Err(e) => return Err(bad(format!("not a playlist: {e:?}"))),
    };
    let mut entries = Vec::with_capacity(playlist.segments.len());
    for s in &playlist.segments {
        let seq = s
            .uri
            .strip_suffix(".ts")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad(format!("segment URI {:?}, expected SEQ.ts", s.uri)))?;
        let pdt = s
            .program_date_time
            .ok_or_else(|| bad(format!("{}: no EXT-X-PROGRAM-DATE-TIME", s.uri)))?;
        let pdt_ns = pdt
            .timestamp_nanos_opt()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad(format!("{}: date out of range", s.uri)))?;
        let key = match &s.key {
            Some(k) => Some(SegmentKey {
                uri: k.uri.clone().unwrap_or_default(),
                iv: parse_iv(k.iv.as_deref()).ok_or_else(|| {
                    bad(format!("{}: IV {:?}, expected 0x + 32 hex", s.uri, k.iv))
                })?,
            }),
            None => None,
        };
        let signature = SegmentSignature::find(&s.unknown_tags)
            .transpose()
            .map_err(|e| bad(format!("{}: #EXT-{TAG}: {e}", s.uri)))?;
        let gap_signature = GapSignature::find(&s.unknown_tags)
            .transpose()
            .map_err(|e| bad(format!("{}: #EXT-{GAP_TAG}: {e}", s.uri)))?;
        entries.push(PlaylistEntry {
            seq: Seq::new(seq),
            duration: s.duration as f64,
            pdt: UtcNs(pdt_ns as u64),
            discontinuity: s.discontinuity,
            key,
            signature,
            gap: s
                .unknown_tags
                .iter()
                .any(|t| t.tag == super::segment_key::GAP_TAG),
            gap_signature,
        });
    }
    Ok(RestoredPlaylist {
        entries,
        discontinuity_sequence: playlist.discontinuity_sequence,
    })
}

pub use super::segment_key::parse_iv;

/// How many leading entries of a published playlist (at `dir` = `{match}/{angle}/{rung}`)
/// the match key vouches for, and why the next one is not. An entry counts when its segment
/// signature verifies, or when it is a gap whose gap signature (`#EXT-X-SWARMPACK-GAP`)
/// verifies; and only up to `latest`, the newest seq the wall clock allows (a seq ahead of
/// it was never encoded, whatever signs it). A restart, a redundant joiner and an angle-group
/// follower keep only that prefix: nothing unsigned, and no seq from the future, moves
/// their floor.
pub fn verified_prefix(
    dir: &str,
    entries: &[PlaylistEntry],
    public_key: &[u8],
    latest: Seq,
) -> (usize, Option<String>) {
    for (i, e) in entries.iter().enumerate() {
        let path = format!("{dir}/{}.ts", e.seq);
        let signed_gap = || {
            e.gap
                && e.gap_signature
                    .as_ref()
                    .is_some_and(|g| g.verifies(public_key, &path))
        };
        let why = match &e.signature {
            None if signed_gap() => None,
            None if e.gap => Some(format!(
                "a gap (EXT-X-GAP) without a #EXT-{GAP_TAG} signature that verifies with this match's key"
            )),
            None => Some(format!("no #EXT-{TAG} tag")),
            Some(sig) if !sig.verifies(public_key, &path, e.key.as_ref()) => Some(
                "its segment signature does not verify (path, key URI or IV changed, or another key)"
                    .to_string(),
            ),
            Some(_) => None,
        };
        let why = match why {
            Some(why) => why,
            None if e.seq > latest => format!(
                "seq {} is ahead of the wall clock (newest possible {latest})",
                e.seq
            ),
            None => continue,
        };
        return (i, Some(format!("{path}: {why}")));
    }
    (entries.len(), None)
}

/// A published segment of a window that is still open, as the window book wants it; None
/// when the bytes are not the ones its (verified) tag describes.
pub fn open_segment(
    angle: &str,
    rung: &str,
    entry: &PlaylistEntry,
    bytes: Vec<u8>,
) -> Option<WindowSegment> {
    let sig = entry.signature.as_ref()?;
    if !sig.describes(&bytes) {
        return None;
    }
    Some(WindowSegment {
        angle: angle.to_string(),
        rung: rung.to_string(),
        seq: entry.seq,
        duration_ns: (entry.duration * NS_PER_SEC as f64).round() as u64,
        sha256: sig.sha256,
        bytes,
        key: entry.key.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::playlist::LivePlaylist;
    use crate::timecode::Timeline;

    #[test]
    fn published_playlists_read_back_to_the_same_entries() {
        let tl = Timeline::new(2000, 5);
        let mut live = LivePlaylist::new(&tl, 10);
        for (i, seq) in [100u64, 101, 103].into_iter().enumerate() {
            live.push(PlaylistEntry {
                seq: Seq::new(seq),
                duration: 2.0,
                pdt: tl.seq_start(Seq::new(seq)),
                discontinuity: i == 2,
                key: Some(SegmentKey {
                    uri: format!("http://k/keys/m/{}", seq / 5),
                    iv: [seq as u8; 16],
                }),
                signature: None,
                gap: false,
                gap_signature: None,
            });
        }
        let text = live.render();
        let back = parse_playlist("m/a/hi/index.m3u8", text.as_bytes()).unwrap();
        assert_eq!(back.entries, live.entries().cloned().collect::<Vec<_>>());
        assert_eq!(back.discontinuity_sequence, 0);
    }

    #[test]
    fn bad_playlists_name_the_path_and_the_problem() {
        let e = parse_playlist(
            "m/a/hi/index.m3u8",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nx.ts\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("m/a/hi/index.m3u8: segment URI \"x.ts\""),
            "{e}"
        );
        assert_eq!(parse_iv(Some("0x00")), None);
        assert_eq!(
            parse_iv(Some(&format!("0x{}", "ab".repeat(16)))),
            Some([0xab; 16])
        );
    }

    #[test]
    fn pointers_must_be_signed_by_this_match() {
        let rng = ring::rand::SystemRandom::new();
        let pk8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap();
        use ring::signature::KeyPair;
        let body = br#"{"format":1,"match":"m","windows":[7,6],"newest_manifest_sha256":"ab","ended":false}"#;
        let sig = pair.sign(body);
        let p = parse_pointer(
            "m/live.json",
            "m",
            body,
            sig.as_ref(),
            pair.public_key().as_ref(),
        )
        .unwrap();
        assert_eq!(p.windows, vec![7, 6]);
        let other = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let other = ring::signature::Ed25519KeyPair::from_pkcs8(other.as_ref()).unwrap();
        assert!(matches!(
            parse_pointer(
                "o/live.json",
                "o",
                body,
                sig.as_ref(),
                pair.public_key().as_ref()
            ),
            Err(ResumeError::ForeignMatch { .. })
        ));
        let e = parse_pointer(
            "m/live.json",
            "m",
            body,
            sig.as_ref(),
            other.public_key().as_ref(),
        )
        .unwrap_err();
        assert!(matches!(e, ResumeError::ForeignPointer { .. }));
    }
}
