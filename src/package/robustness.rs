//! The robustness suite: every parser that reads bytes from outside (a published playlist, a
//! segment tag, a window manifest and `live.json` as restart, verify and the edge seeder read
//! them, a torrent, a profile, a redundant run's segment claim, a signed gap, a signed
//! `p2p.json`) is fed random bytes and mutations of real fixtures. The property: no panic,
//! and an error rather than a wrong value when the input is not valid; for the signed
//! formats, nothing changed from what the key signed ever verifies.
//! Tokens have their own properties in `keys::token`.

use super::{chain, published, segment_sig, torrent};
use proptest::prelude::*;
use std::path::Path;

const LIVE: &[u8] = include_bytes!("../../tests/fixtures/playlists/live.m3u8");
const ENCRYPTED: &[u8] = include_bytes!("../../tests/fixtures/playlists/encrypted-ended.m3u8");
const MASTER: &[u8] = include_bytes!("../../tests/fixtures/playlists/match-master.m3u8");
const MANIFEST: &[u8] = include_bytes!("../../tests/fixtures/manifest/window.json");
const TORRENT: &[u8] = include_bytes!("../../tests/fixtures/torrent/window.torrent");
const PROFILE: &str = include_str!("../../profiles/demo.toml");

/// `base` with `edits` applied: each (position, byte) overwrites, inserts or deletes.
fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(pos, byte, op) in edits {
        if out.is_empty() {
            out.push(byte);
            continue;
        }
        let at = pos % out.len();
        match op % 3 {
            0 => out[at] = byte,
            1 => out.insert(at, byte),
            _ => {
                out.remove(at);
            }
        }
    }
    out
}

/// Everything a restart, verify or an edge seeder does with a playlist's bytes.
fn read_playlist(bytes: &[u8]) {
    if let Ok(p) = published::parse_playlist("m/a/r/index.m3u8", bytes) {
        let key = [1u8; 32];
        let (kept, _) = published::verified_prefix(
            "m/a/r",
            &p.entries,
            &key,
            crate::timecode::Seq::new(u64::MAX),
        );
        assert!(kept <= p.entries.len());
    }
    if let Ok(m3u8_rs::Playlist::MediaPlaylist(p)) = m3u8_rs::parse_playlist_res(bytes) {
        for e in segment_sig::tagged_entries(&p) {
            let _ = e.verified(&[2u8; 32], "m/a/r/1.ts");
        }
    }
    let _ = super::playlist::media_uris(bytes);
}

/// Everything done with a manifest's or pointer's bytes before (and after) its signature.
fn read_documents(bytes: &[u8]) {
    let link = chain::Link {
        window: 179_537_040,
        sha256: crate::hex::sha256_hex(bytes),
    };
    // A wrong signature always fails first; the parse below is what verify does anyway.
    assert!(chain::check("final", &link, bytes, &[0; 64], &[3; 32]).is_err());
    if let Ok(doc) = serde_json::from_slice::<super::manifest::WindowManifest>(bytes)
        && let Ok(Some(prev)) = chain::previous(&doc)
    {
        assert!(prev.window < doc.window, "links go back");
    }
    assert!(published::parse_pointer("m/live.json", "m", bytes, &[0; 64], &[3; 32]).is_err());
}

fn key_pair() -> ring::signature::Ed25519KeyPair {
    ring::signature::Ed25519KeyPair::from_seed_unchecked(&[5; 32]).unwrap()
}

fn public_key() -> Vec<u8> {
    use ring::signature::KeyPair;
    key_pair().public_key().as_ref().to_vec()
}

/// A signed live playlist of `m/a/r`: two segments, a signed gap, a segment.
fn signed_playlist() -> Vec<u8> {
    use super::playlist::{LivePlaylist, PlaylistEntry, SegmentKey};
    use crate::timecode::{Seq, Timeline};
    let tl = Timeline::new(2000, 5);
    let mut live = LivePlaylist::new(&tl, 10);
    let signer = key_pair();
    for seq in 100u64..104 {
        let path = format!("m/a/r/{seq}.ts");
        let key = SegmentKey {
            uri: format!("http://k/keys/m/{}", seq / 5),
            iv: [seq as u8; 16],
        };
        let gap = seq == 102;
        live.push(PlaylistEntry {
            seq: Seq::new(seq),
            duration: 2.0,
            pdt: tl.seq_start(Seq::new(seq)),
            discontinuity: false,
            signature: (!gap)
                .then(|| segment_sig::SegmentSignature::sign(&signer, &path, b"bytes", Some(&key))),
            key: Some(key),
            gap,
            gap_signature: gap.then(|| segment_sig::GapSignature::sign(&signer, &path)),
        });
    }
    live.render().into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Whatever a mutated playlist keeps is vouched for by the key: a verifying segment tag,
    /// or a gap with a verifying gap signature.
    #[test]
    fn signed_gaps(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..10)) {
        let bytes = mutate(&signed_playlist(), &edits);
        if let Ok(p) = published::parse_playlist("m/a/r/index.m3u8", &bytes) {
            let pk = public_key();
            let (kept, _) = published::verified_prefix("m/a/r", &p.entries, &pk, crate::timecode::Seq::new(u64::MAX));
            for e in &p.entries[..kept] {
                let path = format!("m/a/r/{}.ts", e.seq);
                let tag = e.signature.as_ref().is_some_and(|s| s.verifies(&pk, &path, e.key.as_ref()));
                let gap = e.gap && e.gap_signature.as_ref().is_some_and(|g| g.verifies(&pk, &path));
                prop_assert!(tag || gap, "kept an entry the key does not vouch for: {:?}", e);
            }
        }
    }

    /// A claim document: parsed or refused; a changed one never verifies for the signed path.
    #[test]
    fn segment_claims(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6)) {
        use crate::publish::claim::{claim_document, parse_claim};
        let path = "m/a/r/7.ts";
        let tag = segment_sig::SegmentSignature::sign(&key_pair(), path, b"segment", None);
        let doc = claim_document(&tag);
        let bytes = mutate(&doc, &edits);
        if let Some(parsed) = parse_claim(&bytes) {
            prop_assert_eq!(parse_claim(&claim_document(&parsed)), Some(parsed.clone()));
            if parsed != tag {
                prop_assert!(!parsed.verifies(&public_key(), path, None));
            }
        }
    }

    /// `p2p.json` and its detached signature: any change fails it.
    #[test]
    fn signed_p2p_json(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)) {
        use super::manifest::Signer;
        let profile = crate::profile::Profile::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml"),
        )
        .unwrap();
        let doc = super::p2p::P2pDoc::new("final", &profile).to_json().into_bytes();
        let sig = Signer::sign(&key_pair(), &doc);
        let changed = mutate(&doc, &edits);
        let pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key());
        prop_assert_eq!(pk.verify(&changed, &sig).is_ok(), changed == doc);
    }

    #[test]
    fn playlists_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        read_playlist(&bytes);
    }

    #[test]
    fn playlists_mutated(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12)) {
        for base in [LIVE, ENCRYPTED, MASTER] {
            read_playlist(&mutate(base, &edits));
        }
    }

    #[test]
    fn segment_tags(value in "[A-Z0-9=,a-z_+/-]{0,200}") {
        if let Ok(sig) = segment_sig::SegmentSignature::parse(&value) {
            // Whatever parses writes back to a value that parses to the same thing.
            prop_assert_eq!(segment_sig::SegmentSignature::parse(&sig.tag_value()), Ok(sig));
        }
    }

    #[test]
    fn manifests_and_pointers(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..12)) {
        read_documents(&mutate(MANIFEST, &edits));
    }

    #[test]
    fn documents_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        read_documents(&bytes);
    }

    #[test]
    fn torrents(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)) {
        let bytes = mutate(TORRENT, &edits);
        let hashes = torrent::infohashes(&bytes);
        let _ = torrent::decode(&bytes);
        // The edge seeder's tracker swap never changes what the infohash covers.
        if let (Ok(h), Ok(swapped)) = (&hashes, torrent::with_trackers(&bytes, &["udp://t:1/announce".into()])) {
            prop_assert_eq!(torrent::infohashes(&swapped).ok(), Some(*h));
        }
    }

    #[test]
    fn profiles(edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)) {
        let bytes = mutate(PROFILE.as_bytes(), &edits);
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = crate::profile::Profile::parse(&text, Path::new("profiles/x.toml")) {
            prop_assert!(e.to_string().contains("profiles/x.toml"), "{}", e);
        }
    }
}
