//! The S3 backend against a real S3-compatible server on loopback (moto's server, installed
//! by scripts/setup): a match published to s3://bucket/prefix arrives whole, the credentials
//! never reach the log, and `verify` passes reading the bucket back over HTTP.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// moto_server from the venv scripts/setup made.
fn moto_server() -> PathBuf {
    setup_tool("MOTO_VERSION", "moto", "moto_server")
}

#[test]
fn s3_origin_receives_a_match_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let _moto = Guard(
        Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_for("moto_server", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // Create the bucket (moto accepts an unsigned CreateBucket).
    let made = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{endpoint}/matches")])
        .status()
        .unwrap();
    assert!(made.success(), "cannot create the bucket");
    // Viewers and peers read the bucket anonymously, as behind a public bucket policy or CDN.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::matches/*"}]}"#;
    let public = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{endpoint}/matches?policy")])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            policy,
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(public.success(), "cannot set the bucket policy");

    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 2, &format!("{endpoint}/matches/live/"), "");
    let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
    let mut cmd = swarmpack();
    cmd.args(["run", "--match", "cup", "--fast", "--duration", "5"])
        .args(["--angle", "main=test:", "--angle", "pov=test:"])
        .arg("--profile")
        .arg(&profile)
        .arg("--keys")
        .arg(&keys)
        .args(["--origin", "s3://matches/live"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("RUST_LOG", "info,swarmpack=debug");
    let out = run_with_deadline(cmd, Duration::from_secs(90));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "swarmpack failed:\n{log}");
    assert!(!log.contains(secret), "the secret key reached the log");
    assert!(log.contains("s3://matches/live"), "{log}");

    // Read the bucket back over plain HTTP (path style), as a viewer or peer would.
    let base = format!("{endpoint}/matches/live/cup/");
    for rel in ["master.m3u8", "main/180p/index.m3u8", "pov/180p/index.m3u8"] {
        let got = Command::new("curl")
            .args(["-sf", &format!("{base}{rel}")])
            .output()
            .unwrap();
        assert!(got.status.success(), "{rel} not in the bucket");
        let text = String::from_utf8_lossy(&got.stdout);
        assert!(text.starts_with("#EXTM3U"), "{rel}: {text}");
        if rel.ends_with("index.m3u8") {
            assert!(text.contains("#EXT-X-ENDLIST"), "{rel}: {text}");
            assert_eq!(text.matches(".ts\n").count(), 5, "{rel}: {text}");
        }
    }
    assert_verifies(&base, &keys);
}
