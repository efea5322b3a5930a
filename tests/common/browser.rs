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
    let out = run_with_deadline(cmd, Duration::from_secs(240));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the viewers failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = stdout.lines().last().unwrap_or("");
    eprintln!("{args:?}: {seen}");
    serde_json::from_str(seen).unwrap()
}

/// A number from the driver's JSON.
pub fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}
