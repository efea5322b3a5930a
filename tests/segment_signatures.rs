//! Every segment line of every media playlist of a live match carries an
//! `#EXT-X-SWARMPACK-SEGMENT` tag whose signed message, rebuilt from the contract, openssl
//! verifies with the match's public key, while the match is still on air; `swarmpack verify`
//! and the browser's check (web/player/segments.js, run in node) agree.

mod common;

use common::*;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn openssl_verifies_every_segment_tag_of_a_live_match() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let origin = tmp.path().join("origin");
    let log = tmp.path().join("run.log");
    let child = run_match(
        "live",
        &profile("demo.toml"),
        &keys,
        &format!("file://{}", origin.display()),
    )
    .args(["--angle", "main=test:", "--angle", "pov=test:", "--no-seed"])
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let _run = Guard(child);
    let dir = origin.join("live");
    wait_for(
        "a window and 6 segments per playlist",
        Duration::from_secs(60),
        || live_with_segments(&dir, 4, 6),
    );
    // A snapshot of the live origin: playlists first, so every segment they name is there.
    let snap = tmp.path().join("snap");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&origin)
        .arg(&snap)
        .status()
        .unwrap();
    assert!(status.success());
    let mut tags = 0;
    for playlist in media_playlists(&snap.join("live")) {
        let p = media_playlist(&playlist);
        assert!(!p.end_list, "{}: still live", playlist.display());
        assert!(p.segments.len() >= 6);
        tags += assert_segment_tags_verify(&snap, &playlist, &keys.join("pubkey.pem"));
    }
    assert!(tags >= 24, "{tags} tags checked");
    // swarmpack's own verify agrees, segment tags included, on the match as it stands.
    let out = swarmpack()
        .arg("verify")
        .arg(snap.join("live"))
        .arg("--pubkey")
        .arg(keys.join("pubkey.pem"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("segment tag(s): all verified"), "{stderr}");
    // The browser's check (web/player/segments.js, what /watch runs before hls.js gets a peer's
    // segment) agrees too, and refuses a flipped byte, another path, IV, signature or key, with WebCrypto and with
    // the pure-JS Ed25519 fallback.
    let node = std::process::Command::new("node")
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web"))
        .arg("test/segments.mjs")
        .arg(&snap)
        .arg("live/main/360p")
        .arg(keys.join("pubkey.pem"))
        .output()
        .unwrap();
    assert!(
        node.status.success(),
        "web/player/segments.js disagrees:\n{}{}",
        String::from_utf8_lossy(&node.stdout),
        String::from_utf8_lossy(&node.stderr)
    );
}
