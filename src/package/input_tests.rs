//! Exact-order tests of the packager's inputs beyond segments: claims, refusals, and the
//! angle-group close policy driven by an injected clock.

use super::tests::{drain, push_both, seg};
use super::*;
use crate::rendition::Rendition;
use crate::timecode::UtcNs;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

impl Packager {
    /// The next output, which must be an object to publish.
    pub(super) fn pull_put(&mut self) -> Option<Object> {
        self.pull().map(|o| match o {
            Output::Put(object) => object,
            other => panic!("expected an object to publish, got {other:?}"),
        })
    }

    /// Every output left, each as a short word: `put PATH`, `claim SEQ`, `ask W`.
    fn outputs(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.pull())
            .map(|o| match o {
                Output::Put(o) => format!("put {}", o.path),
                Output::Claim(s) => format!("claim {}", s.segment.seq),
                Output::AskChain(w) => format!("ask {w}"),
            })
            .collect()
    }
}

fn profile() -> Profile {
    Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml"))
        .expect("demo profile")
}

#[test]
fn a_redundant_packager_claims_before_it_packages() {
    let profile = profile();
    let mut p =
        Packager::new("final", &profile, &["cam1".to_string()], Box::new(Clear)).redundant();
    drain(&mut p);
    p.push(seg("cam1", "360p", 5)).unwrap();
    let Some(Output::Claim(sealed)) = p.pull() else {
        panic!("a redundant run claims first");
    };
    assert!(
        p.pull().is_none(),
        "nothing is packaged before the claim comes back"
    );
    p.push(Input::Claimed(sealed)).unwrap();
    assert_eq!(
        p.outputs(),
        ["put final/cam1/360p/5.ts", "put final/cam1/360p/index.m3u8"]
    );
    // A lost claim: only the playlist, with the seq as a gap.
    p.push(seg("cam1", "360p", 6)).unwrap();
    let Some(Output::Claim(sealed)) = p.pull() else {
        panic!("claimed first");
    };
    p.push(Input::ClaimLost(sealed)).unwrap();
    let playlist = p.pull_put().unwrap();
    assert_eq!(playlist.path, "final/cam1/360p/index.m3u8");
    let text = String::from_utf8(playlist.bytes).unwrap();
    assert!(text.contains("#EXT-X-GAP\n#EXTINF:2.000,\n6.ts"), "{text}");
    assert!(p.pull().is_none());
}

#[test]
fn a_refused_segment_goes_out_again_as_a_gap() {
    let profile = profile();
    let mut p = Packager::new("final", &profile, &["cam1".to_string()], Box::new(Clear));
    drain(&mut p);
    p.push(seg("cam1", "360p", 5)).unwrap();
    drain(&mut p);
    p.push(Input::Refused("final/cam1/360p/5.ts".into()))
        .unwrap();
    let playlist = p.pull_put().unwrap();
    assert!(
        String::from_utf8(playlist.bytes)
            .unwrap()
            .contains("#EXT-X-GAP")
    );
    // Not a segment of this match, or not listed: nothing.
    p.push(Input::Refused("other/cam1/360p/5.ts".into()))
        .unwrap();
    p.push(Input::Refused("final/cam1/360p/6.ts".into()))
        .unwrap();
    p.push(Input::Refused("final/windows/2.json".into()))
        .unwrap();
    assert!(p.pull().is_none());
}

/// cam2/360p's machine has published its playlist up to `seq`: the packager has seen it.
fn cam2_360p_listed_up_to(p: &mut Packager, profile: &Profile, seq: u64) {
    let mut cam2 = playlist::LivePlaylist::new(&profile.timeline(), 100);
    cam2.push(PlaylistEntry {
        seq: Seq::new(seq),
        duration: 2.0,
        pdt: profile.timeline().seq_start(Seq::new(seq)),
        discontinuity: false,
        key: None,
        signature: None,
        gap: false,
        gap_signature: None,
    });
    let published = published::parse_playlist("p", cam2.render().as_bytes()).unwrap();
    p.push(Input::RemotePlaylist {
        rendition: Rendition::new("cam2", "360p"),
        published,
    })
    .unwrap();
}

/// cam1 here, cam2 on another machine, windows signed.
fn group(profile: &Profile) -> Packager {
    let signer = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[4u8; 32]).unwrap();
    Packager::new("final", profile, &["cam1".to_string()], Box::new(Clear))
        .with_remote_angles(profile, &["cam2".to_string()])
        .sign_windows(profile, std::sync::Arc::new(signer), "")
}

/// cam1 here, cam2 on another machine; window 2 (seqs 10..=14) complete on both.
fn group_with_window_2() -> (Packager, crate::timecode::Timeline) {
    let profile = profile();
    let mut p = group(&profile);
    for seq in 10..=14 {
        push_both(&mut p, seq).unwrap();
        for rung in ["360p", "180p"] {
            p.push(Input::RemoteSegment(remote_segment(rung, seq)))
                .unwrap();
        }
    }
    drain(&mut p);
    (p, profile.timeline())
}

/// Window 2 closes now, in this order, its manifest chained to `prev`.
fn assert_window_2_chains_to(p: &mut Packager, prev: &str) {
    let out: Vec<Object> = std::iter::from_fn(|| p.pull_put()).collect();
    let paths: Vec<String> = out.iter().map(|o| format!("put {}", o.path)).collect();
    assert_eq!(paths, WINDOW_2);
    let w2: manifest::WindowManifest = serde_json::from_slice(&out[2].bytes).unwrap();
    assert_eq!(w2.prev_manifest_sha256.as_deref(), Some(prev));
}

const WINDOW_2: [&str; 6] = [
    "put final/.pad/16196",
    "put final/windows/2.torrent",
    "put final/windows/2.json",
    "put final/windows/2.json.sig",
    "put final/live.json",
    "put final/live.json.sig",
];

#[test]
fn a_ready_window_is_asked_about_once_then_closes_chained_to_the_answer() {
    let (mut p, tl) = group_with_window_2();
    let t0 = Instant::now();
    let utc = tl.seq_start(Seq::new(15));
    p.push(Input::Tick { now: t0, utc }).unwrap();
    assert_eq!(p.outputs(), ["ask 2"]);
    p.push(Input::Tick {
        now: t0 + Duration::from_secs(3),
        utc,
    })
    .unwrap();
    assert!(p.outputs().is_empty(), "asked once, waiting for the answer");
    // An answer about another window is stale.
    let held = "cd".repeat(32);
    let answer = |prev: &str| Held {
        prev: Some(prev.to_string()),
        ..Held::default()
    };
    p.push(Input::ChainAnswer {
        window: 7,
        answer: Ok(answer(&held)),
    })
    .unwrap();
    assert!(p.outputs().is_empty());
    p.push(Input::ChainAnswer {
        window: 2,
        answer: Ok(answer(&held)),
    })
    .unwrap();
    assert_window_2_chains_to(&mut p, &held);
}

#[test]
fn another_machines_window_is_taken_over_not_composed() {
    let (mut p, tl) = group_with_window_2();
    let t0 = Instant::now();
    p.push(Input::Tick {
        now: t0,
        utc: tl.seq_start(Seq::new(15)),
    })
    .unwrap();
    assert_eq!(p.outputs(), ["ask 2"]);
    p.push(Input::ChainAnswer {
        window: 2,
        answer: Ok(Held {
            composed: Some("ef".repeat(32)),
            ..Held::default()
        }),
    })
    .unwrap();
    assert!(p.outputs().is_empty(), "the origin's manifest stands");
    assert_eq!(p.ready_window(), None);
}

#[test]
fn an_unreadable_origin_is_asked_again_a_second_later() {
    let (mut p, tl) = group_with_window_2();
    let t0 = Instant::now();
    let utc = tl.seq_start(Seq::new(15));
    let tick = |p: &mut Packager, ms: u64| {
        p.push(Input::Tick {
            now: t0 + Duration::from_millis(ms),
            utc,
        })
        .unwrap();
        p.outputs()
    };
    assert_eq!(tick(&mut p, 0), ["ask 2"]);
    p.push(Input::ChainAnswer {
        window: 2,
        answer: Err("origin down".into()),
    })
    .unwrap();
    assert!(p.outputs().is_empty());
    assert!(tick(&mut p, 999).is_empty());
    assert_eq!(tick(&mut p, 1000), ["ask 2"]);
}

#[test]
fn a_window_the_origin_does_not_chain_waits_twice_the_grace_then_takes_the_newest() {
    let (mut p, tl) = group_with_window_2();
    let grace = super::window_grace(&tl);
    let t0 = Instant::now();
    let utc = tl.seq_start(Seq::new(15));
    let nothing_yet = || Ok(Held::default());
    p.push(Input::Tick { now: t0, utc }).unwrap();
    assert_eq!(p.outputs(), ["ask 2"]);
    p.push(Input::ChainAnswer {
        window: 2,
        answer: nothing_yet(),
    })
    .unwrap();
    assert!(p.outputs().is_empty(), "window 1 may still be on its way");
    let at = |d: Duration| Input::Tick { now: t0 + d, utc };
    p.push(at(Duration::from_millis(249))).unwrap();
    assert!(p.outputs().is_empty(), "asked again only after 250 ms");
    p.push(at(Duration::from_millis(250))).unwrap();
    assert_eq!(p.outputs(), ["ask 2"]);
    // Twice the grace after the first question: chained to the newest the origin names.
    p.push(at(grace * 2)).unwrap();
    let newest = "01".repeat(32);
    p.push(Input::ChainAnswer {
        window: 2,
        answer: Ok(Held {
            newest: Some((0, newest.clone())),
            ..Held::default()
        }),
    })
    .unwrap();
    assert_window_2_chains_to(&mut p, &newest);
}

#[test]
fn a_remote_rendition_never_seen_is_given_up_sooner_than_a_seen_one() {
    let profile = profile();
    let tl = profile.timeline();
    let mut p = group(&profile);
    for seq in 10..=14 {
        push_both(&mut p, seq).unwrap();
    }
    drain(&mut p);
    let t0 = Instant::now();
    // The window ends at seq 15's start; an unseen machine gets a segment and 1.5 s.
    let end = tl.seq_start(Seq::new(15)).0;
    let unseen = UtcNs(end + tl.segment_ns() + 1_500_000_000);
    let tick = |p: &mut Packager, utc: UtcNs| {
        p.push(Input::Tick { now: t0, utc }).unwrap();
        p.outputs()
    };
    assert!(tick(&mut p, UtcNs(unseen.0 - 1)).is_empty());
    // Given up (a segment later, the cutoff seq moves past 14): window 2 is asked about.
    assert_eq!(tick(&mut p, UtcNs(unseen.0 + tl.segment_ns())), ["ask 2"]);
}

/// cam2's segment as another machine published it: what the follower hands over.
fn remote_segment(rung: &str, seq: u64) -> window::WindowSegment {
    let s = seg("cam2", rung, seq);
    window::WindowSegment {
        angle: "cam2".into(),
        rung: rung.into(),
        seq: s.seq,
        duration_ns: s.duration_ns,
        sha256: crate::hex::sha256(&s.bytes),
        bytes: s.bytes,
        key: None,
    }
}

#[test]
fn windows_of_an_angle_group_cover_remote_angles_and_chain_to_the_origin() {
    let profile = profile();
    let mut p = group(&profile);
    let first: Vec<Object> = std::iter::from_fn(|| p.pull_put()).collect();
    let master = String::from_utf8(first[0].bytes.clone()).unwrap();
    assert!(master.contains("NAME=\"cam1\",DEFAULT=YES"), "{master}");
    assert!(master.contains("URI=\"cam2/360p/index.m3u8\""), "{master}");

    // Window 2 (10..=14) waits for cam2, then closes when told.
    for seq in 10..=14 {
        push_both(&mut p, seq).unwrap();
    }
    assert_eq!(p.ready_window(), None, "cam2 has not delivered");
    for seq in 10..=14 {
        p.push(Input::RemoteSegment(remote_segment("360p", seq)))
            .unwrap();
        p.push(Input::RemoteSegment(remote_segment("180p", seq)))
            .unwrap();
    }
    assert_eq!(p.ready_window(), Some(2));
    p.close_window(2);
    let out: HashMap<String, Vec<u8>> = std::iter::from_fn(|| p.pull_put())
        .map(|o| (o.path, o.bytes))
        .collect();
    let w2: manifest::WindowManifest =
        serde_json::from_slice(&out["final/windows/2.json"]).unwrap();
    let angles: std::collections::BTreeSet<&str> =
        w2.segments.iter().map(|s| s.angle.as_str()).collect();
    assert_eq!(angles.into_iter().collect::<Vec<_>>(), ["cam1", "cam2"]);
    assert_eq!(w2.segments.len(), 20);

    // Window 3: cam2's machine stopped after 15. Given up once overdue, its seen playlist
    // goes on as a marked gap; the window chains to the origin's window 2, not this one's.
    cam2_360p_listed_up_to(&mut p, &profile, 15);
    p.push(Input::RemoteSegment(remote_segment("360p", 15)))
        .unwrap();
    for seq in 15..=19 {
        push_both(&mut p, seq).unwrap();
    }
    drain(&mut p);
    p.give_up_remote(&|_| Seq::new(19));
    assert_eq!(
        p.ready_window(),
        None,
        "window 3 ends at 19: not overdue yet"
    );
    p.give_up_remote(&|_| Seq::new(20));
    let gap = p.pull_put().expect("cam2/360p's playlist, gap-marked");
    assert_eq!(gap.path, "final/cam2/360p/index.m3u8");
    let text = String::from_utf8(gap.bytes).unwrap();
    assert_eq!(text.matches("#EXT-X-GAP").count(), 4, "{text}");
    assert!(
        text.contains("15.ts") && text.ends_with("19.ts\n"),
        "{text}"
    );
    assert!(
        p.pull_put().is_none(),
        "cam2/180p was never seen: no playlist made up for it"
    );
    assert_eq!(p.ready_window(), Some(3));
    let held = "ab".repeat(32);
    p.adopt_window(2, held.clone());
    p.close_window(3);
    let out: HashMap<String, Vec<u8>> = std::iter::from_fn(|| p.pull_put())
        .map(|o| (o.path, o.bytes))
        .collect();
    let w3: manifest::WindowManifest =
        serde_json::from_slice(&out["final/windows/3.json"]).unwrap();
    assert_eq!(w3.prev_manifest_sha256, Some(held));
    let cam2_seqs: Vec<u64> = w3
        .segments
        .iter()
        .filter(|s| s.angle == "cam2")
        .map(|s| s.seq)
        .collect();
    assert_eq!(cam2_seqs, [15]);
}

#[test]
fn a_delivery_policy_goes_out_as_a_signed_p2p_json_only_when_signing() {
    let profile = profile();
    let mut unsigned = Packager::new("final", &profile, &["cam1".to_string()], Box::new(Clear));
    drain(&mut unsigned);
    let mut changed = profile.delivery.clone();
    changed.behind_live = 4.0;
    unsigned.push(Input::Delivery(changed.clone())).unwrap();
    assert!(unsigned.outputs().is_empty(), "no signature, no p2p.json");

    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[4u8; 32]).unwrap();
    let public = ring::signature::KeyPair::public_key(&key).as_ref().to_vec();
    let mut p = group(&profile);
    drain(&mut p);
    p.push(Input::Delivery(changed)).unwrap();
    let out: Vec<Object> = std::iter::from_fn(|| p.pull_put()).collect();
    let paths: Vec<&str> = out.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(paths, ["final/p2p.json", "final/p2p.json.sig"]);
    let doc: serde_json::Value = serde_json::from_slice(&out[0].bytes).unwrap();
    assert_eq!(doc["delivery"]["behind_live"], 4.0, "{doc}");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
        .verify(&out[0].bytes, &out[1].bytes)
        .expect("signed with the match key");
}

#[test]
fn a_marker_goes_into_the_next_playlist_update_not_out_on_its_own() {
    let profile = profile();
    let mut p = Packager::new("final", &profile, &["cam1".to_string()], Box::new(Clear));
    drain(&mut p);
    let at = profile.timeline().seq_start(Seq::new(10)).to_datetime();
    let start = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let marker = marker::Marker::new("Goal blue", Some("goal"), &start, Some(5.0)).unwrap();
    p.push(Input::Marker(marker)).unwrap();
    assert!(
        p.outputs().is_empty(),
        "a marker waits for the next playlist"
    );
    p.push(seg("cam1", "360p", 10)).unwrap();
    assert_eq!(
        p.outputs(),
        [
            "put final/cam1/360p/10.ts",
            "put final/cam1/360p/index.m3u8"
        ]
    );
    p.push(seg("cam1", "360p", 11)).unwrap();
    let _segment = p.pull_put().unwrap();
    let playlist = String::from_utf8(p.pull_put().unwrap().bytes).unwrap();
    assert!(
        playlist.contains("#EXT-X-DATERANGE:ID=\"Goal_blue-")
            && playlist.contains("CLASS=\"goal\""),
        "{playlist}"
    );
}

#[test]
fn the_end_of_a_group_ends_a_silent_remote_rendition_with_its_gaps() {
    let profile = profile();
    let mut p = group(&profile);
    cam2_360p_listed_up_to(&mut p, &profile, 10);
    for seq in 10..=12 {
        push_both(&mut p, seq).unwrap();
    }
    drain(&mut p);
    p.push(Input::RemoteEnd(Seq::new(12))).unwrap();
    let ended = p.pull_put().expect("cam2/360p's playlist, ended");
    assert_eq!(ended.path, "final/cam2/360p/index.m3u8");
    let text = String::from_utf8(ended.bytes).unwrap();
    assert_eq!(text.matches("#EXT-X-GAP").count(), 2, "{text}");
    assert!(text.ends_with("12.ts\n#EXT-X-ENDLIST\n"), "{text}");
    assert!(
        p.pull().is_none(),
        "cam2/180p was never seen: no playlist made up for it"
    );
}
