//! TURN credentials per viewer (issue 26): `GET {key_uri_base}/{match}/ice` on `serve` (from
//! the match's signed p2p.json) and on `keyserver --profile`, checked by coturn itself: a real
//! `turnserver` with `use-auth-secret` allocates a relay with the minted credentials and
//! refuses a changed or expired one. Tokens are checked as for keys (401, 403).

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_string(), code.to_string())
}

fn token(keys: &Path, match_id: &str, ttl: &str) -> String {
    let out = swarmpack()
        .args([
            "token",
            "--match",
            match_id,
            "--session",
            "fan-7",
            "--ttl",
            ttl,
        ])
        .args(["--periods", "0-99999999999", "--keys"])
        .arg(keys)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// coturn on loopback with the keys' TURN secret, waited for.
fn coturn(keys: &Path, port: u16, log: &Path) -> Guard {
    let secret = std::fs::read_to_string(keys.join("turn.secret")).unwrap();
    let guard = Guard(
        Command::new("turnserver")
            .args(["-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
            .arg(format!("--listening-port={port}"))
            .args(["--use-auth-secret", "--realm=swarmpack.test"])
            .arg(format!("--static-auth-secret={}", secret.trim()))
            .args([
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
            ])
            .args(["--min-port=49152", "--max-port=65535"])
            .arg(format!("--log-file={}", log.display()))
            .arg("--simple-log")
            .arg(format!("--pidfile={}", log.with_extension("pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver (coturn; scripts/setup installs it)"),
    );
    wait_for("coturn to answer STUN", Duration::from_secs(10), || {
        Command::new("timeout")
            .args([
                "2",
                "turnutils_stunclient",
                "-p",
                &port.to_string(),
                "127.0.0.1",
            ])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("UDP reflexive addr"))
    });
    guard
}

/// Whether coturn relays for `user`/`pass`: turnutils_uclient allocates a relay and sends 5
/// messages each way between two of its clients through it.
fn relays(port: u16, user: &str, pass: &str) -> bool {
    let out = Command::new("timeout")
        .args([
            "20",
            "turnutils_uclient",
            "-y",
            "-n",
            "5",
            "-p",
            &port.to_string(),
        ])
        .args(["-u", user, "-w", pass, "127.0.0.1"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let ok = text.contains("tot_recv_msgs=20");
    assert!(
        ok || text.contains("Cannot complete Allocation"),
        "turnutils_uclient said:\n{text}"
    );
    ok
}

#[test]
fn viewers_get_turn_credentials_that_coturn_accepts_and_nobody_else_does() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let turn_port = free_udp_port();
    let ice = format!(
        "[[ice_server]]\nurls = [\"stun:127.0.0.1:{turn_port}\"]\n\
         [[ice_server]]\nurls = [\"turn:127.0.0.1:{turn_port}?transport=udp\"]\ncredentials = \"rest\"\n"
    );
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", &ice);
    let origin = tmp.path().join("origin");
    let mut run = run_match(
        "cup",
        &profile,
        &keys,
        &format!("file://{}", origin.display()),
    );
    run.args([
        "--fast",
        "--duration",
        "3",
        "--angle",
        "main=test:",
        "--no-seed",
    ]);
    let out = run_with_deadline(run, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The signed p2p.json names the STUN server and where TURN credentials come from.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(origin.join("cup/p2p.json")).unwrap()).unwrap();
    assert_eq!(
        doc["ice_servers"][0]["urls"][0],
        format!("stun:127.0.0.1:{turn_port}")
    );
    assert_eq!(doc["ice"], "http://127.0.0.1:8081/keys/cup/ice");
    assert!(openssl_verifies(
        &keys.join("pubkey.pem"),
        &origin.join("cup/p2p.json")
    ));

    let _turn = coturn(&keys, turn_port, &tmp.path().join("turn.log"));
    let port = free_tcp_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = serve(&origin, &keys, port, &[]);
    let viewer = token(&keys, "cup", "1h");
    let bearer = format!("Authorization: Bearer {viewer}");
    let (body, code) = curl(&["-H", &bearer, &format!("{base}/keys/cup/ice")]);
    assert_eq!(code, "200", "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ttl = answer["ttl"].as_u64().unwrap();
    assert!(
        (3500..=3600).contains(&ttl),
        "{body}: the token's hour bounds it"
    );
    assert_eq!(answer["iceServers"][0], doc["ice_servers"][0]);
    let turn = &answer["iceServers"][1];
    let user = turn["username"].as_str().unwrap();
    let pass = turn["credential"].as_str().unwrap();
    assert!(user.ends_with(":fan-7"), "{user}");
    // coturn, knowing only the shared secret, accepts them.
    assert!(
        relays(turn_port, user, pass),
        "coturn refused minted credentials"
    );
    // A changed password, another viewer's name, or an expired (correctly signed) name: no.
    let mut changed = pass.to_string();
    changed.replace_range(0..1, if pass.starts_with('A') { "B" } else { "A" });
    assert!(!relays(turn_port, user, &changed));
    assert!(!relays(turn_port, &user.replace("fan-7", "fan-8"), pass));
    let secret = std::fs::read_to_string(keys.join("turn.secret")).unwrap();
    let expired = swarmpack::keys::ice::turn_username(1_000_000_000, "fan-7");
    let expired_pass = swarmpack::keys::ice::turn_password(secret.trim().as_bytes(), &expired);
    assert!(!relays(turn_port, &expired, &expired_pass));
    // Tokens as for keys: none 401, another match's 403; the query form works too.
    assert_eq!(curl(&[&format!("{base}/keys/cup/ice")]).1, "401");
    let other = token(&keys, "other", "1h");
    assert_eq!(
        curl(&[
            "-H",
            &format!("Authorization: Bearer {other}"),
            &format!("{base}/keys/cup/ice")
        ])
        .1,
        "403"
    );
    assert_eq!(
        curl(&[&format!("{base}/keys/cup/ice?token={viewer}")]).1,
        "200"
    );
    // An origin that rewrites p2p.json (its TURN server elsewhere) gets no credentials minted.
    let path = origin.join("cup/p2p.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("127.0.0.1", "198.51.100.1")).unwrap();
    let (body, code) = curl(&["-H", &bearer, &format!("{base}/keys/cup/ice")]);
    assert_eq!(code, "404", "{body}");
    assert!(!body.contains("198.51.100.1"));
    drop(server);

    // keyserver --profile answers the same way, and refuses a TURN profile without a secret.
    let port = free_tcp_port();
    let _ks = Guard(
        swarmpack()
            .args([
                "keyserver",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--keys",
            ])
            .arg(&keys)
            .arg("--profile")
            .arg(&profile)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("keyserver", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let (body, code) = curl(&[
        "-H",
        &bearer,
        &format!("http://127.0.0.1:{port}/keys/cup/ice"),
    ]);
    assert_eq!(code, "200", "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let turn = &answer["iceServers"][1];
    assert!(relays(
        turn_port,
        turn["username"].as_str().unwrap(),
        turn["credential"].as_str().unwrap()
    ));
    std::fs::remove_file(keys.join("turn.secret")).unwrap();
    let out = swarmpack()
        .args(["keyserver", "--listen", "127.0.0.1:0", "--keys"])
        .arg(&keys)
        .arg("--profile")
        .arg(&profile)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("turn.secret") && err.contains("keygen --out"),
        "{err}"
    );
    // keygen adds the missing secret and keeps the rest.
    let pem = std::fs::read(keys.join("pubkey.pem")).unwrap();
    assert_eq!(keygen(tmp.path()), keys);
    assert!(keys.join("turn.secret").exists());
    assert_eq!(std::fs::read(keys.join("pubkey.pem")).unwrap(), pem);
}
