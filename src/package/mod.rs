//! The packager: pure core from encoded segments to the objects the origin stores.
//!
//! It is a push/pull state machine: `push` an [`EncodedSegment`], then `pull` until `None`.
//! Outputs come out in the order they must be published: a segment before the playlist that
//! names it; the multivariant playlists first of all. Nothing here knows about GStreamer,
//! threads, the network or the disk.

pub mod archive;
pub mod chain;
pub mod codec;
pub mod crypt;
pub mod hex;
pub mod manifest;
pub mod marker;
pub mod p2p;
pub mod playlist;
pub mod remote;
pub mod resume;
pub mod segment;
pub mod segment_sig;
pub mod torrent;
pub mod window;

use crate::profile::Profile;
use crate::timecode::{NS_PER_SEC, Seq, Timeline};
use playlist::{LivePlaylist, PlaylistEntry, SegmentKey};
pub use segment::{EncodedSegment, SegmentAssembler};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What a published object is, so the publisher can order and retry it appropriately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Segment,
    MediaPlaylist,
    MasterPlaylist,
    /// `pubkey.pem`, published once.
    PublicKey,
    /// A window's `.torrent`.
    Torrent,
    /// A window manifest or its signature.
    Manifest,
    /// `live.json` or its signature.
    Pointer,
    /// A zero-filled BEP 47 pad file for web seeds of clients that ignore BEP 47.
    Pad,
}

impl ObjectKind {
    /// Whether the object never changes once published (a segment, a window's manifest,
    /// signature and torrent, a pad, the public key), so the origin may refuse to replace it.
    /// Playlists and `live.json` move with the match.
    pub fn is_immutable(self) -> bool {
        !matches!(
            self,
            ObjectKind::MediaPlaylist | ObjectKind::MasterPlaylist | ObjectKind::Pointer
        )
    }
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 8] = [
        ObjectKind::Segment,
        ObjectKind::MediaPlaylist,
        ObjectKind::MasterPlaylist,
        ObjectKind::PublicKey,
        ObjectKind::Torrent,
        ObjectKind::Manifest,
        ObjectKind::Pointer,
        ObjectKind::Pad,
    ];

    /// A stable lower-case name (spool records, logs, metrics labels).
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Segment => "segment",
            ObjectKind::MediaPlaylist => "media-playlist",
            ObjectKind::MasterPlaylist => "master-playlist",
            ObjectKind::PublicKey => "public-key",
            ObjectKind::Torrent => "torrent",
            ObjectKind::Manifest => "manifest",
            ObjectKind::Pointer => "pointer",
            ObjectKind::Pad => "pad",
        }
    }

    pub fn from_name(name: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Replaced whole as the match goes on (an older queued copy is obsolete).
    pub fn is_replaceable(self) -> bool {
        matches!(self, ObjectKind::MediaPlaylist | ObjectKind::Pointer)
    }
}

/// One object for the origin, at a path relative to the origin root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub path: String,
    pub bytes: Vec<u8>,
    pub kind: ObjectKind,
}

impl Object {
    /// A JSON document and its detached Ed25519 signature (`{path}.sig`), both of `kind`.
    pub fn signed(
        path: String,
        json: Vec<u8>,
        kind: ObjectKind,
        signer: &dyn manifest::Signer,
    ) -> [Object; 2] {
        let sig = signer.sign(&json).to_vec();
        let sig_path = format!("{path}.sig");
        [
            Object {
                path,
                bytes: json,
                kind,
            },
            Object {
                path: sig_path,
                bytes: sig,
                kind,
            },
        ]
    }
}

/// Why the packager refused a segment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackageError {
    #[error("segment for unknown angle/rung {angle}/{rung}")]
    Unknown { angle: String, rung: String },
    #[error(
        "{angle}/{rung}: seq {seq} is not after {last}; dropped to keep the playlist monotonic"
    )]
    OutOfOrder {
        angle: String,
        rung: String,
        seq: Seq,
        last: Seq,
    },
}

/// How segments leave the packager: [`crypt::Aes128`] encrypts them (every real match);
/// `Clear` stores them as encoded (for tests of the packager itself).
pub trait Protection: Send {
    /// Transforms the bytes in place for storage and returns the EXT-X-KEY for them.
    fn seal(&mut self, segment: &mut EncodedSegment) -> Option<SegmentKey>;
}

/// A segment sealed for storage (encrypted, with its EXT-X-KEY), not yet packaged.
#[derive(Debug)]
pub struct Sealed {
    pub segment: EncodedSegment,
    pub key: Option<SegmentKey>,
    /// SHA-256 of `segment.bytes`, when a stage before packaging computed it already (a
    /// redundant run's claim), so the packager does not hash the segment again.
    pub sha256: Option<[u8; 32]>,
}

impl Sealed {
    /// Where the segment goes on the origin.
    pub fn path(&self, match_id: &str) -> String {
        segment_path(
            match_id,
            &self.segment.angle,
            &self.segment.rung,
            self.segment.seq,
        )
    }
}

/// `{match}/{angle}/{rung}/{seq}.ts`.
pub fn segment_path(match_id: &str, angle: &str, rung: &str, seq: Seq) -> String {
    format!("{match_id}/{angle}/{rung}/{seq}.ts")
}

/// No encryption.
pub struct Clear;

impl Protection for Clear {
    fn seal(&mut self, _segment: &mut EncodedSegment) -> Option<SegmentKey> {
        None
    }
}

/// Packages one match.
pub struct Packager {
    match_id: String,
    timeline: Timeline,
    protection: Box<dyn Protection>,
    /// (angle, rung) → its live playlist.
    playlists: HashMap<(String, String), LivePlaylist>,
    /// Signs every segment's `#EXT-X-SWARMPACK-SEGMENT` tag, when signing is on.
    signer: Option<Arc<dyn manifest::Signer>>,
    /// Window manifests and torrents, when signing is on.
    windows: Option<window::WindowBook>,
    /// Segments not yet given to the window book: a window is hashed and signed only when the
    /// objects before it have been pulled, so a closing segment is published without waiting.
    window_pending: VecDeque<window::WindowSegment>,
    /// Renditions continued from an earlier run, and the highest seq that run may have put on
    /// the origin (its last listed seq + 1: a segment goes up before the playlist naming it).
    /// Their next segment must come after it, and follows a discontinuity.
    restarted: HashMap<(String, String), Seq>,
    /// One of several redundant runs: what [`Packager::resume`] restores is another live
    /// run's work, continued without a discontinuity (every segment was claimed on the
    /// origin, so the next one cannot clash with an unlisted one).
    redundant: bool,
    /// Renditions other machines encode ([`remote`]), and their playlists as last published.
    remote: Vec<(String, String)>,
    remote_playlists: HashMap<(String, String), resume::RestoredPlaylist>,
    /// Segments a media playlist keeps.
    dvr: usize,
    out: VecDeque<Object>,
}

impl Packager {
    /// A packager for `angles` × the profile's rungs. The multivariant playlists are the
    /// first outputs.
    pub fn new(
        match_id: &str,
        profile: &Profile,
        angles: &[String],
        protection: Box<dyn Protection>,
    ) -> Self {
        let timeline = profile.timeline();
        let dvr = profile.segment.dvr_segments();
        let mut out = VecDeque::new();
        let master = |path: String, text: String| Object {
            path,
            bytes: text.into_bytes(),
            kind: ObjectKind::MasterPlaylist,
        };
        out.push_back(master(
            format!("{match_id}/master.m3u8"),
            playlist::render_master(&playlist::match_master(profile, angles)),
        ));
        out.push_back(master(
            format!("{match_id}/p2p.json"),
            p2p::P2pDoc::new(match_id, profile).to_json(),
        ));
        let angle_master = playlist::render_master(&playlist::angle_master(profile));
        let mut playlists = HashMap::new();
        for angle in angles {
            out.push_back(master(
                format!("{match_id}/{angle}/master.m3u8"),
                angle_master.clone(),
            ));
            for rung in &profile.rungs {
                playlists.insert(
                    (angle.clone(), rung.name.clone()),
                    LivePlaylist::new(&timeline, dvr),
                );
            }
        }
        Packager {
            match_id: match_id.to_string(),
            timeline,
            protection,
            playlists,
            signer: None,
            windows: None,
            window_pending: VecDeque::new(),
            restarted: HashMap::new(),
            redundant: false,
            remote: Vec::new(),
            remote_playlists: HashMap::new(),
            dvr,
            out,
        }
    }

    /// Turns on segment signatures, window manifests, torrents and `live.json`, signed by
    /// `signer`, and queues `pubkey.pem` (the SPKI PEM of the signer's key) right after the
    /// multivariant playlists.
    pub fn sign_windows(
        mut self,
        profile: &Profile,
        signer: Arc<dyn manifest::Signer>,
        pubkey_pem: &str,
    ) -> Self {
        self.out.push_back(Object {
            path: format!("{}/pubkey.pem", self.match_id),
            bytes: pubkey_pem.as_bytes().to_vec(),
            kind: ObjectKind::PublicKey,
        });
        // p2p.json names the trackers (and ICE servers) every viewer's browser contacts:
        // the player takes it only with a signature of the match key.
        self.out.push_back(Object {
            path: format!("{}/p2p.json.sig", self.match_id),
            bytes: signer
                .sign(
                    p2p::P2pDoc::new(&self.match_id, profile)
                        .to_json()
                        .as_bytes(),
                )
                .to_vec(),
            kind: ObjectKind::MasterPlaylist,
        });
        let renditions = self.playlists.len();
        let mut book = window::WindowBook::new(&self.match_id, profile, renditions, signer.clone());
        book.add_remote(self.remote.iter().cloned());
        self.windows = Some(book);
        self.signer = Some(signer);
        self
    }

    /// The match this packager packages.
    pub fn match_id(&self) -> &str {
        &self.match_id
    }

    /// Packages as one of several redundant runs of the match (`run --redundant`).
    pub fn redundant(mut self) -> Self {
        self.redundant = true;
        self
    }

    /// Continues a match from what an earlier run published: its playlists (the next segment
    /// of each follows a discontinuity), its hash chain, and the segments of windows it never
    /// closed (they close with the new segments of the same window).
    pub fn resume(&mut self, resume: resume::Resume) {
        for (angle, rung, restored) in resume.playlists {
            let key = (angle, rung);
            if let Some(p) = self.playlists.get_mut(&key) {
                let last = restored.entries.last().map(|e| e.seq);
                p.restore(restored.entries, restored.discontinuity_sequence);
                if let Some(last) = last
                    && !self.redundant
                {
                    self.restarted.insert(key, Seq(last.0 + 1));
                }
            }
        }
        if let Some(book) = self.windows.as_mut() {
            book.resume(resume.closed, resume.newest_manifest_sha256);
            self.window_pending.extend(resume.open_segments);
        }
    }

    /// Takes one finished segment: queues the (sealed) segment, then its updated playlist.
    pub fn push(&mut self, segment: EncodedSegment) -> Result<(), PackageError> {
        let sealed = self.seal(segment)?;
        self.push_sealed(sealed)
    }

    /// The first half of [`Packager::push`]: checks the segment comes after what its playlist
    /// lists and seals it for storage. A redundant run claims the sealed bytes on the origin
    /// before it packages them.
    pub fn seal(&mut self, mut segment: EncodedSegment) -> Result<Sealed, PackageError> {
        self.check_order(&segment)?;
        let key = self.protection.seal(&mut segment);
        Ok(Sealed {
            segment,
            key,
            sha256: None,
        })
    }

    /// The rendition of `segment` exists and its seq comes after every listed one (and, for a
    /// continued rendition, after what the earlier run may have put up unlisted).
    fn check_order(&self, segment: &EncodedSegment) -> Result<(), PackageError> {
        let key = (segment.angle.to_string(), segment.rung.to_string());
        let playlist = self
            .playlists
            .get(&key)
            .ok_or_else(|| PackageError::Unknown {
                angle: key.0.clone(),
                rung: key.1.clone(),
            })?;
        let floor = self.restarted.get(&key).copied().or(playlist.last_seq());
        match floor {
            Some(last) if segment.seq <= last => Err(PackageError::OutOfOrder {
                angle: key.0,
                rung: key.1,
                seq: segment.seq,
                last,
            }),
            _ => Ok(()),
        }
    }

    /// The second half of [`Packager::push`]: queues the sealed segment (as it is now: a
    /// redundant run may have swapped in the bytes the origin holds), then its updated
    /// playlist, and keeps it for its window.
    pub fn push_sealed(&mut self, sealed: Sealed) -> Result<(), PackageError> {
        self.package(sealed, true)
    }

    /// A sealed segment whose seq is lost (a redundant run found a claim it cannot verify,
    /// or other bytes in the way): it is listed as a signed gap, and neither its bytes nor
    /// a signature for them leave the packager. Its window closes without it.
    pub fn push_lost(&mut self, sealed: Sealed) -> Result<(), PackageError> {
        self.package(sealed, false)
    }

    fn package(&mut self, sealed: Sealed, publish: bool) -> Result<(), PackageError> {
        let Sealed {
            segment,
            key: seg_key,
            sha256: known,
        } = sealed;
        self.check_order(&segment)?;
        let key = (segment.angle.to_string(), segment.rung.to_string());
        let playlist = self.playlists.get_mut(&key).expect("checked above");
        let last = playlist.last_seq();
        let dir = format!("{}/{}/{}", self.match_id, key.0, key.1);
        let path = segment_path(&self.match_id, &key.0, &key.1, segment.seq);
        // Hashed once: the segment's tag and its window manifest share the digest.
        let sha256 = (publish && self.signer.is_some())
            .then(|| known.unwrap_or_else(|| hex::sha256(&segment.bytes)));
        let signature = self.signer.as_ref().zip(sha256).map(|(signer, sha)| {
            segment_sig::SegmentSignature::sign_digest(
                signer.as_ref(),
                &path,
                segment.bytes.len() as u64,
                sha,
                seg_key.as_ref(),
            )
        });
        let window_copy =
            self.windows
                .as_ref()
                .zip(sha256)
                .map(|(_, sha256)| window::WindowSegment {
                    angle: key.0.clone(),
                    rung: key.1.clone(),
                    seq: segment.seq,
                    duration_ns: segment.duration_ns,
                    bytes: segment.bytes.clone(),
                    sha256,
                    key: seg_key.clone(),
                });
        playlist.push(PlaylistEntry {
            seq: segment.seq,
            duration: segment.duration_ns as f64 / NS_PER_SEC as f64,
            pdt: self.timeline.seq_start(segment.seq),
            discontinuity: last.is_some_and(|l| l.0 + 1 != segment.seq.0)
                | self.restarted.remove(&key).is_some(),
            key: seg_key,
            signature,
            gap: !publish,
            gap_signature: self
                .signer
                .as_ref()
                .filter(|_| !publish)
                .map(|s| segment_sig::GapSignature::sign(s.as_ref(), &path)),
        });
        if publish {
            self.out.push_back(Object {
                path,
                bytes: segment.bytes,
                kind: ObjectKind::Segment,
            });
        }
        self.out.push_back(Object {
            path: format!("{dir}/index.m3u8"),
            bytes: playlist.render().into_bytes(),
            kind: ObjectKind::MediaPlaylist,
        });
        self.window_pending.extend(window_copy);
        Ok(())
    }

    /// Adds a marker to every live playlist (from its next update) and to the window
    /// manifest of the window it falls in, if that window is still open. False when every
    /// playlist had it already.
    pub fn add_marker(&mut self, marker: &marker::Marker) -> bool {
        let mut new = false;
        for p in self.playlists.values_mut() {
            new |= p.add_marker(marker);
        }
        if let Some(book) = self.windows.as_mut() {
            book.add_marker(marker);
        }
        new
    }

    /// Publishes `delivery` as the fans' players' policy from now on: `p2p.json` again, with
    /// its signature (players read it every 30 s). Only once windows are signed.
    pub fn set_delivery(&mut self, profile: &Profile, delivery: &crate::profile::Delivery) {
        let Some(signer) = self.signer.as_deref() else {
            return;
        };
        let doc = p2p::P2pDoc::new(&self.match_id, profile).with_delivery(delivery.clone());
        let path = format!("{}/p2p.json", self.match_id);
        self.out.extend(Object::signed(
            path,
            doc.to_json().into_bytes(),
            ObjectKind::MasterPlaylist,
            signer,
        ));
    }

    /// The origin refused the object at `path` for good. A segment becomes a gap in its
    /// playlist (EXT-X-GAP), and the playlist goes out again so players skip it.
    pub fn mark_lost(&mut self, path: &str) {
        let Some(rest) = path.strip_prefix(&format!("{}/", self.match_id)) else {
            return;
        };
        let mut parts = rest.splitn(3, '/');
        let (Some(angle), Some(rung), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let Some(seq) = file.strip_suffix(".ts").and_then(|n| n.parse().ok()) else {
            return;
        };
        let key = (angle.to_string(), rung.to_string());
        let sig = self
            .signer
            .as_ref()
            .map(|s| segment_sig::GapSignature::sign(s.as_ref(), path));
        if let Some(playlist) = self.playlists.get_mut(&key)
            && playlist.mark_gap(Seq(seq), sig)
        {
            self.out.push_back(Object {
                path: format!("{}/{angle}/{rung}/index.m3u8", self.match_id),
                bytes: playlist.render().into_bytes(),
                kind: ObjectKind::MediaPlaylist,
            });
        }
    }

    /// The match is over: every media playlist gets EXT-X-ENDLIST.
    pub fn finish(&mut self) {
        self.feed_windows(usize::MAX);
        if let Some(book) = self.windows.as_mut() {
            let mut closed = Vec::new();
            book.finish(&mut closed);
            self.out.extend(closed);
        }
        let mut keys: Vec<_> = self.playlists.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let playlist = self.playlists.get_mut(&key).expect("key from the map");
            playlist.end();
            self.out.push_back(Object {
                path: format!("{}/{}/{}/index.m3u8", self.match_id, key.0, key.1),
                bytes: playlist.render().into_bytes(),
                kind: ObjectKind::MediaPlaylist,
            });
        }
    }

    /// The next object to publish, in publishing order.
    pub fn pull(&mut self) -> Option<Object> {
        if self.out.is_empty() {
            self.feed_windows(1);
        }
        self.out.pop_front()
    }

    /// Hands pending segments to the window book until one closes a window (or, with
    /// `usize::MAX`, all of them).
    fn feed_windows(&mut self, closes: usize) {
        let Some(book) = self.windows.as_mut() else {
            return;
        };
        let mut closed = Vec::new();
        let mut n = 0;
        while let Some(copy) = self.window_pending.pop_front() {
            book.add(copy, &mut closed);
            if !closed.is_empty() {
                n += 1;
                self.out.extend(closed.drain(..));
                if n >= closes {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod robustness;
#[cfg(test)]
mod tests;
