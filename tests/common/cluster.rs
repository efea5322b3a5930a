//! Helpers of `tests/control_cluster.rs`: a NATS server with JetStream (scripts/setup's
//! pinned nats-server) and pool nodes (`control --cluster`) as processes, on loopback.

use super::control::{Setup, bearer, call, control_command};
use super::*;
use std::path::Path;
use std::time::Duration;

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
