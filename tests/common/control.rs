//! Helpers of `tests/control.rs`: the control API over curl, the controller and the webhook
//! receiver as processes, and what the receiver took.

use super::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One API call with curl: the status and the JSON answer.
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let (code, text) = call_text(port, method, path, headers, body);
    (
        code,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// One API call with curl: the status and the answer as text.
pub fn call_text(
    port: u16,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--max-time",
        "20",
        "-X",
        method,
        "-w",
        "\n%{http_code}",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}{path}"));
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), answer.to_string())
}

pub fn bearer() -> String {
    format!("Authorization: Bearer {TOKEN}")
}

pub fn get(port: u16, id: &str) -> serde_json::Value {
    call(port, "GET", &format!("/v1/matches/{id}"), &[bearer()], None).1
}

pub struct Setup {
    pub tmp: tempfile::TempDir,
    pub keys: PathBuf,
    pub profiles: PathBuf,
    pub state: PathBuf,
    pub origin: PathBuf,
}

impl Setup {
    /// A temporary directory with keys, one profile `small` (1 s segments, seeding off), and
    /// room for the controller's state and the origin.
    pub fn small() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let keys = keygen(tmp.path());
        let profiles = tmp.path().join("profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        small_profile(
            &profiles,
            2,
            "http://127.0.0.1:9/",
            "[seed]\nenabled = false\n",
        );
        Setup {
            keys,
            profiles,
            state: tmp.path().join("state"),
            origin: tmp.path().join("origin"),
            tmp,
        }
    }
}

/// `swarmpack control` on `port` with the setup's keys, profiles and origin, its state in
/// `state`, webhooks to the receiver on `hook_port`, its log appended to `log`.
pub fn control_command(s: &Setup, state: &Path, port: u16, hook_port: u16, log: &Path) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = swarmpack();
    cmd.arg("control")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--state")
        .arg(state)
        .arg("--keys")
        .arg(&s.keys)
        .arg("--profiles")
        .arg(&s.profiles)
        .arg("--origin-allow")
        .arg(format!("file://{}", s.origin.display()))
        .env("SWARMPACK_API_TOKEN", TOKEN)
        .env(
            "SWARMPACK_WEBHOOK_URL",
            format!("http://127.0.0.1:{hook_port}/hooks"),
        )
        .env("SWARMPACK_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(log);
    cmd
}

pub fn controller(s: &Setup, port: u16, hook_port: u16) -> Guard {
    let log = s.tmp.path().join("control.log");
    Guard(
        control_command(s, &s.state, port, hook_port, &log)
            .spawn()
            .unwrap(),
    )
}

pub fn receiver(port: u16, log: &Path) -> Guard {
    let python = setup_tool("WEBHOOKS_VERSION", "standardwebhooks", "python");
    let guard = Guard(
        Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/webhook_receiver.py"))
            .args([&port.to_string(), SECRET])
            .arg(log)
            .spawn()
            .unwrap(),
    );
    wait_for("the webhook receiver", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    guard
}

/// What the receiver took: (verified ok, id, type) per delivery.
pub fn received(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Kills a run the controller started (its own process group) when the test ends.
pub struct KillPid(pub u32);
impl Drop for KillPid {
    fn drop(&mut self) {
        unsafe_kill(self.0, "KILL");
    }
}

pub fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The window in `live.json` whose manifest lists marker `id`.
pub fn window_naming(match_dir: &Path, id: &serde_json::Value) -> Option<u64> {
    let read = |p: PathBuf| -> Option<serde_json::Value> {
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    };
    let live = read(match_dir.join("live.json"))?;
    live["windows"]
        .as_array()?
        .iter()
        .filter_map(|w| w.as_u64())
        .find(|w| {
            read(match_dir.join(format!("windows/{w}.json"))).is_some_and(|doc| {
                doc["markers"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["id"] == *id))
            })
        })
}

pub fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
