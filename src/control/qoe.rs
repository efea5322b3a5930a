//! The players' delivery policy during a match: changed by hand (`PATCH …/delivery`) or by
//! the profile's `[qoe]` thresholds on the audience's figures (`qoe.degraded` /
//! `qoe.recovered`). The policy goes to the match's run (`run --delivery`), which publishes
//! it in a new signed `p2p.json`.
//!
//! May call: `audience`, `events`, `private_fs`, `profile`.

use super::Controller;
use crate::events::EventType;
use serde_json::json;

/// Why a delivery change was refused (`PATCH /v1/matches/{id}/delivery`).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryRefused {
    #[error("no such match")]
    NoMatch,
    #[error("{0}")]
    Invalid(#[source] crate::profile::ProfileError),
    #[error("the match's profile: {0}")]
    Profile(#[source] crate::profile::ProfileError),
    #[error("cannot hand the policy to the run: {0}")]
    Io(#[source] std::io::Error),
}

impl Controller {
    /// The match's delivery policy with `changes` (JSON `[delivery]` keys) applied, handed to
    /// its run (`run --delivery`), which publishes it in a new signed `p2p.json`. Returns the
    /// whole policy now in force, or why the changes were refused.
    pub fn change_delivery(
        &mut self,
        id: &str,
        changes: &serde_json::Value,
    ) -> Result<crate::profile::Delivery, DeliveryRefused> {
        use std::io::Write;
        let r = self.matches.get(id).ok_or(DeliveryRefused::NoMatch)?;
        let profile = crate::profile::Profile::load(&r.spec.profile_file)
            .map_err(DeliveryRefused::Profile)?;
        let file = self.store.match_dir(id).join("delivery.jsonl");
        let current = self.delivery_in_force(id, &profile);
        let what = std::path::Path::new("PATCH body");
        let new = crate::profile::delivery::patched(&current, changes, &profile.segment, what)
            .map_err(DeliveryRefused::Invalid)?;
        let mut line = serde_json::to_vec(&new).expect("a policy serialises");
        line.push(b'\n');
        // One write: the run never reads half a line as a whole one.
        crate::private_fs::private_append(&file)
            .and_then(|mut f| f.write_all(&line))
            .map_err(DeliveryRefused::Io)?;
        tracing::info!(
            "match {id}: delivery policy now behind_live {} s, urgent {} s, early_fetchers {}",
            new.behind_live,
            new.urgent,
            new.early_fetchers
        );
        Ok(new)
    }

    /// The players' policy in force: the newest change, or the profile's `[delivery]`.
    fn delivery_in_force(
        &self,
        id: &str,
        profile: &crate::profile::Profile,
    ) -> crate::profile::Delivery {
        self.delivery_changed(id)
            .unwrap_or(profile.delivery.clone())
    }

    /// The newest policy handed to the match's run, if it was ever changed.
    pub fn delivery_changed(&self, id: &str) -> Option<crate::profile::Delivery> {
        let file = self.store.match_dir(id).join("delivery.jsonl");
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.lines().rev().find_map(|l| serde_json::from_str(l).ok()))
    }

    /// Hands `policy` as it is to the match's run (`control --cluster`: the policy another
    /// node's run of the match is under).
    pub fn set_delivery(
        &mut self,
        id: &str,
        policy: &crate::profile::Delivery,
    ) -> Result<(), DeliveryRefused> {
        let changes = serde_json::to_value(policy).expect("a policy serialises");
        self.change_delivery(id, &changes).map(drop)
    }

    /// The running matches whose profile sets `[qoe]` thresholds, with their collector.
    pub fn judged_audiences(&self) -> Vec<(String, String)> {
        self.matches
            .values()
            .filter(|r| r.state.is_running())
            .filter_map(|r| {
                let qoe = crate::profile::Profile::load(&r.spec.profile_file)
                    .ok()?
                    .qoe;
                let collector = qoe.collector.filter(|_| qoe.thresholds.watched())?;
                Some((r.spec.match_id.clone(), collector))
            })
            .collect()
    }

    /// Judges the match's audience (the collector's `points`) against its `[qoe]` thresholds:
    /// on a crossing, `qoe.degraded` (and `[qoe.on_degraded]` applied to the players' policy)
    /// or `qoe.recovered` (and the policy from before put back).
    pub fn judge_audience(&mut self, id: &str, points: &[crate::audience::history::Point]) {
        let Some(r) = self.matches.get(id).filter(|r| r.state.is_running()) else {
            return;
        };
        let Ok(profile) = crate::profile::Profile::load(&r.spec.profile_file) else {
            return;
        };
        let j = crate::audience::qoe::judge(&profile.qoe.thresholds, points);
        if j.degraded == r.qoe_degraded {
            return;
        }
        let before = self.delivery_in_force(id, &profile);
        let mut data = json!({
            "reasons": j.reasons,
            "rebuffer_ratio": j.rebuffer_ratio,
            "peer_share": j.peer_share,
            "viewers": j.viewers,
        });
        let (kind, policy) = match j.degraded {
            true => (EventType::QoeDegraded, profile.qoe.on_degraded.clone()),
            false => (EventType::QoeRecovered, r.qoe_before.clone()),
        };
        if let Some(policy) = policy {
            let changes = serde_json::to_value(&policy).expect("a policy serialises");
            match self.change_delivery(id, &changes) {
                Ok(d) => data["delivery"] = json!(d),
                Err(e) => tracing::error!("match {id}: {e}"),
            }
        }
        tracing::warn!("match {id}: {kind:?}: {}", data["reasons"]);
        self.own_event(id, kind, data);
        let r = self.matches.get_mut(id).expect("present");
        r.qoe_degraded = j.degraded;
        r.qoe_before = j.degraded.then_some(before);
        if let Err(e) = self.store.save(r) {
            tracing::error!("{e}");
        }
    }
}
