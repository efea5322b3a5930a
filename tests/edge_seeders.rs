//! The recommended event setup on loopback: `run --no-seed` publishes to a real nginx WebDAV
//! origin, two `swarmpack seed` edge seeders follow the match there, and a real open tracker
//! (bittorrent-tracker) brings peers together.
//! - The tracker's scrape counts both edge seeders complete.
//! - A libtorrent viewer without web seed downloads a window byte-identical, from them.
//! - A segment altered on the origin after its upload makes both seeders refuse its window,
//!   naming the segment (they start after the alteration: a running seeder prefetches each
//!   segment the moment a playlist names it, checked against its signed tag, and would
//!   already hold the true bytes).
//! - A seeder killed and restarted seeds its cached windows without fetching a segment again
//!   (nginx's access log shows it).
//! - Bad input: a wrong --pubkey and a missing match exit 2 with a clear message; an
//!   unreachable origin is retried and logged, and SIGTERM still ends the seeder cleanly.

mod common;

use common::nginx::Nginx;
use common::tracker::Tracker;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const MATCH: &str = "edge";

struct EdgeSeeder {
    guard: Option<Guard>,
    port: u16,
    metrics: u16,
    log: PathBuf,
}

impl EdgeSeeder {
    fn start(name: &str, dir: &Path, origin: &str, pubkey: &Path, port: u16) -> EdgeSeeder {
        let metrics = free_tcp_port();
        let log = dir.join(format!("{name}.log"));
        let mut seeder = EdgeSeeder {
            guard: None,
            port,
            metrics,
            log,
        };
        seeder.restart(dir.join(format!("{name}-cache")).as_path(), origin, pubkey);
        seeder
    }

    fn restart(&mut self, cache: &Path, origin: &str, pubkey: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = swarmpack()
            .args([
                "seed", "--origin", origin, "--match", MATCH, "--poll", "250ms",
            ])
            .args(["--wait-for-match", "60s", "--clip", "opening"])
            .arg("--pubkey")
            .arg(pubkey)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--cache")
            .arg(cache)
            .arg("--metrics")
            .arg(format!("127.0.0.1:{}", self.metrics))
            .env("RUST_LOG", "info,swarmpack=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.guard = Some(Guard(child));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.0.kill().unwrap();
            g.0.wait().unwrap();
        }
    }

    /// A counter from its /metrics (0 if absent).
    fn counter(&self, name: &str) -> u64 {
        scrape(self.metrics)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("swarmpack_edge_{name}_total ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn logs(what: &str, a: &EdgeSeeder, b: &EdgeSeeder) -> String {
    format!("{what}\nseeder a:\n{}\nseeder b:\n{}", a.log(), b.log())
}

fn verified_windows(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.split("window ").nth(1))
        .filter_map(|rest| rest.split_once(" verified:"))
        .filter_map(|(w, _)| w.parse().ok())
        .collect()
}

/// Windows listed in the origin's live.json, and whether the match ended.
fn live(root: &Path) -> (Vec<u64>, bool) {
    let Ok(bytes) = std::fs::read(root.join(MATCH).join("live.json")) else {
        return (Vec::new(), false);
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let windows = v["windows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_u64())
        .collect();
    (windows, v["ended"] == true)
}

/// `GET` requests for segments in the access log, leaving out window `except`.
fn segment_gets(nginx: &Nginx, except: u64) -> usize {
    nginx
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains(".ts "))
        .filter(|r| {
            let seq = r
                .rsplit('/')
                .next()
                .and_then(|n| n.split('.').next())
                .and_then(|n| n.parse::<u64>().ok());
            seq.is_none_or(|s| s / 2 != except)
        })
        .count()
}

#[test]
fn run_no_seed_with_two_edge_seeders_and_a_real_tracker() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = Nginx::webdav(&tmp.path().join("nginx"));
    let tracker = Tracker::start(&tmp.path().join("tracker.log"));
    let profile = small_profile(tmp.path(), 2, &nginx.url(), &tracker.profile_entry());
    let keys = keygen(tmp.path());
    let pubkey = keys.join("pubkey.pem");
    let run_log = tmp.path().join("run.log");
    let run = run_match(MATCH, &profile, &keys, &nginx.url())
        .args(["--angle", "main=test:", "--no-seed", "--duration", "36"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&run_log).unwrap())
        .spawn()
        .unwrap();
    let mut run = Guard(run);
    // A segment of a closed window altered on the origin after its upload, before the edge
    // seeders start (started later, they could not have prefetched the good bytes).
    let root = nginx.root.clone();
    let manifests = |root: &Path| -> Vec<u64> {
        let mut w: Vec<u64> = std::fs::read_dir(root.join(MATCH).join("windows"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_suffix(".json")?.parse().ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        w.sort();
        w
    };
    wait_or_show(
        "two closed windows",
        Duration::from_secs(40),
        || manifests(&root).len() >= 2 && root.join(MATCH).join("live.json").exists(),
        || std::fs::read_to_string(&run_log).unwrap_or_default(),
    );
    let bad_window = manifests(&root)[1];
    let bad_seq = bad_window * 2;
    let path = root.join(MATCH).join(format!("main/180p/{bad_seq}.ts"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();

    let mut a = EdgeSeeder::start("a", tmp.path(), &nginx.url(), &pubkey, free_tcp_port());
    let b = EdgeSeeder::start("b", tmp.path(), &nginx.url(), &pubkey, free_tcp_port());
    let refusal = format!("window {bad_window} refused, not seeded: main/180p/{bad_seq}.ts: ");
    wait_for(
        "both seeders to refuse the altered window",
        Duration::from_secs(20),
        || a.log().contains(&refusal) && b.log().contains(&refusal),
    );
    for s in [&a, &b] {
        let log = s.log();
        let line = log.lines().find(|l| l.contains(&refusal)).unwrap();
        assert!(line.contains("altered or swapped segment"), "{line}");
        assert!(
            !verified_windows(&log).contains(&bad_window),
            "{}",
            logs("", &a, &b)
        );
    }
    assert!(
        a.counter("windows_refused") >= 1,
        "{}",
        logs("metrics", &a, &b)
    );
    // Running seeders take each new segment as soon as a playlist names it, verified by its tag.
    wait_or_show(
        "a segment prefetched before its window closed",
        Duration::from_secs(20),
        || b.log().contains("prefetched and verified against its tag"),
        || logs("", &a, &b),
    );

    // A later window: the tracker counts both seeders, and a viewer without web seed gets
    // it byte-identical from them.
    let later = bad_window + 1;
    wait_for(
        "both seeders to verify a later window",
        Duration::from_secs(20),
        || {
            verified_windows(&a.log()).contains(&later)
                && verified_windows(&b.log()).contains(&later)
        },
    );
    let torrent = root.join(MATCH).join(format!("windows/{later}.torrent"));
    let save = tmp.path().join("viewer");
    let report = lt_swarm(&torrent, &save, &[tracker.scrape()], 2);
    let complete = report["scrapes"][tracker.scrape()]["complete"]
        .as_i64()
        .unwrap_or(0);
    assert!(complete >= 2, "scrape: {report}\n{}", logs("", &a, &b));
    assert_eq!(report["web_seeds"], serde_json::json!([]), "{report}");
    assert_eq!(report["seeding"], true, "{report}\n{}", logs("", &a, &b));
    // The seeders' own count of what they uploaded is exposed.
    wait_or_show(
        "an edge seeder to count uploaded bytes",
        Duration::from_secs(10),
        || a.counter("uploaded_bytes") + b.counter("uploaded_bytes") > 0,
        || logs("", &a, &b),
    );
    // No web seed: every byte came from a peer, and the edge seeders are the only peers the
    // tracker knows (they may dial the viewer, so their ports show as ephemeral ones).
    assert!(
        report["downloaded"].as_u64().unwrap() >= report["total"].as_u64().unwrap(),
        "{report}"
    );
    assert!(!report["peers"].as_array().unwrap().is_empty(), "{report}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join(MATCH).join(format!("windows/{later}.json"))).unwrap(),
    )
    .unwrap();
    for s in manifest["segments"].as_array().unwrap() {
        let path = s["path"].as_str().unwrap();
        let got = std::fs::read(save.join(MATCH).join(path)).unwrap();
        assert!(
            got == std::fs::read(root.join(MATCH).join(path)).unwrap(),
            "{path}"
        );
    }

    // The match ends; both seeders catch up with its last window.
    wait_for("the run to end", Duration::from_secs(60), || {
        run.0.try_wait().unwrap().is_some()
    });
    assert!(
        run.0.try_wait().unwrap().unwrap().success(),
        "{}",
        std::fs::read_to_string(&run_log).unwrap_or_default()
    );
    let (listed, ended) = live(&root);
    assert!(ended);
    assert!(
        !listed.contains(&bad_window),
        "the altered window is still listed: {listed:?}"
    );
    let newest = listed[0];
    wait_for(
        "both seeders to reach the last window",
        Duration::from_secs(20),
        || {
            verified_windows(&a.log()).contains(&newest)
                && verified_windows(&b.log()).contains(&newest)
        },
    );

    // Seeder a is killed and restarted on its cache: it seeds every listed window again
    // without one segment request to the origin.
    a.kill();
    let before = segment_gets(&nginx, bad_window);
    let first_run = a.log().len();
    a.restart(&tmp.path().join("a-cache"), &nginx.url(), &pubkey);
    wait_for(
        "the restarted seeder to verify every listed window",
        Duration::from_secs(30),
        || {
            let log = a.log();
            let again = verified_windows(&log[first_run.min(log.len())..]);
            listed.iter().all(|w| again.contains(w))
        },
    );
    assert_eq!(
        segment_gets(&nginx, bad_window),
        before,
        "{}",
        logs("segments fetched again", &a, &b)
    );
    assert_eq!(a.counter("segments_fetched"), 0, "{}", logs("", &a, &b));
    assert!(
        a.counter("segments_cached") >= listed.len() as u64,
        "{}",
        logs("", &a, &b)
    );
    let torrent = root.join(MATCH).join(format!("windows/{newest}.torrent"));
    let report = lt_swarm(
        &torrent,
        &tmp.path().join("viewer2"),
        &[tracker.scrape()],
        2,
    );
    assert_eq!(report["seeding"], true, "{report}\n{}", logs("", &a, &b));

    // After the match, `archive` publishes the whole-match torrent (the altered segment put
    // back first: archive refuses a match whose segments do not match their manifests), and
    // both edge seeders verify and seed it.
    let path = root.join(MATCH).join(format!("main/180p/{bad_seq}.ts"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let mut archive = swarmpack();
    archive
        .args(["archive", "--match", MATCH, "--origin", &nginx.url()])
        .arg("--keys")
        .arg(&keys);
    let out = run_with_deadline(archive, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_or_show(
        "both seeders to seed the archive",
        Duration::from_secs(30),
        || a.log().contains("archive verified: ") && b.log().contains("archive verified: "),
        || logs("", &a, &b),
    );

    // A highlight (`swarmpack clip`): both seeders were told to seed "opening" and do, once
    // it is published and checked.
    let live = media_playlist(&root.join(MATCH).join("main/180p/index.m3u8"));
    let pdt = |i: usize| live.segments[i].program_date_time.unwrap().to_rfc3339();
    let mut clip = swarmpack();
    clip.args(["clip", "--match", MATCH, "--origin", &nginx.url()])
        .args(["--label", "opening", "--from", &pdt(0), "--to", &pdt(2)])
        .arg("--keys")
        .arg(&keys);
    let out = run_with_deadline(clip, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_or_show(
        "both seeders to seed the highlight",
        Duration::from_secs(30),
        || {
            a.log().contains("highlight opening verified: ")
                && b.log().contains("highlight opening verified: ")
        },
        || logs("", &a, &b),
    );

    // Bad input and faults.
    let other = keygen(&tmp.path().join("other"));
    let mut wrong_key = swarmpack();
    wrong_key
        .args([
            "seed",
            "--origin",
            &nginx.url(),
            "--match",
            MATCH,
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--pubkey")
        .arg(other.join("pubkey.pem"))
        .arg("--cache")
        .arg(tmp.path().join("c-cache"));
    let out = run_with_deadline(wrong_key, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{MATCH}/live.json does not verify with --pubkey")),
        "{err}"
    );

    let mut no_match = swarmpack();
    no_match
        .args([
            "seed",
            "--origin",
            &nginx.url(),
            "--match",
            "nosuch",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--pubkey")
        .arg(&pubkey)
        .arg("--cache")
        .arg(tmp.path().join("c-cache"));
    let out = run_with_deadline(no_match, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no match \"nosuch\" there"), "{err}");
}

#[test]
fn an_unreachable_origin_is_retried_and_logged_and_sigterm_still_stops_the_seeder() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let log_path = tmp.path().join("seed.log");
    let closed = free_tcp_port();
    let child = swarmpack()
        .args([
            "seed",
            "--match",
            MATCH,
            "--listen",
            "127.0.0.1:0",
            "--poll",
            "100ms",
        ])
        .arg("--origin")
        .arg(format!("http://127.0.0.1:{closed}/"))
        .arg("--pubkey")
        .arg(keys.join("pubkey.pem"))
        .arg("--cache")
        .arg(tmp.path().join("cache"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut seeder = Guard(child);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_for("two logged retries", Duration::from_secs(20), || {
        log().matches("retrying (attempt").count() >= 2
    });
    assert!(
        log().contains(&format!("127.0.0.1:{closed}")),
        "the message names the origin:\n{}",
        log()
    );
    assert!(
        seeder.0.try_wait().unwrap().is_none(),
        "it keeps trying:\n{}",
        log()
    );
    let term = Command::new("kill")
        .args(["-TERM", &seeder.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    wait_for("the seeder to stop", Duration::from_secs(15), || {
        seeder.0.try_wait().unwrap().is_some()
    });
    assert!(seeder.0.try_wait().unwrap().unwrap().success(), "{}", log());
}
