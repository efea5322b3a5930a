//! `run --metrics ADDR` serves OpenMetrics text that the Prometheus client's strict parser
//! accepts, with the figures an operator watches; a port already in use is a clear error.

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn parse(text: &str) -> serde_json::Value {
    let mut child = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3-prometheus-client is installed (scripts/setup)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not valid OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sample(m: &serde_json::Value, family: &str, name: &str, label: Option<(&str, &str)>) -> f64 {
    m[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family}: {m}"))
        .iter()
        .find(|s| s[0] == name && label.is_none_or(|(k, v)| s[1][k] == v))
        .and_then(|s| s[2].as_f64())
        .unwrap_or_else(|| panic!("no sample {name} {label:?} in {family}: {m}"))
}

#[test]
fn metrics_parse_as_openmetrics_and_count_the_match() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let port = free_tcp_port();
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let origin = format!("file://{}", tmp.path().join("origin").display());
    let child = run_match("obs", &profile, &keys, &origin)
        .args(["--duration", "8"])
        .args(["--angle", "main=test:", "--angle", "pov=test:"])
        .args(["--metrics", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Guard(child);
    let mut parsed = serde_json::Value::Null;
    wait_for(
        "3 segments per rendition in /metrics",
        Duration::from_secs(30),
        || {
            let Some(text) = scrape(port) else {
                return false;
            };
            parsed = parse(&text);
            parsed["swarmpack_segments"]["samples"]
                .as_array()
                .is_some_and(|s| s.len() == 2 && s.iter().all(|x| x[2].as_f64() >= Some(3.0)))
                && parsed["swarmpack_seeded_windows"].is_object()
        },
    );
    let m = &parsed;
    assert_eq!(m["swarmpack_segments"]["type"], "counter");
    assert_eq!(m["swarmpack_publish_latency_seconds"]["type"], "histogram");
    assert!(
        sample(
            m,
            "swarmpack_segment_bytes",
            "swarmpack_segment_bytes_total",
            Some(("angle", "pov"))
        ) > 10_000.0
    );
    assert!(
        sample(
            m,
            "swarmpack_input_frames",
            "swarmpack_input_frames_total",
            Some(("angle", "main"))
        ) >= 60.0
    );
    let rtf = sample(
        m,
        "swarmpack_encoder_realtime_factor",
        "swarmpack_encoder_realtime_factor",
        None,
    );
    // A live feed paces the encoder: media time over wall time is about 1. The margin is
    // wide (a loaded CI machine can fall behind for a while); what this catches is a factor
    // computed wrongly (a ratio of the wrong clocks is off by orders of magnitude).
    assert!(
        (0.2..5.0).contains(&rtf),
        "a live run encodes at about real time: {rtf}"
    );
    assert!(
        sample(
            m,
            "swarmpack_publish_latency_seconds",
            "swarmpack_publish_latency_seconds_count",
            Some(("kind", "segment"))
        ) >= 6.0
    );
    // Objects waiting in the spool: a whole number, and on a directory origin that takes
    // every object at once, a handful at most (a spool that never drained would grow by
    // six objects a second here).
    let spooled = sample(
        m,
        "swarmpack_spool_objects",
        "swarmpack_spool_objects",
        None,
    );
    assert!(
        spooled.fract() == 0.0 && (0.0..12.0).contains(&spooled),
        "objects in the spool: {spooled}"
    );
    assert_eq!(
        sample(
            m,
            "swarmpack_origin_errors",
            "swarmpack_origin_errors_total",
            None
        ),
        0.0
    );
    assert_eq!(
        sample(
            m,
            "swarmpack_match",
            "swarmpack_match",
            Some(("match", "obs"))
        ),
        1.0
    );
}

#[test]
fn metrics_port_in_use_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = swarmpack()
        .args([
            "run",
            "--match",
            "obs",
            "--duration",
            "2",
            "--angle",
            "main=test:",
        ])
        .arg("--profile")
        .arg(profile("demo.toml"))
        .arg("--keys")
        .arg(&keys)
        .arg("--origin")
        .arg(format!("file://{}", tmp.path().join("origin").display()))
        .args(["--metrics", &addr.to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("--metrics {addr}: cannot listen")),
        "{err}"
    );
    let out = swarmpack()
        .args([
            "run",
            "--match",
            "obs",
            "--angle",
            "main=test:",
            "--metrics",
            "nine",
        ])
        .arg("--keys")
        .arg(&keys)
        .arg("--profile")
        .arg(profile("demo.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--metrics \"nine\": expected IP:PORT"),
        "{err}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let origin = format!("file://{}", tmp.path().join("origin").display());
    let mut run = run_match("logs", &profile, &keys, &origin);
    run.args(["--log-format", "json", "--fast", "--duration", "4"])
        .args(["--angle", "main=test:"]);
    let out = run_with_deadline(run, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "{stderr}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
    }
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("match logs ended"))),
        "{stderr}"
    );
}
