//! SIGTERM ends a live match cleanly: the segment in progress is finished, every playlist
//! gets EXT-X-ENDLIST, and the exit code is 0 — within one segment duration plus a few
//! seconds, even when a feed never arrives.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

/// Starts a real-time match of one angle with the demo profile.
fn start_live(out: &Path, keys: &Path, match_id: &str, angle: &str) -> Child {
    swarmpack()
        .args(["run", "--match", match_id, "--angle", angle])
        .arg("--keys")
        .arg(keys)
        .arg("--profile")
        .arg(profile("demo.toml"))
        .arg("--origin")
        .arg(format!("file://{}", out.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends SIGTERM and waits at most `limit` for the process to exit; kills it and fails the
/// test if it does not.
fn sigterm_and_wait(mut child: Child, limit: Duration) -> Output {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        if waited > limit {
            let _ = child.kill();
            panic!("no clean stop within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_finishes_the_segment_and_ends_the_playlists() {
    let out = tempfile::tempdir().unwrap();
    let keys = keygen(&scratch_dir("keys"));
    let child = start_live(out.path(), &keys, "live", "main=test:");
    let playlist = out.path().join("live/main/360p/index.m3u8");
    wait_for("the first live segment", Duration::from_secs(30), || {
        playlist.is_file() && !media_playlist(&playlist).segments.is_empty()
    });
    assert!(
        !media_playlist(&playlist).end_list,
        "a live playlist is open"
    );
    // One 2 s segment plus a few seconds.
    let output = sigterm_and_wait(child, Duration::from_secs(10));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for rung in ["360p", "180p"] {
        let dir = out.path().join("live/main").join(rung);
        assert_playlist_segments_valid(&dir, &keys, "live");
        let p = media_playlist(&dir.join("index.m3u8"));
        assert!(p.end_list, "{rung}: no ENDLIST after SIGTERM");
        for s in &p.segments {
            assert!(
                (s.duration - 2.0).abs() < 1e-6,
                "{rung}: the last segment was cut: {}",
                s.duration
            );
        }
    }
    // The last window was closed, signed and chained: verify checks it and live.json says ended.
    let live: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("live/live.json")).unwrap()).unwrap();
    assert_eq!(live["ended"], true, "{live}");
    let window = live["windows"][0].as_u64().expect("a window");
    assert!(
        out.path()
            .join(format!("live/windows/{window}.torrent"))
            .is_file()
    );
    assert_verifies(out.path().join("live").to_str().unwrap(), &keys);
}

#[test]
fn sigterm_while_a_venue_never_calls_ends_the_slate_cleanly() {
    let out = tempfile::tempdir().unwrap();
    let keys = keygen(&scratch_dir("keys"));
    let port = free_udp_port();
    let child = start_live(
        out.path(),
        &keys,
        "idle",
        &format!("stage=srt://127.0.0.1:{port}?mode=listener"),
    );
    // The venue never calls: the angle runs on the slate, segment after segment.
    let playlist = out.path().join("idle/stage/360p/index.m3u8");
    wait_for("slate segments", Duration::from_secs(30), || {
        playlist.is_file() && media_playlist(&playlist).segments.len() >= 2
    });
    let output = sigterm_and_wait(child, Duration::from_secs(15));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("angle stage: waiting for the feed; the slate is on air until it arrives"),
        "{stderr}"
    );
    for rung in ["360p", "180p"] {
        let dir = out.path().join("idle/stage").join(rung);
        assert!(media_playlist(&dir.join("index.m3u8")).end_list, "{rung}");
        assert!(assert_playlist_segments_valid(&dir, &keys, "idle") >= 1);
    }
}
