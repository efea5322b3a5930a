//! Issue 30, faults of the pool: NATS unreachable at start (exit 1) and bad pool flags
//! (exit 2, naming the flag); NATS lost mid-match (runs go on, reads answer, writes are
//! 503); a node that froze and wakes after its match was taken over leaves without a fight.

mod common;

use common::cluster::*;
use common::control::*;
use common::*;
use std::path::Path;
use std::time::Duration;

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
