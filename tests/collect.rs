//! The CMCD collector (`swarmpack collect --origin DIR`; the same routes are on `keyserver` and
//! `serve`), driven with curl as a player or an attacker would:
//! - a report written by hand to the CTA-5004-B text format (not by swarmpack's or hls.js's
//!   code) is taken and shows in `/metrics`;
//! - a malformed, oversized or flooding body, a report for another match or for a match not on
//!   the origin, and a bad match name are refused with 400, 413, 429 or 404, each counted, and
//!   the collector still answers afterwards;
//! - one session's reports change only its own figures;
//! - SIGTERM stops it cleanly.

mod common;

use common::audience::{get, post, sum};
use common::*;
use std::time::Duration;

const SID: &str = "6e2fb550-c457-11e9-bb97-0800200c9a66";

#[test]
fn the_collector_takes_reports_by_the_spec_and_refuses_bad_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin");
    std::fs::create_dir_all(origin.join("cup")).unwrap();
    let port = free_tcp_port();
    let mut cmd = swarmpack();
    cmd.args(["collect", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--origin")
        .arg(&origin);
    let mut collector = Guard(cmd.spawn().unwrap());
    wait_for("the collector to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("http://127.0.0.1:{port}/cmcd/cup");
    let metrics = format!("http://127.0.0.1:{port}/metrics");

    // By hand, from the spec: a play-state report, a time-interval report with swarmpack's
    // custom keys (reverse-DNS prefix), and a response-mode report.
    let by_hand = format!(
        "br=(3200 128),cid=\"cup/main\",e=ps,sid=\"{SID}\",sn=0,sta=p,ts=1764806400123,v=2,io.swarmpack-rung=\"720p\"\n\
         bl=(21300),e=t,io.swarmpack-behind=7400,io.swarmpack-httpb=524288,io.swarmpack-p2pb=1048576,io.swarmpack-startup=1850,pt=12000,sid=\"{SID}\",sn=1,ts=1764806410123,v=2\n\
         e=rr,rc=200,sid=\"{SID}\",ts=1764806410200,ttfb=42,ttlb=180,url=\"https://cdn.example/cup/main/720p/100.ts\",v=2\n"
    );
    let (status, answer) = post(&url, by_hand.as_bytes());
    assert_eq!(status, 204, "{answer}");
    let m = get(&metrics);
    let cup = ["match=\"cup\"", "angle=\"main\"", "rung=\"720p\""];
    assert_eq!(sum(&m, "swarmpack_audience_viewers", &cup), 1.0, "{m}");
    assert_eq!(
        sum(&m, "swarmpack_audience_startup_seconds_count", &cup),
        1.0
    );
    assert_eq!(
        sum(&m, "swarmpack_audience_startup_seconds_sum", &cup),
        1.85
    );
    let peer = [cup[0], cup[1], "source=\"peer\""];
    assert_eq!(
        sum(&m, "swarmpack_audience_bytes_total", &peer),
        1_048_576.0
    );
    assert_eq!(sum(&m, "swarmpack_audience_ttfb_seconds_count", &cup), 1.0);
    assert_eq!(sum(&m, "swarmpack_audience_bitrate_kbps_count", &cup), 1.0);

    // Another session cannot change this one's figures: its own totals start from zero, and
    // the same batch sent again counts once.
    let other = "cid=\"cup/main\",e=t,sid=\"intruder\",sn=0,io.swarmpack-p2pb=10\n";
    assert_eq!(post(&url, other.as_bytes()).0, 204);
    assert_eq!(post(&url, by_hand.as_bytes()).0, 204);
    let m = get(&metrics);
    assert_eq!(
        sum(&m, "swarmpack_audience_bytes_total", &peer),
        1_048_586.0
    );
    assert_eq!(
        sum(&m, "swarmpack_audience_startup_seconds_count", &cup),
        1.0
    );
    assert_eq!(
        sum(&m, "swarmpack_audience_viewers", &["match=\"cup\""]),
        2.0
    );

    // Refused, each with what was wrong.
    let refused: [(&str, Vec<u8>, u16, &str); 7] = [
        ("cup", b"e=t,sid=\"a\"\ne=t,sid=\"b".to_vec(), 400, "line 2"),
        ("cup", b"e=t,ts=1\n".to_vec(), 400, "sid"),
        (
            "cup",
            b"e=t,sid=\"a\",io.swarmpack-p2pb=-1\n".to_vec(),
            400,
            "io.swarmpack-p2pb",
        ),
        ("cup", b"\xff\xfe".to_vec(), 400, "UTF-8"),
        (
            "cup",
            b"cid=\"final/main\",e=t,sid=\"a\"\n".to_vec(),
            400,
            "cid",
        ),
        ("final", b"e=t,sid=\"a\"\n".to_vec(), 404, "no match final"),
        ("Bad.Name", b"e=t,sid=\"a\"\n".to_vec(), 400, "match"),
    ];
    for (m, body, want, says) in refused {
        let (status, answer) = post(&format!("http://127.0.0.1:{port}/cmcd/{m}"), &body);
        assert_eq!(
            status,
            want,
            "{m} {:?}: {answer}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            answer.contains(says),
            "{m}: {answer:?} does not say {says:?}"
        );
    }
    let big = format!("e=t,sid=\"{SID}\"\n").repeat(5000);
    assert_eq!(post(&url, big.as_bytes()).0, 413);
    let lines = "e=t,sid=\"x\"\n".repeat(300);
    assert_eq!(post(&url, lines.as_bytes()).0, 413);
    // A flood from one session: 40 lines at once, over its burst of 30.
    let flood: String = (0..40)
        .map(|i| format!("cid=\"cup/main\",e=t,sid=\"flood\",sn={i}\n"))
        .collect();
    let (status, answer) = post(&url, flood.as_bytes());
    assert_eq!(status, 429, "{answer}");

    let m = get(&metrics);
    for (outcome, at_least) in [
        ("malformed", 6.0),
        ("unknown_match", 1.0),
        ("oversized", 2.0),
        ("flood", 10.0),
        ("duplicate", 2.0),
    ] {
        let n = sum(
            &m,
            "swarmpack_audience_reports_total",
            &[&format!("outcome=\"{outcome}\"")],
        );
        assert!(n >= at_least, "{outcome}: {n} < {at_least}\n{m}");
    }
    assert!(
        !m.contains("intruder") && !m.contains(SID),
        "a session ID reached the figures"
    );

    // SIGTERM: a clean stop.
    let term = std::process::Command::new("kill")
        .args(["-TERM", &collector.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = collector.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
