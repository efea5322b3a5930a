//! The packager: pure core from encoded segments to the objects the origin stores.
//!
//! It is the one state machine that decides what a match publishes: [`Packager::push`] an
//! [`Input`] (a segment, a claim's answer, a refused object, a marker, a delivery policy, a
//! remote angle's segment or playlist, the origin's answer about the chain, a clock tick),
//! then [`Packager::pull`] [`Output`]s until `None`: objects to put, claims to make, questions
//! to ask. Outputs come out in the order they must be carried out: a segment before the
//! playlist that names it; the multivariant playlists first of all. Nothing here knows about
//! GStreamer, threads, the network, the disk or the clock.
//!
//! May call (the whole room): `hex`, `keys`, `layout`, `profile`, `sign`, `timecode`.

pub mod angle_group;
pub mod bencode;
pub mod chain;
pub mod codec;
pub mod crypt;
mod input;
pub mod manifest;
pub mod marker;
mod object;
pub mod p2p;
pub mod playlist;
pub mod published;
pub mod segment;
pub mod segment_key;
pub mod segment_sig;
pub mod torrent;
pub mod vod;
pub mod window;
mod window_close;

use crate::profile::Profile;
use crate::rendition::Rendition;
use crate::timecode::{NS_PER_SEC, Seq, Timeline};
pub use input::{Held, Input, Output};
pub use object::{Clear, Object, ObjectKind, Protection, Sealed};
use playlist::{LivePlaylist, PlaylistEntry};
pub use segment::{EncodedSegment, SegmentAssembler};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
pub use window_close::grace as window_grace;

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

/// Packages one match.
pub struct Packager {
    match_id: String,
    timeline: Timeline,
    protection: Box<dyn Protection>,
    /// (angle, rung) → its live playlist.
    playlists: HashMap<Rendition, LivePlaylist>,
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
    restarted: HashMap<Rendition, Seq>,
    /// One of several redundant runs: what [`Packager::resume`] restores is another live
    /// run's work, continued without a discontinuity (every segment was claimed on the
    /// origin, so the next one cannot clash with an unlisted one).
    redundant: bool,
    /// Renditions other machines encode ([`remote`]), and their playlists as last published.
    remote: Vec<Rendition>,
    remote_playlists: HashMap<Rendition, published::RestoredPlaylist>,
    /// Segments a media playlist keeps.
    dvr: usize,
    out: VecDeque<Output>,
    /// Angle groups: when windows with remote renditions close.
    closer: window_close::WindowClose,
    /// The `p2p.json` of the profile, before any delivery policy change.
    p2p: p2p::P2pDoc,
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
        let master = |path: String, text: String| {
            Output::Put(Object {
                path,
                bytes: text.into_bytes(),
                kind: ObjectKind::MasterPlaylist,
            })
        };
        out.push_back(master(
            crate::layout::master(match_id),
            playlist::render_master(&playlist::match_master(profile, angles)),
        ));
        out.push_back(master(
            crate::layout::p2p(match_id),
            p2p::P2pDoc::new(match_id, profile).to_json(),
        ));
        let angle_master = playlist::render_master(&playlist::angle_master(profile));
        let mut playlists = HashMap::new();
        for angle in angles {
            out.push_back(master(
                crate::layout::angle_master(match_id, angle),
                angle_master.clone(),
            ));
            for rung in &profile.rungs {
                playlists.insert(
                    Rendition::new(angle.clone(), rung.name.clone()),
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
            closer: window_close::WindowClose::new(timeline),
            p2p: p2p::P2pDoc::new(match_id, profile),
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
        let pubkey = Object {
            path: crate::layout::pubkey(&self.match_id),
            bytes: pubkey_pem.as_bytes().to_vec(),
            kind: ObjectKind::PublicKey,
        };
        // p2p.json names the trackers (and ICE servers) every viewer's browser contacts:
        // the player takes it only with a signature of the match key.
        let p2p_sig = Object {
            path: crate::layout::sig(&crate::layout::p2p(&self.match_id)),
            bytes: signer.sign(self.p2p.to_json().as_bytes()).to_vec(),
            kind: ObjectKind::MasterPlaylist,
        };
        self.put([pubkey, p2p_sig]);
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
    fn resume(&mut self, resume: published::Resume) {
        for (angle, rung, restored) in resume.playlists {
            let key = Rendition::new(angle, rung);
            if let Some(p) = self.playlists.get_mut(&key) {
                let last = restored.entries.last().map(|e| e.seq);
                p.restore(restored.entries, restored.discontinuity_sequence);
                if let Some(last) = last
                    && !self.redundant
                {
                    self.restarted.insert(key, last.next());
                }
            }
        }
        if let Some(book) = self.windows.as_mut() {
            book.resume(resume.closed, resume.newest_manifest_sha256);
            self.window_pending.extend(resume.open_segments);
        }
    }

    /// Checks the segment comes after what its playlist lists and seals it for storage. A
    /// redundant run claims the sealed bytes on the origin before it packages them.
    fn seal(&mut self, mut segment: EncodedSegment) -> Result<Sealed, PackageError> {
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
        let key = segment.rendition();
        let playlist = self
            .playlists
            .get(&key)
            .ok_or_else(|| PackageError::Unknown {
                angle: key.angle.clone(),
                rung: key.rung.clone(),
            })?;
        let floor = self.restarted.get(&key).copied().or(playlist.last_seq());
        match floor {
            Some(last) if segment.seq <= last => Err(PackageError::OutOfOrder {
                angle: key.angle,
                rung: key.rung,
                seq: segment.seq,
                last,
            }),
            _ => Ok(()),
        }
    }

    /// Queues the sealed segment (as it is now: a redundant run may have swapped in the bytes
    /// the origin holds), then its updated playlist, and keeps it for its window. A segment
    /// not to `publish` (its seq lost) is listed as a signed gap, and neither its bytes nor a
    /// signature for them leave the packager; its window closes without it.
    fn package(&mut self, sealed: Sealed, publish: bool) -> Result<(), PackageError> {
        let Sealed {
            segment,
            key: seg_key,
            sha256: known,
        } = sealed;
        self.check_order(&segment)?;
        let key = segment.rendition();
        let playlist = self.playlists.get_mut(&key).expect("checked above");
        let last = playlist.last_seq();
        let path = crate::layout::segment(&self.match_id, &key.angle, &key.rung, segment.seq);
        // Hashed once: the segment's tag and its window manifest share the digest.
        let sha256 = (publish && self.signer.is_some())
            .then(|| known.unwrap_or_else(|| crate::hex::sha256(&segment.bytes)));
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
                    angle: key.angle.clone(),
                    rung: key.rung.clone(),
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
            discontinuity: last.is_some_and(|l| l.get() + 1 != segment.seq.get())
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
        let playlist = Object {
            path: crate::layout::media_playlist(&self.match_id, &key.angle, &key.rung),
            bytes: playlist.render().into_bytes(),
            kind: ObjectKind::MediaPlaylist,
        };
        if publish {
            self.put([Object {
                path,
                bytes: segment.bytes,
                kind: ObjectKind::Segment,
            }]);
        }
        self.put([playlist]);
        self.window_pending.extend(window_copy);
        Ok(())
    }

    /// Adds a marker to every live playlist (from its next update) and to the window
    /// manifest of the window it falls in, if that window is still open.
    fn add_marker(&mut self, marker: &marker::Marker) {
        let mut new = false;
        for p in self.playlists.values_mut() {
            new |= p.add_marker(marker);
        }
        if let Some(book) = self.windows.as_mut() {
            book.add_marker(marker);
        }
        if new {
            tracing::info!(
                "marker {} ({}) at {}",
                marker.label,
                marker.class.as_deref().unwrap_or("no class"),
                marker.start
            );
        }
    }

    /// Publishes `delivery` as the fans' players' policy from now on: `p2p.json` again, with
    /// its signature (players read it every 30 s). Only once windows are signed.
    fn set_delivery(&mut self, delivery: crate::profile::Delivery) {
        let Some(signer) = self.signer.as_deref() else {
            return;
        };
        let doc = self.p2p.clone().with_delivery(delivery);
        let path = crate::layout::p2p(&self.match_id);
        let signed = Object::signed(
            path,
            doc.to_json().into_bytes(),
            ObjectKind::MasterPlaylist,
            signer,
        );
        self.put(signed);
    }

    /// The origin refused the object at `path` for good. A segment becomes a gap in its
    /// playlist (EXT-X-GAP), and the playlist goes out again so players skip it.
    fn mark_lost(&mut self, path: &str) {
        let Some((angle, rung, seq)) = crate::layout::parse_segment(&self.match_id, path) else {
            return;
        };
        let key = Rendition::new(angle, rung);
        let sig = self
            .signer
            .as_ref()
            .map(|s| segment_sig::GapSignature::sign(s.as_ref(), path));
        if let Some(playlist) = self.playlists.get_mut(&key)
            && playlist.mark_gap(seq, sig)
        {
            let object = Object {
                path: crate::layout::media_playlist(&self.match_id, angle, rung),
                bytes: playlist.render().into_bytes(),
                kind: ObjectKind::MediaPlaylist,
            };
            self.put([object]);
        }
    }

    /// The match is over: every media playlist gets EXT-X-ENDLIST.
    fn finish(&mut self) {
        self.feed_windows(usize::MAX);
        if let Some(book) = self.windows.as_mut() {
            let mut closed = Vec::new();
            book.finish(&mut closed);
            self.put(closed);
        }
        let mut keys: Vec<_> = self.playlists.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let playlist = self.playlists.get_mut(&key).expect("key from the map");
            playlist.end();
            let object = Object {
                path: crate::layout::media_playlist(&self.match_id, &key.angle, &key.rung),
                bytes: playlist.render().into_bytes(),
                kind: ObjectKind::MediaPlaylist,
            };
            self.put([object]);
        }
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
                self.out.extend(closed.drain(..).map(Output::Put));
                if n >= closes {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod input_tests;
#[cfg(test)]
mod robustness;
#[cfg(test)]
mod tests;
