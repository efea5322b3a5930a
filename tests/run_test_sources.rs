//! `swarmpack run` with two built-in test angles × two rungs, checked with ffprobe.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn two_test_angles_two_rungs_are_keyframe_aligned_on_the_master_timecode() {
    let out = tempfile::tempdir().unwrap();
    let keys = keygen(&scratch_dir("keys"));
    let plain = tempfile::tempdir().unwrap();
    run_two_test_angles("final", &profile("demo.toml"), &keys, out.path(), 14);

    let root = out.path().join("final");
    // (seq) → first PTS per rendition; (seq) → PDT per rendition.
    let mut first_pts: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let mut pdts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for angle in ["main", "pov"] {
        for rung in ["360p", "180p"] {
            let dir = root.join(angle).join(rung);
            let n = assert_playlist_segments_valid(&dir, &keys, "final");
            assert_eq!(n, 7, "{angle}/{rung}: 14 s of 2 s segments");
            let playlist = media_playlist(&dir.join("index.m3u8"));
            assert!(
                playlist.end_list,
                "{angle}/{rung}: a --duration run ends with ENDLIST"
            );
            assert_eq!(playlist.target_duration, 2);
            let seqs: Vec<u64> = playlist
                .segments
                .iter()
                .map(|s| s.uri.trim_end_matches(".ts").parse().unwrap())
                .collect();
            assert_eq!(playlist.media_sequence, seqs[0]);
            for (i, seg) in playlist.segments.iter().enumerate() {
                assert_eq!(
                    seqs[i],
                    seqs[0] + i as u64,
                    "contiguous, epoch-locked numbering"
                );
                // Durations match the profile, in the playlist and in the media itself.
                assert!((seg.duration - 2.0).abs() < 1e-6, "EXTINF {}", seg.duration);
                let path = decrypted_copy(&dir, &keys, "final", seg, plain.path());
                let video = streams(&path)
                    .into_iter()
                    .find(|(t, _, _)| t == "video")
                    .expect("a video stream");
                assert_eq!(video.1, "h264");
                assert!(
                    (video.2 - 2.0).abs() <= 0.034,
                    "{}: {} s of video",
                    path.display(),
                    video.2
                );
                // PDT is the boundary: seq × duration seconds since the epoch.
                let pdt = seg.program_date_time.expect("PDT on every segment");
                assert_eq!(
                    pdt.timestamp() as u64,
                    seqs[i] * 2,
                    "PDT of seq {}",
                    seqs[i]
                );
                assert_eq!(pdt.timestamp_subsec_millis(), 0);
                pdts.entry(seg.uri.clone())
                    .or_default()
                    .push(pdt.to_rfc3339());
                first_pts
                    .entry(seg.uri.clone())
                    .or_default()
                    .push((format!("{angle}/{rung}"), first_video_frame(&path).pts));
            }
        }
    }
    assert_eq!(first_pts.len(), 7);
    for (seg, renditions) in &first_pts {
        assert_eq!(renditions.len(), 4, "{seg} in all four playlists");
        let (lo, hi) = renditions
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), (_, p)| {
                (lo.min(*p), hi.max(*p))
            });
        assert!(
            hi - lo <= 1.0 / 30.0 + 1e-6,
            "{seg}: first PTS differ by more than a frame: {renditions:?}"
        );
    }
    for (seg, list) in &pdts {
        assert!(
            list.windows(2).all(|w| w[0] == w[1]),
            "{seg}: PDT differs: {list:?}"
        );
    }
    // Consecutive segments start one segment duration apart in media time too.
    let starts: Vec<f64> = first_pts.values().map(|r| r[0].1).collect();
    for w in starts.windows(2) {
        assert!(
            (w[1] - w[0] - 2.0).abs() < 1e-3,
            "segment starts {starts:?}"
        );
    }
}

#[test]
fn master_playlists_list_angles_as_video_alternatives() {
    let out = tempfile::tempdir().unwrap();
    let keys = keygen(&scratch_dir("keys"));
    let mut cmd = swarmpack();
    cmd.args(["run", "--match", "m", "--fast", "--duration", "2"])
        .arg("--keys")
        .arg(&keys)
        .arg("--profile")
        .arg(profile("demo.toml"))
        .args(["--angle", "stage=test:", "--angle", "crowd=test:"])
        .arg("--origin")
        .arg(format!("file://{}", out.path().display()));
    let result = run_with_deadline(cmd, Duration::from_secs(120));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let bytes = std::fs::read(out.path().join("m/master.m3u8")).unwrap();
    let Ok(m3u8_rs::Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(&bytes) else {
        panic!("not a multivariant playlist");
    };
    assert_eq!(master.variants.len(), 2);
    let videos: Vec<_> = master
        .alternatives
        .iter()
        .map(|a| {
            (
                a.group_id.as_str(),
                a.name.as_str(),
                a.uri.as_deref().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        videos.contains(&("video-360p", "crowd", "crowd/360p/index.m3u8")),
        "{videos:?}"
    );
    for alt in &master.alternatives {
        assert_eq!(alt.media_type, m3u8_rs::AlternativeMediaType::Video);
        assert!(
            out.path()
                .join("m")
                .join(alt.uri.as_ref().unwrap())
                .is_file(),
            "{alt:?}"
        );
    }
}

#[test]
fn a_file_feed_runs_fast_into_valid_segments() {
    let tmp = tempfile::tempdir().unwrap();
    // The small clip committed in samples/ (4 s, 640x360, H.264 + AAC).
    let clip = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/venue-360p30-4s.mp4");
    let out = tmp.path().join("origin");
    let keys = keygen(tmp.path());
    let mut cmd = swarmpack();
    cmd.args(["run", "--match", "vod", "--fast"])
        .arg("--keys")
        .arg(&keys)
        .arg("--profile")
        .arg(profile("demo.toml"))
        .arg("--angle")
        .arg(format!("replay=file:{}", clip.display()))
        .arg("--origin")
        .arg(format!("file://{}", out.display()));
    let result = run_with_deadline(cmd, Duration::from_secs(120));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    for rung in ["360p", "180p"] {
        let dir = out.join("vod/replay").join(rung);
        // The file ends: 4 s of media is 2 segments, all whole, and the playlist is closed.
        assert_eq!(
            assert_playlist_segments_valid(&dir, &keys, "vod"),
            2,
            "{rung}"
        );
        assert!(media_playlist(&dir.join("index.m3u8")).end_list);
    }
}
