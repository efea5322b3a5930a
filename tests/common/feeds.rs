//! What broadcast feeds tests check with ffmpeg's own tools: making feeds, interlace detection
//! (`idet`), loudness (`ebur128`), frame timestamps (ffprobe) and a ladder's segment grid.

use super::{decrypt_segment, decrypted_copy, first_video_frame, media_playlist};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs ffmpeg quietly with `args` and insists that it succeeds.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A feed as a venue's encoder makes it, in MPEG-TS: `secs` of ffmpeg's moving test picture
/// at `size` and `rate` (pictures a second: fields for interlaced), H.264 with a GOP of `gop`
/// frames (interlaced coding, top field first, when `interlaced`), and a 440 Hz tone at
/// `tone_db` dB in AAC.
pub struct Feed<'a> {
    pub size: &'a str,
    pub rate: &'a str,
    pub secs: u32,
    pub interlaced: bool,
    pub gop: u32,
    pub tone_db: i32,
}

impl Feed<'_> {
    /// Writes the feed to `path` and returns it.
    pub fn make(&self, path: &Path) -> PathBuf {
        let video = format!(
            "testsrc2=size={}:rate={}:duration={}",
            self.size, self.rate, self.secs
        );
        let audio = format!(
            "sine=frequency=440:sample_rate=48000:duration={},volume={}dB",
            self.secs, self.tone_db
        );
        let gop = self.gop.to_string();
        let mut args = vec!["-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio];
        if self.interlaced {
            args.extend([
                "-vf",
                "tinterlace=mode=interleave_top,setfield=tff",
                "-flags",
                "+ildct+ilme",
                "-x264opts",
                "tff=1",
            ]);
        }
        args.extend([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            &gop,
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ]);
        let out = path.to_str().unwrap();
        args.push(out);
        ffmpeg(&args);
        path.to_path_buf()
    }
}

/// ffmpeg's idet over the file: (progressive, interlaced) frames by its multi-frame detection.
pub fn idet(ts: &Path) -> (u64, u64) {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(ts)
        .args(["-map", "0:v:0", "-vf", "idet", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains("Multi frame detection"))
        .unwrap_or_else(|| panic!("no idet summary:\n{text}"));
    let count = |key: &str| -> u64 {
        line.split(key)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (count("Progressive:"), count("TFF:") + count("BFF:"))
}

/// The integrated loudness (LUFS) of a file's first audio stream, by ffmpeg's `ebur128`.
pub fn integrated_loudness(file: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-nostats", "-i"])
        .arg(file)
        .args(["-map", "0:a:0", "-af", "ebur128", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text
        .split("Integrated loudness:")
        .nth(1)
        .unwrap_or_else(|| panic!("no ebur128 summary:\n{text}"));
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("I:"))
        .and_then(|v| v.trim().trim_end_matches("LUFS").trim().parse().ok())
        .unwrap_or_else(|| panic!("no integrated loudness in:\n{summary}"))
}

/// Every video frame's PTS in a TS file, by ffprobe.
pub fn frame_pts(ts: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(ts)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// The decrypted segments of the rendition in `dir`, joined into `out` (one TS).
pub fn joined_rendition(dir: &Path, keys: &Path, match_id: &str, out: &Path) -> PathBuf {
    let pl = media_playlist(&dir.join("index.m3u8"));
    let mut all = Vec::new();
    for seg in &pl.segments {
        let stored = std::fs::read(dir.join(&seg.uri)).unwrap();
        all.extend(decrypt_segment(keys, match_id, seg, &stored));
    }
    std::fs::write(out, all).unwrap();
    out.to_path_buf()
}

/// One rendition of a ladder and what each of its segments must hold.
pub struct RungGrid {
    pub name: &'static str,
    /// Frames per second, as a fraction.
    pub fps: (u64, u64),
}

/// Checks every segment of every rendition of `MATCH/ANGLE/RUNG` (ffprobe on the decrypted
/// segment): EXTINF is `duration_ms`, the PDT is seq x duration exactly (epoch locking), each
/// segment holds duration x fps frames, starts on a keyframe and steps one frame period at a
/// time (no stutter, no dropped or doubled frame), and the rungs cut at the same instants
/// (within half a frame of the fastest). Returns how many segments each rung has.
pub fn assert_ladder_grid(
    origin: &Path,
    keys: &Path,
    match_id: &str,
    angle: &str,
    duration_ms: u64,
    rungs: &[RungGrid],
    scratch: &Path,
) -> usize {
    let mut firsts: Vec<Vec<(u64, f64)>> = Vec::new();
    let mut fastest: f64 = 1.0;
    for rung in rungs {
        let (num, den) = rung.fps;
        let period = den as f64 / num as f64;
        fastest = fastest.min(period);
        let frames = (duration_ms * num) as f64 / (den * 1000) as f64;
        assert_eq!(
            frames.fract(),
            0.0,
            "{}: whole frames per segment",
            rung.name
        );
        let dir = origin.join(match_id).join(angle).join(rung.name);
        let pl = media_playlist(&dir.join("index.m3u8"));
        assert!(!pl.segments.is_empty(), "{}: no segment", rung.name);
        let out = scratch.join(format!("plain-{angle}-{}", rung.name));
        std::fs::create_dir_all(&out).unwrap();
        let mut starts = Vec::new();
        for seg in &pl.segments {
            let want = duration_ms as f32 / 1000.0;
            assert!(
                (seg.duration - want).abs() < 1e-6,
                "{}: EXTINF {}, want {want}",
                rung.name,
                seg.duration
            );
            let seq: u64 = seg.uri.trim_end_matches(".ts").parse().unwrap();
            let pdt = seg.program_date_time.unwrap();
            assert_eq!(
                pdt.timestamp_millis() as u64,
                seq * duration_ms,
                "{} seq {seq}: PDT {pdt}",
                rung.name
            );
            let plain = decrypted_copy(&dir, keys, match_id, seg, &out);
            let pts = frame_pts(&plain);
            assert_eq!(
                pts.len(),
                frames as usize,
                "{} seq {seq}: {} frames",
                rung.name,
                pts.len()
            );
            assert!(
                first_video_frame(&plain).key,
                "{} seq {seq} starts on a keyframe",
                rung.name
            );
            for w in pts.windows(2) {
                assert!(
                    ((w[1] - w[0]) - period).abs() < 0.0015,
                    "{} seq {seq}: a frame step of {} s, want {period}",
                    rung.name,
                    w[1] - w[0]
                );
            }
            starts.push((seq, pts[0]));
        }
        firsts.push(starts);
    }
    for other in &firsts[1..] {
        for (seq, b) in other {
            if let Some((_, a)) = firsts[0].iter().find(|(s, _)| s == seq) {
                assert!(
                    (a - b).abs() < fastest / 2.0,
                    "seq {seq}: the rungs cut apart ({a} vs {b})"
                );
            }
        }
    }
    firsts.iter().map(Vec::len).min().unwrap_or(0)
}
