//! The browser tests' shared parts: the web directory (playwright-core and p2p-media-loader
//! from `scripts/setup`), Debian's Chromium, and `web/test/watch.mjs`, which drives the fans'
//! player in headless Chromium and reports what each page saw.

use super::run_with_deadline;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Panics, saying how to fix it, when `web/node_modules/{package}` or Chromium is missing.
pub fn require_browser(package: &str) {
    assert!(
        web_dir().join("node_modules").join(package).is_dir()
            && Path::new("/usr/bin/chromium").is_file(),
        "web/node_modules/{package} or /usr/bin/chromium missing: run scripts/setup"
    );
}

/// `node web/test/watch.mjs --url URL ARGS…`: what the driver saw (one JSON object).
pub fn watch_viewers(url: &str, args: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new("node");
    cmd.current_dir(web_dir())
        .arg("test/watch.mjs")
        .args(["--url", url])
        .args(args);
    node_driver(
        cmd,
        Duration::from_secs(240),
        &format!("the viewers {args:?}"),
    )
}

/// A number from the driver's JSON.
pub fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// A live demo-profile match for browsers: keys, a WebTorrent tracker, the demo profile with
/// the key server (and `serve`) on `port` and the tracker's port, and `run` on a test feed
/// (angle `main`, 300 s, no seeder) publishing to a `file://` origin, waited for until each
/// rung has 4 segments.
pub struct LiveMatch {
    pub tmp: tempfile::TempDir,
    pub keys: PathBuf,
    pub tracker: super::tracker::Tracker,
    pub port: u16,
    pub origin: PathBuf,
    /// `origin/{match}`.
    pub dir: PathBuf,
    _run: super::Guard,
}

impl LiveMatch {
    pub fn start(match_id: &str) -> LiveMatch {
        let tmp = tempfile::tempdir().unwrap();
        let keys = super::keygen(tmp.path());
        let tracker = super::tracker::Tracker::start(&tmp.path().join("tracker.log"));
        let port = super::free_tcp_port();
        let text = std::fs::read_to_string(super::profile("demo.toml"))
            .unwrap()
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:8000", &format!("127.0.0.1:{}", tracker.port));
        let profile = tmp.path().join("live.toml");
        std::fs::write(&profile, text).unwrap();
        let origin = tmp.path().join("origin");
        std::fs::create_dir_all(&origin).unwrap();
        let mut run = super::run_match(
            match_id,
            &profile,
            &keys,
            &format!("file://{}", origin.display()),
        );
        run.args(["--angle", "main=test:", "--no-seed", "--duration", "300"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("run.log")).unwrap());
        let run = super::Guard(run.spawn().unwrap());
        let dir = origin.join(match_id);
        super::wait_for("4 segments", Duration::from_secs(60), || {
            super::live_with_segments(&dir, 2, 4)
        });
        LiveMatch {
            tmp,
            keys,
            tracker,
            port,
            origin,
            dir,
            _run: run,
        }
    }
}

/// `node web/test/preview.mjs --url URL --angles ANGLES [--rungs RUNGS] --expect EXPECT
/// --screenshot FILE`: panics with its output unless every check of the operator's preview
/// page passed; returns what the page showed (one JSON object).
pub fn preview_page(
    url: &str,
    angles: &str,
    rungs: Option<&str>,
    expect: &str,
    screenshot: &Path,
) -> serde_json::Value {
    let mut cmd = Command::new("node");
    cmd.current_dir(web_dir())
        .arg("test/preview.mjs")
        .args(["--url", url, "--angles", angles])
        .args(rungs.map(|r| ["--rungs", r]).into_iter().flatten())
        .args(["--expect", expect])
        .arg("--screenshot")
        .arg(screenshot);
    node_driver(
        cmd,
        Duration::from_secs(180),
        &format!("the page's {expect} checks"),
    )
}

/// Runs a browser driver within `deadline`; panics with its output unless it succeeded.
/// Returns the one JSON object of its last line.
fn node_driver(cmd: Command, deadline: Duration, what: &str) -> serde_json::Value {
    let out = run_with_deadline(cmd, deadline);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = stdout.lines().last().unwrap_or("");
    eprintln!("{what}: {seen}");
    serde_json::from_str(seen).unwrap()
}

/// What a page handed hls.js, by the test's own hook (`handedToHls` of `watch.mjs`, not the
/// player's counters), held against the origin's files.
#[derive(Debug, Default)]
pub struct Handed {
    /// Fragments whose SHA-256 is that of the origin's file at their URL's path.
    pub matched: usize,
    /// Fragments whose bytes are not the origin's (their URLs).
    pub mismatched: Vec<String>,
    /// Fragments whose hash was still being computed when the page was read.
    pub pending: usize,
    /// Bytes handed to hls.js in all.
    pub bytes: f64,
}

/// Compares each fragment `page` handed hls.js with the file under `origin` at its URL's
/// path, hashing the origin's bytes with openssl (`hashes` keeps them across pages).
pub fn handed_against_origin(
    page: &serde_json::Value,
    origin: &Path,
    hashes: &mut std::collections::HashMap<PathBuf, String>,
) -> Handed {
    let mut out = Handed::default();
    for f in page["handedToHls"].as_array().into_iter().flatten() {
        out.bytes += num(f, "bytes");
        let url = f["url"].as_str().unwrap_or_default();
        let path = url
            .splitn(4, '/')
            .nth(3)
            .unwrap_or_default()
            .split(['?', '#'])
            .next()
            .unwrap_or_default();
        let file = origin.join(path);
        let want = hashes.entry(file.clone()).or_insert_with(|| {
            std::fs::read(&file).map_or_else(
                |e| format!("{}: {e}", file.display()),
                |b| super::tags::sha256_hex(&b),
            )
        });
        match f["sha256"].as_str() {
            None => out.pending += 1,
            Some(got) if got == want => out.matched += 1,
            Some(_) => out.mismatched.push(url.to_string()),
        }
    }
    out
}
