//! One node of the pool, once a second: its own runs looked after (as a single controller
//! does), the roles it holds kept with heartbeats and compared with the pool's records
//! (stop when asked, leave when another node took over), new work taken while it has
//! capacity, and its entry written for `GET /v1/nodes`.
//!
//! The node's runs never depend on NATS: while it is away they go on, and the API answers
//! reads from the last state it saw.
//!
//! May call: `bus`, `record`, `records`, `request`, `supervise`, `events`, `sync`, `profile`.

use super::bus::{self, Bus};
use super::record::{self, ClusterMatch, NodeInfo, Role, Standing, Take, WorkItem};
use super::{Shared, now_ms};
use crate::control::Controller;
use crate::control::records::MatchState;
use async_nats::jetstream::{AckKind, Message};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A node takes no work until it has been connected this long, so that after a NATS outage
/// every node has written its entry again before anyone judges who is alive.
const SETTLE: Duration = Duration::from_secs(3);
/// How long a cleanly stopping node waits for others to take its roles over.
const HANDOVER: Duration = Duration::from_secs(20);

/// A role this node holds, and the item that stands for it.
struct Held {
    item: WorkItem,
    msg: Message,
    units: u32,
}

/// The match ID, role and event-id prefix of each role held, for the event gate.
pub type Roles = Arc<Mutex<HashMap<String, (Role, String)>>>;

pub struct Node {
    shared: Arc<Shared>,
    controller: Arc<Mutex<Controller>>,
    held: BTreeMap<(String, Role), Held>,
    roles: Roles,
    connected_since: Option<Instant>,
}

impl Node {
    pub fn new(shared: Arc<Shared>, controller: Arc<Mutex<Controller>>) -> Node {
        Node {
            roles: shared.roles.clone(),
            shared,
            controller,
            held: BTreeMap::new(),
            connected_since: None,
        }
    }

    fn bus(&self) -> &Bus {
        &self.shared.bus
    }

    fn me(&self) -> &str {
        &self.shared.cfg.node
    }

    fn load(&self) -> u32 {
        self.held.values().map(|h| h.units).sum()
    }

    /// One look at everything.
    pub async fn tick(&mut self) {
        crate::sync::lock(&self.controller).tick();
        if !self.bus().connected() {
            if self.connected_since.take().is_some() {
                tracing::warn!(
                    "NATS lost: the runs go on; the API answers reads from the last state and refuses writes (503)"
                );
            }
            self.shared.metrics.set_connected(false);
            return;
        }
        let since = *self.connected_since.get_or_insert_with(|| {
            tracing::info!("NATS connected");
            Instant::now()
        });
        self.shared.metrics.set_connected(true);
        self.refresh().await;
        for held in self.held.values() {
            if let Err(e) = bus::ack(&held.msg, AckKind::Progress).await {
                tracing::debug!("heartbeat of {}: {e}", held.item.subject());
            }
        }
        self.reconcile().await;
        self.orphans();
        if since.elapsed() >= SETTLE {
            self.take_work().await;
        }
        self.publish_entry().await;
    }

    async fn refresh(&self) {
        let matches = self.bus().all_matches().await;
        let nodes = self.bus().nodes().await;
        let mut cache = crate::sync::lock(&self.shared.cache);
        match matches {
            Ok(all) => {
                cache.matches = all
                    .into_iter()
                    .map(|m| (m.record.spec.match_id.clone(), m))
                    .collect();
            }
            Err(e) => tracing::warn!("{e}"),
        }
        match nodes {
            Ok(n) => cache.nodes = n,
            Err(e) => tracing::warn!("{e}"),
        }
    }

    fn cached(&self, id: &str) -> Option<ClusterMatch> {
        crate::sync::lock(&self.shared.cache)
            .matches
            .get(id)
            .cloned()
    }

    /// Each held role against the pool's record and the local run.
    async fn reconcile(&mut self) {
        let keys: Vec<(String, Role)> = self.held.keys().cloned().collect();
        for (id, role) in keys {
            let created = self.held[&(id.clone(), role)].item.created_ms;
            let pooled = self.cached(&id);
            match record::standing(pooled.as_ref(), role, created, self.me()) {
                Standing::Holds => {}
                Standing::TakenOver => {
                    let by = pooled.as_ref().and_then(|m| m.holder(role)).unwrap_or("?");
                    let why = format!("node {by} took the match's {} role over", role.name());
                    crate::sync::lock(&self.controller).leave(&id, &why);
                    self.release(&id, role, None).await;
                    continue;
                }
                Standing::Gone => {
                    crate::sync::lock(&self.controller)
                        .leave(&id, "the match is gone from the pool");
                    self.release(&id, role, Some(AckKind::Term)).await;
                    continue;
                }
            }
            let pooled = pooled.expect("held");
            let local = crate::sync::lock(&self.controller).get(&id).cloned();
            let Some(local) = local else {
                continue;
            };
            if pooled.record.stop_requested
                && matches!(local.state, MatchState::Starting | MatchState::Live)
            {
                crate::sync::lock(&self.controller).stop(&id);
            }
            let policy = crate::sync::lock(&self.controller).delivery_changed(&id);
            if let Some(d) = record::follow_delivery(&pooled, role, policy.as_ref())
                && let Err(e) = crate::sync::lock(&self.controller).set_delivery(&id, d)
            {
                tracing::error!("match {id}: the pool's delivery policy: {e}");
            }
            if role == Role::Primary {
                let depth = self.shared.spool_depth(&id);
                let mirrored = self
                    .bus()
                    .change_match(&id, |m| {
                        let before = serde_json::to_vec(m).ok();
                        record::mirror(m, &local, depth, policy.as_ref());
                        serde_json::to_vec(m).ok() != before
                    })
                    .await;
                match mirrored {
                    Ok(Some(m)) => self.shared.remember(&m),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("match {id}: {e}"),
                }
            }
            if !local.state.is_running() {
                tracing::info!(
                    "match {id}: its {} run is over ({:?})",
                    role.name(),
                    local.state
                );
                self.release(&id, role, Some(AckKind::Ack)).await;
            }
        }
    }

    /// Forgets a held role; `ack` says what NATS is told (None: nothing, the item is another
    /// node's now).
    async fn release(&mut self, id: &str, role: Role, ack: Option<AckKind>) {
        if let Some(held) = self.held.remove(&(id.to_string(), role))
            && let Some(kind) = ack
            && let Err(e) = bus::ack(&held.msg, kind).await
        {
            tracing::warn!("match {id}: {e}");
        }
        if !self.held.keys().any(|(m, _)| m == id) {
            crate::sync::lock(&self.roles).remove(id);
        }
    }

    /// Local runs of roles this node does not hold (a restart of this node adopted them):
    /// those another node holds now leave; its own wait for their item to come back.
    fn orphans(&mut self) {
        let running: Vec<String> = crate::sync::lock(&self.controller)
            .all()
            .filter(|r| r.state.is_running() && r.event_prefix.is_some())
            .map(|r| r.spec.match_id.clone())
            .collect();
        for id in running {
            if self.held.keys().any(|(m, _)| *m == id) {
                continue;
            }
            let pooled = self.cached(&id);
            let mine = pooled.as_ref().is_some_and(|m| {
                m.holder(Role::Primary) == Some(self.me())
                    || m.holder(Role::Standby) == Some(self.me())
            });
            if !mine {
                crate::sync::lock(&self.controller).leave(&id, "another node runs the match now");
            }
        }
    }

    /// Takes items while there is capacity.
    async fn take_work(&mut self) {
        loop {
            if self.load() >= self.shared.cfg.capacity {
                return;
            }
            let (item, msg) = match self.bus().fetch_work(Duration::from_millis(200)).await {
                Ok(Some(got)) => got,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("{e}");
                    return;
                }
            };
            if !self.take(item, msg).await {
                return;
            }
        }
    }

    fn alive(&self) -> impl Fn(&str) -> bool + use<> {
        let now = now_ms();
        let me = self.me().to_string();
        let alive: Vec<String> = crate::sync::lock(&self.shared.cache)
            .nodes
            .iter()
            .filter(|n| n.alive(now))
            .map(|n| n.node.clone())
            .collect();
        move |n: &str| n == me || alive.iter().any(|a| a == n)
    }

    /// What to do with one item; false to stop taking for this round.
    async fn take(&mut self, item: WorkItem, msg: Message) -> bool {
        let id = item.match_id.clone();
        let pooled = match self.bus().get_match(&id).await {
            Ok(p) => p.map(|v| v.value),
            Err(e) => {
                tracing::warn!("{e}");
                let _ = bus::ack(&msg, AckKind::Nak(Some(Duration::from_secs(1)))).await;
                return false;
            }
        };
        let alive = self.alive();
        let me = self.me().to_string();
        match record::decide(pooled.as_ref(), &item, &me, &alive) {
            Take::Drop => {
                let _ = bus::ack(&msg, AckKind::Term).await;
                true
            }
            Take::Elsewhere => {
                let _ = bus::ack(&msg, AckKind::Nak(Some(Duration::from_secs(1)))).await;
                false
            }
            Take::Keep => {
                let pooled = pooled.expect("decided on a record");
                let running = crate::sync::lock(&self.controller).is_running(&id);
                self.hold(item.clone(), msg, pooled.units, Some(&pooled));
                if !running {
                    self.start_local(&pooled, item.role);
                }
                true
            }
            Take::Promote => self.promote(item, msg).await,
            Take::Run => {
                self.run(item, msg, pooled.expect("decided on a record"))
                    .await
            }
        }
    }

    fn hold(&mut self, item: WorkItem, msg: Message, units: u32, pooled: Option<&ClusterMatch>) {
        let prefix = pooled.map(ClusterMatch::event_prefix).unwrap_or_default();
        crate::sync::lock(&self.roles).insert(item.match_id.clone(), (item.role, prefix));
        self.held.insert(
            (item.match_id.clone(), item.role),
            Held { item, msg, units },
        );
    }

    /// This node's standby becomes the primary: no new run, no gap; the standby role goes
    /// back on the queue for another node.
    async fn promote(&mut self, item: WorkItem, msg: Message) -> bool {
        let id = item.match_id.clone();
        let me = self.me().to_string();
        let alive = self.alive();
        let changed = self
            .bus()
            .change_match(&id, |m| {
                if record::decide(Some(m), &item, &me, &alive) != Take::Promote {
                    return false;
                }
                record::promote(m, &me);
                true
            })
            .await;
        let pooled = match changed {
            Ok(Some(m)) if m.primary.as_deref() == Some(me.as_str()) => m,
            other => {
                if let Err(e) = other {
                    tracing::warn!("match {id}: {e}");
                }
                let _ = bus::ack(&msg, AckKind::Nak(Some(Duration::from_secs(1)))).await;
                return false;
            }
        };
        tracing::warn!(
            "match {id}: the primary's node is gone; this node's standby run is the primary now"
        );
        self.shared.metrics.took_over();
        if let Some(standby) = self.held.remove(&(id.clone(), Role::Standby)) {
            let _ = bus::ack(&standby.msg, AckKind::Ack).await;
        }
        self.hold(item, msg, pooled.units, Some(&pooled));
        let again = WorkItem {
            match_id: id.clone(),
            role: Role::Standby,
            created_ms: pooled.created_ms,
        };
        if let Err(e) = self
            .bus()
            .publish_work(&again, &bus::dedupe_id(&again, pooled.takeovers))
            .await
        {
            tracing::error!("match {id}: cannot queue a new standby: {e}");
        }
        true
    }

    /// Starts a run of the item's role here.
    async fn run(&mut self, item: WorkItem, msg: Message, pooled: ClusterMatch) -> bool {
        let id = item.match_id.clone();
        if self.load() + pooled.units > self.shared.cfg.capacity {
            // Too big for what is left here: another node (or this one, later).
            let _ = bus::ack(&msg, AckKind::Nak(Some(Duration::from_secs(1)))).await;
            return false;
        }
        let me = self.me().to_string();
        let alive = self.alive();
        let took = self
            .bus()
            .change_match(&id, |m| {
                if record::decide(Some(m), &item, &me, &alive) != Take::Run {
                    return false;
                }
                record::take(m, item.role, &me);
                true
            })
            .await;
        let pooled = match took {
            Ok(Some(m)) if m.holder(item.role) == Some(me.as_str()) => m,
            other => {
                if let Err(e) = other {
                    tracing::warn!("match {id}: {e}");
                }
                let _ = bus::ack(&msg, AckKind::Nak(Some(Duration::from_secs(1)))).await;
                return false;
            }
        };
        if pooled.takeovers > 0 && item.role == Role::Primary {
            self.shared.metrics.took_over();
        }
        self.hold(item.clone(), msg, pooled.units, Some(&pooled));
        self.start_local(&pooled, item.role);
        true
    }

    /// Starts the local run of `role` of the match: always `--redundant` (another node may
    /// run it too, or have run it until a moment ago), with the pool's end instant.
    fn start_local(&self, pooled: &ClusterMatch, role: Role) {
        let mut spec = pooled.record.spec.clone();
        let id = spec.match_id.clone();
        // Each node reads the profile from its own --profiles.
        spec.profile_file = self
            .shared
            .cfg
            .profiles
            .join(format!("{}.toml", spec.profile));
        let mut args = vec!["--redundant".to_string()];
        if let Some(end) = &pooled.end_at {
            args.extend(["--end-at".to_string(), end.clone()]);
        }
        let created = crate::sync::lock(&self.controller)
            .create_with(spec, args, Some(pooled.event_prefix()))
            .map(|r| r.pid);
        match created {
            Ok(pid) => tracing::info!(
                "match {id}: {} role taken here (pid {pid:?}, {} units, load {}/{})",
                role.name(),
                pooled.units,
                self.load(),
                self.shared.cfg.capacity
            ),
            Err(e) => tracing::error!("match {id}: {e}"),
        }
    }

    async fn publish_entry(&self) {
        let info = NodeInfo {
            node: self.me().to_string(),
            capacity: self.shared.cfg.capacity,
            load: self.load(),
            matches: self.held.keys().cloned().collect(),
            api: self.shared.cfg.api.clone(),
            seen_ms: now_ms(),
        };
        self.shared.metrics.set_load(info.load, info.matches.len());
        if let Err(e) = self.bus().put_node(&info).await {
            tracing::warn!("{e}");
        }
    }

    /// A clean stop: every held role goes back on the queue at once; once other nodes hold
    /// them (or after [`HANDOVER`]), this node's runs leave. A role nobody took keeps its
    /// run going, as a single controller's stop does.
    pub async fn release_all(&mut self) {
        if self.held.is_empty() || !self.bus().connected() {
            let _ = self.bus().remove_node(self.me()).await;
            return;
        }
        tracing::info!("handing {} role(s) to other nodes", self.held.len());
        for held in self.held.values() {
            if let Err(e) = bus::ack(&held.msg, AckKind::Nak(None)).await {
                tracing::warn!("{e}");
            }
        }
        let _ = self.bus().remove_node(self.me()).await;
        let until = Instant::now() + HANDOVER;
        let keys: Vec<(String, Role)> = self.held.keys().cloned().collect();
        let mut waiting = keys.clone();
        while !waiting.is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut still = Vec::new();
            for (id, role) in waiting {
                let holder = self
                    .bus()
                    .get_match(&id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|v| v.value.holder(role).map(str::to_string));
                match holder {
                    Some(h) if h != self.me() => {
                        let why = format!("this node stopped; node {h} runs the match now");
                        crate::sync::lock(&self.controller).leave(&id, &why);
                    }
                    _ => still.push((id, role)),
                }
            }
            waiting = still;
        }
        for (id, role) in waiting {
            tracing::warn!(
                "match {id}: no node took the {} role within {HANDOVER:?}; its run goes on here",
                role.name()
            );
        }
    }
}
