//! The operator preview page, end to end in a real browser: a live demo-profile match (two
//! test angles, two rungs) served by `swarmpack serve`, driven by headless Chromium through
//! playwright-core (`web/test/preview.mjs` holds the in-page checks). With `--dev-tokens` every
//! angle plays, angle switches keep the PDT, the page verifies both signatures and shows the
//! run's spool; without it, nothing plays and the page shows the key server's 401. A manifest
//! tampered with on its way to the page is called a bad signature, and a browser without
//! Ed25519 in WebCrypto verifies with the pure-JS fallback and says so.
//! Screenshots at 1280x720 land in target/tmp/preview/ as artifacts.

mod common;

use common::browser::{preview_page, require_browser};
use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The preview page's checks for `expect`, with angles main and pov and rungs 360p and 180p.
fn drive(url: &str, expect: &str, screenshot: &Path) -> serde_json::Value {
    preview_page(url, "main,pov", Some("360p,180p"), expect, screenshot)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn the_preview_page_plays_every_angle_and_verifies_the_window_in_chromium() {
    require_browser("playwright-core");
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let port = free_tcp_port();
    let profile = profile_with(
        tmp.path(),
        "demo.toml",
        "127.0.0.1:8080",
        &format!("127.0.0.1:{port}"),
    );
    let origin = tmp.path().join("origin");
    let spool = tmp.path().join("spool");
    std::fs::create_dir_all(&origin).unwrap();
    let mut run = run_match(
        "cup",
        &profile,
        &keys,
        &format!("file://{}", origin.display()),
    );
    run.args(["--angle", "main=test:", "--angle", "pov=test:"])
        .args(["--no-seed", "--duration", "120"])
        .arg("--spool")
        .arg(&spool)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _run = Guard(run.spawn().unwrap());
    let m = origin.join("cup");
    // A signed window, and 4 segments (8 s) in every playlist: a player that starts with less
    // sits at the live edge and stalls for every new segment, which is the stream's youth and
    // not the page's fault.
    wait_for(
        "the first window and 4 segments",
        Duration::from_secs(60),
        || live_with_segments(&m, 4, 4),
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("preview");
    std::fs::create_dir_all(&shots).unwrap();
    let url = format!("http://127.0.0.1:{port}/?match=cup");

    // With dev tokens: everything plays and verifies.
    let flags = [
        "--dev-tokens".as_ref(),
        "--spool".as_ref(),
        spool.as_os_str(),
    ];
    let server = serve(&origin, &keys, port, &flags);
    let shot = shots.join("preview-1280x720.png");
    let seen = drive(&url, "play", &shot);
    drop(server);
    // The infohash on the page is one the packager wrote into a window manifest.
    let shown = seen["infohash_v1"].as_str().unwrap();
    let known = std::fs::read_dir(m.join("windows"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .any(|e| {
            let man: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
            man["torrent"]["infohash_v1"] == shown
        });
    assert!(
        known,
        "the page shows infohash {shown}, in no window manifest"
    );
    let spooled = seen["spool"].as_str().unwrap();
    assert!(
        spooled.contains("empty") || spooled.contains("waiting"),
        "spool row: {spooled}"
    );
    assert_eq!(png_size(&shot), (1280, 720));
    eprintln!("screenshot: {}", shot.display());

    // Without dev tokens on the same address (the key URIs name it): a visible key error.
    let _server = serve(&origin, &keys, port, &[]);
    let shot = shots.join("preview-no-token-1280x720.png");
    let seen = drive(&url, "key-error", &shot);
    assert!(seen["big_error"].as_str().unwrap().contains("401"));
    assert!(
        seen["sig_status"]
            .as_str()
            .unwrap()
            .contains("BAD SIGNATURE")
    );
    assert_eq!(png_size(&shot), (1280, 720));

    // A browser without Ed25519 in WebCrypto: the page verifies with the pure-JS fallback,
    // and says so.
    let shot = shots.join("preview-no-ed25519-1280x720.png");
    let seen = drive(&url, "no-ed25519", &shot);
    assert!(
        seen["sig_status"]
            .as_str()
            .unwrap()
            .contains("verified (pure-JS Ed25519)"),
        "{seen}"
    );
    drop(_server);

    // Issue 25, item 3: segments changed on their way from the origin are never played, and
    // the page says why (checked against their signed tags).
    let _server = serve(&origin, &keys, port, &["--dev-tokens".as_ref()]);
    let shot = shots.join("preview-tampered-1280x720.png");
    let seen = drive(&url, "tampered", &shot);
    assert!(
        seen["tile_error"]
            .as_str()
            .unwrap()
            .contains("do not match its signed tag"),
        "{seen}"
    );
}
