//! Whole-window packaging throughput: SHA-256 of every segment, the hybrid torrent (SHA-1
//! pieces + SHA-256 merkle trees), the manifest JSON and its Ed25519 signature, on one core.
//! Printed beside `openssl speed` for SHA-1 and SHA-256 on the same machine.
//!
//! Run: `cargo bench --bench window`

use std::hint::black_box;
use std::time::{Duration, Instant};
use swarmpack::package::window::{WindowBook, WindowSegment};
use swarmpack::profile::Profile;
use swarmpack::timecode::Seq;

#[path = "support/openssl.rs"]
mod openssl;

fn main() {
    let profile = Profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/profiles/esports-1080p.toml"
    )))
    .expect("profile");
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    // One window of 2 angles x 4 rungs x 5 segments at the profile's bitrates.
    let renditions: Vec<(String, String, usize)> = ["main", "pov"]
        .iter()
        .flat_map(|a| {
            profile.rungs.iter().map(move |r| {
                (
                    a.to_string(),
                    r.name.clone(),
                    (r.video_kbps + r.audio_kbps) as usize * 250,
                )
            })
        })
        .collect();
    let window_bytes: usize = renditions.iter().map(|r| r.2 * 5).sum();
    let make = |w: u64| {
        let mut v = Vec::new();
        for seq in w * 5..w * 5 + 5 {
            for (a, r, n) in &renditions {
                v.push(WindowSegment {
                    angle: a.clone(),
                    rung: r.clone(),
                    seq: Seq(seq),
                    duration_ns: 2_000_000_000,
                    bytes: vec![(seq % 251) as u8; *n],
                    key: None,
                });
            }
        }
        v
    };
    let start = Instant::now();
    let mut bytes = 0usize;
    let mut w = 0u64;
    let mut busy = Duration::ZERO;
    let signer = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut book = WindowBook::new("bench", &profile, renditions.len(), Box::new(signer));
    while start.elapsed() < Duration::from_secs(3) {
        let segments = make(w);
        let t = Instant::now();
        let mut out = Vec::new();
        for s in segments {
            book.add(s, &mut out);
        }
        busy += t.elapsed();
        assert!(
            out.iter().any(|o| o.path.ends_with(".torrent")),
            "window {w} closed"
        );
        black_box(out);
        bytes += window_bytes;
        w += 1;
    }
    let ours = bytes as f64 / busy.as_secs_f64() / 1e6;
    println!(
        "window packaging (hash + manifest + torrent + signature, {:.1} MB windows, one core): {ours:.0} MB/s",
        window_bytes as f64 / 1e6
    );
    if let (Some(sha1), Some(sha256)) = (
        openssl::speed_mb_s("sha1", 1),
        openssl::speed_mb_s("sha256", 1),
    ) {
        // Every byte is hashed three times: SHA-256 (manifest), SHA-1 (v1 pieces), SHA-256 (v2 leaves).
        let limit = 1.0 / (2.0 / sha256 + 1.0 / sha1);
        println!(
            "openssl speed on this core: sha1 {sha1:.0} MB/s, sha256 {sha256:.0} MB/s -> combined limit {limit:.0} MB/s, swarmpack at {:.0}%",
            100.0 * ours / limit
        );
    }
}
