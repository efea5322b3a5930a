//! What the pool shares, as it is kept in JetStream (pure: no I/O here).
//!
//! - [`ClusterMatch`]: one match, in the `swarmpack-matches` KV bucket under its ID, changed
//!   only by revision-checked updates. Its `record` is the state the primary's controller
//!   keeps (mirrored by [`mirror`]); beside it, which node holds which role.
//! - [`WorkItem`]: one role of one match to run, on the `swarmpack-work` work-queue stream.
//!   [`decide`] says what a node does with an item it took.
//! - [`NodeInfo`]: a node's capacity and load, in the `swarmpack-nodes` bucket, written every
//!   second; a node whose entry is older than [`DEAD_AFTER_MS`] is dead.
//!
//! May call: `records`, `request`, `events`, `profile`.

use super::super::records::{MatchRecord, MatchState};
use crate::events::{Event, EventType};
use serde::{Deserialize, Serialize};

/// A node not heard from for this long is dead: its matches may be taken over.
pub const DEAD_AFTER_MS: i64 = 6_000;

/// Which of a match's two runs an item stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The run whose state the API shows and whose events become webhooks.
    Primary,
    /// `[control] standby = true`: a second, redundant run on another node.
    Standby,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }
}

/// One match as the pool keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterMatch {
    /// The primary's view: request, state, runs, newest window, feeds, last error.
    pub record: MatchRecord,
    /// Unix milliseconds of the request: this incarnation of the match (a match started again
    /// under the same ID is a new one, and items of the old one are dropped).
    pub created_ms: i64,
    /// RFC 3339: where a match with a duration ends, the same for every run (`run --end-at`).
    pub end_at: Option<String>,
    /// Capacity units a run of it takes ([`units`]).
    pub units: u32,
    /// `[control] standby`.
    pub standby: bool,
    /// The nodes holding each role, if any.
    pub primary: Option<String>,
    pub standby_node: Option<String>,
    /// Times a node took a role over from another.
    pub takeovers: u32,
    /// The primary's spool depth.
    pub spool_depth: usize,
    /// The players' policy the primary's run is under, once changed (`PATCH …/delivery`,
    /// `[qoe.on_degraded]`): every other run of the match is put under it too.
    #[serde(default)]
    pub delivery: Option<crate::profile::Delivery>,
}

impl ClusterMatch {
    pub fn holder(&self, role: Role) -> Option<&str> {
        match role {
            Role::Primary => self.primary.as_deref(),
            Role::Standby => self.standby_node.as_deref(),
        }
    }

    fn holder_mut(&mut self, role: Role) -> &mut Option<String> {
        match role {
            Role::Primary => &mut self.primary,
            Role::Standby => &mut self.standby_node,
        }
    }

    /// The prefix of this incarnation's stable event ids: the same on every node, so two
    /// nodes announcing one event send it under one id (and only one of them sends it).
    pub fn event_prefix(&self) -> String {
        format!("evt_{}_{}", self.record.spec.match_id, self.created_ms)
    }

    /// The roles this match needs run.
    pub fn roles(&self) -> Vec<Role> {
        if self.standby {
            vec![Role::Primary, Role::Standby]
        } else {
            vec![Role::Primary]
        }
    }
}

/// Capacity units of a match: one per rung per angle (a 1080p ladder of four rungs for two
/// angles is 8; a machine of this project's reference size holds about that).
pub fn units(profile: &crate::profile::Profile, angles: usize) -> u32 {
    (profile.rungs.len() * angles).max(1) as u32
}

/// One role of one match to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    #[serde(rename = "match")]
    pub match_id: String,
    pub role: Role,
    pub created_ms: i64,
}

impl WorkItem {
    /// The stream subject of the item.
    pub fn subject(&self) -> String {
        format!("swarmpack.work.{}.{}", self.match_id, self.role.name())
    }
}

/// What a node does with an item it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Start a run (and hold the item while it lasts).
    Run,
    /// It already runs the match's standby: that run becomes the primary, no new run.
    Promote,
    /// Keep the run it already has (its own item, delivered again).
    Keep,
    /// Leave it for another node: this one runs the other role, or the holder is alive.
    Elsewhere,
    /// Nothing to run: the match is over, stopped, gone or started again since.
    Drop,
}

/// What node `me` does with `item`, given the match's record and which nodes are alive.
pub fn decide(
    record: Option<&ClusterMatch>,
    item: &WorkItem,
    me: &str,
    alive: &dyn Fn(&str) -> bool,
) -> Take {
    let Some(m) = record else {
        return Take::Drop;
    };
    if m.created_ms != item.created_ms
        || !m.record.state.is_running()
        || m.record.stop_requested
        || (item.role == Role::Standby && !m.standby)
    {
        return Take::Drop;
    }
    let other = match item.role {
        Role::Primary => Role::Standby,
        Role::Standby => Role::Primary,
    };
    match m.holder(item.role) {
        Some(h) if h == me => return Take::Keep,
        // A node that is alive keeps its role: its item came back after a NATS outage or a
        // slow heartbeat, not because it died.
        Some(h) if alive(h) => return Take::Elsewhere,
        _ => {}
    }
    if m.holder(other) == Some(me) {
        return match item.role {
            Role::Primary => Take::Promote,
            Role::Standby => Take::Elsewhere,
        };
    }
    Take::Run
}

/// `me` takes `role` (counted as a takeover when another node held it).
pub fn take(m: &mut ClusterMatch, role: Role, me: &str) {
    if m.holder(role).is_some_and(|h| h != me) {
        m.takeovers += 1;
    }
    *m.holder_mut(role) = Some(me.to_string());
}

/// The standby on `me` becomes the primary; the standby role is free for another node.
pub fn promote(m: &mut ClusterMatch, me: &str) {
    if m.primary.as_deref() != Some(me) {
        m.takeovers += 1;
    }
    m.primary = Some(me.to_string());
    m.standby_node = None;
}

/// Whether node `me` still holds `role` of the match, as the pool sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// It holds it: run on (and stop if asked).
    Holds,
    /// Another node took it over: leave at once, without ending the match.
    TakenOver,
    /// The match is gone or started again since: leave too.
    Gone,
}

pub fn standing(record: Option<&ClusterMatch>, role: Role, created_ms: i64, me: &str) -> Standing {
    match record {
        Some(m) if m.created_ms != created_ms => Standing::Gone,
        None => Standing::Gone,
        Some(m) => match m.holder(role) {
            Some(h) if h != me => Standing::TakenOver,
            _ => Standing::Holds,
        },
    }
}

/// Copies what the primary's controller learnt into the pool's record, with the players'
/// policy its run is under if it was changed. The API's own fields (the request, a stop
/// asked for) stay as the pool has them, and an end the pool recorded is never undone.
pub fn mirror(
    m: &mut ClusterMatch,
    local: &MatchRecord,
    spool_depth: usize,
    delivery: Option<&crate::profile::Delivery>,
) {
    if let Some(d) = delivery {
        m.delivery = Some(d.clone());
    }
    let r = &mut m.record;
    if r.state.is_running() {
        r.state = match (local.state, r.stop_requested) {
            (MatchState::Starting | MatchState::Live, true) => MatchState::Stopping,
            (state, _) => state,
        };
    }
    r.runs = r.runs.max(local.runs);
    r.crashes = local.crashes;
    r.pid = local.pid;
    r.last_error.clone_from(&local.last_error);
    r.newest_window = local.newest_window.max(r.newest_window);
    r.feeds.clone_from(&local.feeds);
    r.live_announced |= local.live_announced;
    m.spool_depth = spool_depth;
}

/// Whether a run of the match must be put under the pool's policy: it has one, and the
/// run's differs (the primary's own change wins, as [`mirror`] sends it to the pool).
pub fn follow_delivery<'a>(
    m: &'a ClusterMatch,
    role: Role,
    local: Option<&crate::profile::Delivery>,
) -> Option<&'a crate::profile::Delivery> {
    let pooled = m.delivery.as_ref()?;
    match (role, local) {
        (Role::Primary, Some(_)) => None,
        (_, Some(l)) if l == pooled => None,
        _ => Some(pooled),
    }
}

/// Whether a run's event goes out as a webhook from the node holding `role`, and its id
/// there. Windows and the match's own milestones are the match's, whichever run saw them:
/// both roles send them under one stable id (the pool lets the first through). Feed and
/// origin events are what one machine saw: the primary's alone.
pub fn cluster_event(prefix: &str, role: Role, event: &Event) -> Option<String> {
    let window = event.data["window"].as_u64();
    match (event.kind, window) {
        (EventType::WindowPublished, Some(w)) => Some(format!("{prefix}_w{w}")),
        (EventType::MatchEnded, _) => Some(format!("{prefix}_match-ended")),
        _ if role == Role::Primary => Some(event.id.clone()),
        _ => None,
    }
}

/// One node as the pool sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node: String,
    pub capacity: u32,
    /// Units of the roles it holds.
    pub load: u32,
    /// The roles it holds: match ID and role.
    pub matches: Vec<(String, Role)>,
    /// Its API address.
    pub api: String,
    /// Unix milliseconds it wrote this.
    pub seen_ms: i64,
}

impl NodeInfo {
    pub fn alive(&self, now_ms: i64) -> bool {
        now_ms - self.seen_ms <= DEAD_AFTER_MS
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
