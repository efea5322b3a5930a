use super::cmcd::{PlayState, ReportError, parse_body, parse_line};
use super::*;

/// A value of the rendered figures: the sample line starting with `series` (name and labels).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

const CUP: &str = "{match=\"cup\",angle=\"main\",rung=\"720p\"}";

/// A time-interval report of session `sid` in match cup, angle main, rung 720p.
fn report(sid: &str, sn: u64, extra: &str) -> String {
    format!(
        "cid=\"cup/main\",e=t,io.swarmpack-rung=\"720p\",sid=\"{sid}\",sn={sn},ts=1764806400000,v=2{extra}"
    )
}

fn take(a: &mut Audience, body: &str, now: f64) -> Result<usize, Refused> {
    a.accept("cup", &parse_body(body).unwrap(), now)
}

// Written by hand from CTA-5004-B (section "Event mode": one report per line, each a
// Structured Field Dictionary; tokens bare, strings quoted, br an inner list), not by any code
// of ours or hls.js's.
const BY_HAND: &str = "br=(3200 128),cid=\"cup/main\",e=ps,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",sn=0,sta=p,ts=1764806400123,v=2\n\
e=t,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",sn=1,bl=(21300),pt=12000,ts=1764806410123,v=2,io.swarmpack-p2pb=1048576,io.swarmpack-httpb=524288,io.swarmpack-behind=7400,io.swarmpack-startup=1850\n\
\n\
e=rr,rc=200,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",ts=1764806410200,ttfb=42,ttlb=180,url=\"https://cdn.example/cup/main/720p/100.ts\",v=2\n";

#[test]
fn a_report_written_by_hand_to_the_spec_is_read() {
    let r = parse_body(BY_HAND).unwrap();
    assert_eq!(r.len(), 3, "the blank line is no report");
    assert_eq!(r[0].sid, "6e2fb550-c457-11e9-bb97-0800200c9a66");
    assert_eq!(r[0].cid.as_deref(), Some("cup/main"));
    assert_eq!(r[0].event.as_deref(), Some("ps"));
    assert_eq!(r[0].state, Some(PlayState::Playing));
    assert_eq!(r[0].bitrate_kbps, Some(3200));
    assert_eq!(r[1].peer_bytes, Some(1_048_576));
    assert_eq!(r[1].http_bytes, Some(524_288));
    assert_eq!(r[1].behind_ms, Some(7400));
    assert_eq!(r[1].startup_ms, Some(1850));
    assert_eq!(r[1].seq, Some(1));
    assert!(r[2].is_response() && !r[1].is_response());
    assert_eq!((r[2].response_code, r[2].ttfb_ms), (Some(200), Some(42)));

    let mut a = Audience::new(Limits::default());
    assert_eq!(a.accept("cup", &r, 100.0), Ok(3));
    let text = a.figures().render();
    let main = "{match=\"cup\",angle=\"main\",rung=\"unknown\"}";
    assert_eq!(
        value(&text, &format!("swarmpack_audience_viewers{main}")),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("swarmpack_audience_startup_seconds_count{main}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("swarmpack_audience_startup_seconds_sum{main}")
        ),
        1.85
    );
    assert_eq!(
        value(
            &text,
            "swarmpack_audience_bytes_total{match=\"cup\",angle=\"main\",rung=\"unknown\",source=\"peer\"}"
        ),
        1_048_576.0
    );
    assert_eq!(
        value(
            &text,
            &format!("swarmpack_audience_ttfb_seconds_count{main}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "swarmpack_audience_reports_total{outcome=\"accepted\"}"
        ),
        3.0
    );
}

#[test]
fn malformed_lines_are_refused_naming_the_line_and_key() {
    let cases = [
        (
            "e=t,sid=\"a\"\ne=t,sid=\"unterminated",
            2,
            "Structured Field",
        ),
        ("e=t,ts=1", 1, "sid"),
        ("e=t,sid=\"a\",sta=zz", 1, "sta"),
        ("e=t,sid=\"a\",io.swarmpack-p2pb=-5", 1, "io.swarmpack-p2pb"),
        ("e=t,sid=\"a\",cid=12", 1, "cid"),
        ("E=t,sid=\"a\"", 1, "Structured Field"),
    ];
    for (body, line, named) in cases {
        let e = parse_body(body).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("line {line}:")),
            "{body:?}: {text}"
        );
        assert!(text.contains(named), "{body:?}: {text}");
    }
    let long = format!("e=t,sid=\"{}\"", "x".repeat(5000));
    assert_eq!(parse_line(&long, 4), Err(ReportError::TooLong { line: 4 }));
    let sid65 = format!("e=t,sid=\"{}\"", "x".repeat(65));
    assert!(parse_line(&sid65, 1).is_err(), "a sid longer than 64");
}

#[test]
fn running_totals_count_once_and_a_session_counts_only_for_itself() {
    let mut a = Audience::new(Limits::default());
    let body = format!(
        "{}\n{}",
        report(
            "one",
            0,
            ",io.swarmpack-p2pb=1000,io.swarmpack-httpb=500,io.swarmpack-startup=900"
        ),
        report(
            "one",
            1,
            ",io.swarmpack-p2pb=3000,io.swarmpack-httpb=600,io.swarmpack-startup=900"
        )
    );
    assert_eq!(take(&mut a, &body, 10.0), Ok(2));
    // The same batch again (a retry) and an older total: nothing more.
    assert_eq!(take(&mut a, &body, 11.0), Ok(2));
    take(&mut a, &report("two", 0, ",io.swarmpack-p2pb=100"), 12.0).unwrap();
    let text = a.figures().render();
    let peer = "swarmpack_audience_bytes_total{match=\"cup\",angle=\"main\",rung=\"720p\",source=\"peer\"}";
    assert_eq!(value(&text, peer), 3100.0);
    assert_eq!(
        value(
            &text,
            &format!("swarmpack_audience_startup_seconds_count{CUP}")
        ),
        1.0
    );
    assert_eq!(
        value(&text, &format!("swarmpack_audience_viewers{CUP}")),
        2.0
    );
    let sessions = value(&text, &format!("swarmpack_audience_sessions_total{CUP}"));
    assert_eq!(sessions, 2.0, "each session once, under its rung");
    assert_eq!(
        value(
            &text,
            "swarmpack_audience_reports_total{outcome=\"duplicate\"}"
        ),
        2.0
    );

    // A total that jumps beyond what a player could receive counts only what it could.
    take(
        &mut a,
        &report("two", 1, ",io.swarmpack-p2pb=999999999999"),
        13.0,
    )
    .unwrap();
    let text = a.figures().render();
    assert!(value(&text, peer) <= 3100.0 + 100_000_000.0, "{text}");
}

#[test]
fn a_report_for_another_match_changes_nothing() {
    let mut a = Audience::new(Limits::default());
    let body = format!(
        "{}\ncid=\"final/main\",e=t,sid=\"x\",io.swarmpack-p2pb=5",
        report("one", 0, ",io.swarmpack-p2pb=7")
    );
    let e = take(&mut a, &body, 1.0).unwrap_err();
    assert!(matches!(e, Refused::OtherMatch { line: 2, .. }), "{e}");
    assert_eq!(a.sessions(), 0);
    assert!(
        !a.figures()
            .render()
            .contains("swarmpack_audience_bytes_total{")
    );
}

#[test]
fn sessions_end_expire_and_are_evicted_oldest_first_within_the_cap() {
    let limits = Limits {
        max_sessions: 2,
        ..Limits::default()
    };
    let mut a = Audience::new(limits);
    take(&mut a, &report("a", 0, ",io.swarmpack-startup=1000"), 0.0).unwrap();
    take(&mut a, &report("b", 0, ""), 1.0).unwrap();
    take(&mut a, &report("a", 1, ""), 2.0).unwrap(); // a is now the newest
    take(&mut a, &report("c", 0, ""), 3.0).unwrap(); // b goes
    assert_eq!(a.sessions(), 2);
    let text = a.figures().render();
    assert_eq!(
        value(
            &text,
            "swarmpack_audience_session_endings_total{how=\"evicted\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("swarmpack_audience_exits_before_start_total{CUP}")
        ),
        1.0,
        "b never played"
    );
    assert_eq!(
        value(&text, &format!("swarmpack_audience_viewers{CUP}")),
        2.0
    );
    // a ends (sta=q); c falls silent past the timeout.
    take(&mut a, &report("a", 2, ",sta=q"), 4.0).unwrap();
    a.expire(3.0 + 46.0);
    assert_eq!(a.sessions(), 0);
    let text = a.figures().render();
    assert_eq!(
        value(&text, &format!("swarmpack_audience_viewers{CUP}")),
        0.0
    );
    assert_eq!(
        value(
            &text,
            "swarmpack_audience_session_endings_total{how=\"expired\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "swarmpack_audience_session_endings_total{how=\"ended\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("swarmpack_audience_exits_before_start_total{CUP}")
        ),
        2.0
    );
}

#[test]
fn rebuffering_and_watch_time_give_the_ratio() {
    let mut a = Audience::new(Limits::default());
    take(&mut a, &report("a", 0, ",io.swarmpack-startup=500"), 0.0).unwrap();
    take(
        &mut a,
        &report("a", 1, ",io.swarmpack-stalls=1,io.swarmpack-stallms=400"),
        10.0,
    )
    .unwrap();
    take(
        &mut a,
        &report(
            "a",
            2,
            ",io.swarmpack-stalls=2,io.swarmpack-stallms=600,sta=f",
        ),
        20.0,
    )
    .unwrap();
    let text = a.figures().render();
    assert_eq!(
        value(
            &text,
            &format!("swarmpack_audience_watch_seconds_total{CUP}")
        ),
        20.0
    );
    let stalled = value(
        &text,
        &format!("swarmpack_audience_rebuffer_seconds_total{CUP}"),
    );
    assert!((stalled - 0.6).abs() < 1e-9, "{stalled}");
    assert_eq!(
        value(
            &text,
            &format!("swarmpack_audience_rebuffer_events_total{CUP}")
        ),
        2.0
    );
    assert!(
        !text.contains("swarmpack_audience_start_failures_total{"),
        "a failure after the first frame is not a start failure"
    );
}

#[test]
fn a_flood_is_refused_per_session_and_for_new_sessions() {
    let limits = Limits {
        report_burst: 3.0,
        reports_per_second: 1.0,
        new_session_burst: 2.0,
        new_sessions_per_second: 1.0,
        ..Limits::default()
    };
    let mut a = Audience::new(limits);
    let body: Vec<String> = (0..5).map(|i| report("a", i, "")).collect();
    let e = take(&mut a, &body.join("\n"), 0.0).unwrap_err();
    assert_eq!(
        e,
        Refused::Flood {
            lines: 5,
            refused: 2
        }
    );
    take(&mut a, &report("b", 0, ""), 0.0).unwrap();
    assert!(
        take(&mut a, &report("c", 0, ""), 0.0).is_err(),
        "a third new session at once"
    );
    assert_eq!(a.sessions(), 2);
    assert!(
        take(&mut a, &report("c", 0, ""), 1.5).is_ok(),
        "and after a second"
    );
}

#[test]
fn distinct_places_per_match_are_capped() {
    let limits = Limits {
        max_places_per_match: 2,
        ..Limits::default()
    };
    let mut a = Audience::new(limits);
    for (i, rung) in ["a1", "a2", "a3", "a4"].iter().enumerate() {
        let line = format!("cid=\"cup/main\",e=t,sid=\"s{i}\",io.swarmpack-rung={rung}");
        take(&mut a, &line, 0.0).unwrap();
    }
    let text = a.figures().render();
    assert_eq!(
        value(
            &text,
            "swarmpack_audience_viewers{match=\"cup\",angle=\"other\",rung=\"other\"}"
        ),
        2.0
    );
}

#[test]
fn the_last_ten_minutes_come_in_steps_of_ten_seconds() {
    let mut a = Audience::new(Limits::default());
    let start = ",io.swarmpack-startup=2000,io.swarmpack-p2pb=0,io.swarmpack-httpb=0";
    take(&mut a, &report("a", 0, start), 1.0).unwrap();
    take(&mut a, &report("b", 0, &start.replace("2000", "1000")), 2.0).unwrap();
    let more = ",io.swarmpack-p2pb=3000,io.swarmpack-httpb=1000,io.swarmpack-relayb=1000,io.swarmpack-behind=7000,io.swarmpack-stallms=500";
    take(&mut a, &report("a", 1, more), 11.0).unwrap();
    take(&mut a, &report("a", 2, ",sta=q"), 21.5).unwrap();
    let points = a.history("cup", 35.0);
    assert_eq!(points.len(), 3, "{points:?}");
    let [p0, p1, p2] = [&points[0], &points[1], &points[2]];
    assert_eq!((p0.at, p0.viewers), (11.0, 2));
    assert_eq!(p0.startup_seconds, Some(1.5));
    assert_eq!(p0.peer_share, None, "no bytes in the first step");
    assert_eq!(p1.peer_share, Some(0.5), "relayed bytes are not offload");
    assert_eq!(p1.behind_live_seconds, Some(7.0));
    assert_eq!(
        p1.rebuffer_ratio,
        Some(0.05),
        "0.5 s stalled in 10 s watched"
    );
    assert_eq!(p2.viewers, 1, "a quit");
    assert_eq!(p2.startup_seconds, None);
    assert!(a.history("final", 35.0).is_empty());
    // Ten minutes later only the last ten minutes are kept.
    assert_eq!(a.history("cup", 2000.0).len(), history::POINTS);
}
