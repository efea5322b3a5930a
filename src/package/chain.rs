//! The hash chain of window manifests, one link at a time: `live.json` names the newest
//! manifest's SHA-256, and each manifest names its predecessor's. Every reader of the chain
//! (`verify`, `archive`, the edge seeder) checks a link the same way here. Pure: bytes in.
//!
//! May call: `hex`, `layout`, `manifest`.

use super::manifest::{LivePointer, WindowManifest};
use crate::hex::sha256_hex;
use ring::signature::{ED25519, UnparsedPublicKey};

/// What the chain expects of the next manifest to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub window: u64,
    /// Hex SHA-256 of its file.
    pub sha256: String,
}

impl Link {
    /// `{match}/windows/{window}.json`, relative to the match directory.
    pub fn path(&self) -> String {
        crate::layout::window_manifest_rel(self.window)
    }
}

/// Why a link does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("signature does not verify with this match's key")]
    Signature,
    #[error("SHA-256 {found}, but the chain expects {expected}")]
    Hash { found: String, expected: String },
    #[error("not a window manifest: {0}")]
    Parse(String),
    #[error("says match {found:?}, expected {expected:?}")]
    Match { found: String, expected: String },
    #[error("says window {found}, expected {expected} (swapped manifest)")]
    Window { found: u64, expected: u64 },
    #[error("links back to window {0}, which is not older")]
    NotOlder(u64),
}

/// The newest link, as a verified `live.json` names it.
pub fn head(pointer: &LivePointer) -> Option<Link> {
    pointer.windows.first().map(|&window| Link {
        window,
        sha256: pointer.newest_manifest_sha256.clone(),
    })
}

/// Checks one manifest file against its detached signature and the chain's expectation, and
/// returns it with the link to its predecessor (None at the start of the chain).
pub fn check(
    match_id: &str,
    link: &Link,
    file: &[u8],
    sig: &[u8],
    public_key: &[u8],
) -> Result<(WindowManifest, Option<Link>), LinkError> {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(file, sig)
        .map_err(|_| LinkError::Signature)?;
    let doc: WindowManifest =
        serde_json::from_slice(file).map_err(|e| LinkError::Parse(e.to_string()))?;
    if doc.match_id != match_id {
        return Err(LinkError::Match {
            found: doc.match_id,
            expected: match_id.to_string(),
        });
    }
    if doc.window != link.window {
        return Err(LinkError::Window {
            found: doc.window,
            expected: link.window,
        });
    }
    let found = sha256_hex(file);
    if found != link.sha256 {
        return Err(LinkError::Hash {
            found,
            expected: link.sha256.clone(),
        });
    }
    let prev = previous(&doc)?;
    Ok((doc, prev))
}

/// The link from a manifest to its predecessor; always to an older window, so a walk ends.
pub fn previous(doc: &WindowManifest) -> Result<Option<Link>, LinkError> {
    let (Some(sha256), Some(window)) = (
        doc.prev_manifest_sha256.clone(),
        doc.prev_window.or(doc.window.checked_sub(1)),
    ) else {
        return Ok(None);
    };
    if window >= doc.window {
        return Err(LinkError::NotOlder(window));
    }
    Ok(Some(Link { window, sha256 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::manifest::{TorrentRef, to_file_bytes};
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn doc(window: u64, prev: Option<String>, prev_window: Option<u64>) -> WindowManifest {
        WindowManifest {
            markers: Vec::new(),
            format: 1,
            match_id: "final".into(),
            window,
            segment_duration: 2.0,
            start_pdt: String::new(),
            segments: Vec::new(),
            torrent: TorrentRef {
                path: String::new(),
                infohash_v1: String::new(),
                infohash_v2: String::new(),
                magnet: String::new(),
            },
            prev_manifest_sha256: prev,
            prev_window,
        }
    }

    #[test]
    fn links_check_signature_hash_match_and_number() {
        let key = Ed25519KeyPair::from_seed_unchecked(&[3; 32]).unwrap();
        let pk = key.public_key().as_ref();
        let first = to_file_bytes(&doc(7, None, None));
        let second = to_file_bytes(&doc(8, Some(sha256_hex(&first)), None));
        let sig = |b: &[u8]| key.sign(b).as_ref().to_vec();
        let link = Link {
            window: 8,
            sha256: sha256_hex(&second),
        };
        let (d, prev) = check("final", &link, &second, &sig(&second), pk).unwrap();
        assert_eq!(d.window, 8);
        let prev = prev.unwrap();
        assert_eq!(prev.path(), "windows/7.json");
        let (_, end) = check("final", &prev, &first, &sig(&first), pk).unwrap();
        assert_eq!(end, None);

        let stale = Link {
            window: 8,
            sha256: prev.sha256.clone(),
        };
        assert_eq!(
            check("final", &stale, &second, &sig(&second), pk).unwrap_err(),
            LinkError::Hash {
                found: sha256_hex(&second),
                expected: prev.sha256.clone()
            }
        );
        assert_eq!(
            check("final", &link, &second, &sig(&first), pk).unwrap_err(),
            LinkError::Signature
        );
        assert!(matches!(
            check("other", &link, &second, &sig(&second), pk).unwrap_err(),
            LinkError::Match { .. }
        ));
        let moved = Link {
            window: 9,
            sha256: link.sha256.clone(),
        };
        assert!(matches!(
            check("final", &moved, &second, &sig(&second), pk).unwrap_err(),
            LinkError::Window { found: 8, .. }
        ));
    }

    #[test]
    fn a_link_to_itself_or_forward_is_refused() {
        assert_eq!(
            previous(&doc(8, Some("ab".into()), Some(8))),
            Err(LinkError::NotOlder(8))
        );
        assert_eq!(
            previous(&doc(8, Some("ab".into()), Some(9))),
            Err(LinkError::NotOlder(9))
        );
        assert_eq!(previous(&doc(0, Some("ab".into()), None)), Ok(None));
    }
}
