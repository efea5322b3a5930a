//! What the packager hands out: objects for the origin (with their kind, which orders and
//! retries them in the publisher), sealed segments, and how segments are protected.
//!
//! A leaf: calls only the playlist's key type and the manifest signer.

use super::manifest;
use super::playlist::SegmentKey;
use super::segment::EncodedSegment;

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
        let sig_path = crate::layout::sig(&path);
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
        crate::layout::segment(
            match_id,
            &self.segment.angle,
            &self.segment.rung,
            self.segment.seq,
        )
    }
}

/// No encryption.
pub struct Clear;

impl Protection for Clear {
    fn seal(&mut self, _segment: &mut EncodedSegment) -> Option<SegmentKey> {
        None
    }
}
