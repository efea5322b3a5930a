//! Window manifests and torrents from a real run, checked with outside tools: openssl
//! verifies every signature, the hash chain links the windows, libtorrent rechecks every
//! torrent against the origin at 100%, and aria2c downloads a window through the web seed.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn windows_are_signed_chained_and_served_by_their_torrents() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let http_port = free_tcp_port();
    let profile_path = profile_with(
        tmp.path(),
        "demo.toml",
        "http://127.0.0.1:8080/",
        &format!("http://127.0.0.1:{http_port}/"),
    );
    let origin = tmp.path().join("origin");
    run_two_test_angles("final", &profile_path, &keys, &origin, 22);

    let root = origin.join("final");
    let pubkey = root.join("pubkey.pem");
    assert_eq!(
        std::fs::read(&pubkey).unwrap(),
        std::fs::read(keys.join("pubkey.pem")).unwrap()
    );
    let mut windows: Vec<u64> = std::fs::read_dir(root.join("windows"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            name.strip_suffix(".json").and_then(|n| n.parse().ok())
        })
        .collect();
    windows.sort();
    assert!(
        windows.len() >= 3,
        "22 s of 2 s segments in 5-segment windows: {windows:?}"
    );
    assert!(
        windows.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous windows {windows:?}"
    );

    // Signatures (openssl) and the hash chain.
    let mut prev: Option<String> = None;
    let mut biggest = (0usize, 0u64);
    for w in &windows {
        let path = root.join(format!("windows/{w}.json"));
        assert!(
            openssl_verifies(&pubkey, &path),
            "signature of {}",
            path.display()
        );
        let bytes = std::fs::read(&path).unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["window"].as_u64(), Some(*w));
        assert_eq!(
            doc["prev_manifest_sha256"].as_str().map(String::from),
            prev,
            "chain at {w}"
        );
        prev = Some(sha256_hex(&bytes));
        let segments = doc["segments"].as_array().unwrap();
        for s in segments {
            let file = std::fs::read(root.join(s["path"].as_str().unwrap())).unwrap();
            assert_eq!(s["length"].as_u64(), Some(file.len() as u64));
            assert_eq!(s["sha256"].as_str().unwrap(), sha256_hex(&file));
            assert_eq!(s["key_period"].as_u64(), Some(*w));
        }
        if segments.len() > biggest.0 {
            biggest = (segments.len(), *w);
        }
        let magnet = doc["torrent"]["magnet"].as_str().unwrap();
        assert!(magnet.contains(&format!(
            "urn:btih:{}",
            doc["torrent"]["infohash_v1"].as_str().unwrap()
        )));
        assert!(magnet.contains(&format!(
            "urn:btmh:1220{}",
            doc["torrent"]["infohash_v2"].as_str().unwrap()
        )));
        // libtorrent: hybrid, web seed, trackers, and a complete recheck against the origin.
        let text = lt_check(&root.join(format!("windows/{w}.torrent")), &origin);
        let v1 = doc["torrent"]["infohash_v1"].as_str().unwrap();
        let v2 = doc["torrent"]["infohash_v2"].as_str().unwrap();
        assert!(
            text.contains(&format!("v1 1 {v1}")) && text.contains(&format!("v2 1 {v2}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("webseeds http://127.0.0.1:{http_port}/")),
            "{text}"
        );
        assert!(
            text.contains("trackers http://127.0.0.1:8000/announce"),
            "{text}"
        );
        assert!(text.contains("progress_ppm 1000000"), "window {w}: {text}");
    }
    let live = root.join("live.json");
    assert!(openssl_verifies(&pubkey, &live));
    let live_doc: Value = serde_json::from_slice(&std::fs::read(&live).unwrap()).unwrap();
    assert_eq!(live_doc["windows"][0].as_u64(), windows.last().copied());
    assert_eq!(
        live_doc["newest_manifest_sha256"]
            .as_str()
            .map(String::from),
        prev
    );
    assert_eq!(live_doc["ended"], Value::Bool(true));

    // aria2c fetches the fullest window through the web seed alone (no peers, no tracker).
    let _http = http_server(&origin, http_port);
    let dl = tmp.path().join("download");
    let mut aria = Command::new("aria2c");
    aria.args([
        "-q",
        "--seed-time=0",
        "--enable-dht=false",
        "--bt-enable-lpd=false",
    ])
    .arg(format!("--dir={}", dl.display()))
    .arg(root.join(format!("windows/{}.torrent", biggest.1)));
    let got = run_with_deadline(aria, Duration::from_secs(120));
    assert!(
        got.status.success(),
        "aria2c: {}",
        String::from_utf8_lossy(&got.stdout)
    );
    let doc: Value = serde_json::from_slice(
        &std::fs::read(root.join(format!("windows/{}.json", biggest.1))).unwrap(),
    )
    .unwrap();
    for s in doc["segments"].as_array().unwrap() {
        let rel = s["path"].as_str().unwrap();
        assert_eq!(
            std::fs::read(dl.join("final").join(rel)).unwrap(),
            std::fs::read(root.join(rel)).unwrap(),
            "{rel} differs after the web-seed download"
        );
    }
}
