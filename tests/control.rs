//! `swarmpack control` end to end (issue 16): the API over HTTP with curl, real runs, and a
//! webhook receiver that checks every delivery with the Standard Webhooks reference library
//! (`tests/py/webhook_receiver.py`, the `standardwebhooks` package from PyPI).
//!
//! One match goes through its life: refused requests (no token, bad JSON, an unknown
//! profile, a duplicate angle), an idempotent create and its retry (one run), live, its run
//! killed (restarted by the controller, one discontinuity in the playlists), the receiver
//! down for 10 s, the controller killed with SIGKILL and started again (it adopts the run),
//! and a clean stop. Every event the run and the controller wrote reaches the receiver,
//! signed.

mod common;

use common::control::*;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn a_match_runs_through_the_control_api_with_signed_webhooks() {
    let s = Setup::small();
    let hook_port = free_tcp_port();
    let hook_log = s.tmp.path().join("hooks.jsonl");
    let hooks = receiver(hook_port, &hook_log);
    let port = free_tcp_port();
    let mut ctl = controller(&s, port, hook_port);
    wait_for("the controller", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    // Refused requests, each naming its problem.
    let body = format!(
        r#"{{"match":"final","profile":"small","angles":{{"main":"test:"}},"origin":"file://{}","duration":120}}"#,
        s.origin.display()
    );
    let (code, answer) = call(port, "POST", "/v1/matches", &[], Some(&body));
    assert_eq!(code, 401, "{answer}");
    let wrong = "Authorization: Bearer test-token-wrong-0123456789".to_string();
    assert_eq!(call(port, "GET", "/v1/matches", &[wrong], None).0, 401);
    let refused = |b: &str| call(port, "POST", "/v1/matches", &[bearer()], Some(b));
    let (code, answer) = refused("{\"match\": ");
    assert_eq!(code, 400, "{answer}");
    let (code, answer) = refused(&body.replace("\"small\"", "\"nope\""));
    assert_eq!(code, 422);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("profile: unknown profile \"nope\": expected one of small"),
        "{answer}"
    );
    let (code, answer) =
        refused(&body.replace(r#"{"main":"test:"}"#, r#"{"main":"test:","main":"test:"}"#));
    assert_eq!(code, 422);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("duplicate angle \"main\""),
        "{answer}"
    );

    // Create, with an idempotency key; the retry gets the same answer and starts nothing.
    let key = "Idempotency-Key: final-create-1".to_string();
    let (code, first) = call(
        port,
        "POST",
        "/v1/matches",
        &[bearer(), key.clone()],
        Some(&body),
    );
    assert_eq!(code, 201, "{first}");
    assert_eq!(first["match"], "final");
    assert_eq!(
        first["playback"]["master"],
        "http://127.0.0.1:9/final/master.m3u8"
    );
    let spaced = body.replace(",", ", ");
    let (code, again) = call(
        port,
        "POST",
        "/v1/matches",
        &[bearer(), key.clone()],
        Some(&spaced),
    );
    assert_eq!((code, &again), (201, &first), "the retry's answer");
    let other = body.replace("120", "121");
    let (code, answer) = call(
        port,
        "POST",
        "/v1/matches",
        &[bearer(), key.clone()],
        Some(&other),
    );
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
    let (code, answer) = call(port, "POST", "/v1/matches", &[bearer()], Some(&body));
    assert_eq!(code, 409, "a second start of a running match: {answer}");
    let (_, all) = call(port, "GET", "/v1/matches", &[bearer()], None);
    assert_eq!(all["matches"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(get(port, "final")["runs"], 1);

    // Live.
    wait_for("the match to go live", Duration::from_secs(90), || {
        get(port, "final")["state"] == "live"
    });
    let live = get(port, "final");
    assert_eq!(live["angles"]["main"]["feed"], "live", "{live}");
    assert!(live["newest_window"].as_u64().is_some(), "{live}");
    let pid = live["pid"].as_u64().unwrap() as u32;
    let _kill_first = KillPid(pid);

    // A highlight of the live match: segments 1 and 2 of its playlist.
    let playlist = s.origin.join("final/main/180p/index.m3u8");
    wait_for("4 segments", Duration::from_secs(30), || {
        live_with_segments(&s.origin.join("final"), 1, 4)
    });
    let pl = media_playlist(&playlist);
    let pdt = |i: usize| pl.segments[i].program_date_time.unwrap().to_rfc3339();
    let clip = format!(
        r#"{{"label":"first-blood","start":"{}","end":"{}"}}"#,
        pdt(1),
        pdt(3)
    );
    // A highlight is cut from published windows: wait until one covers segment 2.
    let seq2: u64 = pl.segments[2].uri.trim_end_matches(".ts").parse().unwrap();
    wait_for(
        "segment 2 in a published window",
        Duration::from_secs(30),
        || {
            std::fs::read(s.origin.join("final/live.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|live| live["windows"].as_array()?.first()?.as_u64())
                .is_some_and(|newest| (newest + 1) * 2 > seq2)
        },
    );
    let (code, answer) = call(
        port,
        "POST",
        "/v1/matches/final/clips",
        &[bearer()],
        Some(&clip),
    );
    assert_eq!(code, 202, "{answer}");
    // A range not yet published: the job fails, and says why (GET shows it).
    let later = |secs| {
        (chrono::Utc::now() + chrono::Duration::seconds(secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let future = format!(
        r#"{{"label":"not-yet","start":"{}","end":"{}"}}"#,
        later(60),
        later(70)
    );
    let (code, answer) = call(
        port,
        "POST",
        "/v1/matches/final/clips",
        &[bearer()],
        Some(&future),
    );
    assert_eq!(code, 202, "{answer}");
    wait_for(
        "the early clip to fail, saying why",
        Duration::from_secs(30),
        || {
            get(port, "final")["last_error"].as_str().is_some_and(|e| {
                e.contains("clip-not-yet") && e.contains("after the newest published window")
            })
        },
    );
    let (code, answer) = call(
        port,
        "POST",
        "/v1/matches/nope/clips",
        &[bearer()],
        Some(&clip),
    );
    assert_eq!(code, 404, "{answer}");
    let (code, answer) = call(
        port,
        "POST",
        "/v1/matches/final/clips",
        &[bearer()],
        Some(r#"{"label":"x","start":"later","end":"2026-01-01T00:00:00Z"}"#),
    );
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("start: "),
        "{answer}"
    );
    let (code, answer) = call(port, "POST", "/v1/matches/final/archive", &[bearer()], None);
    assert_eq!(code, 409, "archive of a live match: {answer}");

    // Markers: one at segment 2 (in the DVR window), one now (at the live edge, in a window
    // still open): EXT-X-DATERANGE in the playlists, and the second in its window manifest.
    let goal = format!(
        r#"{{"label":"Goal blue","class":"goal","start":"{}"}}"#,
        pdt(2)
    );
    let (code, past) = call(
        port,
        "POST",
        "/v1/matches/final/markers",
        &[bearer()],
        Some(&goal),
    );
    assert_eq!(code, 201, "{past}");
    // The second a few seconds ahead, in a window that has not begun: it must go into that
    // window's manifest when the window closes.
    let ahead = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (code, now) = call(
        port,
        "POST",
        "/v1/matches/final/markers",
        &[bearer()],
        Some(&format!(
            r#"{{"label":"round 2","class":"round-end","duration":1.5,"start":"{ahead}"}}"#
        )),
    );
    assert_eq!(code, 201, "{now}");
    let (code, answer) = call(
        port,
        "POST",
        "/v1/matches/final/markers",
        &[bearer()],
        Some(r#"{"label":"a\"quote"}"#),
    );
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("label: "),
        "{answer}"
    );
    let both = |p: &Path| {
        let text = std::fs::read(p).unwrap_or_default();
        let Ok(pl) = m3u8_rs::parse_media_playlist_res(&text) else {
            return false;
        };
        let find = |id: &serde_json::Value| {
            pl.segments.iter().find(|seg| {
                seg.daterange
                    .as_ref()
                    .is_some_and(|d| Some(d.id.as_str()) == id.as_str())
            })
        };
        find(&past["id"])
            .is_some_and(|seg| seg.program_date_time.map(|t| t.to_rfc3339()) == Some(pdt(2)))
            && find(&now["id"]).is_some()
    };
    let live_playlist = s.origin.join("final/main/180p/index.m3u8");
    wait_or_show(
        "both markers in the live playlist",
        Duration::from_secs(20),
        || both(&live_playlist),
        || std::fs::read_to_string(&live_playlist).unwrap_or_default(),
    );
    // The marker in the manifest of a window that live.json names (so that window is in the
    // hash chain the archive walks, whatever happens to the run next).
    wait_for(
        "the marker in a window manifest that live.json names",
        Duration::from_secs(20),
        || window_naming(&s.origin.join("final"), &now["id"]).is_some(),
    );

    // The delivery policy changed by hand (README "Watching the audience"): the run
    // publishes the whole policy in a new p2p.json, which openssl verifies with the match key.
    let (code, answer) = call(
        port,
        "PATCH",
        "/v1/matches/final/delivery",
        &[bearer()],
        Some(r#"{"behind_live": 4, "early_fetchers": 2}"#),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["delivery"]["behind_live"], 4.0, "{answer}");
    assert_eq!(answer["delivery"]["early_fetchers"], 2, "{answer}");
    assert_eq!(
        answer["delivery"]["urgent"], 0.5,
        "the rest as before: {answer}"
    );
    for (body, status, says) in [
        (r#"{"behind_live": 0.5}"#, 422, "delivery.behind_live"),
        (r#"{"urgent": 1, "nope": 1}"#, 422, "nope"),
        (r#"{"segment": 2}"#, 422, "delivery.segment"),
        ("[1]", 400, "JSON object"),
    ] {
        let (code, answer) = call(
            port,
            "PATCH",
            "/v1/matches/final/delivery",
            &[bearer()],
            Some(body),
        );
        assert_eq!(code, status, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
    let (code, _) = call(
        port,
        "PATCH",
        "/v1/matches/nope/delivery",
        &[bearer()],
        Some("{}"),
    );
    assert_eq!(code, 404);
    let m = s.origin.join("final");
    wait_for(
        "the new policy in a signed p2p.json",
        Duration::from_secs(20),
        || {
            let doc: serde_json::Value = std::fs::read(m.join("p2p.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            doc["delivery"]["behind_live"] == 4.0
                && doc["delivery"]["early_fetchers"] == 2
                && openssl_verifies_sig(
                    &m.join("pubkey.pem"),
                    &m.join("p2p.json"),
                    &m.join("p2p.json.sig"),
                )
        },
    );

    // The run dies: the controller starts it again, and the playlists carry on after one
    // discontinuity.
    unsafe_kill(pid, "KILL");
    wait_for("a second run", Duration::from_secs(30), || {
        let m = get(port, "final");
        m["runs"] == 2 && m["pid"].as_u64().is_some_and(|p| p as u32 != pid)
    });
    let pid2 = get(port, "final")["pid"].as_u64().unwrap() as u32;
    let _kill_second = KillPid(pid2);
    wait_for(
        "segments after the restart",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&playlist).is_ok_and(|t| {
                t.split("#EXT-X-DISCONTINUITY\n")
                    .nth(1)
                    .is_some_and(|after| after.matches(".ts").count() >= 3)
            })
        },
    );
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");

    // The receiver is down for 10 s: the webhooks of that time come later.
    drop(hooks);
    std::thread::sleep(Duration::from_secs(10));
    let hooks = receiver(hook_port, &hook_log);

    // The controller is killed and started again: it adopts the run.
    ctl.0.kill().unwrap();
    ctl.0.wait().unwrap();
    ctl = controller(&s, port, hook_port);
    wait_for("the controller again", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let adopted = get(port, "final");
    assert_eq!(adopted["state"], "live", "{adopted}");
    assert_eq!(
        adopted["runs"], 2,
        "the run was adopted, not started again: {adopted}"
    );
    assert_eq!(adopted["pid"].as_u64(), Some(u64::from(pid2)), "{adopted}");

    // A clean stop.
    let (code, stopping) = call(port, "DELETE", "/v1/matches/final", &[bearer()], None);
    assert_eq!(code, 202, "{stopping}");
    wait_for("the match to end", Duration::from_secs(60), || {
        get(port, "final")["state"] == "ended"
    });
    assert!(
        std::fs::read_to_string(&playlist)
            .unwrap()
            .contains("#EXT-X-ENDLIST")
    );

    // The archive of the ended match.
    let (code, answer) = call(port, "POST", "/v1/matches/final/archive", &[bearer()], None);
    assert_eq!(code, 202, "{answer}");

    // Every event the runs and the controller wrote reached the receiver, verified.
    let run_events: Vec<String> =
        std::fs::read_to_string(s.state.join("matches/final/events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
    wait_or_show(
        "every webhook delivered",
        Duration::from_secs(60),
        || {
            let got = received(&hook_log);
            let ids: Vec<&str> = got.iter().filter_map(|r| r["id"].as_str()).collect();
            run_events.iter().all(|id| ids.contains(&id.as_str()))
                && ["match.ended", "clip.ready", "archive.ready"]
                    .iter()
                    .all(|kind| got.iter().any(|r| r["type"] == *kind))
        },
        || {
            format!(
                "run events {run_events:?}\nreceived {:?}\ncontrol log:\n{}",
                received(&hook_log),
                std::fs::read_to_string(s.tmp.path().join("control.log")).unwrap_or_default()
            )
        },
    );
    let got = received(&hook_log);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for r in &got {
        *kinds
            .entry(r["type"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    eprintln!("webhooks received: {kinds:?}");
    assert!(
        got.iter().all(|r| r["ok"] == true),
        "a delivery failed the Standard Webhooks check: {got:?}"
    );
    for kind in [
        "match.started",
        "match.live",
        "window.published",
        "match.ended",
    ] {
        assert!(
            got.iter().any(|r| r["type"] == kind),
            "no {kind} among {got:?}"
        );
    }
    let controller_ids: Vec<&str> = got
        .iter()
        .filter_map(|r| r["id"].as_str())
        .filter(|i| i.starts_with("evt_final_c"))
        .collect();
    // The controller's own: match.started, match.live, clip.ready and archive.ready.
    for n in 0..4 {
        let id = format!("evt_final_c{n}");
        assert!(
            controller_ids.contains(&id.as_str()),
            "{id} never arrived: {got:?}"
        );
    }
    assert_eq!(
        got.iter().filter(|r| r["type"] == "match.ended").count(),
        1,
        "{got:?}"
    );
    let log = std::fs::read_to_string(s.tmp.path().join("control.log")).unwrap();
    assert!(
        log.contains("next attempt in"),
        "no delivery failed while the receiver was down: {log}"
    );
    // The highlight: signed (openssl) and complete against the origin (libtorrent).
    let c = s.origin.join("final/clips/first-blood");
    assert!(openssl_verifies(
        &s.keys.join("pubkey.pem"),
        &c.join("clip.json")
    ));
    let text = lt_check(&c.join("clip.torrent"), &s.origin);
    assert!(text.contains("progress_ppm 1000000"), "{text}");
    assert_eq!(
        media_playlist(&c.join("main/180p/vod.m3u8")).segments.len(),
        2
    );
    let ready = got.iter().find(|r| r["type"] == "clip.ready").unwrap();
    assert_eq!(
        ready["data"]["manifest"],
        "final/clips/first-blood/clip.json"
    );
    assert!(openssl_verifies(
        &s.keys.join("pubkey.pem"),
        &s.origin.join("final/archive.json")
    ));
    // The marker ahead is in the archive's VOD playlist (from its window's manifest).
    let vod = std::fs::read_to_string(s.origin.join("final/main/180p/vod.m3u8")).unwrap();
    assert!(
        vod.contains(&format!("#EXT-X-DATERANGE:ID={}", now["id"])),
        "{vod}"
    );
    let outbox = std::fs::read_dir(s.state.join("outbox"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(outbox, 0, "webhooks left undelivered");

    // The receiver's check can fail: a delivery signed with another secret is refused.
    let forged = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "webhook-id: evt_forged", "-H"])
        .arg(format!("webhook-timestamp: {}", chrono_now()))
        .args([
            "-H",
            "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ])
        .args([
            "--data-binary",
            r#"{"type":"match.ended","timestamp":"x","data":{}}"#,
        ])
        .arg(format!("http://127.0.0.1:{hook_port}/hooks"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&forged.stdout), "401");
    assert_eq!(received(&hook_log).last().unwrap()["ok"], false);
    drop(hooks);
    drop(ctl);
}
