//! `swarmpack token`: a viewer token bound to a match, a session, a validity and key periods.
//!
//! The binary's edge: may call any room of the library (through `swarmpack::`).

use super::{Failure, bad_input};
use anyhow::anyhow;
use std::path::Path;
use swarmpack::keys::{Claims, KeyDir};
use swarmpack::profile::Profile;

pub(super) fn token(
    keys: &Path,
    match_id: String,
    session: String,
    ttl: &str,
    profile: Option<&Path>,
    periods: Option<&str>,
) -> Result<(), Failure> {
    let keys = KeyDir::load(keys).map_err(bad_input)?;
    swarmpack::match_id::MatchId::parse(&match_id)
        .map_err(|e| bad_input(anyhow!("--match {match_id:?}: {e}")))?;
    if session.is_empty() || session.len() > 128 {
        return Err(bad_input(anyhow!(
            "--session: expected 1 to 128 characters"
        )));
    }
    let now = swarmpack::keys::server::system_now();
    let exp = humantime::parse_duration(ttl)
                .ok()
                .filter(|d| d.as_secs() > 0)
                .and_then(|d| now.checked_add(d.as_secs()))
                .filter(|exp| *exp < 1 << 40)
                .ok_or_else(|| {
                    bad_input(anyhow!(
                        "--ttl {ttl:?}: expected a duration such as 90s, 30m, 4h or 2d (at most a few thousand years)"
                    ))
                })?;
    let periods = match (profile, periods) {
        (Some(path), _) => {
            let profile = Profile::load(path).map_err(bad_input)?;
            let dvr = profile.segment.dvr_secs.ceil() as u64;
            swarmpack::keys::token::periods_overlapping(
                &profile.timeline(),
                now.saturating_sub(dvr),
                exp,
            )
        }
        (None, Some(text)) => parse_periods(text).ok_or_else(|| {
            bad_input(anyhow!(
                "--periods {text:?}: expected FIRST-LAST, two window numbers with FIRST <= LAST"
            ))
        })?,
        (None, None) => unreachable!("clap requires --profile or --periods"),
    };
    let claims = Claims {
        v: swarmpack::keys::token::VERSION,
        match_id,
        session,
        nbf: now,
        exp,
        periods,
    };
    println!(
        "{}",
        swarmpack::keys::token::issue(keys.token_secret(), &claims)
    );
    Ok(())
}

/// `FIRST-LAST` → `[FIRST, LAST]`, FIRST <= LAST.
fn parse_periods(text: &str) -> Option<[u64; 2]> {
    let (a, b) = text.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some([a, b])
}
