use super::*;
use crate::timecode::NS_PER_SEC;
use playlist::SegmentKey;
use std::path::Path;

fn packager(angles: &[&str]) -> Packager {
    let profile = Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml"))
        .expect("demo profile");
    let angles: Vec<String> = angles.iter().map(|a| a.to_string()).collect();
    Packager::new("final", &profile, &angles, Box::new(Clear))
}

pub(super) fn seg(angle: &str, rung: &str, seq: u64) -> EncodedSegment {
    let mut bytes = vec![0u8; 188];
    bytes[0] = 0x47;
    EncodedSegment {
        angle: angle.into(),
        rung: rung.into(),
        seq: Seq::new(seq),
        duration_ns: 2 * NS_PER_SEC,
        bytes,
    }
}

pub(super) fn drain(p: &mut Packager) -> Vec<(String, ObjectKind)> {
    std::iter::from_fn(|| p.pull_put())
        .map(|o| (o.path, o.kind))
        .collect()
}

#[test]
fn masters_first_then_each_segment_before_its_playlist() {
    let mut p = packager(&["cam1", "cam2"]);
    let first = drain(&mut p);
    assert_eq!(
        first,
        vec![
            ("final/master.m3u8".into(), ObjectKind::MasterPlaylist),
            ("final/p2p.json".into(), ObjectKind::MasterPlaylist),
            ("final/cam1/master.m3u8".into(), ObjectKind::MasterPlaylist),
            ("final/cam2/master.m3u8".into(), ObjectKind::MasterPlaylist),
        ]
    );
    p.push(seg("cam2", "180p", 10)).unwrap();
    assert_eq!(
        drain(&mut p),
        vec![
            ("final/cam2/180p/10.ts".into(), ObjectKind::Segment),
            (
                "final/cam2/180p/index.m3u8".into(),
                ObjectKind::MediaPlaylist
            ),
        ]
    );
}

#[test]
fn playlist_names_the_segment_with_pdt_of_its_boundary() {
    let mut p = packager(&["cam1"]);
    drain(&mut p);
    p.push(seg("cam1", "360p", 897_685_200)).unwrap();
    let _segment = p.pull_put().unwrap();
    let playlist = String::from_utf8(p.pull_put().unwrap().bytes).unwrap();
    assert!(
        playlist.contains("#EXT-X-MEDIA-SEQUENCE:897685200"),
        "{playlist}"
    );
    assert!(
        playlist.contains(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T18:00:00.000Z\n#EXTINF:2.000,\n897685200.ts"
        ),
        "{playlist}"
    );
}

#[test]
fn gaps_become_discontinuities() {
    let mut p = packager(&["cam1"]);
    drain(&mut p);
    p.push(seg("cam1", "360p", 5)).unwrap();
    p.push(seg("cam1", "360p", 6)).unwrap();
    p.push(seg("cam1", "360p", 9)).unwrap();
    let last = std::iter::from_fn(|| p.pull_put()).last().unwrap();
    let text = String::from_utf8(last.bytes).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    assert!(
        text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:18.000Z")
    );
}

#[test]
fn out_of_order_and_unknown_segments_are_refused() {
    let mut p = packager(&["cam1"]);
    p.push(seg("cam1", "360p", 5)).unwrap();
    assert_eq!(
        p.push(seg("cam1", "360p", 5)),
        Err(PackageError::OutOfOrder {
            angle: "cam1".into(),
            rung: "360p".into(),
            seq: Seq::new(5),
            last: Seq::new(5)
        })
    );
    assert!(matches!(
        p.push(seg("cam9", "360p", 6)),
        Err(PackageError::Unknown { .. })
    ));
    assert!(matches!(
        p.push(seg("cam1", "4k", 6)),
        Err(PackageError::Unknown { .. })
    ));
}

#[test]
fn finish_ends_every_playlist() {
    let mut p = packager(&["cam1", "cam2"]);
    p.push(seg("cam1", "360p", 5)).unwrap();
    drain(&mut p);
    p.push(Input::Finish).unwrap();
    let ended: Vec<_> = std::iter::from_fn(|| p.pull_put()).collect();
    assert_eq!(ended.len(), 4);
    for o in ended {
        assert_eq!(o.kind, ObjectKind::MediaPlaylist);
        assert!(
            String::from_utf8(o.bytes)
                .unwrap()
                .ends_with("#EXT-X-ENDLIST\n")
        );
    }
}

struct Marker;
impl Protection for Marker {
    fn seal(&mut self, s: &mut EncodedSegment) -> Option<SegmentKey> {
        s.bytes.reverse();
        Some(SegmentKey {
            uri: "k".into(),
            iv: [7; 16],
        })
    }
}

#[test]
fn protection_seam_transforms_bytes_and_names_the_key() {
    let profile =
        Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml")).unwrap();
    let mut p = Packager::new("m", &profile, &["a".to_string()], Box::new(Marker));
    drain(&mut p);
    p.push(seg("a", "360p", 1)).unwrap();
    let s = p.pull_put().unwrap();
    assert_eq!(s.bytes[187], 0x47);
    let text = String::from_utf8(p.pull_put().unwrap().bytes).unwrap();
    assert!(
        text.contains("#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x07070707070707070707070707070707"),
        "{text}"
    );
}

/// A signed packager for one angle of the demo profile (360p and 180p; 2 s segments,
/// windows of 5).
fn signed(seed: &[u8; 32]) -> Packager {
    let profile = Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml"))
        .expect("demo profile");
    let signer = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed).unwrap();
    Packager::new("final", &profile, &["cam1".to_string()], Box::new(Clear)).sign_windows(
        &profile,
        std::sync::Arc::new(signer),
        "",
    )
}

pub(super) fn push_both(p: &mut Packager, seq: u64) -> Result<(), PackageError> {
    p.push(seg("cam1", "360p", seq))?;
    p.push(seg("cam1", "180p", seq))
}

#[test]
fn a_resumed_packager_continues_playlists_and_the_hash_chain() {
    let seed = [7u8; 32];
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let public = ring::signature::KeyPair::public_key(&key).as_ref().to_vec();
    // The first run: seqs 10..=16 (window 2 = 10..14 closes, window 3 stays open).
    let mut origin: HashMap<String, Vec<u8>> = HashMap::new();
    let mut first = signed(&seed);
    for seq in 10..=16 {
        push_both(&mut first, seq).unwrap();
    }
    origin.extend(std::iter::from_fn(|| first.pull_put()).map(|o| (o.path, o.bytes)));
    let manifest_2 = origin["final/windows/2.json"].clone();

    // What `publish::match_state::load` reads back: window 3's four segments are open.
    let resume = read_back(&origin, &public);
    assert_eq!(resume.open_segments.len(), 4);
    let mut second = signed(&seed);
    drain(&mut second);
    second.push(Input::Resume(resume)).unwrap();
    // 17 might already be on the origin (segments go up before their playlist): refused.
    assert!(matches!(
        push_both(&mut second, 17),
        Err(PackageError::OutOfOrder { .. })
    ));
    for seq in 18..=20 {
        push_both(&mut second, seq).unwrap();
    }
    let out: HashMap<String, Vec<u8>> = std::iter::from_fn(|| second.pull_put())
        .map(|o| (o.path, o.bytes))
        .collect();
    let playlist = String::from_utf8(out["final/cam1/180p/index.m3u8"].clone()).unwrap();
    let uris: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
    assert_eq!(
        uris,
        [
            "10.ts", "11.ts", "12.ts", "13.ts", "14.ts", "15.ts", "16.ts", "18.ts", "19.ts",
            "20.ts"
        ]
    );
    let before_18 = playlist.split("18.ts").next().unwrap();
    let after_16 = before_18.rsplit("16.ts").next().unwrap();
    assert!(after_16.contains("#EXT-X-DISCONTINUITY"), "{playlist}");
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "{playlist}"
    );
    // Window 3 (15..19) closes with the earlier run's 15 and 16, and chains to window 2.
    let w3: manifest::WindowManifest =
        serde_json::from_slice(&out["final/windows/3.json"]).unwrap();
    let mut seqs: Vec<u64> = w3.segments.iter().map(|s| s.seq).collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs, vec![15, 16, 18, 19]);
    assert_eq!(
        w3.prev_manifest_sha256,
        Some(manifest::sha256_hex(&manifest_2))
    );
    assert!(
        !out.contains_key("final/windows/2.json"),
        "window 2 is never rewritten"
    );
    assert!(
        !out.keys()
            .any(|p| p.ends_with("/15.ts") || p.ends_with("/16.ts"))
    );
    assert_eq!(w3.prev_window, None, "window 2 is the one before");

    // Windows 5 to 7 never happened (the match was down): window 8 names window 4 (seq 20
    // only) as its predecessor, so a verifier can follow the chain across the hole.
    for seq in 40..=44 {
        push_both(&mut second, seq).unwrap();
    }
    let out: HashMap<String, Vec<u8>> = std::iter::from_fn(|| second.pull_put())
        .map(|o| (o.path, o.bytes))
        .collect();
    let w8: manifest::WindowManifest =
        serde_json::from_slice(&out["final/windows/8.json"]).unwrap();
    assert_eq!(w8.prev_window, Some(4));
}

#[test]
fn every_segment_line_carries_a_signature_that_verifies_the_moment_it_is_published() {
    use ring::signature::KeyPair;
    let seed = [9u8; 32];
    let public = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let mut p = signed(&seed);
    drain(&mut p);
    let mut stored = HashMap::new();
    for seq in 10..13 {
        let mut s = seg("cam1", "360p", seq);
        s.bytes[1] = seq as u8; // distinct bytes per segment
        p.push(s).unwrap();
        // Before the window closes, the playlist alone lets anyone check the new segment.
        let segment = p.pull_put().unwrap();
        let playlist = p.pull_put().unwrap();
        assert_eq!(playlist.kind, ObjectKind::MediaPlaylist);
        stored.insert(segment.path.clone(), segment.bytes.clone());
        let text = String::from_utf8(playlist.bytes).unwrap();
        let parsed = published::parse_playlist(&playlist.path, text.as_bytes()).unwrap();
        assert_eq!(parsed.entries.len() as u64, seq - 9);
        for e in &parsed.entries {
            let path = format!("final/cam1/360p/{}.ts", e.seq);
            let sig = e.signature.as_ref().expect("a tag on every segment");
            assert!(sig.verifies(&public, &path, e.key.as_ref()), "{text}");
            assert!(sig.describes(&stored[&path]));
            // The tag is bound to its path: another segment's tag does not verify here.
            let other = format!("final/cam1/360p/{}.ts", e.seq.get() + 100);
            assert!(!sig.verifies(&public, &other, e.key.as_ref()));
        }
        assert_eq!(
            text.matches("#EXT-X-SWARMPACK-SEGMENT:BYTES=188,SHA256=")
                .count() as u64,
            seq - 9
        );
    }
}

#[test]
fn p2p_json_names_a_swarm_that_depends_on_the_match_alone_and_the_ice_servers() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml");
    let text = std::fs::read_to_string(&demo).unwrap()
        + "[[ice_server]]\nurls = [\"turn:198.18.3.1:3478?transport=udp\"]\ncredentials = \"rest\"\n";
    let profile = Profile::parse(&text, &demo).unwrap();
    let doc = super::p2p::P2pDoc::new("final", &profile).to_json();
    // Golden: the bytes the run signs, as a player and the key server read them.
    assert_eq!(
        doc,
        r#"{
  "format": 1,
  "match": "final",
  "swarm": "swarmpack/final",
  "trackers": [
    "ws://127.0.0.1:8000"
  ],
  "ice_servers": [
    {
      "urls": [
        "stun:127.0.0.1:3478"
      ]
    },
    {
      "urls": [
        "turn:198.18.3.1:3478?transport=udp"
      ],
      "credentials": "rest"
    }
  ],
  "ice": "http://127.0.0.1:8080/keys/final/ice",
  "delivery": {
    "segment": 2.0,
    "behind_live": 6.0,
    "urgent": 1.0,
    "early_fetchers": 1,
    "relay": "last-resort",
    "alone_after": 4.0,
    "startup_wait": 0.0
  },
  "telemetry": "http://127.0.0.1:8080/cmcd"
}
"#
    );
    assert_eq!(
        super::p2p::P2pDoc::parse(doc.as_bytes()).unwrap(),
        super::p2p::P2pDoc::new("final", &profile)
    );
    // Taken only with the match key's signature of these exact bytes.
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]).unwrap();
    let public = ring::signature::KeyPair::public_key(&pair)
        .as_ref()
        .to_vec();
    let sig = pair.sign(doc.as_bytes());
    assert!(super::p2p::P2pDoc::verified(doc.as_bytes(), sig.as_ref(), &public).is_some());
    let moved = doc.replace("198.18.3.1", "198.18.3.9");
    assert!(super::p2p::P2pDoc::verified(moved.as_bytes(), sig.as_ref(), &public).is_none());
    // Without TURN there is nothing to ask the key server for.
    let plain = super::p2p::P2pDoc::new("final", &Profile::load(&demo).unwrap());
    assert_eq!(plain.ice, None);
    assert_eq!(plain.swarm, "swarmpack/final");
    // A document from before [delivery] still reads (the player keeps its own defaults).
    let old = doc.split(",\n  \"delivery\"").next().unwrap().to_string() + "\n}\n";
    assert_eq!(
        super::p2p::P2pDoc::parse(old.as_bytes()).unwrap().delivery,
        None
    );
}

#[test]
fn a_claimed_segment_is_packaged_with_the_bytes_the_origin_holds() {
    let mut p = signed(&[3u8; 32]);
    drain(&mut p);
    let mut sealed = p.seal(seg("cam1", "360p", 10)).unwrap();
    assert_eq!(sealed.path("final"), "final/cam1/360p/10.ts");
    // Another run's bytes for the same seq, found on the origin by the claim.
    let mut theirs = seg("cam1", "360p", 10).bytes;
    theirs[1] = 0xee;
    sealed.segment.bytes = theirs.clone();
    p.push(Input::Claimed(sealed)).unwrap();
    let segment = p.pull_put().unwrap();
    assert_eq!(segment.bytes, theirs);
    let playlist = p.pull_put().unwrap();
    let parsed = published::parse_playlist(&playlist.path, &playlist.bytes).unwrap();
    let tag = parsed.entries[0].signature.as_ref().unwrap();
    assert!(tag.describes(&theirs));
    assert!(!tag.describes(&seg("cam1", "360p", 10).bytes));
}

/// What a packager published, as an origin would hold it.
/// Publishes every output to `origin`; a redundant run's claims are won on it (the segment
/// comes back as claimed).
fn publish_all(p: &mut Packager, origin: &mut HashMap<String, Vec<u8>>) {
    while let Some(output) = p.pull() {
        match output {
            Output::Put(o) => {
                origin.insert(o.path, o.bytes);
            }
            Output::Claim(sealed) => p.push(Input::Claimed(sealed)).unwrap(),
            Output::AskChain(w) => panic!("no remote angles, yet window {w} was asked about"),
        }
    }
}

/// The state `publish::match_state::load` reads back from `origin` for cam1's two rungs.
fn read_back(origin: &HashMap<String, Vec<u8>>, public: &[u8]) -> published::Resume {
    let pointer = published::parse_pointer(
        "final/live.json",
        "final",
        &origin["final/live.json"],
        &origin["final/live.json.sig"],
        public,
    )
    .unwrap();
    let newest = *pointer.windows.first().unwrap();
    let mut playlists = Vec::new();
    let mut open = Vec::new();
    for rung in ["360p", "180p"] {
        let restored =
            published::parse_playlist("p", &origin[&format!("final/cam1/{rung}/index.m3u8")])
                .unwrap();
        for e in restored.entries.iter().filter(|e| e.seq.get() / 5 > newest) {
            let bytes = origin[&format!("final/cam1/{rung}/{}.ts", e.seq)].clone();
            open.push(published::open_segment("cam1", rung, e, bytes).expect("bytes as tagged"));
        }
        playlists.push(("cam1".to_string(), rung.to_string(), restored));
    }
    published::Resume {
        closed: pointer.windows.iter().rev().copied().collect(),
        newest_manifest_sha256: Some(pointer.newest_manifest_sha256.clone()),
        playlists,
        open_segments: open,
    }
}

#[test]
fn a_redundant_run_that_joins_makes_the_same_playlists_and_windows() {
    let seed = [5u8; 32];
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let public = ring::signature::KeyPair::public_key(&key).as_ref().to_vec();
    // The run already on air: seqs 10..=19 (windows 2 and 3).
    let mut first = signed(&seed);
    let mut origin = HashMap::new();
    for seq in 10..=16 {
        push_both(&mut first, seq).unwrap();
    }
    publish_all(&mut first, &mut origin);
    // The second run joins here, reading the origin at its first segment (17).
    let mut second = signed(&seed).redundant();
    drain(&mut second);
    second
        .push(Input::Resume(read_back(&origin, &public)))
        .unwrap();
    let mut theirs = HashMap::new();
    for seq in 17..=19 {
        push_both(&mut first, seq).unwrap();
        push_both(&mut second, seq).expect("17 follows 16: nothing is refused");
        publish_all(&mut second, &mut theirs);
    }
    publish_all(&mut first, &mut origin);
    for key in [
        "final/windows/3.json",
        "final/windows/3.json.sig",
        "final/windows/3.torrent",
        "final/cam1/180p/index.m3u8",
        "final/cam1/360p/19.ts",
    ] {
        assert_eq!(theirs[key], origin[key], "{key} differs");
    }
    let playlist = String::from_utf8(theirs["final/cam1/180p/index.m3u8"].clone()).unwrap();
    assert!(!playlist.contains("#EXT-X-DISCONTINUITY"), "{playlist}");

    // Without --redundant, a restart marks a discontinuity and refuses the seq after the
    // last listed one (it may be on the origin, unlisted).
    let mut restarted = signed(&seed);
    drain(&mut restarted);
    restarted
        .push(Input::Resume(read_back(&origin, &public)))
        .unwrap();
    assert!(matches!(
        push_both(&mut restarted, 20),
        Err(PackageError::OutOfOrder { .. })
    ));
}
