//! Talking to a CMCD collector as players and operators do: curl posts reports, and the
//! Prometheus text of `/metrics` is read back.

use std::process::Command;

/// `curl` POSTs `body` as `application/cmcd` to `url`: the status and the answer's body.
pub fn post(url: &str, body: &[u8]) -> (u16, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .args(["-H", "Content-Type: application/cmcd", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), answer.to_string())
}

/// The text of `GET url` (curl).
pub fn get(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-f", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {url} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The sum of every sample of `name` whose labels include each of `labels` (`key="value"`).
pub fn sum(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}
