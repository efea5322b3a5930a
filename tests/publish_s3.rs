//! The S3 backend against a real S3-compatible server on loopback (moto's server, installed
//! by scripts/setup): a match published to s3://bucket/prefix arrives whole, the credentials
//! never reach the log, and `verify` passes reading the bucket back over HTTP. With the
//! bucket's versioning on, every immutable object (segment, manifest, signature, torrent) was
//! written once, and a create-if-absent PUT of other bytes to a held key leaves it as it was
//! (moto answers `If-None-Match: *` with 412).

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn s3_origin_receives_a_match_that_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = s3::Moto::start();
    let endpoint = moto.endpoint.clone();
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 2, &format!("{endpoint}/matches/live/"), "");
    let secret = s3::SECRET_KEY;
    let mut cmd = swarmpack();
    cmd.args(["run", "--match", "cup", "--fast", "--duration", "5"])
        .args(["--angle", "main=test:", "--angle", "pov=test:"])
        .arg("--profile")
        .arg(&profile)
        .arg("--keys")
        .arg(&keys)
        .args(["--origin", "s3://matches/live"])
        .env("RUST_LOG", "info,swarmpack=debug");
    moto.env(&mut cmd);
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
    // And through the S3 API itself, as `run --origin` names it: verify reads every origin
    // the way run writes it. A segment changed in the bucket is found.
    let verify_s3 = || {
        let mut v = swarmpack();
        v.args(["verify", "s3://matches/live/cup", "--pubkey"])
            .arg(keys.join("pubkey.pem"));
        moto.env(&mut v);
        v.output().unwrap()
    };
    let v = verify_s3();
    assert!(
        v.status.success(),
        "verify s3:// failed:\n{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );

    // One write per immutable key.
    let versions = moto.key_versions("live/cup/");
    let immutable: Vec<_> = versions
        .iter()
        .filter(|(k, _)| !k.ends_with(".m3u8") && !k.contains("live.json"))
        .collect();
    assert!(immutable.len() > 20, "{versions:?}");
    for (key, n) in &immutable {
        assert_eq!(*n, 1, "{key} was written {n} times");
    }
    assert!(
        versions
            .iter()
            .any(|(k, n)| k.ends_with("index.m3u8") && *n > 1),
        "playlists are replaced as the match moves: {versions:?}"
    );

    // Create-if-absent against the bucket: the same bytes are found, other bytes are refused
    // and the bucket keeps the first.
    let segment = versions
        .iter()
        .map(|(k, _)| k)
        .find(|k| k.ends_with(".ts"))
        .unwrap()
        .trim_start_matches("live/")
        .to_string();
    let held = moto.object(&format!("live/{segment}"));
    let created = {
        // The store reads its endpoint and credentials from the environment, as `run` does.
        // SAFETY: this test binary has this one test, so no other thread reads the environment.
        unsafe {
            std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", secret);
        }
        let origin = swarmpack::publish::Origin::open("s3://matches/live").unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let same = rt
            .block_on(origin.create(&segment, held.clone().into()))
            .unwrap();
        let other = rt
            .block_on(origin.create(&segment, bytes::Bytes::from_static(b"forged")))
            .unwrap();
        (same, other)
    };
    use swarmpack::publish::Created;
    assert_eq!(created.0, Created::Same);
    assert_eq!(
        created.1,
        Created::Other {
            len: held.len() as u64,
            sha256: swarmpack::hex::sha256(&held),
        }
    );
    let after = moto.key_versions("live/cup/");
    let key = format!("live/{segment}");
    assert_eq!(
        after.iter().find(|(k, _)| *k == key).map(|(_, n)| *n),
        Some(1),
        "{key} kept its one version"
    );

    // Replace (not create) a segment with other bytes of its length: verify on s3:// says so.
    let mut forged = held.clone();
    forged[100] ^= 0xff;
    let origin = swarmpack::publish::Origin::open("s3://matches/live").unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(origin.put(&segment, forged.into()))
        .unwrap();
    let v = verify_s3();
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(!v.status.success(), "a changed segment verified:\n{out}");
    let rel = segment.trim_start_matches("cup/");
    assert!(
        out.contains(rel),
        "the changed segment is not named:\n{out}"
    );
}
