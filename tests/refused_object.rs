//! Issue 14, item 3: one object the origin refuses must not freeze the match. nginx answers
//! 403 for one segment path of a live match; swarmpack retries it a few times, gives it up to
//! the spool's dead letters, marks it EXT-X-GAP in its playlist, and every playlist and
//! `live.json` keep advancing. `verify` names the gap.

mod common;

use common::nginx::Nginx;
use common::*;
use std::time::Duration;

const MATCH: &str = "refused";

#[test]
fn a_segment_nginx_refuses_becomes_a_gap_and_the_match_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    // 1 s segments: the segment 12 s from now is the one the origin will refuse. The run
    // needs a second or two to put out its first segment; 12 s leave a loaded machine room
    // (a run that started after it would have nothing refused, which is checked below).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let lost = now + 12;
    let nginx = Nginx::webdav_with(
        &tmp.path().join("nginx"),
        &format!("location = /{MATCH}/main/180p/{lost}.ts {{ return 403; }}"),
    );
    let profile = small_profile(tmp.path(), 2, &nginx.url(), "");
    let keys = keygen(tmp.path());
    let spool = tmp.path().join("spool");
    let mut cmd = run_match(MATCH, &profile, &keys, &nginx.url());
    cmd.args(["--angle", "main=test:", "--no-seed", "--duration", "22"])
        .arg("--spool")
        .arg(&spool);
    let out = run_with_deadline(cmd, Duration::from_secs(90));
    let log = String::from_utf8_lossy(&out.stderr);
    // The match ended cleanly: nothing stayed stuck in the spool behind the refused object.
    assert!(out.status.success(), "{log}");
    assert!(log.contains(&format!("{lost}.ts is given up")), "{log}");

    // The playlist went on past the lost segment, which is a marked gap.
    let m = nginx.root.join(MATCH);
    let playlist = media_playlist(&m.join("main/180p/index.m3u8"));
    let seqs: Vec<u64> = playlist
        .segments
        .iter()
        .map(|s| s.uri.trim_end_matches(".ts").parse().unwrap())
        .collect();
    assert!(
        seqs[0] < lost,
        "the run started after the refused segment: {seqs:?}"
    );
    assert!(*seqs.last().unwrap() >= lost + 5, "{seqs:?}");
    assert!(playlist.end_list);
    let gap = playlist
        .segments
        .iter()
        .find(|s| s.uri == format!("{lost}.ts"))
        .expect("the lost segment stays listed");
    assert!(
        gap.unknown_tags.iter().any(|t| t.tag == "X-GAP"),
        "{:?}",
        gap.unknown_tags
    );
    assert!(!m.join(format!("main/180p/{lost}.ts")).exists());
    let gaps = playlist
        .segments
        .iter()
        .filter(|s| s.unknown_tags.iter().any(|t| t.tag == "X-GAP"))
        .count();
    assert_eq!(gaps, 1, "only the refused segment is a gap");

    // live.json kept up: it names a window after the lost segment's, and the end.
    let live: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("live.json")).unwrap()).unwrap();
    assert!(
        live["windows"][0].as_u64().unwrap() >= lost / 2 + 2,
        "{live}"
    );
    assert_eq!(live["ended"], true);

    // The refused object waits in the spool's dead letters, with the reason.
    let dead = spool.join(MATCH).join("queue/dead-letter");
    let notes: Vec<String> = std::fs::read_dir(&dead)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains(&format!("{lost}.ts")) && notes[0].contains("403"),
        "{}",
        notes[0]
    );

    // verify names the gap.
    let out = swarmpack()
        .arg("verify")
        .arg(format!("{}{MATCH}/", nginx.url()))
        .arg("--pubkey")
        .arg(keys.join("pubkey.pem"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains(&format!(
            "main/180p/index.m3u8: {lost}.ts: a gap (EXT-X-GAP)"
        )),
        "{report}"
    );
}
