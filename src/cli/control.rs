//! `swarmpack control`: the match controller (see `swarmpack::control`).
//!
//! May call: `http`.

use super::{Failure, bad_input, runtime};
use anyhow::{Context, anyhow};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use swarmpack::control::cluster::{self, ClusterConfig};
use swarmpack::control::supervise::Launcher;
use swarmpack::control::webhook::{Outbox, Secret};
use swarmpack::control::{Controller, api, records::Store};

/// Seconds between looks at the audiences (the collector's step).
const QOE_EVERY_SECONDS: u64 = 10;

pub const LONG_ABOUT: &str = "Run matches for the bracket software or the producer's console: \
a JSON API that starts each match as its own `swarmpack run` process, watches it, restarts it \
when it dies, stops it on request, and reports what happens by webhooks signed as the Standard \
Webhooks spec has them.\n\n\
API (every request: Authorization: Bearer $SWARMPACK_API_TOKEN):\n  \
POST   /v1/matches          {\"match\",\"profile\",\"angles\":{\"name\":\"uri\"},\"origin\",\"duration\"?}\n                         \
with Idempotency-Key: a retry returns the first answer\n  \
GET    /v1/matches          every match and its state\n  \
GET    /v1/matches/ID       state, feeds, newest window and seq, spool depth, last error, and\n                         \
\"audience\": what its fans experience now (from the collector its profile's [qoe] names)\n  \
PATCH  /v1/matches/ID/delivery  [delivery] keys: the fans' players' policy, in a new signed\n                         \
p2p.json (players follow within 30 s)\n  \
DELETE /v1/matches/ID       a clean stop, as SIGTERM on `run`\n  \
(and POST …/markers, …/clips, …/archive: README)\n\n\
Profiles are the .toml files in --profiles, by name. Runs get --spool STATE/spool and write \
their log to STATE/matches/ID/run.log. A run that dies is restarted after 1, 2, 4, 8, 16 s; \
after 5 crashes in a row without publishing a window (or a run refusing its input, exit 2) the \
match is failed.\n\n\
Webhooks (SWARMPACK_WEBHOOK_URL, SWARMPACK_WEBHOOK_SECRET=whsec_…): match.started, match.live, \
feed.lost, feed.restored, window.published, origin.down, origin.up, match.ended, match.failed, \
qoe.degraded, qoe.recovered (the profile's [qoe] thresholds, judged every 10 s on the \
collector's figures; while degraded, [qoe.on_degraded] is the players' policy); \
each with one stable id, delivered at least once from STATE/outbox, retried with backoff and \
jitter.\n\n\
Stopping the controller (Ctrl-C, SIGTERM, or a crash) leaves the matches running: started \
again with the same --state, it adopts the runs still alive and restarts the ones that died.\n\n\
A pool of machines (--cluster nats://HOST:4222 --node NAME --capacity UNITS on each, NATS with \
JetStream): every node answers the whole API from the pool's records (GET /v1/nodes shows the \
pool, GET /metrics this node). Each match runs on a node with room (one unit per rung per \
angle), always as `run --redundant`, so the origin must be s3:// or a file:// every node \
mounts. A node that dies is replaced by another in about 10 s (one discontinuity); with \
[control] standby = true in the profile a second node runs the match from the start and \
nothing is lost. NATS lost: the runs go on, reads answer from the last state, writes get 503. \
README: \"Running a tournament on several machines\".";

pub const EXAMPLE: &str = "Example:\n  \
export SWARMPACK_API_TOKEN=$(openssl rand -hex 24)\n  \
export SWARMPACK_WEBHOOK_URL=https://bracket.example/hooks SWARMPACK_WEBHOOK_SECRET=whsec_$(openssl rand -base64 32)\n  \
swarmpack control --listen 127.0.0.1:8600 --state /var/lib/swarmpack --keys ./keys --profiles ./profiles \\\n      --origin-allow file:///srv/origin\n  \
curl -H \"Authorization: Bearer $SWARMPACK_API_TOKEN\" -H 'Idempotency-Key: final-1' \\\n       \
-d '{\"match\":\"final\",\"profile\":\"demo\",\"angles\":{\"main\":\"test:\"},\"origin\":\"file:///srv/origin\"}' \\\n       \
http://127.0.0.1:8600/v1/matches\n\n\
A node of a pool (the same on every machine, each with its own --node):\n  \
swarmpack control --listen 0.0.0.0:8600 --state /var/lib/swarmpack --origin-allow s3://matches/live \\\n      \
--cluster nats://nats1:4222,nats://nats2:4222,nats://nats3:4222 --node enc-07 --capacity 8";

#[derive(clap::Args)]
pub struct ControlArgs {
    /// Address of the API, e.g. 127.0.0.1:8600.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// The controller's state: matches, idempotency keys, the webhook outbox, the runs' spool.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Match secrets from `swarmpack keygen`, for every run.
    #[arg(long, value_name = "DIR", default_value = "./keys")]
    pub keys: PathBuf,
    /// The profiles a request may name (NAME.toml).
    #[arg(long, value_name = "DIR", default_value = "./profiles")]
    pub profiles: PathBuf,
    /// An origin the API may publish to: a URL prefix (file:///srv/origin, s3://bucket/live,
    /// https://ingest.example/). Repeat for each. A request naming any other origin gets 422;
    /// without this flag every request does.
    #[arg(long = "origin-allow", value_name = "PREFIX")]
    pub origin_allow: Vec<String>,
    /// The API's bearer token (at least 16 characters).
    #[arg(long, env = "SWARMPACK_API_TOKEN", hide_env_values = true)]
    pub api_token: String,
    /// Where webhooks go (POST); without it none are sent.
    #[arg(long, env = "SWARMPACK_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,
    /// The webhooks' signing secret, whsec_<base64>.
    #[arg(long, env = "SWARMPACK_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Join a pool of machines through NATS JetStream at URL (nats://HOST:4222; several
    /// comma-separated for a NATS cluster). Every node of the pool answers the whole API.
    #[arg(long, value_name = "URL", requires_all = ["node", "capacity"])]
    pub cluster: Option<String>,
    /// This node's name in the pool (letters, digits, '-', '_'), unique and stable across
    /// restarts.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub node: Option<String>,
    /// Capacity units this node offers: a match takes one per rung per angle (two angles
    /// of a four-rung ladder: 8). 0 makes a node that only answers the API.
    #[arg(long, value_name = "UNITS", requires = "cluster")]
    pub capacity: Option<u32>,
}

pub fn control(args: ControlArgs, stop_requests: Arc<AtomicUsize>) -> Result<(), Failure> {
    let addr: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        bad_input(anyhow!(
            "--listen {:?}: expected ADDRESS:PORT, e.g. 127.0.0.1:8600",
            args.listen
        ))
    })?;
    if args.api_token.trim().len() < 16 {
        return Err(bad_input(anyhow!(
            "SWARMPACK_API_TOKEN: expected at least 16 characters (e.g. openssl rand -hex 24)"
        )));
    }
    swarmpack::keys::KeyDir::load(&args.keys).map_err(bad_input)?;
    if !args.profiles.is_dir() {
        return Err(bad_input(anyhow!(
            "--profiles {}: not a directory of profile .toml files",
            args.profiles.display()
        )));
    }
    let webhook = match (&args.webhook_url, &args.webhook_secret) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(bad_input(anyhow!(
                "SWARMPACK_WEBHOOK_URL is set but SWARMPACK_WEBHOOK_SECRET is not: webhooks are always signed"
            )));
        }
        (Some(url), Some(secret)) => {
            url::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    bad_input(anyhow!(
                        "SWARMPACK_WEBHOOK_URL {url:?}: expected an http(s):// URL"
                    ))
                })?;
            Some((url.clone(), Secret::parse(secret).map_err(bad_input)?))
        }
    };
    if args.origin_allow.is_empty() {
        tracing::warn!(
            "no --origin-allow: every POST /v1/matches will be refused (422); name the origins the API may use"
        );
    }
    let store = Store::open(&args.state).map_err(runtime)?;
    let outbox = match &webhook {
        Some(_) => Some(Outbox::open(&store.outbox_dir()).map_err(runtime)?),
        None => None,
    };
    let launcher = Launcher {
        exe: std::env::current_exe()
            .context("cannot find the swarmpack binary to start runs with")
            .map_err(runtime)?,
        keys: std::fs::canonicalize(&args.keys).map_err(runtime)?,
        spool: store.spool_dir(),
    };
    let outbox_dir = store.outbox_dir();
    if let Some(url) = &args.cluster {
        cluster::bus::servers(url).map_err(|e| {
            bad_input(anyhow!(
                "--cluster {:?}: expected nats://HOST:PORT, or several separated by commas ({e})",
                cluster::bus::redacted(url)
            ))
        })?;
        let node = args.node.clone().unwrap_or_default();
        if !swarmpack::profile::is_path_safe_name(&node) {
            return Err(bad_input(anyhow!(
                "--node {node:?}: expected a name of letters, digits, '-' and '_'"
            )));
        }
        let cfg = ClusterConfig {
            url: url.clone(),
            node,
            capacity: args.capacity.unwrap_or(0),
            api: addr.to_string(),
            profiles: args.profiles.clone(),
        };
        // In a pool the node loop looks after the runs and lets events through.
        let controller = Arc::new(std::sync::Mutex::new(Controller::open(
            store, launcher, None,
        )));
        let api = Arc::new(api::Api {
            controller,
            token: args.api_token.trim().to_string(),
            profiles: args.profiles.clone(),
            origin_allow: args.origin_allow.clone(),
        });
        return cluster_node(cfg, api, outbox, webhook, &outbox_dir, addr, stop_requests);
    }
    let controller = Controller::open(store, launcher, outbox);
    let api = Arc::new(api::Api {
        controller: Arc::new(std::sync::Mutex::new(controller)),
        token: args.api_token.trim().to_string(),
        profiles: args.profiles.clone(),
        origin_allow: args.origin_allow.clone(),
    });

    // The supervisor: every half second, each match's events, exits and restarts.
    let watched = api.clone();
    every(
        "supervise",
        Duration::from_millis(500),
        &stop_requests,
        move || {
            swarmpack::sync::lock(&watched.controller).tick();
        },
    )?;
    judge_audiences(&api, &stop_requests, |_| true)?;
    deliver_webhooks(webhook, &outbox_dir, &stop_requests)?;
    super::http::serve_http(
        addr,
        api::router(api),
        "control API",
        "/v1/matches",
        stop_requests,
    )?;
    tracing::info!("controller stopped; its matches keep running (start it again to adopt them)");
    Ok(())
}

/// The audiences, every 10 s (a collector's step): the figures of each match with [qoe]
/// thresholds that `judged` admits, fetched outside the controller's lock, then judged.
fn judge_audiences(
    api: &Arc<api::Api>,
    stop_requests: &Arc<AtomicUsize>,
    judged: impl Fn(&str) -> bool + Send + 'static,
) -> Result<(), Failure> {
    let controller = api.controller.clone();
    every(
        "qoe",
        Duration::from_secs(QOE_EVERY_SECONDS),
        stop_requests,
        move || {
            let matches = swarmpack::sync::lock(&controller).judged_audiences();
            for (id, collector) in matches.into_iter().filter(|(id, _)| judged(id)) {
                if let Some(points) = swarmpack::control::audience::points(&collector, &id) {
                    swarmpack::sync::lock(&controller).judge_audience(&id, &points);
                }
            }
        },
    )
}

/// The webhooks, on their own thread: a slow receiver never holds up the API.
fn deliver_webhooks(
    webhook: Option<(String, Secret)>,
    outbox_dir: &std::path::Path,
    stop_requests: &Arc<AtomicUsize>,
) -> Result<(), Failure> {
    if let Some((url, secret)) = webhook {
        let outbox = Outbox::open(outbox_dir).map_err(runtime)?;
        tracing::info!("webhooks to {url}");
        every(
            "webhooks",
            Duration::from_millis(200),
            stop_requests,
            move || {
                swarmpack::control::deliver_due(&outbox, &url, &secret);
            },
        )?;
    }
    Ok(())
}

/// `control --cluster`: this node joins the pool (NATS unreachable is exit 1 at once), serves
/// the pool's API, and on a stop hands its matches to other nodes.
fn cluster_node(
    cfg: ClusterConfig,
    api: Arc<api::Api>,
    outbox: Option<Outbox>,
    webhook: Option<(String, Secret)>,
    outbox_dir: &std::path::Path,
    addr: std::net::SocketAddr,
    stop_requests: Arc<AtomicUsize>,
) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("swarmpack-nats")
        .enable_all()
        .build()
        .map_err(runtime)?;
    let (node, capacity) = (cfg.node.clone(), cfg.capacity);
    let url = cluster::bus::redacted(&cfg.url);
    let (shared, node_loop) = cluster::start(
        cfg,
        api.controller.clone(),
        outbox,
        &rt,
        stop_requests.clone(),
    )
    .map_err(|e| runtime(anyhow::Error::new(e)))?;
    tracing::info!("node {node} joined the pool at {url} with {capacity} capacity units");
    // The audience of a match is judged by the node running its primary; the policy it
    // sets reaches the standby through the pool.
    let judging = shared.clone();
    judge_audiences(&api, &stop_requests, move |id| judging.holds_primary(id))?;
    deliver_webhooks(webhook, outbox_dir, &stop_requests)?;
    let app = cluster::api::router(Arc::new(cluster::api::ClusterApi { local: api, shared }));
    let served = super::http::serve_http(
        addr,
        app,
        "control API (pool node)",
        "/v1/nodes",
        stop_requests,
    );
    if node_loop.join().is_err() {
        tracing::error!("the node loop panicked");
    }
    tracing::info!("node {node} left the pool");
    served
}

/// Runs `work` on a thread of its own (`swarmpack-{name}`), then again `period` after each
/// time, until a stop is requested.
fn every(
    name: &str,
    period: Duration,
    stop_requests: &Arc<AtomicUsize>,
    mut work: impl FnMut() + Send + 'static,
) -> Result<(), Failure> {
    let stop = stop_requests.clone();
    std::thread::Builder::new()
        .name(format!("swarmpack-{name}"))
        .spawn(move || {
            while stop.load(Ordering::Relaxed) == 0 {
                work();
                std::thread::sleep(period);
            }
        })
        .map(drop)
        .map_err(runtime)
}
