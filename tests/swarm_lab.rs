//! The fans' swarm through home NATs (issue 26), the small version of `scripts/swarm-lab`: three
//! viewers, each in a home of its own behind an ordinary NAT router (nftables masquerade,
//! unsolicited inbound dropped), on access links with 50 ms of round trip between homes, 1%
//! loss (bench/linkemu.py over TUN) and a 5 Mbit/s uplink (tc tbf), with the origin, the
//! WebTorrent tracker, `serve` and coturn (STUN only) on a wan of network namespaces. Headless
//! Chromium plays in each home with host candidates hidden behind mDNS names, as for real fans.
//!
//! Asserted: every viewer plays with nothing unverified; peer bytes reached every viewer (so
//! they crossed from one home to another: each home holds one viewer); and the connections that
//! carried them used server-reflexive or peer-reflexive candidates, the addresses STUN and the
//! NATs gave, not host addresses. Without ICE servers the same lab forms no swarm at all
//! (`scripts/swarm-lab --ice none`; docs/PERFORMANCE.md has the run).
//!
//! Needs root and network namespaces: elsewhere it prints SKIPPED and passes.

mod common;

use std::process::Command;
use std::time::Duration;

#[test]
fn three_homes_behind_nats_share_the_match_through_stun() {
    common::browser::require_browser("p2p-media-loader-core");
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("lab.json");
    let bin = std::env::var_os("SWARMPACK_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_swarmpack").into());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut lab = Command::new(root.join("scripts/swarm-lab"));
    lab.args(["--test", "--json"])
        .arg(&report)
        .env("SWARMPACK_BIN", bin)
        .env("SWARMPACK_SKIP_SETUP", "1");
    let out = common::run_with_deadline(lab, Duration::from_secs(900));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        common::skipped(
            "swarm_lab::three_homes_behind_nats_share_the_match_through_stun",
            stdout.trim(),
        );
        return;
    }
    assert!(
        out.status.success(),
        "swarm-lab failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    println!("{stdout}");
    assert_eq!(report["ice"], "stun");
    assert_eq!(report["errors"], serde_json::json!([]), "{report:#}");
    let viewers = report["viewers"].as_array().unwrap();
    assert_eq!(viewers.len(), 3);
    for (i, v) in viewers.iter().enumerate() {
        assert_eq!(v["kind"], "nat", "viewer {i}");
        assert!(
            v["playing"].as_bool().unwrap(),
            "viewer {i} is not playing: {v:#}"
        );
        assert!(v["error"].is_null(), "viewer {i}: {v:#}");
        assert_eq!(
            v["unverified"], 0,
            "viewer {i} played unverified bytes: {v:#}"
        );
        assert!(
            v["p2p_bytes"].as_u64().unwrap() > 0,
            "viewer {i} got nothing from another home: {v:#}"
        );
        assert!(
            v["direct"].as_u64().unwrap() > 0,
            "viewer {i} has no direct connection: {v:#}"
        );
        // Through the NATs: each connection's local candidate is the NAT's mapping (srflx) or
        // one the peer saw (prflx), never a host address (mDNS names nobody can resolve).
        for pair in v["candidates"].as_array().unwrap() {
            let local = pair.as_str().unwrap().split('/').next().unwrap();
            assert!(
                matches!(local, "srflx" | "prflx"),
                "viewer {i}: {pair} {v:#}"
            );
        }
        assert_eq!(v["relay_bytes"], 0, "STUN only: nothing can be relayed");
    }
    // The viewers together took less from the origin than they played.
    assert!(report["offload"].as_f64().unwrap() > 0.0, "{report:#}");
    // Apart from the players' counters: every fragment hls.js was handed is the origin's file
    // (the test's hook in watch.mjs, hashed against the lab's www directory), the played bytes
    // are what hls.js was handed, and the HTTP bytes the players count are the segment bytes
    // nginx's access log says it sent.
    eprintln!(
        "origin (access log) {} B, players' HTTP {} B, played {} B, handed to hls.js {} B",
        report["origin_bytes"],
        report["http_bytes"],
        report["played_bytes"],
        report["handed_bytes"]
    );
    assert_eq!(
        report["handed_mismatched"],
        serde_json::json!([]),
        "{report:#}"
    );
    assert!(
        report["handed_matched"].as_u64().unwrap() >= 10,
        "{report:#}"
    );
    assert_eq!(report["handed_bytes"], report["played_bytes"], "{report:#}");
    // A player may abort a fetch a peer answered first (nginx logs what it sent until then), so
    // the log may hold a little more than the players counted, never less.
    let (logged, http) = (
        report["origin_bytes"].as_f64().unwrap(),
        report["http_bytes"].as_f64().unwrap(),
    );
    assert!(
        http <= logged && logged - http <= logged / 10.0,
        "the players count {http} B over HTTP; nginx's access log {logged} B"
    );
}
