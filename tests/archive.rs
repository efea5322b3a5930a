//! `swarmpack archive` after a match: VOD playlists that ffmpeg plays through (keys from the
//! key server with a viewer token), a signed whole-match manifest that openssl verifies, and a
//! whole-match torrent that libtorrent finds 100% complete against the origin. Then `clip`
//! cuts a highlight package from the same segments, checked the same ways.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn archive_publishes_vod_playlists_a_signed_manifest_and_a_whole_match_torrent() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let (key_port, web_port) = (free_tcp_port(), free_tcp_port());
    let _keyserver = Guard(
        swarmpack()
            .args(["keyserver", "--listen", &format!("127.0.0.1:{key_port}")])
            .arg("--keys")
            .arg(&keys)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = small_profile(
        tmp.path(),
        3,
        &format!("http://127.0.0.1:{web_port}/"),
        &format!("[encryption]\nkey_uri_base = \"http://127.0.0.1:{key_port}/keys\"\n"),
    );
    let dir = tmp.path().join("origin");
    let origin = format!("file://{}", dir.display());
    let mut run = run_match("cup", &profile, &keys, &origin);
    run.args(["--fast", "--duration", "8"])
        .args(["--angle", "main=test:", "--angle", "pov=test:"]);
    let out = run_with_deadline(run, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut archive = swarmpack();
    archive
        .args(["archive", "--match", "cup", "--origin", &origin])
        .arg("--keys")
        .arg(&keys);
    let out = run_with_deadline(archive, Duration::from_secs(60));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "archive failed:\n{log}");
    assert!(log.contains("archived match cup"), "{log}");

    // VOD playlists: every segment of the match, typed VOD and ended.
    let m = dir.join("cup");
    for angle in ["main", "pov"] {
        let vod = media_playlist(&m.join(angle).join("180p/vod.m3u8"));
        assert_eq!(
            vod.playlist_type,
            Some(m3u8_rs::MediaPlaylistType::Vod),
            "{angle}"
        );
        assert!(vod.end_list, "{angle}");
        assert_eq!(vod.segments.len(), 8, "{angle}");
        assert!(vod.segments.iter().all(|s| s.key.is_some()), "{angle}");
        // The VOD playlists carry the same segment signatures as the live ones (openssl).
        let tags = assert_segment_tags_verify(
            &dir,
            &m.join(format!("{angle}/180p/vod.m3u8")),
            &keys.join("pubkey.pem"),
        );
        assert_eq!(tags, 8, "{angle}");
    }

    // VOD multivariant playlists, twins of the live ones, naming only VOD renditions.
    for master in ["vod.m3u8", "main/vod.m3u8", "pov/vod.m3u8"] {
        let text = std::fs::read(m.join(master)).unwrap();
        let Ok(m3u8_rs::Playlist::MasterPlaylist(p)) = m3u8_rs::parse_playlist_res(&text) else {
            panic!("{master} is not a multivariant playlist");
        };
        let base = m.join(master).parent().unwrap().to_path_buf();
        let uris: Vec<String> = p
            .variants
            .iter()
            .map(|v| v.uri.clone())
            .chain(p.alternatives.iter().filter_map(|a| a.uri.clone()))
            .collect();
        assert!(!uris.is_empty(), "{master}");
        for uri in uris {
            assert!(uri.ends_with("/vod.m3u8"), "{master}: {uri}");
            assert!(base.join(&uri).is_file(), "{master}: {uri} missing");
        }
    }

    // ffmpeg plays the match through over HTTP from the VOD multivariant playlist, fetching
    // keys with a viewer token.
    let _web = http_server(&dir, web_port);
    let token = swarmpack()
        .args(["token", "--match", "cup", "--session", "vod", "--ttl", "1h"])
        .args(["--periods", "0-99999999999"])
        .arg("--keys")
        .arg(&keys)
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let play = Command::new("ffmpeg")
        .args(["-v", "error", "-headers"])
        .arg(format!("Authorization: Bearer {token}\r\n"))
        .arg("-i")
        .arg(format!("http://127.0.0.1:{web_port}/cup/vod.m3u8"))
        .args(["-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-"])
        .output()
        .unwrap();
    let progress = String::from_utf8_lossy(&play.stdout);
    assert!(
        play.status.success(),
        "ffmpeg could not play the VOD:\n{}",
        String::from_utf8_lossy(&play.stderr)
    );
    let frames: u64 = progress
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0);
    assert!(
        (228..=252).contains(&frames),
        "8 s at 30 fps, got {frames}\n{}",
        String::from_utf8_lossy(&play.stderr)
    );

    // The whole-match manifest is signed (openssl) and names every window of the chain.
    assert!(openssl_verifies(
        &keys.join("pubkey.pem"),
        &m.join("archive.json")
    ));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("archive.json")).unwrap()).unwrap();
    let windows_on_origin = std::fs::read_dir(m.join("windows"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "torrent"))
        .count();
    assert_eq!(doc["windows"].as_array().unwrap().len(), windows_on_origin);
    assert_eq!(doc["segments"], 16);
    assert_eq!(
        doc["masters"],
        serde_json::json!(["vod.m3u8", "main/vod.m3u8", "pov/vod.m3u8"])
    );

    // libtorrent: the whole-match torrent is complete against the origin's files.
    let text = lt_check(&m.join("archive.torrent"), &dir);
    assert!(text.contains("v1 1") && text.contains("v2 1"), "{text}");
    assert!(text.contains("checked 1"), "{text}");
    assert!(text.contains("progress_ppm 1000000"), "{text}");
    assert!(
        text.contains(&format!("webseeds http://127.0.0.1:{web_port}/")),
        "{text}"
    );

    // A highlight: whole segments 2, 3 and 4 of the match (from the PDT of segment 2 to that
    // of segment 5), without re-encoding.
    let live = media_playlist(&m.join("main/180p/index.m3u8"));
    let pdt = |i: usize| live.segments[i].program_date_time.unwrap().to_rfc3339();
    let clip = |label: &str, from: &str, to: &str| {
        let mut cmd = swarmpack();
        cmd.args(["clip", "--match", "cup", "--origin", &origin])
            .args(["--label", label, "--from", from, "--to", to])
            .arg("--keys")
            .arg(&keys);
        run_with_deadline(cmd, Duration::from_secs(60))
    };
    let out = clip("best", &pdt(2), &pdt(5));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "clip failed:\n{log}");
    assert!(log.contains("highlight cup/clips/best/"), "{log}");
    let c = m.join("clips/best");
    for angle in ["main", "pov"] {
        let vod = media_playlist(&c.join(angle).join("180p/vod.m3u8"));
        assert_eq!(vod.segments.len(), 3, "{angle}");
        assert!(vod.end_list, "{angle}");
        assert_eq!(
            vod.segments[0].uri,
            format!("../../../../{angle}/180p/{}", live.segments[2].uri),
            "the highlight names the match's own segments"
        );
        let tags = assert_segment_tags_verify(
            &dir,
            &c.join(format!("{angle}/180p/vod.m3u8")),
            &keys.join("pubkey.pem"),
        );
        assert_eq!(tags, 3, "{angle}");
    }
    let play = Command::new("ffmpeg")
        .args(["-v", "error", "-headers"])
        .arg(format!("Authorization: Bearer {token}\r\n"))
        .arg("-i")
        .arg(format!(
            "http://127.0.0.1:{web_port}/cup/clips/best/vod.m3u8"
        ))
        .args(["-map", "0:v:0", "-f", "null", "-progress", "pipe:1", "-"])
        .output()
        .unwrap();
    assert!(
        play.status.success(),
        "ffmpeg could not play the highlight:\n{}",
        String::from_utf8_lossy(&play.stderr)
    );
    let frames: u64 = String::from_utf8_lossy(&play.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0);
    assert!((84..=96).contains(&frames), "3 s at 30 fps, got {frames}");
    assert!(openssl_verifies(
        &keys.join("pubkey.pem"),
        &c.join("clip.json")
    ));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.join("clip.json")).unwrap()).unwrap();
    assert_eq!(doc["segments"], 6);
    assert_eq!(doc["clip"]["label"], "best");
    assert_eq!(doc["torrent"]["path"], "clips/best/clip.torrent");
    let text = lt_check(&c.join("clip.torrent"), &dir);
    assert!(text.contains("progress_ppm 1000000"), "{text}");
    assert!(
        text.contains(&format!("webseeds http://127.0.0.1:{web_port}/")),
        "{text}"
    );
    // Bad cuts are refused, naming the problem.
    for (label, from, to, says) in [
        ("Best!", pdt(2), pdt(5), "the label must be"),
        ("late", pdt(5), pdt(2), "is not after from"),
        (
            "never",
            "2001-01-01T00:00:00Z".into(),
            "2001-01-01T00:00:09Z".into(),
            "no published segment",
        ),
        ("soon", "tomorrow".into(), pdt(2), "expected an RFC 3339"),
    ] {
        let out = clip(label, &from, &to);
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{label}: {log}");
        assert!(log.contains(says), "{label}: {log}");
    }

    // A segment altered on the origin is caught against its window manifest.
    let victim = m
        .join("pov/180p")
        .join(&media_playlist(&m.join("pov/180p/vod.m3u8")).segments[3].uri);
    let mut data = std::fs::read(&victim).unwrap();
    data[100] ^= 1;
    std::fs::write(&victim, data).unwrap();
    let mut again = swarmpack();
    again
        .args(["archive", "--match", "cup", "--origin", &origin])
        .arg("--keys")
        .arg(&keys);
    let out = run_with_deadline(again, Duration::from_secs(60));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        log.contains(&format!("pov/180p/{name}: ")) && log.contains("but its window manifest says"),
        "{log}"
    );
}
