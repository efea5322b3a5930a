//! What venues send (issue 17): surround audio and interlaced video, made by ffmpeg as files
//! and run through `swarmpack run --fast`, the output checked by ffmpeg's own filters.
//!
//! - A 5.1 feed with a tone only in its centre channel is heard in both output channels,
//!   equally; one with a tone only in its LFE is silent (GStreamer's default downmix puts the
//!   LFE into both sides as loud as the fronts: this fails without swarmpack's matrix).
//! - With `[audio] loudness = -23`, ffmpeg's `ebur128` measures the output at -23 LUFS ± 1 LU;
//!   without it, at the feed's own loudness.
//! - A 576i50 feed (top field first, real field motion) comes out progressive by ffmpeg's
//!   `idet`; with the deinterlacer taken out of the source fragment it does not.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A profile with one rung of `width`x`height` at `fps`.
fn profile(dir: &Path, width: u32, height: u32, fps: u32) -> PathBuf {
    let path = dir.join("feeds.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"feeds\"\n[segment]\nduration = 2.0\nwindow = 2\ndvr = 60\n\
             [[rung]]\nname = \"r\"\nwidth = {width}\nheight = {height}\nfps = {fps}\nvideo_kbps = 1500\naudio_kbps = 128\n\
             [encoder]\npreset = \"ultrafast\"\n[seed]\nenabled = false\n[origin]\npublic_url = \"http://127.0.0.1:9/\"\n"
        ),
    )
    .unwrap();
    path
}

/// A match in `dir` whose one angle is `main=URI`: keys, origin, and `swarmpack run --fast
/// --no-seed --duration SECS` (with `--pipelines` when given), run to its end.
struct OneAngle {
    keys: PathBuf,
    origin: PathBuf,
    out: std::process::Output,
}

fn one_angle(
    dir: &Path,
    match_id: &str,
    profile: &Path,
    uri: &str,
    secs: &str,
    pipelines: Option<&Path>,
) -> OneAngle {
    let keys = keygen(dir);
    let origin = dir.join("origin");
    let mut run = run_match(
        match_id,
        profile,
        &keys,
        &format!("file://{}", origin.display()),
    );
    run.args(["--fast", "--no-seed", "--duration", secs])
        .arg("--angle")
        .arg(format!("main={uri}"));
    if let Some(p) = pipelines {
        run.arg("--pipelines").arg(p);
    }
    let out = run_with_deadline(run, Duration::from_secs(120));
    OneAngle { keys, origin, out }
}

/// Runs `file` as the one angle of a match; returns the decrypted segments joined into one TS.
fn run_file(dir: &Path, file: &Path, profile: &Path, pipelines: Option<&Path>) -> Option<PathBuf> {
    run_file_for(dir, file, profile, pipelines, "4")
}

fn run_file_for(
    dir: &Path,
    file: &Path,
    profile: &Path,
    pipelines: Option<&Path>,
    secs: &str,
) -> Option<PathBuf> {
    let uri = format!("file:{}", file.display());
    let OneAngle { keys, origin, out } = one_angle(dir, "feeds", profile, &uri, secs, pipelines);
    if !out.status.success() {
        eprintln!("run failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let rdir = origin.join("feeds/main/r");
    Some(joined_rendition(
        &rdir,
        &keys,
        "feeds",
        &dir.join("joined.ts"),
    ))
}

/// RMS level per output channel (dB), by ffmpeg's astats.
fn channel_rms(ts: &Path) -> Vec<f64> {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(ts)
        .args([
            "-map",
            "0:a:0",
            "-af",
            "astats=measure_overall=none:measure_perchannel=RMS_level",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split("RMS level dB: ").nth(1))
        .map(|v| v.trim().parse().unwrap_or(f64::NEG_INFINITY))
        .collect()
}

/// A 5.1 file whose only sound is a 1 kHz tone in channel `only` (FC, LFE…).
fn surround(dir: &Path, only: &str) -> PathBuf {
    let path = dir.join(format!("{only}.mp4"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=30:duration=5",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=200:sample_rate=48000:duration=5",
        "-filter_complex",
        &format!("[1:a]pan=5.1|{only}=c0[a]"),
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-b:a",
        "384k",
        path.to_str().unwrap(),
    ]);
    path
}

#[test]
fn surround_sound_is_downmixed_with_the_centre_in_both_ears_and_no_lfe() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(tmp.path(), 320, 180, 30);

    let centre = surround(tmp.path(), "FC");
    let d = tmp.path().join("centre");
    std::fs::create_dir_all(&d).unwrap();
    let out = run_file(&d, &centre, &profile, None).expect("the 5.1 feed runs");
    let rms = channel_rms(&out);
    assert_eq!(rms.len(), 2, "stereo out: {rms:?}");
    assert!(
        (rms[0] - rms[1]).abs() < 0.5,
        "equally in both ears: {rms:?}"
    );
    // At -3 dB, then scaled by the left side's sum (1 + 2 x 0.707) so nothing clips:
    // 10.7 dB under the centre channel in (GStreamer's default would give 13.1).
    let input = channel_rms(&centre)[2];
    let want =
        input + 20.0 * (std::f64::consts::FRAC_1_SQRT_2 / (1.0 + std::f64::consts::SQRT_2)).log10();
    assert!(
        (rms[0] - want).abs() < 1.0,
        "the centre's tone at {want:.1} dB in both ears (it is {input:.1} dB in): {rms:?}"
    );

    let lfe = surround(tmp.path(), "LFE");
    // The input has its tone, in the LFE alone: silence out is the downmix's doing.
    let input = channel_rms(&lfe);
    assert_eq!(input.len(), 6, "a 5.1 input: {input:?}");
    assert!(input[3] > -30.0, "the tone is in the LFE: {input:?}");
    assert!(
        input.iter().enumerate().all(|(i, r)| i == 3 || *r < -60.0),
        "and nowhere else: {input:?}"
    );
    let d = tmp.path().join("lfe");
    std::fs::create_dir_all(&d).unwrap();
    let out = run_file(&d, &lfe, &profile, None).expect("the 5.1 feed runs");
    let rms = channel_rms(&out);
    // Two channels measured: an output without audio would have none, and pass below.
    assert_eq!(rms.len(), 2, "stereo out: {rms:?}");
    assert!(
        rms.iter().all(|r| *r < -60.0),
        "the LFE is left out of the stereo: {rms:?}"
    );
}

#[test]
fn an_interlaced_feed_comes_out_progressive() {
    let tmp = tempfile::tempdir().unwrap();
    // 576i50: 50 pictures a second of fast motion woven into 25 interlaced frames, TFF.
    let feed = Feed {
        size: "720x576",
        rate: "50",
        secs: 6,
        interlaced: true,
        gop: 25,
        tone_db: 0,
    }
    .make(&tmp.path().join("576i50.ts"));
    let (prog, inter) = idet(&feed);
    assert!(
        inter > prog,
        "the feed itself is interlaced: {prog} progressive, {inter} interlaced"
    );
    // Full height, so combing would survive: 720x576 at 25p (one frame per frame).
    let profile = profile(tmp.path(), 720, 576, 25);
    let d = tmp.path().join("on");
    std::fs::create_dir_all(&d).unwrap();
    let out = run_file(&d, &feed, &profile, None).expect("the interlaced feed runs");
    let (prog, inter) = idet(&out);
    assert!(
        prog > 50 && inter * 20 < prog,
        "deinterlaced: {prog} progressive, {inter} interlaced"
    );

    // The same without the deinterlacer (a source fragment with it taken out): no longer
    // progressive. The run must succeed, so that this fails only for what it checks.
    let pipelines = tmp.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/source-file.gst"),
    )
    .unwrap();
    let without: String = builtin
        .lines()
        .filter(|l| !l.contains("deinterlace name=deint"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, builtin);
    std::fs::write(pipelines.join("source-file.gst"), without).unwrap();
    let d = tmp.path().join("off");
    std::fs::create_dir_all(&d).unwrap();
    let out = run_file(&d, &feed, &profile, Some(&pipelines))
        .expect("the run without the deinterlacer (see its stderr above)");
    let (prog, inter) = idet(&out);
    assert!(
        prog + inter > 50,
        "idet saw {prog} progressive and {inter} interlaced frames: too few to judge"
    );
    assert!(
        inter * 20 >= prog,
        "without the deinterlacer the output should stay interlaced: {prog} progressive, {inter} interlaced"
    );
}

#[test]
fn a_feed_whose_encoder_produces_nothing_ends_the_run_naming_angle_and_element() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = profile(tmp.path(), 320, 180, 30);
    // The encoder's output thrown away (a valve that drops everything): frames arrive, no
    // segment ever does, as with caps x264 cannot take.
    let pipelines = tmp.path().join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/rung-video.gst"),
    )
    .unwrap();
    let stuck = builtin.replace("! h264parse", "! valve drop=true ! h264parse");
    assert_ne!(stuck, builtin);
    std::fs::write(pipelines.join("rung-video.gst"), stuck).unwrap();
    let started = std::time::Instant::now();
    let out = one_angle(
        tmp.path(),
        "stuck",
        &profile,
        "test:",
        "600",
        Some(&pipelines),
    )
    .out;
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("angle main: feed failed: frames arrive but rung r gave no segment")
            && log.contains("enc_r"),
        "{log}"
    );
    eprintln!("ended after {:?}", started.elapsed());
}

#[test]
fn a_59_94_feed_fills_a_59_94_and_29_97_ladder_with_2_002_s_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let feed = Feed {
        size: "640x360",
        rate: "60000/1001",
        secs: 10,
        interlaced: false,
        gop: 60,
        tone_db: 0,
    }
    .make(&tmp.path().join("p5994.ts"));
    let profile = tmp.path().join("ntsc.toml");
    std::fs::write(
        &profile,
        "name = \"ntsc\"\n[segment]\nduration = 2.002\nwindow = 2\ndvr = 60\n\
         [[rung]]\nname = \"p60\"\nwidth = 640\nheight = 360\nfps = 59.94\nvideo_kbps = 1500\naudio_kbps = 128\n\
         [[rung]]\nname = \"p30\"\nwidth = 320\nheight = 180\nfps = \"30000/1001\"\nvideo_kbps = 500\naudio_kbps = 128\n\
         [encoder]\npreset = \"ultrafast\"\n[seed]\nenabled = false\n[origin]\npublic_url = \"http://127.0.0.1:9/\"\n",
    )
    .unwrap();
    let uri = format!("file:{}", feed.display());
    let OneAngle { keys, origin, out } =
        one_angle(tmp.path(), "ntsc", &profile, &uri, "6.006", None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let segments = assert_ladder_grid(
        &origin,
        &keys,
        "ntsc",
        "main",
        2002,
        &[
            RungGrid {
                name: "p60",
                fps: (60000, 1001),
            },
            RungGrid {
                name: "p30",
                fps: (30000, 1001),
            },
        ],
        tmp.path(),
    );
    assert_eq!(segments, 3);
}

#[test]
fn loudness_normalisation_brings_a_quiet_feed_to_the_profiles_target() {
    let tmp = tempfile::tempdir().unwrap();
    // Pink noise far under broadcast loudness (about -49 LUFS), 12 s.
    let feed = tmp.path().join("quiet.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=30:duration=12",
        "-f",
        "lavfi",
        "-i",
        "anoisesrc=color=pink:amplitude=0.02:sample_rate=44100:duration=12",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-b:a",
        "192k",
        feed.to_str().unwrap(),
    ]);
    let input = integrated_loudness(&feed);
    let target = -23.0;
    assert!(
        (input - target).abs() > 10.0,
        "the feed is far from the target: {input} LUFS"
    );
    let plain = profile(tmp.path(), 320, 180, 30);
    let loud = tmp.path().join("loud.toml");
    let text = std::fs::read_to_string(&plain).unwrap();
    std::fs::write(&loud, format!("{text}[audio]\nloudness = {target:.1}\n")).unwrap();

    let d = tmp.path().join("on");
    std::fs::create_dir_all(&d).unwrap();
    let out = run_file_for(&d, &feed, &loud, None, "10").expect("the run with loudness on");
    let got = integrated_loudness(&out);
    assert!(
        (got - target).abs() <= 1.0,
        "integrated loudness {got} LUFS, want {target} ± 1 LU (the feed is {input})"
    );

    // Without [audio] loudness the feed's own loudness goes through (so the check above can
    // fail).
    let d = tmp.path().join("off");
    std::fs::create_dir_all(&d).unwrap();
    let out = run_file_for(&d, &feed, &plain, None, "10").expect("the run without loudness");
    let got = integrated_loudness(&out);
    assert!(
        (got - target).abs() > 10.0,
        "untouched: {got} LUFS (the mono feed is {input}, 3 dB more once in both ears)"
    );
}
