//! Issue 25, items 3 and 6, in headless Chromium (`web/test/watch.mjs` drives the fans'
//! player at `/watch` and reports what the page saw). An origin writer without `keys/`:
//! 1. flips a byte of one segment on the origin: the player never hands it to hls.js (every
//!    HTTP segment is checked against its signed tag, fetched once more, then playback stops)
//!    and the page names the segment;
//! 2. rewrites a playlist's key URIs to another server: the viewer's token never reaches it
//!    (nginx there answers 418 to any request carrying an Authorization header, and the test
//!    reads its access log), and nothing plays;
//! 3. rewrites `p2p.json` to name another tracker: the player takes p2p.json only with the
//!    match key's signature (`p2p.json.sig`), so peer-to-peer stays off and the page says why.
//!
//! Before the fix the player played the flipped segment (hls.js got it), sent the token to
//! the rewritten key URI, and used any p2p.json.

mod common;

use common::browser::{num, require_browser, watch_viewers};
use common::nginx::Nginx;
use common::*;
use std::time::Duration;

/// One viewer for `watch_ms`; what its page showed.
fn viewer(url: &str, watch_ms: u64) -> serde_json::Value {
    let watch_ms = watch_ms.to_string();
    let seen = watch_viewers(
        url,
        &[
            "--viewers",
            "1",
            "--stagger-ms",
            "0",
            "--watch-ms",
            &watch_ms,
        ],
    );
    assert_eq!(seen["errors"], serde_json::json!([]), "the page threw");
    seen["viewers"][0].clone()
}

#[test]
fn the_player_plays_only_signed_bytes_and_sends_the_token_only_to_signed_key_uris() {
    require_browser("p2p-media-loader-core");
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let port = free_tcp_port();
    // 2 s segments, as the demo's: the player's policy is in segments, and at 1 s a lone
    // viewer waiting for peers runs its buffer dry.
    let profile = profile_with(
        tmp.path(),
        "demo.toml",
        "127.0.0.1:8080",
        &format!("127.0.0.1:{port}"),
    );
    let text = std::fs::read_to_string(&profile)
        .unwrap()
        .replace("http://127.0.0.1:8000/announce", "ws://127.0.0.1:9")
        .replace("ws://127.0.0.1:8000", "ws://127.0.0.1:9");
    std::fs::write(&profile, text).unwrap();
    let origin = tmp.path().join("origin");
    for m in ["tampered", "hijack"] {
        let mut run = run_match(m, &profile, &keys, &format!("file://{}", origin.display()));
        run.args([
            "--angle",
            "main=test:",
            "--no-seed",
            "--fast",
            "--duration",
            "14",
        ]);
        let out = run_with_deadline(run, Duration::from_secs(90));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // 1. One segment's bytes changed on the origin, in every rung (whichever hls.js picks).
    let playlist = media_playlist(&origin.join("tampered/main/360p/index.m3u8"));
    let victim = playlist.segments[3].uri.clone();
    for rung in ["360p", "180p"] {
        let path = origin.join(format!("tampered/main/{rung}/{victim}"));
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }

    // 2. Key URIs sent to another server, and 3. p2p.json naming another tracker.
    let thief = Nginx::webdav_with(
        &tmp.path().join("thief"),
        // A key thief that lets any page send it the token (CORS preflight answered).
        "location /k/ {\n      add_header Access-Control-Allow-Origin * always;\n      \
         add_header Access-Control-Allow-Headers Authorization always;\n      \
         if ($request_method = OPTIONS) { return 204; }\n      \
         if ($http_authorization) { return 418; }\n      return 404;\n    }",
    );
    for rung in ["360p", "180p"] {
        let hijacked = origin.join(format!("hijack/main/{rung}/index.m3u8"));
        let text = std::fs::read_to_string(&hijacked).unwrap();
        let rewritten = text.replace(
            &format!("URI=\"http://127.0.0.1:{port}/keys/"),
            &format!("URI=\"http://127.0.0.1:{}/k/", thief.port),
        );
        assert_ne!(rewritten, text);
        std::fs::write(&hijacked, rewritten).unwrap();
    }
    let p2p = origin.join("hijack/p2p.json");
    let text = std::fs::read_to_string(&p2p).unwrap();
    std::fs::write(&p2p, text.replace("ws://127.0.0.1:9", "ws://127.0.0.1:8")).unwrap();

    let _server = serve(&origin, &keys, port, &["--dev-tokens".as_ref()]);
    let v = viewer(
        &format!("http://127.0.0.1:{port}/watch?match=hijack"),
        10_000,
    );
    let asked: Vec<String> = thief
        .requests()
        .into_iter()
        .filter(|r| r.contains("/k/"))
        .collect();
    assert!(
        !asked.is_empty(),
        "the player never asked the rewritten key URI: {v}"
    );
    let log = std::fs::read_to_string(tmp.path().join("thief/access.log")).unwrap();
    assert!(
        !log.contains("\" 418 "),
        "the viewer's token reached the rewritten key URI:\n{log}"
    );
    assert_eq!(num(&v, "verifiedPlayed"), 0.0, "{v}");
    assert_eq!(num(&v, "unverifiedPlayed"), 0.0, "{v}");
    assert!(v["error"].as_str().is_some(), "no error shown: {v}");
    assert!(
        v["p2pState"]
            .as_str()
            .is_some_and(|s| s.contains("p2p.json is not signed with this match's key")),
        "{v}"
    );

    let v = viewer(
        &format!("http://127.0.0.1:{port}/watch?match=tampered"),
        15_000,
    );
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "/{victim}: the origin's bytes do not match its signed tag"
        )),
        "the page did not name the tampered segment: {v}"
    );
    assert_eq!(
        num(&v, "unverifiedPlayed"),
        0.0,
        "hls.js got a tampered segment: {v}"
    );
    assert!(num(&v, "verifiedPlayed") >= 3.0, "{v}");
    assert!(num(&v, "httpRejected") >= 2.0, "{v}");
    assert!(
        v["p2pState"]
            .as_str()
            .is_some_and(|s| s.contains("peer-to-peer on")),
        "a signed p2p.json was refused: {v}"
    );
}
