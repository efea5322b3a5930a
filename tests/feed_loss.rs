//! Feed loss on match day: the venue encoder (ffmpeg over SRT) is unplugged for 10 s and
//! plugged back in. The angle keeps its cadence from a slate (no gap in any playlist), real
//! video is there before and after, and the other angle never notices. The same for an
//! encoder pushing RTMP to `rtmp-listen://` that stops publishing and comes back.

mod common;

use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Each segment of a rendition (decrypted), in playlist order: 'L' when every frame is the
/// live picture, 'S' when every frame is the slate, 'M' when it mixes both.
fn kinds(dir: &Path, keys: &Path) -> String {
    let pl = media_playlist(&dir.join("index.m3u8"));
    let scratch = tempfile::tempdir().unwrap();
    pl.segments
        .iter()
        .map(|s| {
            let clear = decrypted_copy(dir, keys, "loss", s, scratch.path());
            let lumas = frame_lumas(&clear);
            if lumas.iter().all(|l| *l >= 60) {
                'L'
            } else if lumas.iter().all(|l| *l <= 45) {
                'S'
            } else {
                eprintln!("{} mixes live and slate: {lumas:?}", s.uri);
                'M'
            }
        })
        .collect()
}

/// A two-angle match of `secs` seconds, the feed under test (`angle`, NAME=URI) beside
/// `pov=test:`, logging to a file; 1 s segments, windows of 4.
struct LossMatch {
    _tmp: tempfile::TempDir,
    keys: std::path::PathBuf,
    origin: std::path::PathBuf,
    log_path: std::path::PathBuf,
    child: Guard,
}

impl LossMatch {
    fn start(angle: &str, secs: u32) -> LossMatch {
        let tmp = tempfile::tempdir().unwrap();
        let keys = keygen(tmp.path());
        let profile = small_profile(tmp.path(), 4, "http://127.0.0.1:9/", "");
        let log_path = tmp.path().join("swarmpack.log");
        let origin = tmp.path().join("origin");
        let child = Guard(
            run_match(
                "loss",
                &profile,
                &keys,
                &format!("file://{}", origin.display()),
            )
            .args(["--duration", &secs.to_string()])
            .arg("--events")
            .arg(tmp.path().join("events.jsonl"))
            .env("RUST_LOG", "info,swarmpack=debug")
            .args(["--angle", angle, "--angle", "pov=test:"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
        );
        LossMatch {
            _tmp: tmp,
            keys,
            origin,
            log_path,
            child,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The run's `--events`, as "type angle" (feed events) or "type" (the others), in order.
    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path.with_file_name("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                match e["data"]["angle"].as_str() {
                    Some(angle) => format!("{} {angle}", e["type"].as_str().unwrap()),
                    None => e["type"].as_str().unwrap().to_string(),
                }
            })
            .collect()
    }

    /// The feed events (what `swarmpack control` sends as webhooks) follow the feed watch:
    /// one `feed.lost` per loss it logged and one `feed.restored` per return (its first
    /// arrival is none), alternating, none for the other angle, and the clean end last.
    fn assert_feed_events(&self, angle: &str) {
        let log = self.log();
        let losses = log.matches(&format!("angle {angle}: signal lost")).count();
        let returns = log.matches(&format!("angle {angle}: feed is live")).count() - 1;
        assert!(losses >= 1 && returns == losses, "{log}");
        let events = self.events();
        let feed: Vec<&str> = events
            .iter()
            .filter(|e| e.starts_with("feed."))
            .map(String::as_str)
            .collect();
        let lost = format!("feed.lost {angle}");
        let back = format!("feed.restored {angle}");
        let want: Vec<&str> = (0..losses)
            .flat_map(|_| [lost.as_str(), back.as_str()])
            .collect();
        assert_eq!(feed, want, "{events:?}");
        assert!(events.iter().any(|e| e == "window.published"), "{events:?}");
        assert_eq!(
            events.last().map(String::as_str),
            Some("match.ended"),
            "{events:?}"
        );
    }

    /// The newest seq on the origin for `angle` (180p), 0 before there is one.
    fn newest_seq(&self, angle: &str) -> u64 {
        let playlist = self.origin.join(format!("loss/{angle}/180p/index.m3u8"));
        std::fs::read_to_string(playlist)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_suffix(".ts")?.parse().ok())
            .max()
            .unwrap_or(0)
    }

    /// Waits until the run has published `segments` more segments of `angle` (1 s each): a
    /// stretch of the match measured on the run's own output, not on the test's clock, which
    /// a loaded machine would let run ahead. The match must still be running then.
    fn wait_segments(&mut self, angle: &str, segments: u64, what: &str) {
        wait_or_show(
            &format!("a first segment of {angle}"),
            Duration::from_secs(20),
            || self.newest_seq(angle) > 0,
            || self.log(),
        );
        let from = self.newest_seq(angle);
        wait_or_show(
            what,
            Duration::from_secs(segments * 4 + 20),
            || self.newest_seq(angle) >= from + segments,
            || self.log(),
        );
        assert!(
            self.child.0.try_wait().unwrap().is_none(),
            "the match ended during {what}: the machine is too slow for this test\n{}",
            self.log()
        );
    }

    /// Waits for the match to end on its own (`--duration`) and asserts it exited 0.
    fn wait_end(&mut self) {
        let started = Instant::now();
        while self.child.0.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no end:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let status = self.child.0.try_wait().unwrap().unwrap();
        assert!(status.success(), "{}", self.log());
    }
}

#[test]
fn an_unplugged_srt_feed_is_bridged_by_a_slate_and_comes_back() {
    let port = free_udp_port();
    let mut m = LossMatch::start(&format!("stage=srt://127.0.0.1:{port}?mode=listener"), 36);
    let url = format!("srt://127.0.0.1:{port}?mode=caller");
    let mut encoder = VenueEncoder::start(&VenueEncoder::live_picture(), &url);
    wait_for("the feed to go live", Duration::from_secs(20), || {
        m.log().contains("angle stage: feed is live")
    });
    m.wait_segments("stage", 6, "6 s of live picture on air");
    encoder.stop();
    wait_for("the loss to be noticed", Duration::from_secs(10), || {
        m.log().contains("angle stage: signal lost")
    });
    m.wait_segments("stage", 10, "10 s of outage");
    let _encoder = VenueEncoder::start(&VenueEncoder::live_picture(), &url);
    wait_for("the feed to come back", Duration::from_secs(20), || {
        m.log().matches("angle stage: feed is live").count() >= 2
    });
    m.wait_end();
    m.assert_feed_events("stage");

    assert_no_gap(&m.origin.join("loss"), &m.keys, "loss", 34);

    // The stage angle: live picture, then slate (black with text), then live again; the feed
    // comes back on air at a segment boundary.
    // (It may open on the slate too, until the encoder first calls in.)
    let all = kinds(&m.origin.join("loss/stage/180p"), &m.keys);
    let slate = assert_live_slate_live(&all);
    assert!(
        (7..=14).contains(&slate),
        "about 10 s of slate, got {slate}: {all}"
    );
    // The other angle never noticed: its test picture throughout.
    let pov = kinds(&m.origin.join("loss/pov/180p"), &m.keys);
    assert!(pov.chars().all(|k| k == 'L'), "{pov}");
}

/// The segments of `stage` from its first live one must read live, slate, live: the loss may
/// cut into a segment, the return is at a boundary (all slate before it, all live after).
/// Returns how many slate segments bridged the gap.
fn assert_live_slate_live(all: &str) -> usize {
    let stage = &all[all
        .find('L')
        .unwrap_or_else(|| panic!("no live picture: {all}"))..];
    let back = stage
        .rfind('S')
        .unwrap_or_else(|| panic!("no slate after the live picture: {all}"))
        + 1;
    let lost = stage[..back].find('S').unwrap();
    assert!(
        stage[..lost].trim_end_matches('M').ends_with('L') && stage[back..].starts_with('L'),
        "expected live, slate, live: {stage}"
    );
    assert!(!stage[lost..back].contains('L'), "{stage}");
    stage[lost..back].matches('S').count()
}

/// Every playlist has every seq, without a discontinuity; all segments decrypt and decode.
fn assert_no_gap(match_dir: &Path, keys: &Path, match_id: &str, at_least: usize) {
    for p in media_playlists(match_dir) {
        let pl = media_playlist(&p);
        let seqs: Vec<u64> = pl
            .segments
            .iter()
            .map(|s| s.uri.trim_end_matches(".ts").parse().unwrap())
            .collect();
        assert!(seqs.len() >= at_least, "{}: {seqs:?}", p.display());
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{}: {seqs:?}",
            p.display()
        );
        assert!(
            pl.segments.iter().all(|s| !s.discontinuity),
            "{}",
            p.display()
        );
        assert_playlist_segments_valid(p.parent().unwrap(), keys, match_id);
    }
}

#[test]
fn a_pushed_rtmp_feed_that_stops_is_bridged_by_a_slate() {
    let port = free_tcp_port();
    let mut m = LossMatch::start(&format!("obs=rtmp-listen://127.0.0.1:{port}/live/key"), 30);
    wait_for("the RTMP listener", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // Nobody publishes yet: the slate is on air, and no false "live" is reported.
    wait_for("the slate", Duration::from_secs(10), || {
        m.log().contains("angle obs: waiting for the feed")
    });
    let publish = || {
        Guard(
            std::process::Command::new("ffmpeg")
                .args(["-v", "error"])
                .args(VenueEncoder::live_picture())
                .args(["-f", "flv", &format!("rtmp://127.0.0.1:{port}/live/key")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut obs = publish();
    wait_for("the push to go live", Duration::from_secs(20), || {
        m.log().contains("angle obs: feed is live")
    });
    m.wait_segments("obs", 6, "6 s of live picture on air");
    let _ = obs.0.kill(); // OBS crashes
    let _ = obs.0.wait();
    wait_for("the loss to be noticed", Duration::from_secs(10), || {
        m.log().contains("angle obs: signal lost")
    });
    m.wait_segments("obs", 6, "6 s of outage");
    let _obs = publish();
    wait_or_show(
        "the push to come back",
        Duration::from_secs(20),
        || m.log().matches("angle obs: feed is live").count() >= 2,
        || m.log(),
    );
    m.wait_end();
    let log = m.log();
    assert_eq!(log.matches("angle obs: feed is live").count(), 2, "{log}");
    m.assert_feed_events("obs");

    assert_no_gap(&m.origin.join("loss"), &m.keys, "loss", 28);
    let all = kinds(&m.origin.join("loss/obs/180p"), &m.keys);
    assert!(all.starts_with('S'), "the slate until OBS publishes: {all}");
    let slate = assert_live_slate_live(&all);
    assert!(
        (4..=9).contains(&slate),
        "about 6 s of slate, got {slate}: {all}"
    );
    let pov = kinds(&m.origin.join("loss/pov/180p"), &m.keys);
    assert!(pov.chars().all(|k| k == 'L'), "{pov}");
}
