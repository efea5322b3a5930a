//! SIGTERM ends a live match cleanly: the segment in progress is finished, every playlist
//! gets EXT-X-ENDLIST, and the exit code is 0.

mod common;

use common::*;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn sigterm_finishes_the_segment_and_ends_the_playlists() {
    let out = tempfile::tempdir().unwrap();
    let keys = keygen(out.path());
    let child = swarmpack()
        .args(["run", "--match", "live"])
        .arg("--keys")
        .arg(&keys)
        .arg("--profile")
        .arg(profile("demo.toml"))
        .args(["--angle", "main=test:"])
        .arg("--origin")
        .arg(format!("file://{}", out.path().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut child = Guard(child);
    let playlist = out.path().join("live/main/360p/index.m3u8");
    wait_for("the first live segment", Duration::from_secs(30), || {
        playlist.is_file() && !media_playlist(&playlist).segments.is_empty()
    });
    assert!(
        !media_playlist(&playlist).end_list,
        "a live playlist is open"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let mut waited = Duration::ZERO;
    let code = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status.code();
        }
        // One segment duration plus a few seconds.
        assert!(
            waited < Duration::from_secs(10),
            "no clean stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    };
    assert_eq!(code, Some(0));
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
}

#[test]
fn sigterm_while_waiting_for_a_venue_that_never_calls_still_exits() {
    let out = tempfile::tempdir().unwrap();
    let keys = keygen(out.path());
    let port = free_udp_port();
    let child = swarmpack()
        .args(["run", "--match", "idle"])
        .arg("--profile")
        .arg(profile("demo.toml"))
        .arg("--keys")
        .arg(&keys)
        .args([
            "--angle",
            &format!("stage=srt://127.0.0.1:{port}?mode=listener"),
        ])
        .arg("--origin")
        .arg(format!("file://{}", out.path().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // The match has started once its multivariant playlist is up.
    wait_for("the match to start", Duration::from_secs(30), || {
        out.path().join("idle/master.m3u8").is_file()
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = child;
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        if waited > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("a stalled feed kept the match from stopping");
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "no segments is a runtime failure"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("did not reach the stop boundary"),
        "{stderr}"
    );
    assert!(stderr.contains("produced no segments"), "{stderr}");
}
