//! Window manifests: what a peer needs to check every byte of a window it got from strangers.
//!
//! A manifest lists every segment of the window (every angle and rung) with its length and
//! the SHA-256 of its stored (encrypted) bytes, the key period, key URI and IV; the window
//! torrent's infohashes and magnet link; and the SHA-256 of the previous window's manifest
//! file, which chains the windows. The detached signature is 64 raw Ed25519 bytes over the
//! exact file bytes. Pure: the signer is passed in.
//!
//! May call: `hex`, `layout`, `marker`, `sign`.

use serde::{Deserialize, Serialize};

/// Manifest format version.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowManifest {
    pub format: u32,
    #[serde(rename = "match")]
    pub match_id: String,
    pub window: u64,
    /// Seconds.
    pub segment_duration: f64,
    /// RFC 3339 UTC, milliseconds: the start of the window's first segment.
    pub start_pdt: String,
    pub segments: Vec<ManifestSegment>,
    pub torrent: TorrentRef,
    /// Hex SHA-256 of the previous window's manifest file; null for the first window.
    pub prev_manifest_sha256: Option<String>,
    /// The previous window's number when it is not `window - 1` (windows skipped while the
    /// match was down, before a restart); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_window: Option<u64>,
    /// Markers that fall in the window (`EXT-X-DATERANGE` in the playlists); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<super::marker::Marker>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSegment {
    /// Relative to the match directory: `{angle}/{rung}/{seq}.ts`.
    pub path: String,
    pub angle: String,
    pub rung: String,
    pub seq: u64,
    /// Seconds.
    pub duration: f64,
    /// RFC 3339 UTC, milliseconds.
    pub pdt: String,
    /// Bytes as stored (encrypted).
    pub length: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    pub key_period: u64,
    pub key_uri: String,
    /// Hex AES-128-CBC IV.
    pub iv: String,
}

/// How bytes differ from the segment a manifest lists.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("{found} bytes, {expected} listed")]
    Length { found: u64, expected: u64 },
    #[error("SHA-256 {found}, {expected} listed")]
    Sha256 { found: String, expected: String },
}

impl ManifestSegment {
    /// The path it must have, `{angle}/{rung}/{seq}.ts` and plain relative; `Err(expected)`
    /// when it names another (a manifest must not lead a reader elsewhere).
    pub fn check_path(&self) -> Result<(), String> {
        let expected = crate::layout::segment_rel(&self.angle, &self.rung, self.seq);
        if self.path == expected && crate::layout::is_plain_relative(&self.path) {
            Ok(())
        } else {
            Err(expected)
        }
    }

    /// Whether `data` is this segment: its length, then its SHA-256 (returned, hex).
    pub fn check_bytes(&self, data: &[u8]) -> Result<String, Mismatch> {
        if data.len() as u64 != self.length {
            return Err(Mismatch::Length {
                found: data.len() as u64,
                expected: self.length,
            });
        }
        let sha = sha256_hex(data);
        if sha != self.sha256 {
            return Err(Mismatch::Sha256 {
                found: sha,
                expected: self.sha256.clone(),
            });
        }
        Ok(sha)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorrentRef {
    /// `windows/{window}.torrent`, relative to the match directory.
    pub path: String,
    /// Hex SHA-1 infohash (BitTorrent v1).
    pub infohash_v1: String,
    /// Hex SHA-256 infohash (BitTorrent v2).
    pub infohash_v2: String,
    pub magnet: String,
}

/// The signed pointer to the newest windows, so a player can find the head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LivePointer {
    pub format: u32,
    #[serde(rename = "match")]
    pub match_id: String,
    /// Newest window first.
    pub windows: Vec<u64>,
    /// Hex SHA-256 of the newest window's manifest file.
    pub newest_manifest_sha256: String,
    /// Whether the match has ended.
    pub ended: bool,
}

pub use crate::sign::Signer;

pub use crate::hex::{encode as hex, sha256_hex};

/// 16 bytes from 32 hex digits (an IV as manifests write it).
pub fn iv_from_hex(hex: &str) -> Option<[u8; 16]> {
    crate::hex::decode_array(hex)
}

fn percent(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The window's magnet link: both infohashes, name, trackers and the web seed.
pub fn magnet(
    v1: &[u8; 20],
    v2: &[u8; 32],
    name: &str,
    trackers: &[String],
    web_seed: &str,
) -> String {
    let mut m = format!(
        "magnet:?xt=urn:btih:{}&xt=urn:btmh:1220{}&dn={}",
        hex(v1),
        hex(v2),
        percent(name)
    );
    for t in trackers {
        m.push_str(&format!("&tr={}", percent(t)));
    }
    m.push_str(&format!("&ws={}", percent(web_seed)));
    m
}

/// The exact bytes of a JSON document as published: pretty-printed, newline-terminated.
pub fn to_file_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(doc).expect("manifest types serialize");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WindowManifest {
        WindowManifest {
            markers: Vec::new(),
            format: FORMAT,
            match_id: "final".into(),
            window: 179_537_040,
            segment_duration: 2.0,
            start_pdt: "2026-11-22T18:00:00.000Z".into(),
            segments: vec![ManifestSegment {
                path: "main/360p/897685200.ts".into(),
                angle: "main".into(),
                rung: "360p".into(),
                seq: 897_685_200,
                duration: 2.0,
                pdt: "2026-11-22T18:00:00.000Z".into(),
                length: 1024,
                sha256: sha256_hex(b"x"),
                key_period: 179_537_040,
                key_uri: "http://127.0.0.1:8081/keys/final/179537040".into(),
                iv: hex(&[1; 16]),
            }],
            torrent: TorrentRef {
                path: "windows/179537040.torrent".into(),
                infohash_v1: hex(&[2; 20]),
                infohash_v2: hex(&[3; 32]),
                magnet: magnet(
                    &[2; 20],
                    &[3; 32],
                    "final",
                    &["udp://127.0.0.1:6969/announce".into()],
                    "http://127.0.0.1:8080/",
                ),
            },
            prev_manifest_sha256: None,
            prev_window: None,
        }
    }

    #[test]
    fn manifest_json_golden() {
        let bytes = to_file_bytes(&sample());
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/manifest/window.json");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            std::fs::read_to_string(&path).expect("golden (UPDATE_GOLDEN=1)")
        );
    }

    #[test]
    fn manifest_round_trips_and_refuses_unknown_fields() {
        let bytes = to_file_bytes(&sample());
        let back: WindowManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, sample());
        let tampered = String::from_utf8(bytes)
            .unwrap()
            .replace("\"window\":", "\"extra\": 1, \"window\":");
        assert!(serde_json::from_str::<WindowManifest>(&tampered).is_err());
    }

    #[test]
    fn magnet_has_both_hashes_trackers_and_web_seed() {
        let m = sample().torrent.magnet;
        assert!(m.starts_with(&format!(
            "magnet:?xt=urn:btih:{}&xt=urn:btmh:1220{}&dn=final",
            hex(&[2; 20]),
            hex(&[3; 32])
        )));
        assert!(m.contains("&tr=udp%3A%2F%2F127.0.0.1%3A6969%2Fannounce"));
        assert!(m.ends_with("&ws=http%3A%2F%2F127.0.0.1%3A8080%2F"));
    }

    #[test]
    fn ed25519_signatures_verify_over_the_exact_bytes() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let bytes = to_file_bytes(&sample());
        let sig = Signer::sign(&key, &bytes);
        use ring::signature::KeyPair;
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ED25519,
            key.public_key().as_ref(),
        );
        assert!(public.verify(&bytes, &sig).is_ok());
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert!(public.verify(&flipped, &sig).is_err());
    }
}
