//! `[[tracker]]` tables: BitTorrent trackers for the torrents and the seeder, WebTorrent
//! (`ws(s)://`) trackers for the fans' browsers.
//!
//! May call: its parent room (`profile`) only.

use super::{Checker, ProfileError, RawTracker, Tracker};

impl Checker<'_> {
    /// The BitTorrent trackers and the WebTorrent trackers, in profile order.
    pub(super) fn trackers(
        &self,
        raw: &[RawTracker],
    ) -> Result<(Vec<Tracker>, Vec<String>), ProfileError> {
        let mut trackers = Vec::new();
        let mut webrtc = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            let url = self.url(
                &format!("tracker[{i}].announce"),
                &t.announce,
                &["http", "https", "udp", "ws", "wss"],
            )?;
            if matches!(url.scheme(), "ws" | "wss") {
                if t.whitelist_api.is_some() || t.whitelist_token_env.is_some() {
                    return Err(self.invalid(
                        format!("tracker[{i}].whitelist_api"),
                        "no whitelist for a ws(s):// tracker (browsers announce to it themselves)",
                        "a whitelist",
                    ));
                }
                webrtc.push(t.announce.clone());
                continue;
            }
            if let Some(api) = &t.whitelist_api {
                self.url(
                    &format!("tracker[{i}].whitelist_api"),
                    api,
                    &["http", "https"],
                )?;
            }
            if let Some(var) = &t.whitelist_token_env {
                let ok = !var.is_empty()
                    && var
                        .bytes()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
                if !ok || t.whitelist_api.is_none() {
                    return Err(self.invalid(
                        format!("tracker[{i}].whitelist_token_env"),
                        "the name of an environment variable (A-Z, 0-9, _), with whitelist_api set",
                        format!("{var:?}"),
                    ));
                }
            }
            trackers.push(Tracker {
                announce: t.announce.clone(),
                whitelist_api: t
                    .whitelist_api
                    .as_ref()
                    .map(|a| a.trim_end_matches('/').to_string()),
                whitelist_token_env: t.whitelist_token_env.clone(),
            });
        }
        Ok((trackers, webrtc))
    }
}
