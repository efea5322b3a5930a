//! Publishing to a real nginx WebDAV origin on loopback: a whole live match arrives and
//! verifies over HTTP; and a 20 s origin outage in the middle of a match loses nothing and
//! never lets a playlist name a segment the origin does not have.

mod common;

use common::nginx::Nginx;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn live_run(profile: &Path, keys: &Path, origin: &str, spool: &Path, secs: u32) -> Command {
    let mut cmd = run_match("live", profile, keys, origin);
    cmd.args(["--duration", &secs.to_string()])
        .args(["--angle", "main=test:", "--angle", "pov=test:"])
        .arg("--spool")
        .arg(spool);
    cmd
}

/// Every file under `dir`, relative to it.
fn files_below(dir: &Path) -> Vec<String> {
    files_under(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The seeder's local copy holds exactly what swarmpack produced: the origin's copy of each
/// of those segments must be byte-identical.
fn assert_origin_matches_local_copy(root: &Path, spool: &Path) -> usize {
    let seed = spool.join("live/seed");
    let local = files_below(&seed);
    for rel in &local {
        let mine = std::fs::read(seed.join(rel)).unwrap();
        let theirs = std::fs::read(root.join(rel)).unwrap_or_else(|e| panic!("origin {rel}: {e}"));
        assert!(mine == theirs, "origin {rel} differs from the local copy");
    }
    local.len()
}

fn assert_spool_empty(spool: &Path) {
    // The queue must exist: a spool that was never written to is not a drained one.
    let queue = spool.join("live/queue");
    assert!(queue.is_dir(), "{}: no spool queue", queue.display());
    let left = files_below(&queue);
    assert!(left.is_empty(), "spool not drained: {left:?}");
}

/// A WebDAV nginx, match keys, a small profile (windows of `window`) and a spool path.
struct Stage {
    tmp: tempfile::TempDir,
    nginx: Nginx,
    keys: std::path::PathBuf,
    profile: std::path::PathBuf,
    spool: std::path::PathBuf,
}

fn stage(window: u32) -> Stage {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = Nginx::webdav(&tmp.path().join("nginx"));
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), window, &nginx.url(), "");
    let spool = tmp.path().join("spool");
    Stage {
        tmp,
        nginx,
        keys,
        profile,
        spool,
    }
}

#[test]
fn webdav_origin_receives_a_live_match_that_verifies_over_http() {
    let Stage {
        tmp: _tmp,
        nginx,
        keys,
        profile,
        spool,
    } = stage(3);
    let out = run_with_deadline(
        live_run(&profile, &keys, &nginx.url(), &spool, 7),
        Duration::from_secs(90),
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "swarmpack failed:\n{log}");

    let m = nginx.root.join("live");
    for f in [
        "master.m3u8",
        "main/master.m3u8",
        "pov/master.m3u8",
        "pubkey.pem",
        "live.json",
        "live.json.sig",
    ] {
        assert!(m.join(f).is_file(), "{f} missing on the origin");
    }
    let playlists = media_playlists(&m);
    assert_eq!(playlists.len(), 2, "{playlists:?}");
    for p in &playlists {
        let pl = media_playlist(p);
        assert!(pl.end_list, "{}: no ENDLIST", p.display());
        assert_eq!(pl.segments.len(), 7, "{}", p.display());
        assert_playlist_segments_valid(p.parent().unwrap(), &keys, "live");
    }
    let live: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("live.json")).unwrap()).unwrap();
    let windows = live["windows"].as_array().expect("windows list").clone();
    assert!(windows.len() >= 2, "{live}");
    for w in &windows {
        let w = w.as_u64().expect("window numbers");
        for ext in ["json", "json.sig", "torrent"] {
            assert!(
                m.join(format!("windows/{w}.{ext}")).is_file(),
                "window {w}.{ext} missing"
            );
        }
    }
    assert_spool_empty(&spool);
    assert!(assert_origin_matches_local_copy(&nginx.root, &spool) >= 14);

    assert_verifies(&format!("{}live/", nginx.url()), &keys);
}

/// Reads every media playlist on the origin's disk and returns the segments they name that
/// the origin does not hold.
fn dangling_segments(root: &Path) -> Vec<String> {
    let m = root.join("live");
    if !m.is_dir() {
        return Vec::new();
    }
    let mut missing = Vec::new();
    for p in media_playlists(&m) {
        let Ok(bytes) = std::fs::read(&p) else {
            continue;
        };
        let Ok(m3u8_rs::Playlist::MediaPlaylist(pl)) = m3u8_rs::parse_playlist_res(&bytes) else {
            missing.push(format!("{}: unparseable playlist", p.display()));
            continue;
        };
        for s in pl.segments {
            let seg = p.parent().unwrap().join(&s.uri);
            if !seg.is_file() {
                missing.push(format!("{} names missing {}", p.display(), s.uri));
            }
        }
    }
    missing
}

#[test]
fn a_20s_origin_outage_loses_nothing_and_playlists_never_dangle() {
    let Stage {
        tmp,
        mut nginx,
        keys,
        profile,
        spool,
    } = stage(4);
    let log_path = tmp.path().join("swarmpack.log");
    let secs = 32;
    let mut run = live_run(&profile, &keys, &nginx.url(), &spool, secs);
    run.stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap());
    let mut child = Guard(run.spawn().unwrap());
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Watch the origin's playlists the whole time, outage included.
    let stop = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (root, stop, polls) = (nginx.root.clone(), stop.clone(), polls.clone());
        std::thread::spawn(move || {
            let mut problems = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                problems.extend(dangling_segments(&root));
                polls.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
            problems
        })
    };

    let first = nginx.root.join("live/main/180p/index.m3u8");
    wait_for("3 segments on the origin", Duration::from_secs(30), || {
        first.is_file() && media_playlist(&first).segments.len() >= 3
    });
    nginx.stop();
    let down_at = Instant::now();
    let before = media_playlist(&first).segments.len();
    // The outage itself: 20 s with the origin refusing connections.
    while down_at.elapsed() < Duration::from_secs(20) {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "swarmpack exited during the outage:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        media_playlist(&first).segments.len() == before,
        "the origin changed while nginx was down"
    );
    nginx.start();

    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "swarmpack did not finish after the outage:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    stop.store(true, Ordering::Relaxed);
    let problems = watcher.join().unwrap();
    let log = log();
    assert!(status.success(), "swarmpack failed:\n{log}");
    assert!(
        polls.load(Ordering::Relaxed) > 100,
        "the watcher barely ran"
    );
    assert!(
        problems.is_empty(),
        "playlists named missing segments: {problems:?}"
    );

    // Failed attempts and the spool depth were logged; the origin came back.
    assert!(log.contains("(attempt 1 of 5;"), "{log}");
    assert!(log.contains("origin treated as down"), "{log}");
    assert!(log.contains("spool depth"), "{log}");
    assert!(log.contains("is back"), "{log}");

    // Nothing lost: every seq of the match, in order, on the origin and byte-identical.
    for p in media_playlists(&nginx.root.join("live")) {
        let pl = media_playlist(&p);
        assert!(pl.end_list, "{}", p.display());
        assert_eq!(pl.segments.len(), secs as usize, "{}", p.display());
        assert!(
            pl.segments.iter().all(|s| !s.discontinuity),
            "{}: gap",
            p.display()
        );
        assert_playlist_segments_valid(p.parent().unwrap(), &keys, "live");
    }
    assert_spool_empty(&spool);
    assert!(assert_origin_matches_local_copy(&nginx.root, &spool) > 0);
    assert_verifies(&format!("{}live/", nginx.url()), &keys);
}

/// What the spool holds: (origin path, bytes) per queued record.
fn spooled(queue: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in files_below(queue) {
        if let Some(stem) = name.strip_suffix(".meta") {
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(queue.join(&name)).unwrap()).unwrap();
            let bytes = std::fs::read(queue.join(format!("{stem}.data"))).unwrap();
            out.push((meta["path"].as_str().unwrap().to_string(), bytes));
        }
    }
    out
}

#[test]
fn objects_left_in_the_spool_are_published_first_by_the_next_run() {
    let Stage {
        tmp: _tmp,
        mut nginx,
        keys,
        profile,
        spool,
    } = stage(2);
    let origin = nginx.url();
    let fast_run = |secs: &str, drain: &str| {
        let mut cmd = run_match("live", &profile, &keys, &origin);
        cmd.args(["--fast", "--duration", secs])
            .args(["--drain-timeout", drain, "--angle", "main=test:"])
            .arg("--spool")
            .arg(&spool);
        cmd
    };

    // The origin is down for the whole first run: it ends with everything still spooled.
    nginx.stop();
    let out = run_with_deadline(fast_run("3", "2s"), Duration::from_secs(60));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("still unpublished after"), "{log}");
    assert!(
        log.contains(&spool.join("live/queue").display().to_string()),
        "{log}"
    );
    let left = spooled(&spool.join("live/queue"));
    assert!(
        left.iter().filter(|(p, _)| p.ends_with(".ts")).count() == 3,
        "{:?}",
        left.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );

    // The next run finds them, publishes them, then its own match.
    nginx.start();
    let out = run_with_deadline(fast_run("2", "30s"), Duration::from_secs(60));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("left unpublished by an earlier run"), "{log}");
    for (path, bytes) in &left {
        let theirs = std::fs::read(nginx.root.join(path))
            .unwrap_or_else(|e| panic!("{path} never reached the origin: {e}"));
        // Playlists were replaced by the second run; everything else must be as spooled.
        if !path.ends_with(".m3u8") && !path.contains("live.json") {
            assert!(&theirs == bytes, "{path} differs from the spooled copy");
        }
    }
    assert_spool_empty(&spool);
}
