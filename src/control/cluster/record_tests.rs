use super::*;
use crate::control::request::MatchSpec;

fn spec() -> MatchSpec {
    MatchSpec {
        match_id: "final".into(),
        profile: "demo".into(),
        profile_file: "/p/demo.toml".into(),
        angles: vec![("main".into(), "test:".into())],
        origin: "file:///srv/origin".into(),
        duration: None,
        public_url: "http://127.0.0.1:8080/".into(),
    }
}

fn pooled(standby: bool) -> ClusterMatch {
    ClusterMatch {
        record: MatchRecord::starting(spec()),
        created_ms: 1000,
        end_at: None,
        units: 4,
        standby,
        primary: None,
        standby_node: None,
        takeovers: 0,
        spool_depth: 0,
        delivery: None,
    }
}

fn item(role: Role) -> WorkItem {
    WorkItem {
        match_id: "final".into(),
        role,
        created_ms: 1000,
    }
}

const ALL_ALIVE: &dyn Fn(&str) -> bool = &|_| true;
const ALL_DEAD: &dyn Fn(&str) -> bool = &|_| false;

#[test]
fn a_free_role_is_run_by_the_node_that_takes_it() {
    let m = pooled(false);
    assert_eq!(
        decide(Some(&m), &item(Role::Primary), "n1", ALL_ALIVE),
        Take::Run
    );
}

#[test]
fn a_living_holder_keeps_its_role_and_a_dead_one_loses_it() {
    let mut m = pooled(false);
    take(&mut m, Role::Primary, "n1");
    assert_eq!(
        decide(Some(&m), &item(Role::Primary), "n2", ALL_ALIVE),
        Take::Elsewhere
    );
    assert_eq!(
        decide(Some(&m), &item(Role::Primary), "n1", ALL_ALIVE),
        Take::Keep
    );
    assert_eq!(
        decide(Some(&m), &item(Role::Primary), "n2", ALL_DEAD),
        Take::Run
    );
    take(&mut m, Role::Primary, "n2");
    assert_eq!(m.takeovers, 1);
    assert_eq!(m.primary.as_deref(), Some("n2"));
    // The node that came back finds the role taken.
    assert_eq!(
        standing(Some(&m), Role::Primary, 1000, "n1"),
        Standing::TakenOver
    );
    assert_eq!(
        standing(Some(&m), Role::Primary, 1000, "n2"),
        Standing::Holds
    );
}

#[test]
fn a_standby_is_promoted_and_never_runs_beside_its_own_primary() {
    let mut m = pooled(true);
    take(&mut m, Role::Primary, "n1");
    assert_eq!(
        decide(Some(&m), &item(Role::Standby), "n1", ALL_ALIVE),
        Take::Elsewhere
    );
    assert_eq!(
        decide(Some(&m), &item(Role::Standby), "n2", ALL_ALIVE),
        Take::Run
    );
    take(&mut m, Role::Standby, "n2");
    // n1 dies: its primary item comes to n2, which holds the standby.
    let dead_n1 = |n: &str| n != "n1";
    assert_eq!(
        decide(Some(&m), &item(Role::Primary), "n2", &dead_n1),
        Take::Promote
    );
    promote(&mut m, "n2");
    assert_eq!(
        (m.primary.as_deref(), m.standby_node.as_deref()),
        (Some("n2"), None)
    );
    assert_eq!(m.takeovers, 1);
    assert_eq!(
        decide(Some(&m), &item(Role::Standby), "n3", ALL_ALIVE),
        Take::Run
    );
}

#[test]
fn items_of_an_ended_stopped_or_older_match_are_dropped() {
    let mut m = pooled(false);
    assert_eq!(
        decide(None, &item(Role::Primary), "n1", ALL_ALIVE),
        Take::Drop
    );
    let old = WorkItem {
        created_ms: 999,
        ..item(Role::Primary)
    };
    assert_eq!(decide(Some(&m), &old, "n1", ALL_ALIVE), Take::Drop);
    assert_eq!(
        decide(Some(&m), &item(Role::Standby), "n1", ALL_ALIVE),
        Take::Drop
    );
    m.record.stop_requested = true;
    assert_eq!(
        decide(Some(&m), &item(Role::Primary), "n1", ALL_ALIVE),
        Take::Drop
    );
    m.record.stop_requested = false;
    m.record.state = MatchState::Ended;
    assert_eq!(
        decide(Some(&m), &item(Role::Primary), "n1", ALL_ALIVE),
        Take::Drop
    );
    assert_eq!(standing(Some(&m), Role::Primary, 999, "n1"), Standing::Gone);
    assert_eq!(standing(None, Role::Primary, 1000, "n1"), Standing::Gone);
}

#[test]
fn the_mirror_keeps_the_pools_stop_and_never_undoes_an_end() {
    let mut m = pooled(false);
    m.record.stop_requested = true;
    m.record.state = MatchState::Stopping;
    let mut local = MatchRecord::starting(spec());
    local.state = MatchState::Live;
    local.newest_window = Some(3);
    local.runs = 1;
    mirror(&mut m, &local, 2, None);
    assert_eq!(m.record.state, MatchState::Stopping);
    assert!(m.record.stop_requested);
    assert_eq!((m.record.newest_window, m.spool_depth), (Some(3), 2));
    local.state = MatchState::Ended;
    mirror(&mut m, &local, 0, None);
    assert_eq!(m.record.state, MatchState::Ended);
    local.state = MatchState::Live;
    local.newest_window = Some(1);
    mirror(&mut m, &local, 0, None);
    assert_eq!(m.record.state, MatchState::Ended);
    assert_eq!(
        m.record.newest_window,
        Some(3),
        "a newer run's older window"
    );
}

#[test]
fn window_and_end_events_have_one_id_on_every_node_and_feed_events_are_the_primarys() {
    let m = pooled(true);
    let prefix = m.event_prefix();
    assert_eq!(prefix, "evt_final_1000");
    let window = Event::new(
        "evt_final_17_4".into(),
        EventType::WindowPublished,
        serde_json::json!({"window": 7}),
    );
    for role in [Role::Primary, Role::Standby] {
        assert_eq!(
            cluster_event(&prefix, role, &window).as_deref(),
            Some("evt_final_1000_w7")
        );
    }
    let ended = Event::new("x".into(), EventType::MatchEnded, serde_json::json!({}));
    assert_eq!(
        cluster_event(&prefix, Role::Standby, &ended).as_deref(),
        Some("evt_final_1000_match-ended")
    );
    let lost = Event::new(
        "evt_final_17_5".into(),
        EventType::FeedLost,
        serde_json::json!({"angle": "main"}),
    );
    assert_eq!(
        cluster_event(&prefix, Role::Primary, &lost).as_deref(),
        Some("evt_final_17_5")
    );
    assert_eq!(cluster_event(&prefix, Role::Standby, &lost), None);
}

#[test]
fn a_node_is_dead_once_silent_past_the_limit() {
    let n = NodeInfo {
        node: "n1".into(),
        capacity: 8,
        load: 0,
        matches: vec![],
        api: "127.0.0.1:1".into(),
        seen_ms: 10_000,
    };
    assert!(n.alive(10_000 + DEAD_AFTER_MS));
    assert!(!n.alive(10_001 + DEAD_AFTER_MS));
}

#[test]
fn the_primarys_policy_reaches_the_pool_and_every_other_run_follows_it() {
    let mut m = pooled(true);
    let local = MatchRecord::starting(spec());
    let mut changed = crate::profile::Delivery::defaults(1.0);
    changed.behind_live = 9.0;
    assert_eq!(
        follow_delivery(&m, Role::Standby, None),
        None,
        "nothing changed yet"
    );
    mirror(&mut m, &local, 0, Some(&changed));
    assert_eq!(m.delivery.as_ref(), Some(&changed));
    // The standby's run is put under it, until it is.
    assert_eq!(follow_delivery(&m, Role::Standby, None), Some(&changed));
    assert_eq!(follow_delivery(&m, Role::Standby, Some(&changed)), None);
    // A primary that took over (nothing changed on its node yet) follows the pool too;
    // one with its own change keeps it (it goes to the pool).
    assert_eq!(follow_delivery(&m, Role::Primary, None), Some(&changed));
    let other = crate::profile::Delivery::defaults(1.0);
    assert_eq!(follow_delivery(&m, Role::Primary, Some(&other)), None);
    // No policy from the primary leaves the pool's as it was.
    mirror(&mut m, &local, 0, None);
    assert_eq!(m.delivery.as_ref(), Some(&changed));
}

#[test]
fn credentials_in_the_nats_url_are_hidden() {
    assert_eq!(
        crate::control::cluster::bus::redacted(
            "nats://user:pw@n1:4222, nats://s3cr3t@n2:4222,nats://n3:4222"
        ),
        "nats://(hidden)@n1:4222,nats://(hidden)@n2:4222,nats://n3:4222"
    );
}
