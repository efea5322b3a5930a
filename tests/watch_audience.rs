//! What fans experience reaches the operator (issue 28): three viewers on `/watch` with
//! telemetry on report through hls.js's CMCD v2 event mode to `serve`'s collector, and its
//! `/metrics` agrees with what each page itself counted (`window.swarmpack`):
//! - viewers: every page is one session, the sessions are the pages;
//! - startup: one observation per page, the sum within 10 ms of the pages' own figures;
//! - peer share: peer and HTTP bytes reported lag the pages' counters by at most one report
//!   interval (10 s), so each total is at most the page's and at least half of it, and the
//!   share of peer bytes within 20 points of the pages';
//! - P2P still carries bytes with telemetry on, and no segment URL carries CMCD (query mode
//!   would change p2p-media-loader's segment IDs);
//! - the operator's preview page charts it (viewers 3, a share of bytes from peers);
//! - a viewer with `?telemetry=off` sends nothing (no new session);
//! - a delivery policy changed in the signed p2p.json while they watch (signed here with the
//!   match key) reaches every player within 30 s.

mod common;

use common::audience::{get, sum};
use common::browser::{LiveMatch, num, preview_page, require_browser, watch_viewers as viewers};
use common::*;
use std::time::Duration;

#[test]
fn the_collector_sees_what_the_fans_players_saw() {
    require_browser("p2p-media-loader-core");
    let live = LiveMatch::start("aud");
    let (tmp, keys, port, origin, m) = (&live.tmp, &live.keys, live.port, &live.origin, &live.dir);
    let p2p: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("p2p.json")).unwrap()).unwrap();
    assert_eq!(
        p2p["telemetry"],
        format!("http://127.0.0.1:{port}/cmcd"),
        "the signed p2p.json names the collector beside the key server"
    );
    let _server = serve(origin, keys, port, &["--dev-tokens".as_ref()]);
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let url = format!("http://127.0.0.1:{port}/watch?match=aud");
    // While they watch, the delivery policy changes (as PATCH …/delivery or a [qoe] action
    // would): p2p.json with behind_live = 10, signed with the match key (ring; this OpenSSL
    // cannot read ring's PKCS#8 v2 key file). It changes once every page has started (its
    // session reports), so each must pick it up by reading p2p.json again.
    let (doc, keys_dir) = (m.join("p2p.json"), keys.clone());
    let watching = metrics.clone();
    let change = std::thread::spawn(move || {
        wait_for("the three pages' sessions", Duration::from_secs(90), || {
            sum(
                &get(&watching),
                "swarmpack_audience_viewers",
                &["match=\"aud\""],
            ) >= 3.0
        });
        let mut p2p: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&doc).unwrap()).unwrap();
        p2p["delivery"]["behind_live"] = serde_json::json!(10.0);
        let bytes = serde_json::to_string_pretty(&p2p).unwrap();
        let pk8 = std::fs::read(keys_dir.join("signing.pk8")).unwrap();
        let key = ring::signature::Ed25519KeyPair::from_pkcs8(&pk8).unwrap();
        std::fs::write(doc.with_extension("json.sig"), key.sign(bytes.as_bytes())).unwrap();
        std::fs::write(&doc, bytes).unwrap();
    });
    let seen = viewers(
        &url,
        &[
            "--viewers",
            "3",
            "--stagger-ms",
            "3000",
            "--watch-ms",
            "35000",
        ],
    );
    change.join().unwrap();
    let m = get(&metrics);
    eprintln!("{m}");
    let pages = seen["viewers"].as_array().unwrap();
    assert_eq!(pages.len(), 3);
    let aud = ["match=\"aud\""];

    assert_eq!(
        sum(&m, "swarmpack_audience_sessions_total", &aud),
        3.0,
        "{m}"
    );
    assert_eq!(sum(&m, "swarmpack_audience_viewers", &aud), 3.0, "{m}");
    let startup: f64 = pages.iter().map(|v| num(v, "startupSeconds")).sum();
    assert_eq!(
        sum(&m, "swarmpack_audience_startup_seconds_count", &aud),
        3.0
    );
    let reported = sum(&m, "swarmpack_audience_startup_seconds_sum", &aud);
    assert!(
        (reported - startup).abs() < 0.01,
        "startup {reported} s reported, {startup} s on the pages"
    );

    let page_peer: f64 = pages.iter().map(|v| num(v, "p2pBytes")).sum();
    let page_http: f64 = pages.iter().map(|v| num(v, "httpBytes")).sum();
    let peer = sum(
        &m,
        "swarmpack_audience_bytes_total",
        &["match=\"aud\"", "source=\"peer\""],
    );
    let http = sum(
        &m,
        "swarmpack_audience_bytes_total",
        &["match=\"aud\"", "source=\"http\""],
    );
    assert!(
        page_peer > 0.0,
        "no bytes from peers with telemetry on: {seen}"
    );
    for (what, reported, counted) in [("peer", peer, page_peer), ("http", http, page_http)] {
        assert!(
            reported <= counted && reported >= 0.5 * counted,
            "{what} bytes: {reported} reported, {counted} counted by the pages"
        );
    }
    let (share, page_share) = (peer / (peer + http), page_peer / (page_peer + page_http));
    assert!(
        (share - page_share).abs() <= 0.2,
        "peer share {share:.2} reported, {page_share:.2} on the pages"
    );
    for v in pages {
        // Every player read the changed policy again within 30 s and applied it.
        assert!(
            num(v, "policyChanges") >= 1.0,
            "the policy change did not reach {v}"
        );
        assert!(
            v["policy"]
                .as_str()
                .is_some_and(|p| p.contains("about 11 s behind live")),
            "{}",
            v["policy"]
        );
        for f in v["fromHttp"].as_array().unwrap() {
            assert!(
                !f["url"].as_str().unwrap().contains("CMCD"),
                "CMCD in a segment URL: {f}"
            );
        }
    }

    // The operator's preview page charts it.
    let shot = tmp.path().join("audience.png");
    let panel = preview_page(
        &format!("http://127.0.0.1:{port}/?match=aud"),
        "main",
        None,
        "audience",
        &shot,
    );
    let shown = &panel["audience"];
    assert_eq!(shown["viewers"]["now"], "3", "{panel}");
    assert!(
        shown["peer_share"]["now"]
            .as_str()
            .is_some_and(|s| s.ends_with('%')),
        "{panel}"
    );
    if let Ok(keep) = std::env::var("KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }

    // A viewer who turned telemetry off: no session.
    viewers(
        &format!("{url}&telemetry=off"),
        &["--viewers", "1", "--stagger-ms", "0", "--watch-ms", "12000"],
    );
    let m = get(&metrics);
    assert_eq!(
        sum(&m, "swarmpack_audience_sessions_total", &aud),
        3.0,
        "{m}"
    );
}
