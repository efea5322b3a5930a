//! Segment encryption throughput (AES-128-CBC/PKCS#7, as swarmpack seals every segment),
//! printed beside `openssl speed -evp aes-128-cbc` on the same machine and core.
//!
//! Run: `cargo bench --bench encrypt`

use std::hint::black_box;
use std::time::{Duration, Instant};
use swarmpack::keys::ContentKey;
use swarmpack::package::crypt::encrypt;

#[path = "support/openssl.rs"]
mod openssl;

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
    match openssl::speed_mb_s("aes-128-cbc", 2) {
        Some(theirs) => println!(
            "openssl speed -evp aes-128-cbc (16 KiB blocks, one core):      {theirs:.0} MB/s  -> swarmpack at {:.0}% of it",
            100.0 * ours / theirs
        ),
        None => println!("openssl speed: not available on this machine"),
    }
}
