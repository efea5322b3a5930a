//! Issue 30, failover: `kill -9` of the pool node running a match and of its run: another
//! node takes the match over and it goes on; `verify` passes over the whole match, with at
//! most one discontinuity and no gap longer than [`FAILOVER_BUDGET`]. With `[control]
//! standby = true` the same kill costs no segment at all. `scripts/failover-bench` runs
//! these two tests for its figures.

mod common;

use common::cluster::*;
use common::control::*;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest stretch of a match a node's death may cost without a standby: the time NATS
/// gives a silent node's item (5 s without a heartbeat), the pool's judgement that the
/// node is dead (6 s), the new run's start and its first segment. README states it.
const FAILOVER_BUDGET: Duration = Duration::from_secs(20);

#[test]
fn a_node_killed_mid_match_is_taken_over_and_verify_passes() {
    failover(false);
}

#[test]
fn with_a_standby_a_node_killed_mid_match_costs_no_segment() {
    failover(true);
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
