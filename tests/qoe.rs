//! Automatic actions on what fans experience (issue 28, item 4): a match under `control` whose
//! profile sets `[qoe] peer_share = 0.4` with `[qoe.on_degraded] behind_live = 4`, its players'
//! reports going to `swarmpack collect`. Three sessions report (curl, CMCD v2 text) that every
//! byte came over HTTP: within a few of the controller's 10 s looks, the Standard Webhooks
//! receiver verifies a `qoe.degraded` naming the peer share, and the origin's `p2p.json` (its
//! signature checked by openssl with the match key) carries behind_live 4. Then the same
//! sessions report most bytes from peers: `qoe.recovered`, and the profile's policy is back.
//! `GET /v1/matches/final` shows the audience meanwhile.

mod common;

use common::audience::post;
use common::control::*;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[test]
fn a_degraded_audience_sends_signed_webhooks_and_changes_the_players_policy() {
    let s = Setup::small();
    let collector_port = free_tcp_port();
    let profile = s.profiles.join("small.toml");
    let text = std::fs::read_to_string(&profile).unwrap()
        + &format!(
            "[qoe]\ncollector = \"http://127.0.0.1:{collector_port}/cmcd\"\npeer_share = 0.4\n\
             min_viewers = 1\nover = 20\n[qoe.on_degraded]\nbehind_live = 4\n"
        );
    std::fs::write(&profile, text).unwrap();
    std::fs::create_dir_all(&s.origin).unwrap();
    let mut collect = swarmpack();
    collect
        .args([
            "collect",
            "--listen",
            &format!("127.0.0.1:{collector_port}"),
        ])
        .arg("--origin")
        .arg(&s.origin)
        .stderr(std::process::Stdio::null());
    let _collector = Guard(collect.spawn().unwrap());
    let hook_port = free_tcp_port();
    let hook_log = s.tmp.path().join("hooks.jsonl");
    let _hooks = receiver(hook_port, &hook_log);
    let port = free_tcp_port();
    let _ctl = controller(&s, port, hook_port);
    wait_for("the controller", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let body = format!(
        r#"{{"match":"final","profile":"small","angles":{{"main":"test:"}},"origin":"file://{}","duration":180}}"#,
        s.origin.display()
    );
    let (code, answer) = call(port, "POST", "/v1/matches", &[bearer()], Some(&body));
    assert_eq!(code, 201, "{answer}");
    wait_for("the match to go live", Duration::from_secs(90), || {
        get(port, "final")["state"] == "live"
    });
    let m = s.origin.join("final");
    let policy = |behind: f64| {
        let doc: serde_json::Value = std::fs::read(m.join("p2p.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        doc["delivery"]["behind_live"] == behind
            && openssl_verifies_sig(
                &m.join("pubkey.pem"),
                &m.join("p2p.json"),
                &m.join("p2p.json.sig"),
            )
    };
    assert!(policy(3.0), "the profile's policy first");

    // Three players report every 2 s; `peer_per_mb` of each new MB came from peers.
    let peer_per_mb = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicU64::new(0));
    let url = format!("http://127.0.0.1:{collector_port}/cmcd/final");
    let reporter = {
        let (peer_per_mb, stop) = (peer_per_mb.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut peer, mut http) = ([0u64; 3], [0u64; 3]);
            let mut sn = 0;
            while stop.load(Ordering::Relaxed) == 0 {
                for i in 0..3 {
                    let share = peer_per_mb.load(Ordering::Relaxed);
                    peer[i] += share * 10_000;
                    http[i] += (100 - share) * 10_000;
                    let line = format!(
                        "cid=\"final/main\",e=t,sid=\"viewer-{i}\",sn={sn},sta=p,v=2,\
                         io.swarmpack-rung=\"180p\",io.swarmpack-startup=900,\
                         io.swarmpack-p2pb={},io.swarmpack-httpb={}\n",
                        peer[i], http[i]
                    );
                    let (status, answer) = post(&url, line.as_bytes());
                    assert_eq!(status, 204, "{answer}");
                }
                sn += 1;
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };
    let types = || -> Vec<String> {
        received(&hook_log)
            .into_iter()
            .filter(|h| h["ok"] == true)
            .filter_map(|h| h["type"].as_str().map(str::to_owned))
            .filter(|t| t.starts_with("qoe."))
            .collect()
    };
    wait_for("qoe.degraded", Duration::from_secs(90), || {
        types() == ["qoe.degraded"]
    });
    let hook = received(&hook_log)
        .into_iter()
        .find(|h| h["type"] == "qoe.degraded")
        .unwrap();
    assert!(
        hook["data"]["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("0% of bytes from peers") && r.contains("below 40%")),
        "{hook}"
    );
    assert_eq!(hook["data"]["delivery"]["behind_live"], 4.0, "{hook}");
    wait_for(
        "the degraded policy on the origin",
        Duration::from_secs(20),
        || policy(4.0),
    );
    let shown = get(port, "final");
    assert_eq!(shown["audience"]["viewers"], 3, "{shown}");

    // Most bytes from peers now: recovered, and the policy from before is back.
    peer_per_mb.store(90, Ordering::Relaxed);
    wait_for("qoe.recovered", Duration::from_secs(90), || {
        types() == ["qoe.degraded", "qoe.recovered"]
    });
    wait_for(
        "the profile's policy again",
        Duration::from_secs(20),
        || policy(3.0),
    );
    stop.store(1, Ordering::Relaxed);
    reporter.join().unwrap();
    let (code, _) = call(port, "DELETE", "/v1/matches/final", &[bearer()], None);
    assert_eq!(code, 202);
}
