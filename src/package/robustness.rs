//! The robustness suite: every parser that reads bytes from outside (a published playlist, a
//! segment tag, a window manifest and `live.json` as restart, verify and the edge seeder read
//! them, a torrent, a profile) is fed random bytes and mutations of real fixtures. The
//! property: no panic, and an error rather than a wrong value when the input is not valid.
//! Tokens have their own properties in `keys::token`.

use super::{chain, resume, segment_sig, torrent};
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
    if let Ok(p) = resume::parse_playlist("m/a/r/index.m3u8", bytes) {
        let key = [1u8; 32];
        let (kept, _) =
            resume::verified_prefix("m/a/r", &p.entries, &key, crate::timecode::Seq(u64::MAX));
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
        sha256: super::hex::sha256_hex(bytes),
    };
    // A wrong signature always fails first; the parse below is what verify does anyway.
    assert!(chain::check("final", &link, bytes, &[0; 64], &[3; 32]).is_err());
    if let Ok(doc) = serde_json::from_slice::<super::manifest::WindowManifest>(bytes)
        && let Ok(Some(prev)) = chain::previous(&doc)
    {
        assert!(prev.window < doc.window, "links go back");
    }
    assert!(resume::parse_pointer("m/live.json", "m", bytes, &[0; 64], &[3; 32]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

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
        let _ = torrent::infohashes(&bytes);
        let _ = torrent::decode(&bytes);
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
