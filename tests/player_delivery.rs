//! The fans' player's delivery policy, part by part, without a browser (`web/test/delivery.mjs`
//! under node): fetch-early's ranking (six viewers who see each other agree on one first
//! fetcher per segment), its fetches (the first at once, a backup only when nothing came), the
//! fragment loader that hands hls.js the early bytes and takes over a load under way, the cache
//! peers are served from, the live-edge watch and the policy's time windows. The browsers
//! themselves are in tests/watch_p2p.rs (a segment fetched early by one viewer served to
//! another) and scripts/swarm-lab (what it costs and gains).

#[test]
fn fetch_early_cache_and_policy_behave_as_documented() {
    let out = std::process::Command::new("node")
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web"))
        .arg("test/delivery.mjs")
        .output()
        .expect("node (scripts/setup installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("delivery: ok"),
        "web/test/delivery.mjs:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
