//! Broadcast feeds pushed live over SRT (issue 17), as a venue's encoder would: ffmpeg makes a
//! 1080-line feed once and sends it in real time (`-re`, stream copy) to swarmpack's SRT
//! listener. Every segment of every rung is checked by ffprobe on the decrypted bytes:
//! EXTINF, PDT on the epoch grid, whole frames per segment at an even cadence, a keyframe
//! first, and the rungs cutting together.
//!
//! - 1080p59.94 into a 59.94/29.97 ladder with 2.002 s segments;
//! - 1080i59.94 (top field first) into a progressive 59.94/29.97 ladder: one frame per field;
//! - 1080i50 into a 50p/25p ladder, with loudness normalisation on (live, so the normaliser's
//!   3 s look-ahead must not stall the muxer): ebur128 measures the target ± 1 LU.
//!
//! The three run one after the other (a lock), each taking about one core for 15 seconds.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// An 8 s 1080-line feed as a venue encoder makes it (see [`Feed`]).
fn feed_1080(
    dir: &Path,
    name: &str,
    rate: &str,
    interlaced: bool,
    gop: u32,
    tone_db: i32,
) -> PathBuf {
    Feed {
        size: "1920x1080",
        rate,
        secs: 8,
        interlaced,
        gop,
        tone_db,
    }
    .make(&dir.join(format!("{name}.ts")))
}

struct Ladder {
    duration: &'static str,
    duration_ms: u64,
    top: (&'static str, &'static str, (u64, u64)),
    low: (&'static str, &'static str, (u64, u64)),
    extra: &'static str,
}

/// Runs one angle fed over SRT from `feed` (looped, real time) for `secs` of media and checks
/// the ladder's grid. Returns each rung's decrypted segments joined into one TS, top first.
fn run_srt(tmp: &Path, feed: &Path, ladder: &Ladder, secs: &str) -> [PathBuf; 2] {
    let profile = tmp.join("srt.toml");
    let rung = |(name, fps, _): (&str, &str, (u64, u64)), w: u32, h: u32, kbps: u32| {
        format!(
            "[[rung]]\nname = \"{name}\"\nwidth = {w}\nheight = {h}\nfps = {fps}\nvideo_kbps = {kbps}\naudio_kbps = 128\n"
        )
    };
    std::fs::write(
        &profile,
        format!(
            "name = \"srt\"\n[segment]\nduration = {}\nwindow = 2\ndvr = 60\n{}{}\
             [encoder]\npreset = \"ultrafast\"\n[seed]\nenabled = false\n\
             [origin]\npublic_url = \"http://127.0.0.1:9/\"\n{}",
            ladder.duration,
            rung(ladder.top, 640, 360, 1200),
            rung(ladder.low, 320, 180, 400),
            ladder.extra,
        ),
    )
    .unwrap();
    let keys = keygen(tmp);
    let origin = tmp.join("origin");
    let port = free_udp_port();
    let mut run = run_match(
        "srt",
        &profile,
        &keys,
        &format!("file://{}", origin.display()),
    );
    run.args(["--no-seed", "--duration", secs])
        .arg("--angle")
        .arg(format!("stage=srt://127.0.0.1:{port}?mode=listener"));
    // The venue's encoder calls every 300 ms until swarmpack's listener answers.
    let mut venue = VenueEncoder::start(
        &[
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            feed.to_str().unwrap(),
            "-c",
            "copy",
        ]
        .map(String::from),
        &format!("srt://127.0.0.1:{port}?mode=caller"),
    );
    let out = run_with_deadline(run, Duration::from_secs(120));
    venue.stop();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains("signal lost"),
        "the feed was never lost: {log}"
    );
    let scratch = tmp.join("plain");
    std::fs::create_dir_all(&scratch).unwrap();
    let segments = assert_ladder_grid(
        &origin,
        &keys,
        "srt",
        "stage",
        ladder.duration_ms,
        &[
            RungGrid {
                name: ladder.top.0,
                fps: ladder.top.2,
            },
            RungGrid {
                name: ladder.low.0,
                fps: ladder.low.2,
            },
        ],
        &scratch,
    );
    assert!(segments >= 5, "{segments} segments");
    // The feed's picture, not the slate that stands in until it arrives (black, luma 16):
    // all but the first two segments of the top rung (the encoder connects, its first
    // keyframe comes, and the feed goes on air at the next boundary).
    let joined = joined_rendition(
        &origin.join("srt/stage").join(ladder.top.0),
        &keys,
        "srt",
        &scratch.join("top.ts"),
    );
    let (num, den) = ladder.top.2;
    let per_segment = (ladder.duration_ms * num / den / 1000) as usize;
    let live = frame_lumas(&joined).iter().filter(|l| **l > 40).count();
    assert!(
        live >= (segments - 2) * per_segment,
        "{live} frames of the feed's picture in {segments} segments of {per_segment}"
    );
    let low = joined_rendition(
        &origin.join("srt/stage").join(ladder.low.0),
        &keys,
        "srt",
        &scratch.join("low.ts"),
    );
    [joined, low]
}

#[test]
fn srt_1080p59_94_fills_a_59_94_and_29_97_ladder_with_2_002_s_segments() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let feed = feed_1080(tmp.path(), "p5994", "60000/1001", false, 60, -18);
    let ladder = Ladder {
        duration: "2.002",
        duration_ms: 2002,
        top: ("p60", "59.94", (60000, 1001)),
        low: ("p30", "29.97", (30000, 1001)),
        extra: "",
    };
    run_srt(tmp.path(), &feed, &ladder, "10.01");
}

#[test]
fn srt_1080i59_94_tff_comes_out_progressive_at_field_rate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    // 59.94 pictures a second woven into 29.97 interlaced frames.
    let feed = feed_1080(tmp.path(), "i5994", "60000/1001", true, 30, -18);
    let (prog, inter) = idet(&feed);
    assert!(inter > prog, "the feed is interlaced: {prog} / {inter}");
    let ladder = Ladder {
        duration: "2.002",
        duration_ms: 2002,
        top: ("p60", "59.94", (60000, 1001)),
        low: ("p30", "29.97", (30000, 1001)),
        extra: "",
    };
    let [p60, _] = run_srt(tmp.path(), &feed, &ladder, "10.01");
    let (prog, inter) = idet(&p60);
    assert!(
        prog > 100 && inter * 20 < prog,
        "progressive: {prog} progressive, {inter} interlaced"
    );
}

#[test]
fn srt_1080i50_fills_a_50p_and_25p_ladder_with_loudness_normalised() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let feed = feed_1080(tmp.path(), "i50", "50", true, 25, -40);
    let (prog, inter) = idet(&feed);
    assert!(inter > prog, "the feed is interlaced: {prog} / {inter}");
    let input = integrated_loudness(&feed);
    assert!(input < -33.0, "a quiet feed: {input} LUFS");
    let ladder = Ladder {
        duration: "2.0",
        duration_ms: 2000,
        top: ("p50", "50", (50, 1)),
        low: ("p25", "25", (25, 1)),
        extra: "[audio]\nloudness = -23\n",
    };
    let [_, p25] = run_srt(tmp.path(), &feed, &ladder, "10");
    let got = integrated_loudness(&p25);
    assert!(
        (got + 23.0).abs() <= 1.0,
        "integrated loudness {got} LUFS, want -23 ± 1 (the feed is {input})"
    );
    let (prog, inter) = idet(&p25);
    assert!(inter * 20 < prog, "progressive: {prog} / {inter}");
}
