//! What fans experience, from their players' CMCD v2 reports ([`cmcd`]): per match, angle and
//! rung, the figures of [`figures`]. Pure: reports and the time in, figures out; the HTTP
//! collector (`POST /cmcd/{match}`) is in [`crate::collect`].
//!
//! Sessions are the players' random `sid`s, never an address or a token. Each keeps a few
//! numbers (its running totals, so that a report repeated or lost changes nothing, and its
//! place); a session silent for [`Limits::session_timeout`] is forgotten, and when the table
//! holds [`Limits::max_sessions`] the one silent longest goes first (counted). A report
//! changes only its own session's numbers, and a session's report rate is limited, so one
//! client cannot stand for many viewers without making up many sessions, which are limited in
//! turn ([`Limits::new_sessions_per_second`]).
//!
//! May call (the whole room): `metrics`, `profile`.

pub mod cmcd;
pub mod figures;
pub mod history;
pub mod qoe;

#[cfg(test)]
mod tests;

use cmcd::{PlayState, Report};
use figures::{Ending, Figures, Place, Source};
use history::{History, Point};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The label of an angle or rung a session has not named (yet).
const UNKNOWN: &str = "unknown";

/// Bounds on what the collector keeps and takes.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_sessions: usize,
    /// Seconds without a report after which a session is over (players report every 10 s).
    pub session_timeout: f64,
    /// Report lines a session may send per second on average, and in a burst.
    pub reports_per_second: f64,
    pub report_burst: f64,
    /// New sessions per second across the collector, and in a burst.
    pub new_sessions_per_second: f64,
    pub new_session_burst: f64,
    /// Distinct (angle, rung) label pairs per match; more are counted as angle/rung "other".
    pub max_places_per_match: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 100_000,
            session_timeout: 45.0,
            reports_per_second: 2.0,
            report_burst: 30.0,
            new_sessions_per_second: 2000.0,
            new_session_burst: 20_000.0,
            max_places_per_match: 64,
        }
    }
}

/// Why reports were refused (the collector answers 400 or 429).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error(
        "report {line}: cid {cid:?} is not \"{match_id}/ANGLE\" (a report goes to its own match)"
    )]
    OtherMatch {
        line: usize,
        cid: String,
        match_id: String,
    },
    #[error(
        "{refused} of {lines} report lines over the session's rate or the new-session rate; try later"
    )]
    Flood { lines: usize, refused: usize },
}

/// A token bucket: `rate` per second, up to `burst`.
#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    at: f64,
}

impl Bucket {
    fn full(burst: f64, now: f64) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn take(&mut self, rate: f64, burst: f64, now: f64) -> bool {
        self.tokens = (self.tokens + (now - self.at).max(0.0) * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Running totals a player reports; the figures take their increase.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    peer: u64,
    http: u64,
    relay: u64,
    rejected: u64,
    stalls: u64,
    stall_ms: u64,
}

#[derive(Debug)]
struct Session {
    place: Place,
    stamp: u64,
    last_seen: f64,
    last_seq: Option<u64>,
    started: bool,
    failed: bool,
    /// Counted in `sessions` (once its rung is known, or when it ends without one).
    counted: bool,
    totals: Totals,
    bucket: Bucket,
}

/// The audience of every match this collector hears from.
pub struct Audience {
    limits: Limits,
    figures: Figures,
    sessions: HashMap<(String, String), Session>,
    /// Sessions by last report (stamps rise with time): the oldest first.
    by_age: BTreeMap<u64, (String, String)>,
    next_stamp: u64,
    places: HashMap<String, HashSet<(String, String)>>,
    new_sessions: Bucket,
    /// Viewers now, per match, and each match's last 10 minutes.
    viewers: HashMap<String, u64>,
    history: History,
}

impl Audience {
    pub fn new(limits: Limits) -> Audience {
        let new_sessions = Bucket::full(limits.new_session_burst, 0.0);
        Audience {
            limits,
            figures: Figures::new(),
            sessions: HashMap::new(),
            by_age: BTreeMap::new(),
            next_stamp: 0,
            places: HashMap::new(),
            new_sessions,
            viewers: HashMap::new(),
            history: History::default(),
        }
    }

    pub fn figures(&self) -> &Figures {
        &self.figures
    }

    /// Sessions held now.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The last 10 minutes of `match_id`'s audience at `now`, in steps of [`history::STEP`].
    pub fn history(&mut self, match_id: &str, now: f64) -> Vec<Point> {
        self.expire(now);
        let viewers = self.viewers.get(match_id).copied().unwrap_or(0);
        self.history.points(match_id, now, viewers)
    }

    /// The reports of one request for `match_id`, at `now` (seconds, any monotonic origin).
    /// Every line is checked first, so a request with a bad line changes nothing; lines over a
    /// rate are dropped (and counted), the rest counted in. Returns the lines taken.
    pub fn accept(
        &mut self,
        match_id: &str,
        reports: &[Report],
        now: f64,
    ) -> Result<usize, Refused> {
        self.expire(now);
        let mut angles = Vec::with_capacity(reports.len());
        for (i, r) in reports.iter().enumerate() {
            angles.push(angle_of(match_id, r).map_err(|cid| Refused::OtherMatch {
                line: i + 1,
                cid,
                match_id: match_id.to_owned(),
            })?);
        }
        let mut refused = 0;
        for (r, angle) in reports.iter().zip(angles) {
            if !self.one(match_id, angle, r, now) {
                refused += 1;
            }
        }
        self.figures.report("flood", refused as u64);
        if refused > 0 {
            return Err(Refused::Flood {
                lines: reports.len(),
                refused,
            });
        }
        Ok(reports.len())
    }

    /// One report; false when a rate refused it. A report without a `cid` or a rung keeps
    /// its session's.
    fn one(&mut self, match_id: &str, angle: Option<String>, r: &Report, now: f64) -> bool {
        let key = (match_id.to_owned(), r.sid.clone());
        let held = self.sessions.get(&key).map(|s| s.place.clone());
        let unknown = || UNKNOWN.to_string();
        let place = place_of(
            &mut self.places,
            self.limits.max_places_per_match,
            match_id,
            angle
                .or_else(|| held.as_ref().map(|p| p.angle.clone()))
                .unwrap_or_else(unknown),
            r.rung
                .clone()
                .or_else(|| held.as_ref().map(|p| p.rung.clone()))
                .unwrap_or_else(unknown),
        );
        if held.is_none() {
            let (rate, burst) = (
                self.limits.new_sessions_per_second,
                self.limits.new_session_burst,
            );
            if !self.new_sessions.take(rate, burst, now) {
                return false;
            }
            self.open(key.clone(), place.clone(), now);
        }
        let limits = &self.limits;
        let stamp = self.next_stamp;
        let s = self.sessions.get_mut(&key).expect("opened above");
        if !s
            .bucket
            .take(limits.reports_per_second, limits.report_burst, now)
        {
            return false;
        }
        // A batch sent again (the player retries after 429 or 5xx) counts once. Response-mode
        // reports may come from a target of their own, numbered apart.
        let numbered = r.seq.is_some() && !r.is_response();
        if numbered && r.seq <= s.last_seq {
            self.figures.report("duplicate", 1);
            return true;
        }
        if numbered {
            s.last_seq = r.seq;
        }
        self.next_stamp += 1;
        self.by_age.remove(&s.stamp);
        self.by_age.insert(stamp, key.clone());
        s.stamp = stamp;
        if place != s.place {
            self.figures.viewers.get_or_create(&s.place).dec();
            self.figures.viewers.get_or_create(&place).inc();
            s.place = place;
        }
        // A player's first report comes before it knows its rung.
        if !s.counted && s.place.rung != UNKNOWN {
            s.counted = true;
            self.figures.sessions.get_or_create(&s.place).inc();
        }
        let since = (now - s.last_seen).clamp(0.0, limits.session_timeout);
        s.last_seen = now;
        let seen = count(&self.figures, s, r, since);
        let viewers = self.viewers.get(match_id).copied().unwrap_or(0);
        let step = self.history.step(match_id, now, viewers);
        if let Some(startup) = seen.startup {
            step.startup(startup);
        }
        if let Some(behind) = seen.behind {
            step.behind(behind);
        }
        step.watched(seen.watched, seen.stalled);
        step.bytes(seen.peer, seen.relay, seen.http);
        self.figures.report("accepted", 1);
        if r.state.is_some_and(PlayState::is_final) {
            self.close(&key, "ended");
        }
        true
    }

    fn open(&mut self, key: (String, String), place: Place, now: f64) {
        if self.sessions.len() >= self.limits.max_sessions
            && let Some((_, oldest)) = self.by_age.pop_first()
        {
            self.close(&oldest, "evicted");
        }
        self.figures.viewers.get_or_create(&place).inc();
        *self.viewers.entry(key.0.clone()).or_default() += 1;
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.by_age.insert(stamp, key.clone());
        let bucket = Bucket::full(self.limits.report_burst, now);
        self.sessions.insert(
            key,
            Session {
                place,
                stamp,
                last_seen: now,
                last_seq: None,
                started: false,
                failed: false,
                counted: false,
                totals: Totals::default(),
                bucket,
            },
        );
    }

    /// Forgets sessions silent for the timeout.
    pub fn expire(&mut self, now: f64) {
        while let Some((_, key)) = self.by_age.first_key_value() {
            let key = key.clone();
            match self.sessions.get(&key) {
                Some(s) if now - s.last_seen <= self.limits.session_timeout => break,
                _ => self.close(&key, "expired"),
            }
        }
    }

    fn close(&mut self, key: &(String, String), how: &'static str) {
        let Some(s) = self.sessions.remove(key) else {
            return;
        };
        self.by_age.remove(&s.stamp);
        self.figures.viewers.get_or_create(&s.place).dec();
        if let Some(n) = self.viewers.get_mut(&key.0) {
            *n = n.saturating_sub(1);
        }
        if !s.counted {
            self.figures.sessions.get_or_create(&s.place).inc();
        }
        if !s.started && !s.failed {
            self.figures
                .exits_before_start
                .get_or_create(&s.place)
                .inc();
        }
        self.figures.endings.get_or_create(&Ending { how }).inc();
    }
}

/// The angle a report's `cid` names (`{match}/{angle}`; `None` without a cid); a cid of
/// another match is refused.
fn angle_of(match_id: &str, r: &Report) -> Result<Option<String>, String> {
    let Some(cid) = &r.cid else {
        return Ok(None);
    };
    match cid.split_once('/') {
        Some((m, angle)) if m == match_id => {
            Ok(Some(if crate::profile::is_path_safe_name(angle) {
                angle.to_owned()
            } else {
                "unknown".into()
            }))
        }
        _ => Err(cid.clone()),
    }
}

/// The labels of a report's place, within the match's cap of distinct places.
fn place_of(
    places: &mut HashMap<String, HashSet<(String, String)>>,
    cap: usize,
    match_id: &str,
    angle: String,
    rung: String,
) -> Place {
    let rung = if crate::profile::is_path_safe_name(&rung) {
        rung
    } else {
        UNKNOWN.into()
    };
    let seen = places.entry(match_id.to_owned()).or_default();
    let pair = (angle, rung);
    let (angle, rung) = if seen.contains(&pair) || seen.len() < cap {
        seen.insert(pair.clone());
        pair
    } else {
        ("other".into(), "other".into())
    };
    Place {
        r#match: match_id.to_owned(),
        angle,
        rung,
    }
}

/// What one report added, for the match's running step.
#[derive(Default)]
struct Seen {
    startup: Option<f64>,
    behind: Option<f64>,
    watched: f64,
    stalled: f64,
    peer: u64,
    relay: u64,
    http: u64,
}

/// A report's contribution to the figures: increases of the running totals, one observation
/// of each "now" figure, the startup once.
fn count(f: &Figures, s: &mut Session, r: &Report, since: f64) -> Seen {
    let mut seen = Seen::default();
    let p = &s.place;
    if s.started {
        f.watch_seconds.get_or_create(p).inc_by(since);
        seen.watched = since;
    }
    if let Some(ms) = r.startup_ms
        && !s.started
    {
        s.started = true;
        seen.startup = Some(ms as f64 / 1000.0);
        f.startup.get_or_create(p).observe(ms as f64 / 1000.0);
    }
    if r.state == Some(PlayState::FatalError) && !s.started && !s.failed {
        s.failed = true;
        f.start_failures.get_or_create(p).inc();
    }
    // What a player can have received since its last report, at most: 50 MB a second (and
    // 50 MB more), and stalled time no longer than the time that passed.
    let bytes = 50_000_000 * (since.ceil() as u64 + 1);
    let ms = 1000 * (since.ceil() as u64 + 1);
    let t = &mut s.totals;
    let source = |source| Source {
        place: p.clone(),
        source,
    };
    // Only what rose: a session's first reports (before it knows its rung) add no empty series.
    let add = |family: &Family<Source, Counter>, source, n: u64| {
        if n > 0 {
            family.get_or_create(&source).inc_by(n);
        }
    };
    seen.peer = rise(&mut t.peer, r.peer_bytes, bytes);
    seen.http = rise(&mut t.http, r.http_bytes, bytes);
    seen.relay = rise(&mut t.relay, r.relay_bytes, bytes);
    add(&f.bytes, source("peer"), seen.peer);
    add(&f.bytes, source("http"), seen.http);
    add(&f.bytes, source("relay"), seen.relay);
    let rejected = rise(&mut t.rejected, r.rejected, 10_000);
    if rejected > 0 {
        f.rejected.get_or_create(p).inc_by(rejected);
    }
    let stalls = rise(&mut t.stalls, r.stalls, 10_000);
    if stalls > 0 {
        f.rebuffer_events.get_or_create(p).inc_by(stalls);
    }
    let stalled = rise(&mut t.stall_ms, r.stall_ms, ms);
    seen.stalled = stalled as f64 / 1000.0;
    if stalled > 0 {
        f.rebuffer_seconds
            .get_or_create(p)
            .inc_by(stalled as f64 / 1000.0);
    }
    if let Some(ms) = r.behind_ms {
        seen.behind = Some(ms as f64 / 1000.0);
        f.behind_live.get_or_create(p).observe(ms as f64 / 1000.0);
    }
    if let Some(kbps) = r.bitrate_kbps {
        f.bitrate.get_or_create(p).observe(kbps as f64);
    }
    if r.is_response()
        && let Some(ms) = r.ttfb_ms
    {
        f.ttfb.get_or_create(p).observe(ms as f64 / 1000.0);
    }
    seen
}

/// How much a running total rose since the last report, at most `cap` (a total that fell,
/// such as a player restarted under the same sid, goes on from its new value).
fn rise(last: &mut u64, now: Option<u64>, cap: u64) -> u64 {
    let Some(now) = now else { return 0 };
    let up = now.saturating_sub(*last).min(cap);
    *last = now;
    up
}
