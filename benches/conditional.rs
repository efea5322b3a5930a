//! What create-if-absent costs a publish: the same segment-sized objects (500 KB) put plainly
//! (`Origin::put`, replace) and created (`Origin::create`, `PutMode::Create`) on a `file://`
//! origin and, when `S3_ENDPOINT` names one (scripts/bench starts moto), on S3 with a bucket
//! `bench`. Each kind alternates, 200 objects each, new keys every time (the winning case; the
//! losing case adds a GET of what the origin holds). Then what `run --redundant` adds before a
//! segment is packaged: a claim that wins (a GET of its claim that finds nothing, the signed
//! claim created, then the bytes created) and one that loses (a GET of the winner's claim,
//! verified, then of its bytes; nothing is sent).
//!
//! Run: `cargo bench --bench conditional` (N=200 by default). Prints one BENCH line.

#[path = "support/stats.rs"]
mod stats;

use bytes::Bytes;
use ring::signature::{Ed25519KeyPair, KeyPair};
use stats::{env_or, percentile};
use std::time::Instant;
use swarmpack::package::playlist::SegmentKey;
use swarmpack::publish::claim::{Claim, ClaimContext, claim};
use swarmpack::publish::{Created, Origin};

/// (p50, p99) in ms of put and of create, alternating, `n` each.
fn race(rt: &tokio::runtime::Runtime, origin: &Origin, n: usize) -> [(f64, f64); 2] {
    let body = Bytes::from(vec![0x47u8; 500_000]);
    let (mut put, mut create) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t = Instant::now();
        rt.block_on(origin.put(&format!("b/put/{i}.ts"), body.clone()))
            .unwrap();
        put.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let made = rt
            .block_on(origin.create(&format!("b/create/{i}.ts"), body.clone()))
            .unwrap();
        create.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(made, Created::New);
    }
    [put, create].map(|mut v| {
        v.sort_by(f64::total_cmp);
        (percentile(&v, 50.0), percentile(&v, 99.0))
    })
}

/// (p50, p99) in ms of a claim that wins (new keys) and of one that loses (the same keys,
/// other bytes), `n` each.
fn claims(rt: &tokio::runtime::Runtime, origin: &Origin, n: usize) -> [(f64, f64); 2] {
    let ours = vec![0x47u8; 500_000];
    let theirs = vec![0x48u8; 500_000];
    let signer = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let public_key = signer.public_key().as_ref().to_vec();
    let cx = ClaimContext {
        origin,
        signer: &signer,
        public_key: &public_key,
    };
    let key = SegmentKey {
        uri: "http://127.0.0.1:8080/keys/b/1".into(),
        iv: [1; 16],
    };
    let (mut won, mut lost) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let path = format!("b/claim/{i}.ts");
        let t = Instant::now();
        assert_eq!(
            rt.block_on(claim(&cx, &path, &ours, Some(&key))).unwrap(),
            Claim::Ours(swarmpack::hex::sha256(&ours))
        );
        won.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let other = rt.block_on(claim(&cx, &path, &theirs, Some(&key))).unwrap();
        lost.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(matches!(other, Claim::Theirs(held, _) if held == ours));
    }
    [won, lost].map(|mut v| {
        v.sort_by(f64::total_cmp);
        (percentile(&v, 50.0), percentile(&v, 99.0))
    })
}

fn main() {
    let n = env_or("N", 200) as usize;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut line = String::from("BENCH");
    let mut origins = vec![("file", Origin::local(tmp.path()).unwrap())];
    if let Ok(endpoint) = std::env::var("S3_ENDPOINT") {
        // SAFETY: set before any thread of this process reads the environment.
        unsafe {
            std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
        }
        origins.push(("s3", Origin::open("s3://bench").unwrap()));
    }
    for (name, origin) in &origins {
        let [(put50, put99), (cr50, cr99)] = race(&rt, origin, n);
        println!(
            "{name:>4}: put p50 {put50:6.2} ms p99 {put99:6.2} ms | create-if-absent p50 {cr50:6.2} ms p99 {cr99:6.2} ms ({n} x 500 KB each)"
        );
        line.push_str(&format!(
            " {name}_put_p50={put50:.2} {name}_put_p99={put99:.2} {name}_create_p50={cr50:.2} {name}_create_p99={cr99:.2}"
        ));
        let [(won50, won99), (lost50, lost99)] = claims(&rt, origin, n);
        println!(
            "{name:>4}: --redundant claim won p50 {won50:6.2} ms p99 {won99:6.2} ms | lost (adopts the origin's bytes) p50 {lost50:6.2} ms p99 {lost99:6.2} ms"
        );
        line.push_str(&format!(
            " {name}_claim_won_p50={won50:.2} {name}_claim_won_p99={won99:.2} {name}_claim_lost_p50={lost50:.2} {name}_claim_lost_p99={lost99:.2}"
        ));
    }
    println!("{line}");
}
