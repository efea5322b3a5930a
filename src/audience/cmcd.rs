//! CMCD v2 reports (CTA-5004-B) in the text encoding players post to a collector: one report
//! per line, each an RFC 8941 Structured Field Dictionary (`e=t,sid="…",ts=1700000000000,…`),
//! body type `application/cmcd`. Event mode carries `e` (the event) and `ts`; a response-mode
//! report (`e=rr`, or a line with `rc`/`ttfb`/`ttlb` and no `e`) describes one media response.
//!
//! Only the keys the audience figures use are read; the rest of a valid report is ignored, as
//! the spec asks of receivers. swarmpack's own keys follow the spec's custom-key rule (a
//! hyphenated, reverse-DNS prefix), for what CMCD has no key for; the player sends its running
//! totals, so a lost or repeated report loses or repeats nothing.
//!
//! A leaf: calls no other room.

use thiserror::Error;

/// The prefix of swarmpack's custom keys.
pub const PREFIX: &str = "io.swarmpack-";
/// Bytes from peers so far (running total, relayed ones included).
pub const PEER_BYTES: &str = "io.swarmpack-p2pb";
/// Bytes over HTTP so far (origin or CDN).
pub const HTTP_BYTES: &str = "io.swarmpack-httpb";
/// Of the peer bytes, those through a TURN relay (they cost like HTTP).
pub const RELAY_BYTES: &str = "io.swarmpack-relayb";
/// Peer segments refused by the signature check so far.
pub const REJECTED: &str = "io.swarmpack-rej";
/// Peers connected now.
pub const PEERS: &str = "io.swarmpack-peers";
/// Milliseconds behind live now.
pub const BEHIND_MS: &str = "io.swarmpack-behind";
/// Milliseconds from page open to the first frame (once it played).
pub const STARTUP_MS: &str = "io.swarmpack-startup";
/// Stalls after the first frame so far, and their milliseconds.
pub const STALLS: &str = "io.swarmpack-stalls";
pub const STALL_MS: &str = "io.swarmpack-stallms";
/// The rung playing (its profile name, such as `720p`).
pub const RUNG: &str = "io.swarmpack-rung";

/// The longest line a collector reads; a report is a few hundred bytes.
pub const MAX_LINE: usize = 4096;
/// The longest session ID taken (hls.js sends a UUID).
pub const MAX_SID: usize = 64;

/// Why a line is not a CMCD report.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("line {line}: longer than {MAX_LINE} bytes")]
    TooLong { line: usize },
    #[error("line {line}: not a Structured Field Dictionary ({why})")]
    Syntax { line: usize, why: String },
    #[error("line {line}: key {key:?}: expected {expected}")]
    Key {
        line: usize,
        key: &'static str,
        expected: &'static str,
    },
}

/// CMCD player states (`sta`) the figures use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayState {
    Starting,
    Playing,
    Seeking,
    Rebuffering,
    Paused,
    Waiting,
    Ended,
    FatalError,
    Quit,
    Preloading,
}

impl PlayState {
    fn from_token(t: &str) -> Option<PlayState> {
        Some(match t {
            "s" => PlayState::Starting,
            "p" => PlayState::Playing,
            "k" => PlayState::Seeking,
            "r" => PlayState::Rebuffering,
            "a" => PlayState::Paused,
            "w" => PlayState::Waiting,
            "e" => PlayState::Ended,
            "f" => PlayState::FatalError,
            "q" => PlayState::Quit,
            "d" => PlayState::Preloading,
            _ => return None,
        })
    }

    /// The session is over: the viewer left, the stream ended or the player failed.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PlayState::Ended | PlayState::FatalError | PlayState::Quit
        )
    }
}

/// What one report line says, in the units the figures use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// `sid`: the player's random session ID (required).
    pub sid: String,
    /// `cid`: the content ID; swarmpack's player sends `{match}/{angle}`.
    pub cid: Option<String>,
    /// `e`: the event (absent in a response-mode report sent without one).
    pub event: Option<String>,
    /// `sn`: the report's sequence number in its session.
    pub seq: Option<u64>,
    pub state: Option<PlayState>,
    /// `br`: the encoded bitrate of the media playing, kbit/s (first entry).
    pub bitrate_kbps: Option<u64>,
    /// Response mode: `rc`, `ttfb` (ms).
    pub response_code: Option<u16>,
    pub ttfb_ms: Option<u64>,
    pub peer_bytes: Option<u64>,
    pub http_bytes: Option<u64>,
    pub relay_bytes: Option<u64>,
    pub rejected: Option<u64>,
    pub peers: Option<u64>,
    pub behind_ms: Option<u64>,
    pub startup_ms: Option<u64>,
    pub stalls: Option<u64>,
    pub stall_ms: Option<u64>,
    pub rung: Option<String>,
}

impl Report {
    /// A response-mode report: `e=rr`, or a response's keys without an event.
    pub fn is_response(&self) -> bool {
        self.event.as_deref() == Some("rr")
            || (self.event.is_none() && (self.response_code.is_some() || self.ttfb_ms.is_some()))
    }
}

/// Every report of a body (`application/cmcd`: one per line; blank lines are skipped).
pub fn parse_body(body: &str) -> Result<Vec<Report>, ReportError> {
    body.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l, i + 1))
        .collect()
}

/// One report line; `line` numbers the errors.
pub fn parse_line(text: &str, line: usize) -> Result<Report, ReportError> {
    if text.len() > MAX_LINE {
        return Err(ReportError::TooLong { line });
    }
    let dict: sfv::Dictionary =
        sfv::Parser::new(text.trim())
            .parse()
            .map_err(|e| ReportError::Syntax {
                line,
                why: e.to_string(),
            })?;
    let field = Fields { dict: &dict, line };
    let sid = field
        .string("sid")?
        .filter(|s| !s.is_empty() && s.len() <= MAX_SID)
        .ok_or(ReportError::Key {
            line,
            key: "sid",
            expected: "a string of 1 to 64 characters (every report names its session)",
        })?;
    let state = match field.token("sta")? {
        None => None,
        Some(t) => Some(PlayState::from_token(&t).ok_or(ReportError::Key {
            line,
            key: "sta",
            expected: "a CMCD player state token (s, p, k, r, a, w, e, f, q or d)",
        })?),
    };
    Ok(Report {
        sid,
        cid: field.string("cid")?,
        event: field.token("e")?,
        seq: field.count("sn")?,
        state,
        bitrate_kbps: field.first_number("br")?,
        response_code: field
            .count("rc")?
            .map(|c| u16::try_from(c).unwrap_or(u16::MAX)),
        ttfb_ms: field.count("ttfb")?,
        peer_bytes: field.count(PEER_BYTES)?,
        http_bytes: field.count(HTTP_BYTES)?,
        relay_bytes: field.count(RELAY_BYTES)?,
        rejected: field.count(REJECTED)?,
        peers: field.count(PEERS)?,
        behind_ms: field.count(BEHIND_MS)?,
        startup_ms: field.count(STARTUP_MS)?,
        stalls: field.count(STALLS)?,
        stall_ms: field.count(STALL_MS)?,
        rung: field.string_or_token(RUNG)?,
    })
}

struct Fields<'a> {
    dict: &'a sfv::Dictionary,
    line: usize,
}

impl Fields<'_> {
    fn item(&self, key: &str) -> Option<&sfv::BareItem> {
        match self.dict.get(key)? {
            sfv::ListEntry::Item(item) => Some(&item.bare_item),
            sfv::ListEntry::InnerList(_) => None,
        }
    }

    fn wrong(&self, key: &'static str, expected: &'static str) -> ReportError {
        ReportError::Key {
            line: self.line,
            key,
            expected,
        }
    }

    /// The value of `key` as `get` reads it; absent is `None`, present but unreadable an error
    /// naming `expected`.
    fn read<T>(
        &self,
        key: &'static str,
        expected: &'static str,
        get: impl Fn(&sfv::BareItem) -> Option<T>,
    ) -> Result<Option<T>, ReportError> {
        if self.dict.get(key).is_none() {
            return Ok(None);
        }
        self.item(key)
            .and_then(get)
            .map(Some)
            .ok_or_else(|| self.wrong(key, expected))
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, ReportError> {
        self.read(key, "a string", |b| {
            b.as_string().map(|s| s.as_str().to_owned())
        })
    }

    fn token(&self, key: &'static str) -> Result<Option<String>, ReportError> {
        self.read(key, "a token", |b| {
            b.as_token().map(|t| t.as_str().to_owned())
        })
    }

    fn string_or_token(&self, key: &'static str) -> Result<Option<String>, ReportError> {
        self.read(key, "a string or token", |b| {
            b.as_string()
                .map(|s| s.as_str().to_owned())
                .or_else(|| b.as_token().map(|t| t.as_str().to_owned()))
        })
    }

    /// A non-negative number; a decimal is rounded (CMCD sends integers, players may not).
    fn count(&self, key: &'static str) -> Result<Option<u64>, ReportError> {
        self.read(key, "a non-negative number", non_negative)
    }

    /// The first number of an inner list (`br=(3200 128)`), or a plain number.
    fn first_number(&self, key: &'static str) -> Result<Option<u64>, ReportError> {
        match self.dict.get(key) {
            None => Ok(None),
            Some(sfv::ListEntry::Item(item)) => non_negative(&item.bare_item)
                .map(Some)
                .ok_or_else(|| self.wrong(key, "a non-negative number or a list of them")),
            Some(sfv::ListEntry::InnerList(list)) => match list.items.first() {
                None => Ok(None),
                Some(item) => non_negative(&item.bare_item)
                    .map(Some)
                    .ok_or_else(|| self.wrong(key, "a non-negative number or a list of them")),
            },
        }
    }
}

fn non_negative(b: &sfv::BareItem) -> Option<u64> {
    if let Some(i) = b.as_integer() {
        return u64::try_from(i64::from(i)).ok();
    }
    let d = f64::from(b.as_decimal()?);
    (d >= 0.0).then(|| d.round() as u64)
}
