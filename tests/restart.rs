//! Crash-safe restart: a live match is SIGKILLed, and running the same `run` again continues
//! it. Nothing already published changes, the playlists continue after one discontinuity,
//! and `verify` passes over the whole match (the hash chain runs across the crash).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run_cmd(profile: &Path, keys: &Path, origin: &Path, spool: &Path) -> Command {
    let mut cmd = run_match(
        "cup",
        profile,
        keys,
        &format!("file://{}", origin.display()),
    );
    cmd.args(["--angle", "main=test:", "--angle", "pov=test:"])
        .arg("--spool")
        .arg(spool);
    cmd
}

/// Every published object that must never change: all but the replaceable playlists and
/// live pointer.
fn immutable_objects(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if !rel.ends_with(".m3u8") && !rel.starts_with("live.json") {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_sigkilled_match_continues_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 3, "http://127.0.0.1:9/", "");
    let origin = tmp.path().join("origin");
    let spool = tmp.path().join("spool");
    let m = origin.join("cup");

    let mut first = Guard(
        run_cmd(&profile, &keys, &origin, &spool)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(
        "two windows and 7 segments in both angles",
        Duration::from_secs(40),
        || {
            live_with_segments(&m, 2, 7)
                && std::fs::read_dir(m.join("windows")).map_or(0, |d| d.count()) >= 6
        },
    );
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // The crash came between live.json and live.json.sig (as it can: they are two objects):
    // the signature on the origin is not live.json's, and the spool holds no newer one. The
    // restart must continue from the signed manifests live.json names, not refuse the match.
    std::fs::write(m.join("live.json.sig"), [0u8; 64]).unwrap();
    for item in std::fs::read_dir(spool.join("cup").join("queue"))
        .unwrap()
        .flatten()
    {
        let meta = item.path();
        if meta.extension().is_some_and(|e| e == "meta")
            && std::fs::read_to_string(&meta)
                .unwrap_or_default()
                .contains("live.json.sig")
        {
            std::fs::remove_file(meta.with_extension("data")).unwrap();
            std::fs::remove_file(&meta).unwrap();
        }
    }
    let before = immutable_objects(&m);
    // Each playlist as it stood at the crash: angles publish independently, so the other
    // angle may be a segment behind the one we waited on.
    let segs_before: BTreeMap<_, Vec<String>> = media_playlists(&m)
        .into_iter()
        .map(|p| {
            let uris = media_playlist(&p)
                .segments
                .iter()
                .map(|s| s.uri.clone())
                .collect();
            (p, uris)
        })
        .collect();

    // Down long enough for whole windows (3 s each) to pass: the chain must bridge the hole.
    std::thread::sleep(Duration::from_secs(7));
    let mut second = run_cmd(&profile, &keys, &origin, &spool);
    second.args(["--duration", "5"]);
    let out = run_with_deadline(second, Duration::from_secs(60));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the restarted run failed:\n{log}");
    assert!(log.contains("continuing match cup"), "{log}");
    assert!(
        log.contains("a crash between live.json and live.json.sig"),
        "{log}"
    );

    // Nothing published before the crash changed.
    let after = immutable_objects(&m);
    for (rel, bytes) in &before {
        let now = after
            .get(rel)
            .unwrap_or_else(|| panic!("{rel} disappeared"));
        assert!(now == bytes, "{rel} was overwritten by the restarted run");
    }
    assert!(
        after.len() > before.len(),
        "the second run published nothing new"
    );

    // Each playlist keeps the earlier segments, then one discontinuity, then the new ones.
    for p in media_playlists(&m) {
        let pl = media_playlist(&p);
        assert!(pl.end_list, "{}", p.display());
        let uris: Vec<&str> = pl.segments.iter().map(|s| s.uri.as_str()).collect();
        let earlier = &segs_before[&p];
        assert!(
            !earlier.is_empty(),
            "{}: empty before the crash",
            p.display()
        );
        assert_eq!(
            &uris[..earlier.len()],
            earlier.as_slice(),
            "{}",
            p.display()
        );
        let breaks: Vec<usize> = pl
            .segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.discontinuity)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(breaks.len(), 1, "{}: {uris:?}", p.display());
        assert!(
            breaks[0] >= earlier.len() && breaks[0] < uris.len(),
            "{}: {uris:?}",
            p.display()
        );
        let seqs: Vec<u64> = uris
            .iter()
            .map(|u| u.trim_end_matches(".ts").parse().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert_playlist_segments_valid(p.parent().unwrap(), &keys, "cup");
    }

    // The chain runs across the crash: verify walks it from the newest window to the first.
    let vlog = assert_verifies(m.to_str().unwrap(), &keys);
    let windows_on_origin = std::fs::read_dir(m.join("windows"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "torrent"))
        .count();
    assert!(
        vlog.contains(&format!("{windows_on_origin} window(s)")),
        "verify did not reach every window ({windows_on_origin}):\n{vlog}"
    );
}

/// Issue 14, item 5: after a SIGKILL, the newest segment of a window that had not closed is
/// overwritten on the origin with random bytes of the same length. The restart must not sign
/// them: its tag no longer describes the bytes, so the restored playlist stops before it, no
/// manifest lists the forged bytes, and `verify` passes over what was published.
#[test]
fn a_forged_segment_of_the_open_window_is_not_signed_by_the_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 3, "http://127.0.0.1:9/", "");
    let origin = tmp.path().join("origin");
    let spool = tmp.path().join("spool");
    let m = origin.join("cup");
    let playlist = m.join("main/180p/index.m3u8");
    let newest = || {
        std::fs::read(&playlist)
            .ok()
            .and_then(|b| match m3u8_rs::parse_playlist_res(&b) {
                Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p
                    .segments
                    .last()
                    .and_then(|s| s.uri.trim_end_matches(".ts").parse::<u64>().ok()),
                _ => None,
            })
    };
    let mut first = Guard(
        run_match(
            "cup",
            &profile,
            &keys,
            &format!("file://{}", origin.display()),
        )
        .args(["--angle", "main=test:", "--no-seed"])
        .arg("--spool")
        .arg(&spool)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    // Kill right after a window's first segment: that window is surely open.
    wait_for(
        "a window's first segment after a closed window",
        Duration::from_secs(40),
        || m.join("live.json").exists() && newest().is_some_and(|s| s % 3 == 0),
    );
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let forged_seq = newest().unwrap();
    let forged_path = m.join(format!("main/180p/{forged_seq}.ts"));
    let len = std::fs::metadata(&forged_path).unwrap().len() as usize;
    let forged: Vec<u8> = (0..len).map(|i| (i * 7919 % 251) as u8 ^ 0x5a).collect();
    std::fs::write(&forged_path, &forged).unwrap();
    let forged_sha = {
        let d = ring::digest::digest(&ring::digest::SHA256, &forged);
        d.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };

    let mut again = run_match(
        "cup",
        &profile,
        &keys,
        &format!("file://{}", origin.display()),
    );
    again
        .args(["--angle", "main=test:", "--no-seed", "--duration", "4"])
        .arg("--spool")
        .arg(&spool)
        .env("RUST_LOG", "info,swarmpack=debug");
    let out = run_with_deadline(again, Duration::from_secs(60));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!(
            "{forged_seq}.ts: the bytes on the origin are not the ones its signed tag describes"
        )),
        "{log}"
    );
    // No manifest lists the forged bytes, and the playlist no longer names the segment.
    for e in std::fs::read_dir(m.join("windows")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            assert!(
                !text.contains(&forged_sha),
                "{} signs the forged bytes",
                e.path().display()
            );
        }
    }
    let uris: Vec<String> = media_playlist(&playlist)
        .segments
        .iter()
        .map(|s| s.uri.clone())
        .collect();
    assert!(!uris.contains(&format!("{forged_seq}.ts")), "{uris:?}");
    let report = assert_verifies(m.to_str().unwrap(), &keys);
    assert!(report.contains("all verified"), "{report}");
}

/// Issue 14, item 6: a restart refuses another match's `live.json` (signed with the same
/// key), refuses an older `live.json` put back on the origin (a rollback), and does not start
/// afresh (forking the chain) when the origin cannot be read.
#[test]
fn a_restart_refuses_a_foreign_or_rolled_back_pointer_and_an_unreadable_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let origin = tmp.path().join("origin");
    let file_origin = format!("file://{}", origin.display());
    let spool = tmp.path().join("spool");
    let run = |match_id: &str, origin: &str, extra: &[&str]| {
        let mut cmd = run_match(match_id, &profile, &keys, origin);
        cmd.args([
            "--angle",
            "main=test:",
            "--no-seed",
            "--fast",
            "--duration",
            "4",
        ])
        .arg("--spool")
        .arg(&spool)
        .args(extra);
        let out = run_with_deadline(cmd, Duration::from_secs(60));
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, log) = run("cup", &file_origin, &[]);
    assert_eq!(code, Some(0), "{log}");

    // Another match's live.json, signed with the same key, is not this match's chain.
    std::fs::create_dir_all(origin.join("other")).unwrap();
    for f in ["live.json", "live.json.sig"] {
        std::fs::copy(origin.join("cup").join(f), origin.join("other").join(f)).unwrap();
    }
    let (code, log) = run("other", &file_origin, &[]);
    assert_ne!(code, Some(0), "{log}");
    assert!(log.contains("names match \"cup\""), "{log}");

    // A rollback: the live.json of the first run put back after a second run moved on.
    let old: Vec<Vec<u8>> = ["live.json", "live.json.sig"]
        .iter()
        .map(|f| std::fs::read(origin.join("cup").join(f)).unwrap())
        .collect();
    // --fast media runs ahead of UTC: the next run's segments must come after these.
    let playlist = origin.join("cup/main/180p/index.m3u8");
    let last: u64 = media_playlist(&playlist)
        .segments
        .last()
        .and_then(|s| s.uri.trim_end_matches(".ts").parse().ok())
        .unwrap();
    wait_for(
        "UTC to pass the first run's media",
        Duration::from_secs(20),
        || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            now > last + 1
        },
    );
    let (code, log) = run("cup", &file_origin, &[]);
    assert_eq!(code, Some(0), "{log}");
    for (f, bytes) in ["live.json", "live.json.sig"].iter().zip(&old) {
        std::fs::write(origin.join("cup").join(f), bytes).unwrap();
    }
    let (code, log) = run("cup", &file_origin, &[]);
    assert_ne!(code, Some(0), "{log}");
    assert!(log.contains("(a rollback); refusing to extend it"), "{log}");

    // An origin that cannot be read: wait, then stop rather than fork the chain.
    let closed = format!("http://127.0.0.1:{}/", free_tcp_port());
    let (code, log) = run("cup", &closed, &["--drain-timeout", "3s"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("starting afresh would fork its hash chain"),
        "{log}"
    );
}
