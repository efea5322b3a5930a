//! swarmpack seeds every window itself: real opentracker instances on loopback (one reached
//! over HTTP, one over UDP, BEP 15) count our seeder as complete, and a real libtorrent peer
//! whose torrent has no web seed downloads a whole window from swarmpack's seeder alone.
//!
//! Debian's opentracker is built in whitelist mode (`-w FILE`, reloaded on SIGHUP), so it
//! refuses torrents nobody registered. `tests/py/whitelist_api.py` puts a torrust-style
//! `POST /api/v1/whitelist/{infohash}` API (token in `Authorization: Bearer`, refused in the
//! URL) in front of those files, and the profile asks swarmpack to register each window there
//! before announcing it: the announces only succeed if registration comes first and carries
//! the token the right way.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Starts opentracker on loopback (TCP and UDP on the same port number), with the
/// infohash whitelist `whitelist`.
fn opentracker(dir: &Path, whitelist: &Path) -> (Guard, u16) {
    std::fs::write(whitelist, "").unwrap();
    let port = loop {
        let p = free_tcp_port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            break p;
        }
    };
    let guard = Guard(
        Command::new("opentracker")
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
            ])
            .arg("-w")
            .arg(whitelist)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("opentracker is installed (scripts/setup)"),
    );
    wait_for("opentracker", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (guard, port)
}

fn first_torrent(windows: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(windows)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "torrent"))
        .collect();
    found.sort();
    found.into_iter().next()
}

#[test]
fn trackers_count_our_seeder_and_libtorrent_downloads_a_window_from_it_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let whitelists = [tmp.path().join("white-http"), tmp.path().join("white-udp")];
    let (http_tracker, http_port) = opentracker(tmp.path(), &whitelists[0]);
    let (udp_tracker, udp_port) = opentracker(tmp.path(), &whitelists[1]);
    let api_port = free_tcp_port();
    let api_log = tmp.path().join("whitelist-api.log");
    let token = "s3cret-whitelist-token";
    let _api = Guard(
        Command::new("/usr/bin/python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/whitelist_api.py"))
            .args([&api_port.to_string(), token])
            .arg(format!(
                "{}:{}",
                whitelists[0].display(),
                http_tracker.0.id()
            ))
            .arg(format!(
                "{}:{}",
                whitelists[1].display(),
                udp_tracker.0.id()
            ))
            .stdout(std::fs::File::create(&api_log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for("the whitelist API", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok()
    });
    let trackers = format!(
        "[[tracker]]\nannounce = \"http://127.0.0.1:{http_port}/announce\"\n\
         whitelist_api = \"http://127.0.0.1:{api_port}/api/v1/whitelist\"\n\
         whitelist_token_env = \"SWARMPACK_TEST_WHITELIST_TOKEN\"\n\
         [[tracker]]\nannounce = \"udp://127.0.0.1:{udp_port}/announce\"\n"
    );
    // The web seed points nowhere: the window can only come from a peer.
    let profile = small_profile(tmp.path(), 3, "http://127.0.0.1:9/", &trackers);
    let keys = keygen(tmp.path());
    let origin = tmp.path().join("origin");
    let seed_port = free_tcp_port();
    let metrics_port = free_tcp_port();
    let log_path = tmp.path().join("swarmpack.log");
    let child = run_match(
        "swarm",
        &profile,
        &keys,
        &format!("file://{}", origin.display()),
    )
    .args(["--angle", "main=test:"])
    .arg("--seed-listen")
    .arg(format!("127.0.0.1:{seed_port}"))
    .args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
    .env(
        "RUST_LOG",
        "info,swarmpack=debug,librqbit_tracker_comms=debug",
    )
    .env("SWARMPACK_TEST_WHITELIST_TOKEN", token)
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log_path).unwrap())
    .spawn()
    .unwrap();
    let mut child = Some(Guard(child));
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let windows = origin.join("swarm/windows");
    wait_for("the first window torrent", Duration::from_secs(40), || {
        first_torrent(&windows).is_some()
    });
    let torrent = first_torrent(&windows).unwrap();
    let save = tmp.path().join("peer");
    std::fs::create_dir_all(&save).unwrap();
    let scrapes = [
        format!("http://127.0.0.1:{http_port}/scrape"),
        format!("http://127.0.0.1:{udp_port}/scrape"),
    ];
    let report = lt_swarm(&torrent, &save, &scrapes, 1);

    // Both trackers (HTTP announce, UDP announce) list our seeder as complete.
    for url in &scrapes {
        let complete = report["scrapes"][url]["complete"].as_i64().unwrap_or(0);
        assert!(complete >= 1, "{url}: {report}\nswarmpack log:\n{}", log());
    }
    // The peer had no web seed and got everything, from our seeder.
    assert_eq!(report["web_seeds"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["seeding"],
        true,
        "{report}\nswarmpack log:\n{}",
        log()
    );
    assert!(
        met_peer(&report, &format!("127.0.0.1:{seed_port}")),
        "swarmpack's seeder not among the peers: {report}"
    );
    assert!(report["downloaded"].as_u64().unwrap() > 0, "{report}");

    // Byte-identical to the origin, file by file.
    let files = assert_same_files(
        &save.join("swarm/main/180p"),
        &origin.join("swarm/main/180p"),
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(torrent.with_extension("json")).unwrap()).unwrap();
    let in_window = manifest["segments"].as_array().expect("segments").len();
    assert!(in_window >= 1);
    assert_eq!(files, in_window, "every segment of the window");

    // The window was registered, with the token, before anything was announced.
    let (v1, _) = swarmpack::package::torrent::infohashes(&std::fs::read(&torrent).unwrap())
        .expect("a torrent");
    let hex: String = v1.iter().map(|b| format!("{b:02x}")).collect();
    let api_lines = std::fs::read_to_string(&api_log).unwrap();
    assert!(api_lines.contains(&format!("ok {hex}")), "{api_lines}");
    assert!(!api_lines.contains("denied"), "{api_lines}");
    assert!(
        !log().contains(token),
        "the whitelist token reached the log"
    );

    // Both trackers' answers show in /metrics.
    let announced = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("swarmpack_tracker_announces_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    wait_for("announces in /metrics", Duration::from_secs(10), || {
        scrape(metrics_port).is_some_and(|t| announced(&t) >= 2)
    });

    // A clean stop also stops the seeder.
    let mut swarm = child.take().unwrap();
    let term = Command::new("kill")
        .args(["-TERM", &swarm.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    wait_for("swarmpack to stop", Duration::from_secs(15), || {
        swarm.0.try_wait().unwrap().is_some()
    });
    let status = swarm.0.try_wait().unwrap().unwrap();
    assert!(status.success(), "exit after SIGTERM:\n{}", log());
    assert!(log().contains("seeding window"), "{}", log());
}

#[test]
fn windows_that_leave_the_dvr_window_are_no_longer_seeded() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    // 1 s segments, windows of 2, 4 s of DVR: at most 2 + 1 windows are seeded at once.
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(&profile, text.replace("dvr = 60", "dvr = 4")).unwrap();
    let spool = tmp.path().join("spool");
    let origin = format!("file://{}", tmp.path().join("origin").display());
    let mut cmd = run_match("dvr", &profile, &keys, &origin);
    cmd.args(["--fast", "--duration", "20"])
        .args(["--angle", "main=test:"])
        .arg("--spool")
        .arg(&spool)
        .env("RUST_LOG", "info,swarmpack=debug");
    let out = run_with_deadline(cmd, Duration::from_secs(60));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let seeded = log.matches("seeding window ").count();
    let retired = log.matches("left the DVR window; no longer seeded").count();
    assert!(seeded >= 10, "{log}");
    assert!(
        retired >= seeded - 3,
        "{seeded} seeded, {retired} retired:\n{log}"
    );
    // The retired windows' copies are gone; the origin still has every segment.
    let copy: Vec<_> = std::fs::read_dir(spool.join("dvr/seed/dvr/main/180p"))
        .unwrap()
        .collect();
    assert!(copy.len() <= 6, "{} segments kept locally", copy.len());
    let origin = media_playlist(&tmp.path().join("origin/dvr/main/180p/index.m3u8"));
    assert!(!origin.segments.is_empty());
}
