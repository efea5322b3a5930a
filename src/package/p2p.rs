//! `{match}/p2p.json`: how the fans' browsers find each other. The swarm ID depends on the
//! match alone, so it survives a restart of `run`; each angle and rung is its own swarm under
//! it (`{swarm}/{angle}`, and p2p-media-loader adds the rung's stream). It also names the ICE
//! servers (STUN as written; TURN with `"credentials": "rest"`, whose per-viewer credentials
//! the player asks the `ice` URL for, with its viewer token), and the player's delivery policy
//! (profile `[delivery]`: latency against offload), and where the players report what fans
//! experience (profile `[qoe]`). The run signs it
//! (`p2p.json.sig`): the player takes none of it without the match key's word.
//!
//! May call: `profile`.

use crate::profile::{Delivery, IceServer, Profile};
use serde::{Deserialize, Serialize};

/// The document, as written and as read back (by the key server, for its TURN URLs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct P2pDoc {
    pub format: u32,
    #[serde(rename = "match")]
    pub match_id: String,
    pub swarm: String,
    /// WebTorrent (`ws(s)://`) trackers.
    pub trackers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
    /// `{key_uri_base}/{match}/ice`: TURN credentials for a viewer token (only with TURN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ice: Option<String>,
    /// The player's policy (profile `[delivery]`, defaults filled in). Absent in documents
    /// written before it existed: the player then keeps its built-in defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Where players post their CMCD v2 reports: `{telemetry}/{match}` (profile `[qoe]`).
    /// Absent: telemetry off (or a document written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<String>,
}

impl P2pDoc {
    /// The document for `match_id` under `profile`.
    pub fn new(match_id: &str, profile: &Profile) -> P2pDoc {
        let turn = profile.ice_servers.iter().any(IceServer::is_turn);
        P2pDoc {
            format: 1,
            match_id: match_id.to_string(),
            swarm: format!("swarmpack/{match_id}"),
            trackers: profile.webrtc_trackers.clone(),
            ice_servers: profile.ice_servers.clone(),
            ice: turn.then(|| ice_url(&profile.encryption.key_uri_base, match_id)),
            delivery: Some(profile.delivery.clone()),
            telemetry: profile.qoe.collector.clone(),
        }
    }

    /// The document with another delivery policy (changed during the match).
    pub fn with_delivery(mut self, delivery: Delivery) -> P2pDoc {
        self.delivery = Some(delivery);
        self
    }

    /// The bytes published (and signed).
    pub fn to_json(&self) -> String {
        let doc = serde_json::to_string_pretty(self).expect("a P2pDoc always serializes");
        format!("{doc}\n")
    }

    /// Reads a published document; `None` when it is not one.
    pub fn parse(bytes: &[u8]) -> Option<P2pDoc> {
        serde_json::from_slice(bytes).ok()
    }

    /// Reads a published document only when `sig` (`p2p.json.sig`) is the match key's
    /// Ed25519 signature of its exact bytes.
    pub fn verified(bytes: &[u8], sig: &[u8], public_key: &[u8]) -> Option<P2pDoc> {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
            .verify(bytes, sig)
            .ok()?;
        P2pDoc::parse(bytes)
    }
}

/// Where a viewer asks for its TURN credentials: `{key_uri_base}/{match}/ice`.
pub fn ice_url(key_uri_base: &str, match_id: &str) -> String {
    format!("{}/{match_id}/ice", key_uri_base.trim_end_matches('/'))
}
