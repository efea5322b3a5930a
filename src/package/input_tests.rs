//! Exact-order tests of the packager's inputs beyond segments: claims, refusals, and the
//! angle-group close policy driven by an injected clock.

use super::tests::{drain, push_both, remote_segment, seg};
use super::*;
use crate::timecode::UtcNs;
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

/// cam1 here, cam2 on another machine; window 2 (seqs 10..=14) complete on both.
fn group_with_window_2() -> (Packager, crate::timecode::Timeline) {
    let profile = profile();
    let signer = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[4u8; 32]).unwrap();
    let mut p = Packager::new("final", &profile, &["cam1".to_string()], Box::new(Clear))
        .with_remote_angles(&profile, &["cam2".to_string()])
        .sign_windows(&profile, std::sync::Arc::new(signer), "");
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
    let utc = tl.seq_start(Seq(15));
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
    let out: Vec<Object> = std::iter::from_fn(|| p.pull_put()).collect();
    assert_eq!(
        out.iter()
            .map(|o| format!("put {}", o.path))
            .collect::<Vec<_>>(),
        WINDOW_2
    );
    let w2: manifest::WindowManifest = serde_json::from_slice(&out[2].bytes).unwrap();
    assert_eq!(w2.prev_manifest_sha256, Some(held));
}

#[test]
fn another_machines_window_is_taken_over_not_composed() {
    let (mut p, tl) = group_with_window_2();
    let t0 = Instant::now();
    p.push(Input::Tick {
        now: t0,
        utc: tl.seq_start(Seq(15)),
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
    let utc = tl.seq_start(Seq(15));
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
    let utc = tl.seq_start(Seq(15));
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
    let out: Vec<Object> = std::iter::from_fn(|| p.pull_put()).collect();
    assert_eq!(
        out.iter()
            .map(|o| format!("put {}", o.path))
            .collect::<Vec<_>>(),
        WINDOW_2
    );
    let w2: manifest::WindowManifest = serde_json::from_slice(&out[2].bytes).unwrap();
    assert_eq!(w2.prev_manifest_sha256, Some(newest));
}

#[test]
fn a_remote_rendition_never_seen_is_given_up_sooner_than_a_seen_one() {
    let profile = profile();
    let tl = profile.timeline();
    let signer = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[4u8; 32]).unwrap();
    let mut p = Packager::new("final", &profile, &["cam1".to_string()], Box::new(Clear))
        .with_remote_angles(&profile, &["cam2".to_string()])
        .sign_windows(&profile, std::sync::Arc::new(signer), "");
    for seq in 10..=14 {
        push_both(&mut p, seq).unwrap();
    }
    drain(&mut p);
    let t0 = Instant::now();
    // The window ends at seq 15's start; an unseen machine gets a segment and 1.5 s.
    let end = tl.seq_start(Seq(15)).0;
    let unseen = UtcNs(end + tl.segment_ns() + 1_500_000_000);
    let tick = |p: &mut Packager, utc: UtcNs| {
        p.push(Input::Tick { now: t0, utc }).unwrap();
        p.outputs()
    };
    assert!(tick(&mut p, UtcNs(unseen.0 - 1)).is_empty());
    // Given up (a segment later, the cutoff seq moves past 14): window 2 is asked about.
    assert_eq!(tick(&mut p, UtcNs(unseen.0 + tl.segment_ns())), ["ask 2"]);
}
