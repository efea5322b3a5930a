//! `swarmpack control --cluster`: one control API over a pool of machines, on NATS
//! JetStream.
//!
//! - Match records and idempotency keys live in KV buckets, written create-if-absent or
//!   revision-checked ([`bus`]), so two nodes taking the same request or the same match at
//!   once make one match.
//! - Each match is one work item on a work-queue stream (two with `[control] standby`). A
//!   node takes items while it has capacity, keeps them with in-progress heartbeats, and
//!   releases them on a clean stop ([`node`]). A node that dies stops heartbeating; NATS
//!   gives its items to another node, which starts the run with `--redundant` and joins the
//!   match on the origin. A standby on a node that is still alive becomes the primary.
//! - Every node answers the whole API ([`api`]). Events become webhooks on one node each,
//!   under ids that are the same on every node ([`record::cluster_event`]).
//!
//! May call (the whole room): `records`, `request`, `supervise`, `webhook`, `api`, `events`,
//! `profile`, `hex`, `sync`.

pub mod api;
pub mod bus;
mod metrics;
mod node;
pub mod record;

use crate::control::Controller;
use crate::control::webhook::Outbox;
use crate::events::Event;
use bus::Bus;
pub use metrics::NodeMetrics;
use record::{ClusterMatch, NodeInfo};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a node looks at everything (and heartbeats its items).
pub const TICK: Duration = Duration::from_secs(1);

/// `--cluster`, `--node`, `--capacity`, and what the node needs besides.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub url: String,
    pub node: String,
    pub capacity: u32,
    /// This node's API address, for `GET /v1/nodes` and for forwarding requests to it.
    pub api: String,
    pub profiles: PathBuf,
}

/// The last state this node saw: what the API answers reads from while NATS is away.
#[derive(Default)]
pub struct Cache {
    pub matches: BTreeMap<String, ClusterMatch>,
    pub nodes: Vec<NodeInfo>,
}

/// What the node loop and the API share.
pub struct Shared {
    pub bus: Bus,
    pub cfg: ClusterConfig,
    pub cache: Mutex<Cache>,
    pub metrics: NodeMetrics,
    spool: PathBuf,
    /// The roles this node holds now.
    roles: node::Roles,
}

impl Shared {
    /// Keeps `m` as the last state seen of its match.
    pub fn remember(&self, m: &ClusterMatch) {
        crate::sync::lock(&self.cache)
            .matches
            .insert(m.record.spec.match_id.clone(), m.clone());
    }

    /// Whether this node holds the match's primary (whose run the API's changes and the
    /// audience's judgement go to).
    pub fn holds_primary(&self, id: &str) -> bool {
        crate::sync::lock(&self.roles)
            .get(id)
            .is_some_and(|(role, _)| *role == record::Role::Primary)
    }

    pub fn spool_depth(&self, id: &str) -> usize {
        super::api::spool_depth(&self.spool, id)
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Events waiting for the node loop to let them through (see [`gate`]).
type Pending = Arc<Mutex<Vec<Event>>>;

/// The controller's gate in a pool: each event gets its stable id (or is dropped, when it is
/// another run's to tell) and waits for the node loop, which lets through the first node
/// to claim it.
fn gate(roles: node::Roles, pending: Pending) -> crate::control::EventGate {
    Box::new(move |id, mut event| {
        let (role, prefix) = crate::sync::lock(&roles).get(id).cloned()?;
        if !event.id.starts_with(&format!("{prefix}_")) {
            event.id = record::cluster_event(&prefix, role, &event)?;
        }
        crate::sync::lock(&pending).push(event);
        None
    })
}

/// Connects to the pool and starts this node's loop on a thread of its own; it runs until
/// a stop is requested, then hands its roles over. An unreachable NATS is an error at once.
pub fn start(
    cfg: ClusterConfig,
    controller: Arc<Mutex<Controller>>,
    outbox: Option<Outbox>,
    rt: &tokio::runtime::Runtime,
    stop_requests: Arc<AtomicUsize>,
) -> Result<(Arc<Shared>, std::thread::JoinHandle<()>), bus::BusError> {
    let bus = rt.block_on(Bus::connect(&cfg.url, &cfg.node))?;
    let spool = crate::sync::lock(&controller).store().spool_dir();
    let shared = Arc::new(Shared {
        bus,
        metrics: NodeMetrics::new(&cfg.node, cfg.capacity),
        cfg,
        cache: Mutex::new(Cache::default()),
        spool,
        roles: node::Roles::default(),
    });
    let pending = Pending::default();
    crate::sync::lock(&controller).set_gate(gate(shared.roles.clone(), pending.clone()));
    let mut node = node::Node::new(shared.clone(), controller);
    let handle = rt.handle().clone();
    let looped = shared.clone();
    let thread = std::thread::Builder::new()
        .name("swarmpack-node".into())
        .spawn(move || {
            let mut outbox = outbox;
            while stop_requests.load(Ordering::Relaxed) == 0 {
                handle.block_on(node.tick());
                handle.block_on(send_events(&looped, &pending, outbox.as_mut()));
                std::thread::sleep(TICK);
            }
            handle.block_on(node.release_all());
        })
        .expect("a thread starts");
    Ok((shared, thread))
}

/// Puts the waiting events in the outbox: each one only if this node is the first to claim
/// its id. While NATS is away they go out unclaimed (at least once beats never).
async fn send_events(shared: &Shared, pending: &Pending, outbox: Option<&mut Outbox>) {
    let events = std::mem::take(&mut *crate::sync::lock(pending));
    let Some(outbox) = outbox else {
        return;
    };
    for event in events {
        let first = match shared.bus.claim_event(&event.id, &shared.cfg.node).await {
            Ok(first) => first,
            Err(e) => {
                tracing::warn!("event {}: {e}; sent without asking the pool", event.id);
                true
            }
        };
        if !first {
            shared.metrics.event_sent_elsewhere();
            continue;
        }
        if let Err(e) = outbox.enqueue(event) {
            tracing::error!("{e}");
        }
    }
}
