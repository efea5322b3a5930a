//! `[[ice_server]]` tables: the STUN and TURN servers the fans' browsers use to reach each
//! other through home routers (RFC 7064 `stun:`/`stuns:`, RFC 7065 `turn:`/`turns:` URIs).
//!
//! STUN entries go into the signed `p2p.json` as they are. TURN entries carry no secret in the
//! profile: `credentials = "rest"` says the key server mints short-lived credentials per viewer
//! from `turn.secret` (coturn's `use-auth-secret`), at `GET {key_uri_base}/{match}/ice`.
//!
//! May call: its parent room (`profile`) only.

use super::{Checker, ProfileError};
use serde::{Deserialize, Serialize};

/// One ICE server entry, as the browser's `RTCIceServer` takes it (without credentials).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    /// `Some("rest")` for TURN: credentials minted by the key server per viewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

/// The one credential scheme there is: coturn's REST API shared secret.
pub const REST: &str = "rest";

impl IceServer {
    /// A TURN entry whose credentials the key server mints.
    pub fn is_turn(&self) -> bool {
        self.credentials.as_deref() == Some(REST)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIceServer {
    urls: Vec<String>,
    credentials: Option<String>,
}

const EXPECTED_URI: &str = "stun:HOST[:PORT], stuns:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp] \
     or turns:HOST[:PORT][?transport=tcp] (RFC 7064, RFC 7065)";

/// Whether `uri` is a STUN or TURN URI a browser accepts; returns its scheme.
fn ice_uri_scheme(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") {
        return None;
    }
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    match (scheme, query) {
        (_, None) => {}
        ("turn", Some("transport=udp" | "transport=tcp")) | ("turns", Some("transport=tcp")) => {}
        _ => return None,
    }
    // Host (a name, an IPv4 address or a bracketed IPv6 address) and an optional port.
    let (host_ok, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6.split_once(']')?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (addr.parse::<std::net::Ipv6Addr>().is_ok(), port)
        }
        None => {
            let (host, port) = match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            let ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
            (ok, port)
        }
    };
    let port_ok = port.is_none_or(|p| {
        p.bytes().all(|c| c.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|p| p > 0)
    });
    (host_ok && port_ok).then_some(scheme)
}

impl Checker<'_> {
    /// The ICE servers, in profile order.
    pub(super) fn ice_servers(&self, raw: &[RawIceServer]) -> Result<Vec<IceServer>, ProfileError> {
        let mut servers = Vec::with_capacity(raw.len());
        for (i, s) in raw.iter().enumerate() {
            let field = |name: &str| format!("ice_server[{i}].{name}");
            if s.urls.is_empty() {
                return Err(self.invalid(field("urls"), "at least one STUN or TURN URI", "[]"));
            }
            if let Some(c) = &s.credentials
                && c != REST
            {
                return Err(self.invalid(
                    field("credentials"),
                    "\"rest\" (short-lived credentials minted per viewer by the key server from \
                     turn.secret; no password belongs in a profile)",
                    format!("{c:?}"),
                ));
            }
            let rest = s.credentials.is_some();
            for (j, uri) in s.urls.iter().enumerate() {
                let scheme = ice_uri_scheme(uri).ok_or_else(|| {
                    self.invalid(
                        format!("ice_server[{i}].urls[{j}]"),
                        EXPECTED_URI,
                        format!("{uri:?}"),
                    )
                })?;
                let turn = scheme.starts_with("turn");
                if turn != rest {
                    let expected = if turn {
                        "credentials = \"rest\" in a table with turn: or turns: URIs (TURN needs \
                         credentials; the key server mints them per viewer)"
                    } else {
                        "only turn: or turns: URIs in a table with credentials (STUN needs none: \
                         put stun: URIs in a table of their own)"
                    };
                    return Err(self.invalid(
                        format!("ice_server[{i}].urls[{j}]"),
                        expected,
                        format!("{uri:?}"),
                    ));
                }
            }
            servers.push(IceServer {
                urls: s.urls.clone(),
                credentials: s.credentials.clone(),
            });
        }
        Ok(servers)
    }
}

#[cfg(test)]
mod tests {
    use super::ice_uri_scheme;

    #[test]
    fn browser_ice_uris_are_accepted_and_others_named() {
        for ok in [
            "stun:stun.example:3478",
            "stun:198.18.0.10",
            "stuns:stun.example:5349",
            "turn:turn.example:3478?transport=udp",
            "turn:turn.example?transport=tcp",
            "turns:turn.example:5349",
            "turns:turn.example:443?transport=tcp",
            "stun:[2001:db8::1]:3478",
        ] {
            assert!(ice_uri_scheme(ok).is_some(), "{ok}");
        }
        for bad in [
            "stun://stun.example:3478",
            "http://stun.example",
            "stun:",
            "stun:host:0",
            "stun:host:99999",
            "stun:host:34a",
            "stun:ho st",
            "stun:host?transport=udp",
            "turns:host?transport=udp",
            "turn:host?transport=sctp",
            "turn:user@host",
            "stun:[not-v6]:3478",
        ] {
            assert!(ice_uri_scheme(bad).is_none(), "{bad}");
        }
    }
}
