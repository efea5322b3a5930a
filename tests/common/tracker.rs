//! A real open BitTorrent tracker on loopback: the `bittorrent-tracker` npm package's server
//! (`web/tools/tracker.mjs`, installed by scripts/setup), HTTP announce and scrape.

use super::Guard;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct Tracker {
    _guard: Guard,
    pub port: u16,
}

impl Tracker {
    /// Starts the tracker on a free port; its log goes to `log`.
    pub fn start(log: &Path) -> Tracker {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/tools/tracker.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("node is installed (scripts/setup)");
        let stdout = child.stdout.take().unwrap();
        let guard = Guard(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the tracker prints its address");
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "tracker did not start: {line:?}\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            });
        Tracker {
            _guard: guard,
            port,
        }
    }

    pub fn announce(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    pub fn scrape(&self) -> String {
        format!("http://127.0.0.1:{}/scrape", self.port)
    }

    /// A profile `[[tracker]]` entry for it.
    pub fn profile_entry(&self) -> String {
        format!("[[tracker]]\nannounce = \"{}\"\n", self.announce())
    }
}
