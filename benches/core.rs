//! Criterion benchmarks of the pure core stages, one at a time: segment encryption, HKDF key
//! derivation, torrent hashing (one file, and a whole window's metainfo), live playlist
//! rendering, and the whole packager on one window (encrypt, hash, sign, playlists).
//!
//! Run: `cargo bench --bench core` (HTML reports in target/criterion/). `scripts/bench` and
//! `cargo bench --bench window` put the packager beside `openssl speed` instead.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use swarmpack::keys::{ContentKey, content_key, segment_iv};
use swarmpack::package::crypt::{Aes128, encrypt};
use swarmpack::package::playlist::{LivePlaylist, PlaylistEntry, SegmentKey};
use swarmpack::package::torrent::{self, TorrentFile, TorrentMeta};
use swarmpack::package::{Clear, EncodedSegment, Output, Packager};
use swarmpack::profile::Profile;
use swarmpack::timecode::{Seq, Timeline};

/// A 2 s segment of a 3 Mbit/s rung, in whole TS packets.
fn segment(len: usize) -> Vec<u8> {
    (0..len / 188 * 188)
        .map(|i| if i % 188 == 0 { 0x47 } else { (i * 7) as u8 })
        .collect()
}

fn encryption(c: &mut Criterion) {
    let mut g = c.benchmark_group("encrypt");
    let key = ContentKey([0x2b; 16]);
    for kb in [188usize, 750, 1500] {
        let data = segment(kb * 1024);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::new("aes-128-cbc", kb), &data, |b, d| {
            b.iter(|| encrypt(&key, &[1; 16], black_box(d)))
        });
    }
    g.finish();
    c.bench_function("hkdf content key + segment iv", |b| {
        b.iter(|| {
            let k = content_key(black_box(&[9; 32]), "final", black_box(4242));
            (
                k,
                segment_iv("final", "main", "720p", black_box(897_652_640)),
            )
        })
    });
}

fn torrents(c: &mut Criterion) {
    let mut g = c.benchmark_group("torrent");
    let one = segment(750 * 1024);
    let piece = torrent::piece_length_for(one.len() as u64);
    g.throughput(Throughput::Bytes(one.len() as u64));
    g.bench_function("hash one 750 KB segment (v1 pieces + v2 merkle)", |b| {
        b.iter(|| torrent::hash_file(["main", "720p", "1.ts"], black_box(&one), piece, false))
    });
    // A window: 2 angles x 3 rungs x 5 segments.
    let names: Vec<(String, String, String)> = ["main", "pov"]
        .iter()
        .flat_map(|a| {
            ["720p", "480p", "360p"].iter().flat_map(move |r| {
                (0..5).map(move |s| (a.to_string(), r.to_string(), format!("{s}.ts")))
            })
        })
        .collect();
    let data: Vec<Vec<u8>> = names.iter().map(|_| segment(400 * 1024)).collect();
    let files: Vec<TorrentFile> = names
        .iter()
        .zip(&data)
        .map(|((a, r, n), d)| TorrentFile {
            path: [a, r, n],
            bytes: d,
        })
        .collect();
    let meta = TorrentMeta {
        name: "final".into(),
        trackers: vec!["udp://127.0.0.1:6969/announce".into()],
        web_seed: "http://origin/".into(),
        creation_date: 0,
        comment: String::new(),
    };
    g.throughput(Throughput::Bytes(data.iter().map(|d| d.len() as u64).sum()));
    g.bench_function("hybrid window torrent (30 files)", |b| {
        b.iter(|| torrent::build(black_box(&files), &meta).unwrap())
    });
    g.finish();
}

fn playlists(c: &mut Criterion) {
    let timeline = Timeline::new(2000, 5);
    let mut p = LivePlaylist::new(&timeline, 30);
    for s in 0..40u64 {
        let seq = Seq::new(897_652_640 + s);
        p.push(PlaylistEntry {
            seq,
            duration: 2.0,
            pdt: timeline.seq_start(seq),
            discontinuity: false,
            key: Some(SegmentKey {
                uri: format!("http://k/keys/final/{}", s / 5),
                iv: [s as u8; 16],
            }),
            signature: None,
            gap: false,
            gap_signature: None,
        });
    }
    c.bench_function("render a 30-segment live playlist", |b| {
        b.iter(|| black_box(&p).render())
    });
}

fn packager(c: &mut Criterion) {
    let profile = Profile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bench/ladder.toml"
    )))
    .unwrap();
    let angles = vec!["main".to_string(), "pov".to_string()];
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let segments: Vec<(Arc<str>, Arc<str>, Vec<u8>)> = angles
        .iter()
        .flat_map(|a| {
            profile.rungs.iter().map(move |r| {
                let n = (r.video_kbps + r.audio_kbps) as usize * 250; // 2 s
                (
                    Arc::from(a.as_str()),
                    Arc::from(r.name.as_str()),
                    segment(n),
                )
            })
        })
        .collect();
    let window_bytes: usize = segments.iter().map(|s| s.2.len()).sum::<usize>() * 5;
    let mut g = c.benchmark_group("packager");
    g.throughput(Throughput::Bytes(window_bytes as u64));
    for encrypted in [false, true] {
        let name = if encrypted {
            "one window, encrypted and signed"
        } else {
            "one window, clear and signed"
        };
        g.bench_function(name, |b| {
            let protection: Box<dyn swarmpack::package::Protection> = if encrypted {
                Box::new(Aes128::new(
                    &[7; 32],
                    "m",
                    "http://k/keys/",
                    profile.timeline(),
                ))
            } else {
                Box::new(Clear)
            };
            let signer = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            let mut p = Packager::new("m", &profile, &angles, protection).sign_windows(
                &profile,
                std::sync::Arc::new(signer),
                "pubkey",
            );
            let mut window = 1_000_000u64;
            b.iter(|| {
                for seq in window * 5..window * 5 + 5 {
                    for (a, r, bytes) in &segments {
                        p.push(EncodedSegment {
                            angle: a.clone(),
                            rung: r.clone(),
                            seq: Seq::new(seq),
                            duration_ns: 2_000_000_000,
                            bytes: bytes.clone(),
                        })
                        .unwrap();
                        while let Some(o) = p.pull().and_then(Output::into_put) {
                            black_box(o);
                        }
                    }
                }
                window += 1;
            })
        });
    }
    g.finish();
}

/// One `#EXT-X-SWARMPACK-SEGMENT` signature: Ed25519 over the six lines, given the digest the
/// packager computes once per segment anyway (part of the packager benches above).
fn segment_signature(c: &mut Criterion) {
    use swarmpack::package::playlist::SegmentKey;
    use swarmpack::package::segment_sig::SegmentSignature;
    let signer = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[5; 32]).unwrap();
    let key = SegmentKey {
        uri: "http://127.0.0.1:8080/keys/final/179537040".into(),
        iv: [9; 16],
    };
    c.bench_function("sign one segment tag", |b| {
        b.iter(|| {
            SegmentSignature::sign_digest(
                &signer,
                black_box("final/main/1080p/897685200.ts"),
                1_500_000,
                [3; 32],
                Some(&key),
            )
        })
    });
}

criterion_group! {
    name = core;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = encryption, torrents, playlists, packager, segment_signature
}
criterion_main!(core);
