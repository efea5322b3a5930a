//! Issue 30: one control API over a pool of machines (`control --cluster`), on a real
//! NATS JetStream server, every node and run a process of its own, all on loopback. The
//! origin is one directory all nodes publish to (as a shared S3 bucket would be).
//!
//! Three nodes: a create through one node runs on the node with capacity; the same
//! `Idempotency-Key` through another node gets the same answer; two different creates of
//! one match racing through two nodes make one match. Failover is in
//! `tests/control_failover.rs`, NATS loss and bad flags in `tests/control_cluster_faults.rs`.

mod common;

use common::cluster::*;
use common::control::*;
use common::*;
use std::collections::BTreeSet;
use std::time::Duration;

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
    let (status, metrics) = call_text(ports[2], "GET", "/metrics", &[bearer()], None);
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
