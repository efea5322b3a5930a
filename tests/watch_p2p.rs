//! The fans' player (`/watch`), peer to peer between real browsers (issue 15's "Done when"): a
//! live demo-profile match, the `bittorrent-tracker` server as the WebTorrent tracker, and
//! headless Chromium viewers through playwright-core (`web/test/watch.mjs` drives them and
//! reports each page's `window.swarmpack` counters).
//!
//! 1. Four viewers join one after another, each in its own browser context, with an evil peer
//!    among them that corrupts every segment it uploads. The last is a page of another site
//!    that embeds the player from `/.player/player.js`, and the second has a browser whose
//!    WebCrypto lacks Ed25519 (it checks with the pure-JS fallback). Every viewer plays without a stall
//!    over 1 s; the later joiners take bytes from peers; the viewers together fetch fewer
//!    bytes over HTTP than they played; the evil peer's segments are rejected; and no viewer
//!    hands hls.js a segment whose bytes do not match its signed tag. Apart from the player's
//!    own counters, a hook of the test's (in `watch.mjs`, around hls.js's events) hashes every
//!    fragment hls.js was handed, and each must be the origin's file byte for byte.
//! 2. The same swarm with validation switched off on one viewer (the page's
//!    `window.swarmpack.validate` replaced by "accept everything"), joining after the evil
//!    peer, whose segments it starts with:
//!    that viewer's own check of what hls.js received counts corrupted segments, and the test's
//!    hook finds fragments unlike the origin's. So the checks in (1) can fail, and it is
//!    validation that keeps them clean.
//! 3. Without a token, the page shows the key server's 401 and plays nothing.
//!
//! The delivery policy (the demo profile's `[delivery]` defaults, from the signed p2p.json):
//! the viewers that join later still take from peers, and a segment one viewer fetched early
//! (when the playlist named it) is served to another from the first one's cache, as each page's
//! record of where its peer segments came from (peer ID and URL) shows.

mod common;

use common::browser::{
    LiveMatch, handed_against_origin, num, require_browser, watch_viewers as viewers,
};
use common::*;

#[test]
fn browsers_share_the_match_and_refuse_a_corrupting_peer() {
    require_browser("p2p-media-loader-core");
    let live = LiveMatch::start("fans");
    let (keys, port, origin, m) = (&live.keys, live.port, &live.origin, &live.dir);
    let p2p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("p2p.json")).unwrap()).unwrap();
    assert_eq!(p2p["swarm"], "swarmpack/fans");
    assert_eq!(
        p2p["trackers"][0],
        format!("ws://127.0.0.1:{}", live.tracker.port)
    );
    let url = format!("http://127.0.0.1:{port}/watch?match=fans");

    // 1. Four viewers and an evil peer.
    let server = serve(origin, keys, port, &["--dev-tokens".as_ref()]);
    let seen = viewers(
        &url,
        &[
            "--viewers",
            "4",
            "--stagger-ms",
            "5000",
            "--watch-ms",
            "30000",
            "--evil",
            "--embed-last",
            "--no-webcrypto-ed25519-on",
            "1",
        ],
    );
    assert_eq!(seen["errors"], serde_json::json!([]), "the pages threw");
    let pages = seen["viewers"].as_array().unwrap();
    assert_eq!(pages.len(), 4);
    // The last viewer is another site's page with the player embedded (README): it loads
    // across origins and is held to everything the others are.
    assert_eq!(pages[3]["origin"], "http://localhost:9", "{}", pages[3]);
    assert_eq!(pages[0]["origin"], format!("http://127.0.0.1:{port}"));
    // Viewer 1's browser has no Ed25519 in WebCrypto: it checks with the pure-JS fallback,
    // says so, and is held to the same checks (every segment it played verified).
    assert!(
        pages[1]["p2pState"]
            .as_str()
            .is_some_and(|s| s.contains("verified (pure-JS Ed25519)")),
        "{}",
        pages[1]
    );
    assert!(
        pages[0]["p2pState"]
            .as_str()
            .is_some_and(|s| !s.contains("pure-JS")),
        "{}",
        pages[0]
    );
    let (mut http, mut played, mut rejected) = (0.0, 0.0, 0.0);
    let mut hashes = std::collections::HashMap::new();
    for (i, v) in pages.iter().enumerate() {
        // The test's own check, apart from the player's: every fragment hls.js was handed has
        // the origin's bytes (SHA-256 by openssl), and the player's played-bytes counter is
        // what hls.js was handed.
        let handed = handed_against_origin(v, origin, &mut hashes);
        assert!(
            handed.mismatched.is_empty(),
            "viewer {i} handed hls.js bytes the origin does not hold: {:?}",
            handed.mismatched
        );
        assert!(
            handed.matched >= 5 && handed.pending <= 2,
            "viewer {i}: {handed:?}"
        );
        assert_eq!(handed.bytes, num(v, "playedBytes"), "viewer {i}");
        assert_eq!(v["playing"], true, "viewer {i} is not playing: {v}");
        assert!(
            num(v, "currentTime") > 20.0,
            "viewer {i} barely played: {v}"
        );
        assert!(num(v, "stallSeconds") <= 1.0, "viewer {i} stalled: {v}");
        assert_eq!(
            num(v, "unverifiedPlayed"),
            0.0,
            "viewer {i} played a segment that does not verify: {v}"
        );
        assert!(num(v, "verifiedPlayed") >= 5.0, "viewer {i}: {v}");
        if i >= 2 {
            assert!(
                num(v, "p2pBytes") > 0.0,
                "viewer {i} (a later joiner) took nothing from peers: {v}"
            );
        }
        http += num(v, "httpBytes");
        played += num(v, "playedBytes");
        rejected += num(v, "p2pRejected");
    }
    assert!(
        http < played,
        "the viewers fetched {http} bytes over HTTP for {played} played"
    );
    assert!(
        rejected > 0.0,
        "no viewer rejected the evil peer's segments: {seen}"
    );
    // Fetch-early (profile [delivery], README "Latency against offload"): a segment one viewer
    // fetched over HTTP when the playlist named it reached another from that viewer's cache.
    let served_early = served_from_early_cache(pages);
    assert!(
        served_early > 0,
        "no segment fetched early by one viewer was taken from it by another: {seen}"
    );
    eprintln!(
        "offload over 4 viewers: {:.0}%",
        100.0 * (1.0 - http / played)
    );

    // 2. Validation off on one viewer, next to the evil peer: its own check catches it.
    let seen = viewers(
        &url,
        &[
            "--viewers",
            "1",
            "--stagger-ms",
            "8000",
            "--watch-ms",
            "20000",
            "--evil-first",
            "--no-validation-on",
            "0",
        ],
    );
    let victim = &seen["viewers"][0];
    assert!(
        num(victim, "unverifiedPlayed") > 0.0,
        "with validation off, the evil peer's segments should have reached hls.js: {seen}"
    );
    // The test's own hook sees them too: the bytes hls.js was handed are not the origin's.
    let handed = handed_against_origin(victim, origin, &mut hashes);
    assert!(
        !handed.mismatched.is_empty(),
        "with validation off, the test's hook saw no fragment unlike the origin's: {handed:?}"
    );
    drop(server);

    // 3. No token: the key server's 401, nothing plays.
    let _server = serve(origin, keys, port, &[]);
    let seen = viewers(
        &url,
        &["--viewers", "1", "--stagger-ms", "0", "--watch-ms", "12000"],
    );
    let v = &seen["viewers"][0];
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("401")),
        "no 401 shown: {v}"
    );
    assert!(num(v, "currentTime") < 0.5, "played without a key: {v}");
}

/// How many (segment, viewer) pairs took a segment from the peer that fetched it early.
fn served_from_early_cache(pages: &[serde_json::Value]) -> usize {
    let mut served = 0;
    for fetcher in pages {
        let id = fetcher["peerId"].as_str().expect("peerId");
        let early: std::collections::HashSet<&str> = fetcher["early"]
            .as_array()
            .expect("early")
            .iter()
            .filter_map(|u| u.as_str())
            .collect();
        for taker in pages.iter().filter(|p| p["peerId"] != fetcher["peerId"]) {
            served += taker["fromPeers"]
                .as_array()
                .expect("fromPeers")
                .iter()
                .filter(|f| f["peer"] == id && f["url"].as_str().is_some_and(|u| early.contains(u)))
                .count();
        }
    }
    served
}
