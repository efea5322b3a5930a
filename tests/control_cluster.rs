//! Issue 30: one control API over a pool of machines (`control --cluster`), on a real
//! NATS JetStream server, every node and run a process of its own, all on loopback. The
//! origin is one directory all nodes publish to (as a shared S3 bucket would be).
//!
//! - Three nodes: a create through one node runs on the node with capacity; the same
//!   `Idempotency-Key` through another node gets the same answer; two different creates of
//!   one match racing through two nodes make one match.
//! - `kill -9` of the node running a match and of its run: another node takes the match over
//!   and it goes on; `verify` passes over the whole match, with at most one discontinuity
//!   and no gap longer than [`FAILOVER_BUDGET`].
//! - With `[control] standby = true`: the same kill costs no segment at all.

mod common;

use common::cluster::*;
use common::control::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest stretch of a match a node's death may cost without a standby: the time NATS
/// gives a silent node's item (5 s without a heartbeat), the pool's judgement that the
/// node is dead (6 s), the new run's start and its first segment. README states it.
const FAILOVER_BUDGET: Duration = Duration::from_secs(20);

fn create(port: u16, key: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut headers = vec![bearer()];
    if let Some(k) = key {
        headers.push(format!("Idempotency-Key: {k}"));
    }
    call(port, "POST", "/v1/matches", &headers, Some(body))
}

fn body(s: &Setup, id: &str, profile: &str, duration: u32) -> String {
    serde_json::json!({
        "match": id,
        "profile": profile,
        "angles": {"main": "test:"},
        "origin": format!("file://{}", s.origin.display()),
        "duration": duration,
    })
    .to_string()
}

/// Waits until node `port` shows the match with `probe` true; the view at that moment.
fn wait_match(
    port: u16,
    id: &str,
    what: &str,
    deadline: Duration,
    probe: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let start = Instant::now();
    while start.elapsed() < deadline {
        last = get(port, id);
        if probe(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("match {id}: {what} not within {deadline:?}; last seen {last:#}");
}

fn log_of(s: &Setup, name: &str) -> String {
    std::fs::read_to_string(s.tmp.path().join(format!("{name}.log"))).unwrap_or_default()
}

#[test]
fn three_nodes_answer_as_one_and_a_race_makes_one_match() {
    let s = Setup::small();
    let nats = Nats::start(s.tmp.path());
    let hook_port = free_tcp_port();
    let hooks = s.tmp.path().join("hooks.jsonl");
    let _receiver = receiver(hook_port, &hooks);
    let ports: Vec<u16> = (0..3).map(|_| free_tcp_port()).collect();
    // Only n3 has room for a run (a match of one angle of one rung takes one unit).
    let _nodes: Vec<Guard> = [("n1", 0), ("n2", 0), ("n3", 2)]
        .iter()
        .zip(&ports)
        .map(|((name, cap), port)| pool_node(&s, &nats.url, name, *port, *cap, hook_port))
        .collect();
    wait_for("three nodes alive", Duration::from_secs(20), || {
        nodes_alive(ports[0], 3)
    });

    // A create through n1 runs on n3.
    let cup = body(&s, "cup", "small", 60);
    let (status, first) = create(ports[0], Some("cup-1"), &cup);
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["match"], "cup");
    let live = wait_match(
        ports[1],
        "cup",
        "live on n3",
        Duration::from_secs(60),
        |v| v["state"] == "live" && v["node"] == "n3",
    );
    assert!(live["newest_window"].as_u64().is_some(), "{live:#}");

    // The same key and body through n2: the first answer, and no second match.
    let (status, again) = create(ports[1], Some("cup-1"), &cup);
    assert_eq!((status, &again), (201, &first));
    // The same key with another body: refused.
    let (status, other) = create(ports[1], Some("cup-1"), &body(&s, "cup", "small", 61));
    assert_eq!(status, 422, "{other}");
    // Another key for the running match: 409, from any node.
    let (status, running) = create(ports[2], Some("cup-2"), &cup);
    assert_eq!(status, 409, "{running}");

    // Two different creates of one match racing through two nodes: one match.
    let racers: Vec<_> = [(ports[0], 30), (ports[1], 31)]
        .into_iter()
        .map(|(port, secs)| {
            let b = body(&s, "race", "small", secs);
            std::thread::spawn(move || create(port, None, &b))
        })
        .collect();
    let mut statuses: Vec<u16> = racers.into_iter().map(|t| t.join().unwrap().0).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    wait_match(
        ports[2],
        "race",
        "live on n3",
        Duration::from_secs(60),
        |v| v["state"] == "live" && v["node"] == "n3",
    );

    // The pool as every node shows it: n3 holds both matches, once each.
    for port in &ports {
        let all = nodes(*port);
        let n3 = all.iter().find(|n| n["node"] == "n3").unwrap();
        assert_eq!(n3["load"], 2, "{all:#?}");
        let held: BTreeSet<String> = n3["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m["match"].as_str().unwrap(),
                    m["role"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            held,
            BTreeSet::from(["cup/primary".into(), "race/primary".into()])
        );
        for idle in ["n1", "n2"] {
            let n = all.iter().find(|n| n["node"] == idle).unwrap();
            assert_eq!(n["load"], 0, "{n:#}");
        }
    }
    let (status, metrics) = call_text(ports[2], "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("swarmpack_node_load_units{node=\"n3\"} 2"),
        "{metrics}"
    );
    // One run per match on n3, and none anywhere else.
    for (node, runs) in [("n1", 0), ("n2", 0), ("n3", 2)] {
        let dirs = std::fs::read_dir(s.tmp.path().join(format!("state-{node}/matches")))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(dirs, runs, "{node}:\n{}", log_of(&s, node));
    }

    // A marker and a delivery change through nodes that do not run the match: forwarded
    // to n3, whose run puts them in the live playlists and p2p.json.
    let (status, v) = call(
        ports[0],
        "POST",
        "/v1/matches/cup/markers",
        &[bearer()],
        Some(r#"{"label":"first-blood"}"#),
    );
    assert_eq!(status, 201, "{v}");
    wait_for(
        "the marker in a live playlist",
        Duration::from_secs(30),
        || {
            media_playlists(&s.origin.join("cup"))
                .iter()
                .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("first-blood")))
        },
    );
    let (status, v) = call(
        ports[1],
        "PATCH",
        "/v1/matches/cup/delivery",
        &[bearer()],
        Some(r#"{"behind_live": 7}"#),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["delivery"]["behind_live"], 7.0, "{v}");
    wait_match(
        ports[0],
        "cup",
        "the policy in the pool",
        Duration::from_secs(10),
        |v| v["delivery"]["behind_live"] == 7.0,
    );

    // A stop through n1 ends both cleanly.
    for id in ["cup", "race"] {
        let (status, v) = call(
            ports[0],
            "DELETE",
            &format!("/v1/matches/{id}"),
            &[bearer()],
            None,
        );
        assert_eq!(status, 202, "{v}");
    }
    for id in ["cup", "race"] {
        wait_match(ports[1], id, "ended", Duration::from_secs(60), |v| {
            v["state"] == "ended"
        });
        for playlist in media_playlists(&s.origin.join(id)) {
            let text = std::fs::read_to_string(&playlist).unwrap();
            assert!(text.contains("#EXT-X-ENDLIST"), "{}", playlist.display());
        }
    }
    // Every webhook once: the milestones of each match once, each id once.
    assert_each_webhook_once(&hooks, 2);
}

/// Waits for `matches` match.ended webhooks, then checks that every delivery verified, that
/// no id came twice, and that each match's milestones came once.
fn assert_each_webhook_once(hooks: &Path, matches: usize) {
    wait_for("match.ended webhooks", Duration::from_secs(30), || {
        received(hooks)
            .iter()
            .filter(|h| h["type"] == "match.ended")
            .count()
            >= matches
    });
    let got = received(hooks);
    let mut ids = BTreeMap::new();
    for h in &got {
        assert_eq!(h["ok"], true, "{h}");
        *ids.entry(h["id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    for (id, n) in &ids {
        assert_eq!(*n, 1, "{id} delivered {n} times:\n{got:#?}");
    }
    for kind in ["match.started", "match.live", "match.ended"] {
        let n = got.iter().filter(|h| h["type"] == kind).count();
        assert_eq!(n, matches, "{kind}: {got:#?}");
    }
}

/// A GET of `path` on `port` as text.
fn call_text(port: u16, path: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "-H",
            &bearer(),
        ])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn a_node_killed_mid_match_is_taken_over_and_verify_passes() {
    failover(false);
}

#[test]
fn with_a_standby_a_node_killed_mid_match_costs_no_segment() {
    failover(true);
}

/// The seqs a media playlist lists, and the ones it marks as gaps.
fn listed(playlist: &Path) -> (Vec<u64>, usize, String) {
    let text = std::fs::read_to_string(playlist).unwrap();
    let parsed = media_playlist(playlist);
    let seqs = parsed
        .segments
        .iter()
        .map(|s| s.uri.trim_end_matches(".ts").parse().unwrap())
        .collect();
    let gaps = text.matches("#EXT-X-GAP").count();
    (seqs, gaps, text)
}

/// A 50 s match on three nodes of one unit each; the node running it (and its run) is
/// killed with SIGKILL once it is live; the match must go on elsewhere and end whole.
fn failover(standby: bool) {
    let s = Setup::small();
    let profile = if standby {
        let small = std::fs::read_to_string(s.profiles.join("small.toml")).unwrap();
        let text =
            small.replace("name = \"small\"", "name = \"standby\"") + "[control]\nstandby = true\n";
        std::fs::write(s.profiles.join("standby.toml"), text).unwrap();
        "standby"
    } else {
        "small"
    };
    let nats = Nats::start(s.tmp.path());
    let hook_port = free_tcp_port();
    let hooks = s.tmp.path().join("hooks.jsonl");
    let _receiver = receiver(hook_port, &hooks);
    let names = ["n1", "n2", "n3"];
    let ports: Vec<u16> = names.iter().map(|_| free_tcp_port()).collect();
    let mut nodes: Vec<Option<Guard>> = names
        .iter()
        .zip(&ports)
        .map(|(name, port)| Some(pool_node(&s, &nats.url, name, *port, 1, hook_port)))
        .collect();
    wait_for("three nodes alive", Duration::from_secs(20), || {
        nodes_alive(ports[0], 3)
    });
    let (status, v) = create(ports[0], Some("final-1"), &body(&s, "final", profile, 50));
    assert_eq!(status, 201, "{v}");
    let live = wait_match(ports[0], "final", "live", Duration::from_secs(60), |v| {
        v["state"] == "live"
            && v["newest_window"].as_u64() >= Some(1)
            && (!standby || v["standby_node"].is_string())
    });
    let victim = live["node"].as_str().unwrap().to_string();
    let victim_at = names.iter().position(|n| *n == victim).unwrap();
    let survivor = ports[(victim_at + 1) % 3];
    let match_dir = s.origin.join("final");
    let playlist = media_playlists(&match_dir).pop().unwrap();
    if standby {
        // Both runs are publishing: the standby's node has the match's run going too.
        let standby_node = live["standby_node"].as_str().unwrap();
        wait_for("the standby's run", Duration::from_secs(30), || {
            log_of(&s, standby_node).contains("standby role taken here")
        });
        // A delivery change goes to the primary's run and, through the pool, the standby's.
        let (status, v) = call(
            ports[0],
            "PATCH",
            "/v1/matches/final/delivery",
            &[bearer()],
            Some(r#"{"behind_live": 7}"#),
        );
        assert_eq!(status, 200, "{v}");
        let standby_policy = s
            .tmp
            .path()
            .join(format!("state-{standby_node}/matches/final/delivery.jsonl"));
        wait_for(
            "the standby under the new policy",
            Duration::from_secs(15),
            || {
                std::fs::read_to_string(&standby_policy)
                    .is_ok_and(|t| t.contains("\"behind_live\":7.0"))
            },
        );
    }
    // When each new seq first shows in the live playlist, from before the kill to the end.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, playlist) = (stop.clone(), playlist.clone());
        std::thread::spawn(move || {
            let mut seen: Vec<(Instant, u64)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(last) = listed(&playlist).0.last().copied()
                    && seen.last().is_none_or(|(_, l)| last > *l)
                {
                    seen.push((Instant::now(), last));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    // kill -9 of the node and of its run.
    nodes[victim_at].take();
    unsafe_kill(live["pid"].as_u64().unwrap() as u32, "KILL");
    let killed = Instant::now();
    let taken = wait_match(
        survivor,
        "final",
        "taken over",
        Duration::from_secs(60),
        |v| v["node"].is_string() && v["node"] != victim.as_str(),
    );
    assert!(taken["takeovers"].as_u64() >= Some(1), "{taken:#}");
    wait_match(survivor, "final", "ended", Duration::from_secs(90), |v| {
        v["state"] == "ended"
    });
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    // The failover as fans see it: from the kill to the first segment made after it (the
    // dead run's last upload may still land just after the kill), and the longest wait for
    // a new segment around it. Reported for scripts/failover-bench, not asserted: speed
    // targets belong in benchmarks.
    let at_kill = seen
        .iter()
        .rev()
        .find(|(t, _)| *t <= killed)
        .map(|(_, s)| *s);
    let first_new = seen
        .iter()
        .find(|(t, s)| *t > killed && at_kill.is_none_or(|k| *s > k + 1))
        .map(|(t, _)| t.duration_since(killed));
    let longest = seen
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0))
        .max()
        .unwrap_or_default();
    eprintln!(
        "FAILOVER standby={standby} first_new_segment_s={:.1} longest_wait_s={:.1} (node {victim} killed; node {} took over)",
        first_new.unwrap_or_default().as_secs_f64(),
        longest.as_secs_f64(),
        taken["node"]
    );
    assert!(first_new.is_some(), "no segment after the kill: {seen:?}");
    assert_verifies(&match_dir.display().to_string(), &s.keys);
    for playlist in media_playlists(&match_dir) {
        let (seqs, gaps, text) = listed(&playlist);
        let name = playlist.display();
        assert!(text.contains("#EXT-X-ENDLIST"), "{name}:\n{text}");
        assert!(seqs.len() >= 30, "{name}:\n{text}");
        let discontinuities = text.matches("#EXT-X-DISCONTINUITY\n").count();
        let missing: u64 = seqs.windows(2).map(|w| w[1] - w[0] - 1).sum();
        let lost = Duration::from_secs(missing + gaps as u64);
        eprintln!(
            "LOST standby={standby} {}: {missing} seqs missing, {gaps} gaps, {discontinuities} discontinuities",
            playlist.strip_prefix(&match_dir).unwrap().display()
        );
        if standby {
            assert_eq!(
                (discontinuities, gaps, missing),
                (0, 0, 0),
                "{name}:\n{text}"
            );
        } else {
            assert!(discontinuities <= 1, "{name}:\n{text}");
            assert!(lost <= FAILOVER_BUDGET, "{name}: {lost:?} lost:\n{text}");
        }
    }
    // Webhooks: each id once, the match's milestones once however many nodes ran it.
    assert_each_webhook_once(&hooks, 1);
}

/// `control` with `args` after the usual ones: its exit code and stderr.
fn control_with(s: &Setup, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = swarmpack();
    cmd.arg("control")
        .args(["--listen", &format!("127.0.0.1:{}", free_tcp_port())])
        .arg("--state")
        .arg(s.tmp.path().join("state"))
        .arg("--keys")
        .arg(&s.keys)
        .arg("--profiles")
        .arg(&s.profiles)
        .args(args)
        .env("SWARMPACK_API_TOKEN", TOKEN);
    let out = run_with_deadline(cmd, Duration::from_secs(30));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unreachable_nats_at_start_is_a_clear_exit_1_and_bad_flags_exit_2() {
    let s = Setup::small();
    let url = format!("nats://127.0.0.1:{}", free_tcp_port());
    let (code, stderr) = control_with(&s, &["--cluster", &url, "--node", "n1", "--capacity", "1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach NATS at {url}")),
        "{stderr}"
    );
    for (args, names) in [
        (
            vec!["--cluster", "nats://a b", "--node", "n1", "--capacity", "1"],
            "--cluster",
        ),
        (
            vec!["--cluster", &url, "--node", "../n1", "--capacity", "1"],
            "--node",
        ),
        (vec!["--cluster", &url, "--capacity", "1"], "--node"),
        (
            vec!["--cluster", &url, "--node", "n1", "--capacity", "lots"],
            "--capacity",
        ),
    ] {
        let (code, stderr) = control_with(&s, &args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}

/// NATS goes away mid-match: the run goes on, reads answer from the last state, writes are
/// 503 until NATS is back; then a stop through the API ends the match. Then a node that
/// froze (SIGSTOP) past the pool's patience finds its match taken over when it wakes: its
/// run leaves without ending the match, and the match ends whole.
#[test]
fn the_pool_survives_losing_nats_and_a_node_that_wakes_up_does_not_fight() {
    let s = Setup::small();
    let mut nats = Nats::start(s.tmp.path());
    let hook_port = free_tcp_port();
    let _receiver = receiver(hook_port, &s.tmp.path().join("hooks.jsonl"));
    let ports = [free_tcp_port(), free_tcp_port()];
    let n1 = pool_node(&s, &nats.url, "n1", ports[0], 1, hook_port);
    let (status, v) = create(ports[0], None, &body(&s, "cup", "small", 120));
    assert_eq!(status, 201, "{v}");
    let live = wait_match(ports[0], "cup", "live", Duration::from_secs(60), |v| {
        v["state"] == "live"
    });
    let playlist = media_playlists(&s.origin.join("cup")).pop().unwrap();
    let newest = || listed(&playlist).0.last().copied().unwrap_or(0);

    nats.kill();
    let before = newest();
    wait_for("segments without NATS", Duration::from_secs(30), || {
        newest() >= before + 3
    });
    let seen = get(ports[0], "cup");
    assert_eq!(seen["state"], "live", "{seen:#}");
    let (status, v) = create(ports[0], None, &body(&s, "other", "small", 30));
    assert_eq!(status, 503, "{v}");
    let (status, v) = call(ports[0], "DELETE", "/v1/matches/cup", &[bearer()], None);
    assert_eq!(status, 503, "{v}");

    nats.restart();
    wait_for("writes again", Duration::from_secs(30), || {
        call(ports[0], "GET", "/metrics", &[bearer()], None).0 == 200 && nodes_alive(ports[0], 1)
    });
    // The run never stopped: same pid, no second run.
    let after = wait_match(
        ports[0],
        "cup",
        "still n1's",
        Duration::from_secs(30),
        |v| v["node"] == "n1",
    );
    assert_eq!(after["pid"], live["pid"], "{after:#}");
    assert_eq!(after["runs"], 1, "{after:#}");

    // n1 freezes; n2 takes the match over; n1 wakes.
    let n2 = pool_node(&s, &nats.url, "n2", ports[1], 1, hook_port);
    let frozen = n1.0.id();
    unsafe_kill(frozen, "STOP");
    let taken = wait_match(
        ports[1],
        "cup",
        "taken over by n2",
        Duration::from_secs(60),
        |v| v["node"] == "n2",
    );
    let before = newest();
    wait_for("n2's run publishing", Duration::from_secs(30), || {
        newest() >= before + 2
    });
    unsafe_kill(frozen, "CONT");
    let old_run = live["pid"].as_u64().unwrap() as u32;
    wait_for("n1's run to leave", Duration::from_secs(30), || {
        !Path::new(&format!("/proc/{old_run}")).exists()
            || std::fs::read_to_string(format!("/proc/{old_run}/stat"))
                .is_ok_and(|st| st.contains(") Z "))
    });
    assert!(
        log_of(&s, "n1").contains("node n2 took the match's primary role over"),
        "{}",
        log_of(&s, "n1")
    );
    // n1's run left without ending the match: the playlist goes on, no ENDLIST.
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
    let before = newest();
    wait_for("the match going on", Duration::from_secs(30), || {
        newest() >= before + 2
    });
    assert_eq!(get(ports[0], "cup")["node"], "n2");
    let (status, v) = call(ports[0], "DELETE", "/v1/matches/cup", &[bearer()], None);
    assert_eq!(status, 202, "{v}");
    wait_match(ports[1], "cup", "ended", Duration::from_secs(60), |v| {
        v["state"] == "ended"
    });
    assert_verifies(&s.origin.join("cup").display().to_string(), &s.keys);
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(taken["takeovers"].as_u64() >= Some(1), "{taken:#}");
    drop((n1, n2));
}
