//! Segment encryption throughput (AES-128-CBC/PKCS#7, as swarmpack seals every segment),
//! printed beside `openssl speed -evp aes-128-cbc` on the same machine and core.
//!
//! Run: `cargo bench --bench encrypt`

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};
use swarmpack::keys::ContentKey;
use swarmpack::package::crypt::encrypt;

/// openssl's figure for 16 KiB blocks, in MB/s (10^6 bytes), if openssl is installed.
fn openssl_mb_s() -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-128-cbc",
            "-seconds",
            "2",
            "-bytes",
            "16384",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line reads: "AES-128-CBC  <kB/s>k" (1000s of bytes per second).
    let line = text
        .lines()
        .rev()
        .find(|l| l.to_lowercase().starts_with("aes-128-cbc"))?;
    let kb: f64 = line
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(kb / 1000.0)
}

fn main() {
    // A typical 2 s segment of a 3 Mbit/s rung is about 750 KB.
    let segment = vec![0x47u8; 750 * 1024];
    let key = ContentKey([0x2b; 16]);
    let iv = [0x01; 16];
    // Warm up, then measure for about two seconds.
    for _ in 0..10 {
        black_box(encrypt(&key, &iv, &segment));
    }
    let start = Instant::now();
    let mut bytes = 0usize;
    while start.elapsed() < Duration::from_secs(2) {
        bytes += black_box(encrypt(&key, &iv, black_box(&segment))).len();
    }
    let ours = bytes as f64 / start.elapsed().as_secs_f64() / 1e6;
    println!("segment encryption (AES-128-CBC, 750 KB segments, one core): {ours:.0} MB/s");
    match openssl_mb_s() {
        Some(theirs) => println!(
            "openssl speed -evp aes-128-cbc (16 KiB blocks, one core):      {theirs:.0} MB/s  -> swarmpack at {:.0}% of it",
            100.0 * ours / theirs
        ),
        None => println!("openssl speed: not available on this machine"),
    }
}
