//! Helpers of the pool tests (`tests/control_cluster.rs`, `control_failover.rs`,
//! `control_cluster_faults.rs`): a NATS server with JetStream (scripts/setup's pinned
//! nats-server), pool nodes (`control --cluster`) as processes on loopback, and what the
//! tests ask of them.

use super::control::{Setup, bearer, call, control_command, get, received};
use super::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Nats {
    pub url: String,
    port: u16,
    dir: std::path::PathBuf,
    server: Option<Guard>,
}

impl Nats {
    /// A JetStream server on a free loopback port, its store in `dir`.
    pub fn start(dir: &Path) -> Nats {
        let port = free_tcp_port();
        let mut nats = Nats {
            url: format!("nats://127.0.0.1:{port}"),
            port,
            dir: dir.to_path_buf(),
            server: None,
        };
        nats.restart();
        nats
    }

    /// Kills the server (SIGKILL): the pool loses NATS.
    pub fn kill(&mut self) {
        self.server.take();
    }

    /// Starts the server again on the same port and store.
    pub fn restart(&mut self) {
        let (dir, port) = (&self.dir, self.port);
        let bin = setup_tool("NATS_VERSION", "nats-server", "nats-server");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("nats.log"))
            .unwrap();
        let server = Guard(
            Command::new(bin)
                .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
                .arg(dir.join("jetstream"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        wait_for("nats-server", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        self.server = Some(server);
    }
}

/// One node of the pool: its own state directory and log (`{name}.log`), the setup's keys,
/// profiles and origin.
pub fn pool_node(
    s: &Setup,
    nats: &str,
    name: &str,
    port: u16,
    capacity: u32,
    hook_port: u16,
) -> Guard {
    let state = s.tmp.path().join(format!("state-{name}"));
    let log = s.tmp.path().join(format!("{name}.log"));
    let node = Guard(
        control_command(s, &state, port, hook_port, &log)
            .args(["--cluster", nats, "--node", name])
            .args(["--capacity", &capacity.to_string()])
            .spawn()
            .unwrap(),
    );
    wait_for(&format!("node {name}"), Duration::from_secs(30), || {
        call(port, "GET", "/v1/nodes", &[bearer()], None).0 == 200
    });
    node
}

/// The pool's nodes as node `port` sees them.
pub fn nodes(port: u16) -> Vec<serde_json::Value> {
    let (_, v) = call(port, "GET", "/v1/nodes", &[bearer()], None);
    v["nodes"].as_array().cloned().unwrap_or_default()
}

/// Whether node `port` sees `count` nodes alive.
pub fn nodes_alive(port: u16, count: usize) -> bool {
    nodes(port).iter().filter(|n| n["alive"] == true).count() == count
}

pub fn create(port: u16, key: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut headers = vec![bearer()];
    if let Some(k) = key {
        headers.push(format!("Idempotency-Key: {k}"));
    }
    call(port, "POST", "/v1/matches", &headers, Some(body))
}

pub fn body(s: &Setup, id: &str, profile: &str, duration: u32) -> String {
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
pub fn wait_match(
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

pub fn log_of(s: &Setup, name: &str) -> String {
    std::fs::read_to_string(s.tmp.path().join(format!("{name}.log"))).unwrap_or_default()
}

/// Waits for `matches` match.ended webhooks, then checks that every delivery verified, that
/// no id came twice, and that each match's milestones came once.
pub fn assert_each_webhook_once(hooks: &Path, matches: usize) {
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

/// The seqs a media playlist lists, and the ones it marks as gaps.
pub fn listed(playlist: &Path) -> (Vec<u64>, usize, String) {
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

/// `control` with `args` after the usual ones ([`control_command`], its output captured
/// instead of logged): its exit code and stderr.
pub fn control_with(s: &Setup, args: &[&str]) -> (Option<i32>, String) {
    let state = s.tmp.path().join("state");
    let log = s.tmp.path().join("control.log");
    let mut cmd = control_command(s, &state, free_tcp_port(), free_tcp_port(), &log);
    cmd.args(args);
    let out = run_with_deadline(cmd, Duration::from_secs(30));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
