//! The long-running HTTP commands: `keyserver` and `serve`.
//!
//! The binary's edge: may call any room of the library (through `swarmpack::`).

use super::{Failure, bad_input, runtime};
use anyhow::{Context, anyhow};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use swarmpack::audience::Limits;
use swarmpack::collect::{self, Collector};
use swarmpack::keys::KeyDir;
use swarmpack::keys::server::{KeyService, router};

pub(super) fn keyserver(
    keys: &std::path::Path,
    listen: &str,
    profile: Option<&std::path::Path>,
    stop_requests: Arc<AtomicUsize>,
) -> Result<(), Failure> {
    let keys = KeyDir::load(keys).map_err(bad_input)?;
    let addr = listen_addr(listen, "127.0.0.1:8081")?;
    let mut service = key_service(&keys);
    if let Some(path) = profile {
        let servers = swarmpack::profile::Profile::load(path)
            .map_err(bad_input)?
            .ice_servers;
        if servers.iter().any(|s| s.is_turn()) && keys.turn_secret().is_none() {
            return Err(bad_input(anyhow!(
                "--profile {}: names TURN servers (credentials = \"rest\"), but {} has no {}; \
                 run `swarmpack keygen --out {}` to add one",
                path.display(),
                keys.dir.display(),
                swarmpack::keys::key_dir::TURN_SECRET,
                keys.dir.display()
            )));
        }
        service = service.with_ice(keys.turn_secret(), Box::new(move |_| Some(servers.clone())));
    }
    drop(keys);
    let service = Arc::new(service);
    // Telemetry for the matches this server gave viewers keys for.
    let watched = service.clone();
    let collector = Collector::new(
        Limits::default(),
        Box::new(move |m: &str| watched.has_viewers(m)),
    );
    let app = router(service).merge(collect::routes(Arc::new(collector), true));
    serve_http(
        addr,
        app,
        "key server",
        "/keys/{match}/{period}",
        stop_requests,
    )
}

pub(super) fn serve(
    origin: &std::path::Path,
    keys: &std::path::Path,
    listen: &str,
    dev_tokens: bool,
    public_dev_tokens: bool,
    spool: Option<&std::path::Path>,
    stop_requests: Arc<AtomicUsize>,
) -> Result<(), Failure> {
    if !origin.is_dir() {
        return Err(bad_input(anyhow!(
            "--origin {}: not a directory (expected the directory a file:// origin names)",
            origin.display()
        )));
    }
    let keys = KeyDir::load(keys).map_err(bad_input)?;
    keys.ensure_outside(origin).map_err(bad_input)?;
    let addr = listen_addr(listen, "127.0.0.1:8080")?;
    if dev_tokens && !addr.ip().is_loopback() && !public_dev_tokens {
        return Err(bad_input(anyhow!(
            "--dev-tokens with --listen {addr}: anyone who reaches this address could watch; \
             listen on loopback (127.0.0.1), or add --public-dev-tokens if that is what you want"
        )));
    }
    let dev = dev_tokens.then(|| swarmpack::serve::DevTokens {
        token_secret: swarmpack::keys::token::dev_secret(keys.token_secret()),
        origin: origin.to_path_buf(),
        now: Box::new(swarmpack::keys::server::system_now),
    });
    if dev.is_some() {
        tracing::warn!(
            "--dev-tokens: GET /dev-token gives anyone who reaches {addr} a viewer token"
        );
    }
    if !swarmpack::serve::player::has_p2p() {
        tracing::warn!(
            "this build has no p2p-media-loader: the player at /watch cannot load (run scripts/setup, then rebuild)"
        );
    }
    if !swarmpack::serve::player::has_hls() {
        tracing::warn!(
            "this build has no hls.js: neither /watch nor the preview page can play (run scripts/setup, then rebuild)"
        );
    }
    let service = match dev_tokens {
        true => key_service(&keys).accepting_dev_tokens(),
        false => key_service(&keys),
    }
    .with_ice(
        keys.turn_secret(),
        swarmpack::serve::ice_from_origin(origin.to_path_buf(), keys.public_key()),
    );
    let pinned = swarmpack::serve::player::PinnedKey(keys.public_pem());
    let collector = Collector::new(Limits::default(), matches_on(origin.to_path_buf()));
    let app = swarmpack::serve::router(origin, spool, Arc::new(service), dev, pinned)
        .merge(collect::routes(Arc::new(collector), true));
    drop(keys);
    serve_http(
        addr,
        app,
        "origin, key server and preview page",
        "/",
        stop_requests,
    )
}

/// The matches of a local origin (a directory per match).
fn matches_on(origin: std::path::PathBuf) -> collect::Known {
    Box::new(move |m: &str| origin.join(m).is_dir())
}

/// `swarmpack collect`: the CMCD collector on its own, for audiences one server's collector
/// should not carry. With `origin` (a directory), only its matches; without, any match name
/// up to [`collect::ANY_MATCHES`] of them.
pub(super) fn collect(
    listen: &str,
    metrics: Option<&str>,
    origin: Option<&std::path::Path>,
    stop_requests: Arc<AtomicUsize>,
) -> Result<(), Failure> {
    let addr = listen_addr(listen, "0.0.0.0:8082")?;
    let metrics_addr = metrics
        .map(|m| listen_addr(m, "127.0.0.1:9102"))
        .transpose()?;
    let known = match origin {
        Some(dir) if !dir.is_dir() => {
            return Err(bad_input(anyhow!(
                "--origin {}: not a directory (expected the directory a file:// origin names)",
                dir.display()
            )));
        }
        Some(dir) => matches_on(dir.to_path_buf()),
        None => collect::any_match(),
    };
    let collector = Arc::new(Collector::new(Limits::default(), known));
    // With --metrics, /metrics only there (an operator's network, not the fans').
    let app = collect::routes(collector.clone(), metrics_addr.is_none());
    if let Some(maddr) = metrics_addr {
        let runtime_ = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(runtime)?;
        let listener = runtime_
            .block_on(tokio::net::TcpListener::bind(maddr))
            .with_context(|| format!("cannot listen on {maddr}"))
            .map_err(runtime)?;
        tracing::info!("audience metrics on http://{maddr}/metrics");
        std::thread::spawn(move || {
            runtime_.block_on(swarmpack::metrics::serve(listener, move || {
                collector.render()
            }))
        });
    }
    serve_http(addr, app, "CMCD collector", "/cmcd/{match}", stop_requests)
}

fn listen_addr(listen: &str, example: &str) -> Result<std::net::SocketAddr, Failure> {
    listen.parse().map_err(|_| {
        bad_input(anyhow!(
            "--listen {listen:?}: expected ADDRESS:PORT, e.g. {example}"
        ))
    })
}

fn key_service(keys: &KeyDir) -> KeyService {
    KeyService::new(
        keys.content_secret(),
        keys.token_secret(),
        Box::new(swarmpack::keys::server::system_now),
    )
}

/// Serves `app` on `addr` until the first SIGINT/SIGTERM.
pub(super) fn serve_http(
    addr: std::net::SocketAddr,
    app: axum::Router,
    what: &str,
    path: &str,
    stop_requests: Arc<AtomicUsize>,
) -> Result<(), Failure> {
    let runtime_ = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(runtime)?;
    runtime_.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))
            .map_err(runtime)?;
        tracing::info!("{what} on http://{addr}{path}");
        let stopping = what.to_string();
        let stop = async move {
            while stop_requests.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            tracing::info!("{stopping} stopping");
        };
        swarmpack::http::serve(listener, app, stop, swarmpack::http::Limits::standard()).await;
        Ok(())
    })
}
