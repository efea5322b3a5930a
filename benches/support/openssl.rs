//! The machine's own yardstick: `openssl speed -evp ALG` on 16 KiB blocks, one core.

use std::process::Command;

/// openssl's throughput for `alg` (e.g. "aes-128-cbc", "sha1", "sha256") in MB/s
/// (10^6 bytes), or None if openssl is not installed.
pub fn speed_mb_s(alg: &str, seconds: u32) -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-evp",
            alg,
            "-seconds",
            &seconds.to_string(),
            "-bytes",
            "16384",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line reads "<ALG>  <thousands of bytes per second>k".
    let line = text
        .lines()
        .rev()
        .find(|l| l.to_lowercase().starts_with(alg))?;
    let kb: f64 = line
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(kb / 1000.0)
}
