//! The controller's life-cycle decisions, with a stand-in for `swarmpack` (a shell script)
//! whose runs exit as each test needs.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn spec() -> MatchSpec {
    MatchSpec {
        match_id: "final".into(),
        profile: "demo".into(),
        profile_file: Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml"),
        angles: vec![("main".into(), "test:".into())],
        origin: "file:///nowhere".into(),
        duration: None,
        public_url: "http://127.0.0.1:9/".into(),
    }
}

/// A controller whose `swarmpack` is a script that exits with `code`.
fn controller(dir: &Path, code: i32) -> Controller {
    let exe = dir.join("fake-swarmpack");
    std::fs::write(&exe, format!("#!/bin/sh\nexit {code}\n")).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = Store::open(&dir.join("state")).unwrap();
    let outbox = Outbox::open(&store.outbox_dir()).unwrap();
    let launcher = Launcher {
        exe,
        keys: dir.into(),
        spool: store.spool_dir(),
    };
    Controller::open(store, launcher, Some(outbox))
}

fn tick_until(c: &mut Controller, what: &str, done: impl Fn(&Controller) -> bool) {
    let start = std::time::Instant::now();
    while !done(c) {
        assert!(start.elapsed().as_secs() < 10, "never {what}");
        c.tick();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn queued(dir: &Path) -> Vec<EventType> {
    Outbox::open(&dir.join("state/outbox"))
        .unwrap()
        .due(i64::MAX)
        .into_iter()
        .map(|(_, p)| p.event.kind)
        .collect()
}

#[test]
fn a_run_that_refuses_its_input_fails_the_match_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = controller(dir.path(), 2);
    c.create(spec()).unwrap();
    tick_until(&mut c, "failed", |c| {
        c.get("final").unwrap().state == MatchState::Failed
    });
    assert_eq!(c.get("final").unwrap().runs, 1, "no retry of bad input");
    assert_eq!(
        queued(dir.path()),
        [EventType::MatchStarted, EventType::MatchFailed]
    );
    // The state is on disk: a new controller sees the failed match and starts nothing.
    drop(c);
    let c = controller(dir.path(), 2);
    assert_eq!(c.get("final").unwrap().state, MatchState::Failed);
}

#[test]
fn a_crashed_run_is_started_again_after_a_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = controller(dir.path(), 1);
    c.create(spec()).unwrap();
    tick_until(&mut c, "a restart scheduled", |c| {
        c.get("final").unwrap().restart_after_ms > 0
    });
    let r = c.get("final").unwrap();
    assert_eq!((r.runs, r.crashes), (1, 1));
    assert!(
        r.last_error
            .as_deref()
            .unwrap()
            .contains("without ending the match")
    );
    assert!(r.state.is_running());
    tick_until(&mut c, "a second run", |c| {
        c.get("final").unwrap().runs == 2
    });
    // Started once: one match.started, however many runs.
    assert_eq!(queued(dir.path()), [EventType::MatchStarted]);
}

#[test]
fn a_highlight_that_ends_while_no_controller_runs_is_still_announced() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = controller(dir.path(), 0);
    c.create(spec()).unwrap();
    c.start_job(
        "final",
        Some(("ace", "2026-12-01T20:00:00Z", "2026-12-01T20:00:09Z")),
    )
    .unwrap();
    drop(c); // the controller dies; the job runs on
    let exit = supervise::job_exit_file(&dir.path().join("state/matches/final"), "clip-ace");
    let start = std::time::Instant::now();
    while !exit.exists() {
        assert!(start.elapsed().as_secs() < 10, "the job never ended");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut c = controller(dir.path(), 0);
    tick_until(&mut c, "the job noticed", |c| {
        c.get("final").unwrap().jobs.is_empty()
    });
    assert!(queued(dir.path()).contains(&EventType::ClipReady));
}

#[test]
fn a_run_asked_to_stop_is_not_started_again_whatever_its_exit() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = controller(dir.path(), 1);
    c.create(spec()).unwrap();
    c.stop("final");
    tick_until(&mut c, "ended", |c| {
        c.get("final").unwrap().state == MatchState::Ended
    });
    let r = c.get("final").unwrap();
    assert_eq!(r.runs, 1);
    assert!(
        r.last_error.as_deref().unwrap().contains("while stopping"),
        "{r:?}"
    );
    assert_eq!(
        queued(dir.path()),
        [EventType::MatchStarted, EventType::MatchEnded]
    );
}

#[test]
fn origins_are_taken_only_under_an_allowed_prefix() {
    use super::api::origin_allowed;
    let allow = vec![
        "file:///srv/origin".to_string(),
        "s3://bucket/live/".to_string(),
    ];
    for ok in [
        "file:///srv/origin",
        "file:///srv/origin/cup",
        "s3://bucket/live/x",
    ] {
        assert!(origin_allowed(ok, &allow), "{ok}");
    }
    for refused in [
        "file:///srv/origin-evil",
        "file:///srv",
        "s3://bucket/livex",
        "s3://bucket",
        "https://cdn.example/",
    ] {
        assert!(!origin_allowed(refused, &allow), "{refused}");
    }
    assert!(
        !origin_allowed("file:///srv/origin", &[]),
        "nothing without --origin-allow"
    );
}

/// Issue 25, item 10: clip and archive jobs beyond the cap get 429.
#[test]
fn jobs_beyond_the_cap_are_refused_with_429() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("slow-swarmpack");
    std::fs::write(&exe, "#!/bin/sh\nsleep 3\n").unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let launcher = Launcher {
        exe,
        keys: dir.path().into(),
        spool: store.spool_dir(),
    };
    let mut c = Controller::open(store, launcher, None);
    c.create(spec()).unwrap();
    assert!(super::api::jobs_full(&c).is_none());
    for n in 0..super::api::MAX_JOBS {
        c.start_job("final", Some((&format!("c{n}"), "a", "b")))
            .unwrap();
    }
    let refused = super::api::jobs_full(&c).unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
}
