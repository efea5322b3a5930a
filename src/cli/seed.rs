//! `swarmpack seed`: the edge seeder's command line.
//!
//! The binary's edge: may call any room of the library (through `swarmpack::`).

use super::{Failure, bad_input, runtime};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
use swarmpack::profile::is_path_safe_name;
use swarmpack::publish::Origin;
use swarmpack::seed::edge::{EdgeConfig, follow};

/// `swarmpack seed --help`: what it does, step by step.
pub const LONG_ABOUT: &str = "An edge seeder that runs anywhere: it follows a match on its origin, verifies \
everything with the match's public key, and seeds each window over BitTorrent.\n\n\
Each poll it reads MATCH/live.json and checks its Ed25519 signature, walks the hash chain of \
window manifests back to the windows it already holds, checks each manifest's signature and \
hash, fetches the window's torrent (its infohashes must be the signed ones) and every segment \
(each length and SHA-256 must be the manifest's), and only then seeds the window. It announces \
to the torrent's trackers, retires windows that leave live.json, and seeds MATCH/archive.torrent \
once `swarmpack archive` has published it, and each --clip LABEL's MATCH/clips/LABEL/clip.torrent \
once `swarmpack clip` has (its signed clip.json, the windows it cites and every segment checked \
first).\n\n\
Nothing unverified is seeded: a failed check refuses that window, logs why, and counts it in \
--metrics (swarmpack_edge_windows_refused_total). An unreachable origin is retried with back-off \
while verified windows keep seeding. Verified files stay in --cache, so a restart seeds them again \
without fetching them.\n\n\
The recommended event setup: `swarmpack run --no-seed` at the venue (whose uplink is scarce), and \
two or more `swarmpack seed` on machines near the viewers, started before the match.\n\n\
Exit codes: 2 for a wrong --pubkey, an origin without the match, or bad flags; 0 after SIGTERM.";

/// `swarmpack seed --help`: an example.
pub const EXAMPLE: &str = "Example:\n  \
swarmpack seed --origin https://origin.example/ --match final --pubkey pubkey.pem \\\n      \
--listen 0.0.0.0:6881 --cache /var/cache/swarmpack --metrics 127.0.0.1:9301 --wait-for-match 30m";

#[derive(clap::Args)]
pub struct SeedArgs {
    /// Where the match is published: http(s)://host/path/ (what viewers read), s3://bucket/prefix
    /// or file:///abs/dir.
    #[arg(long, value_name = "URL")]
    origin: String,
    /// Match ID: the top directory on the origin.
    #[arg(long = "match", value_name = "ID")]
    match_id: String,
    /// The match's Ed25519 public key (pubkey.pem from `swarmpack keygen`), obtained from a
    /// trusted place, not from the origin being checked.
    #[arg(long, value_name = "FILE")]
    pubkey: PathBuf,
    /// Where peers connect, IP:PORT (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:6881")]
    listen: String,
    /// Verified segments, manifests and torrents, kept across restarts.
    #[arg(long, value_name = "DIR", default_value = "./seed-cache")]
    cache: PathBuf,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// How often live.json is read: 1s, 500ms.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    poll: String,
    /// Windows seeded at once; older ones are retired (live.json lists the newest 10).
    #[arg(long, value_name = "N", default_value_t = 10)]
    keep_windows: u64,
    /// Wait this long for the match to appear on the origin (start seeders before the match:
    /// 30m); without it an origin without the match is an error (exit 2).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    wait_for_match: String,
    /// A highlight package to seed once `swarmpack clip` (or the control API) has published
    /// MATCH/clips/LABEL/; verified like the archive. Repeat for each.
    #[arg(long = "clip", value_name = "LABEL")]
    clips: Vec<String>,
}

pub fn seed(args: SeedArgs, stop_requests: Arc<AtomicUsize>) -> Result<(), Failure> {
    swarmpack::match_id::MatchId::parse(&args.match_id)
        .map_err(|e| bad_input(anyhow::anyhow!("--match {:?}: {e}", args.match_id)))?;
    let public_key = swarmpack::verify::read_pubkey(&args.pubkey).map_err(bad_input)?;
    let origin = Origin::open(&args.origin).map_err(bad_input)?;
    let addr = |flag: &str, text: &str| {
        text.parse().map_err(|_| {
            bad_input(anyhow::anyhow!(
                "{flag} {text:?}: expected IP:PORT, e.g. 0.0.0.0:6881"
            ))
        })
    };
    let listen = addr("--listen", &args.listen)?;
    let metrics = args
        .metrics
        .as_deref()
        .map(|m| addr("--metrics", m))
        .transpose()?;
    let duration = |flag: &str, text: &str| -> Result<Duration, Failure> {
        humantime::parse_duration(text).map_err(|e| {
            bad_input(anyhow::anyhow!(
                "{flag} {text:?}: {e}; expected a duration such as 1s, 500ms or 30m"
            ))
        })
    };
    let poll = duration("--poll", &args.poll)?;
    let wait_for_match = duration("--wait-for-match", &args.wait_for_match)?;
    if let Some(bad) = args.clips.iter().find(|l| !is_path_safe_name(l)) {
        return Err(bad_input(anyhow::anyhow!(
            "--clip {bad:?}: expected a label of a-z, 0-9, '-' and '_'"
        )));
    }
    if args.keep_windows == 0 {
        return Err(bad_input(anyhow::anyhow!(
            "--keep-windows 0: expected at least 1"
        )));
    }
    let cfg = EdgeConfig {
        origin,
        match_id: args.match_id,
        public_key,
        pubkey_path: args.pubkey,
        listen,
        cache: args.cache,
        metrics,
        poll: poll.max(Duration::from_millis(100)),
        keep_windows: args.keep_windows,
        wait_for_match,
        clips: args.clips,
    };
    follow(cfg, stop_requests).map_err(|e| {
        if e.is_bad_input() {
            bad_input(e)
        } else {
            runtime(e)
        }
    })
}
