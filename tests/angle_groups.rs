//! Angle groups (`run --remote-angle`): one match split across two machines by angle, on one
//! S3 origin (moto). Group one encodes angles a and b, group two c and d; each names the
//! other's angles as remote. Group two is killed with SIGKILL at 12 s; group one runs on.
//! - The multivariant playlist offers all four angles.
//! - Every window from while both ran covers all four angles, and libtorrent rechecks every
//!   window torrent at 100% against the bucket's bytes.
//! - Neither machine found a window object of the other's that differed from its own.
//! - After the kill, a and b stay live to the end; c and d go on as a marked gap (EXT-X-GAP)
//!   to the end of the match, and `verify` passes, counting the gaps.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const KILL_AT: Duration = Duration::from_secs(12);
const MEDIA_SECS: u64 = 22;

/// (seq, gap) of every entry of a media playlist.
fn entries(playlist: &Path) -> Vec<(u64, bool)> {
    let text = std::fs::read_to_string(playlist).unwrap();
    let mut gap = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line == "#EXT-X-GAP" {
            gap = true;
        } else if let Some(seq) = line.strip_suffix(".ts") {
            out.push((seq.parse().unwrap(), gap));
            gap = false;
        }
    }
    out
}

#[test]
fn two_angle_groups_make_one_match_and_a_stopped_group_becomes_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = s3::Moto::start();
    let keys = keygen(tmp.path());
    let profile = small_profile(
        tmp.path(),
        2,
        &format!("{}/matches/live/", moto.endpoint),
        "",
    );
    let groups = [(["a", "b"], ["c", "d"]), (["c", "d"], ["a", "b"])];
    let started = Instant::now();
    let mut runs: Vec<Child> = groups
        .iter()
        .enumerate()
        .map(|(i, (local, remote))| {
            let mut cmd = run_match("cup", &profile, &keys, "s3://matches/live");
            cmd.args(["--duration", &MEDIA_SECS.to_string()])
                .arg("--spool")
                .arg(tmp.path().join(format!("spool-{i}")))
                .env("RUST_LOG", "info,swarmpack=debug")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(tmp.path().join(format!("{i}.log"))).unwrap());
            for a in local {
                cmd.args(["--angle", &format!("{a}=test:")]);
            }
            for a in remote {
                cmd.args(["--remote-angle", a]);
            }
            moto.env(&mut cmd);
            cmd.spawn().unwrap()
        })
        .collect();
    let (first, second) = runs.split_at_mut(1);
    let status = kill_at_then_wait(started, KILL_AT, &mut second[0], &mut first[0]);
    let logs: Vec<String> = (0..2)
        .map(|i| std::fs::read_to_string(tmp.path().join(format!("{i}.log"))).unwrap())
        .collect();
    assert!(status.success(), "group one failed:\n{}", logs[0]);
    for log in &logs {
        assert!(
            !log.contains("already holds other bytes"),
            "the groups made different window objects:\n{log}"
        );
    }

    let base = format!("{}/matches/live/cup/", moto.endpoint);
    let verified = assert_verifies(&base, &keys);
    assert!(verified.contains("marked gap(s)"), "{verified}");
    let mirror = tmp.path().join("mirror");
    moto.mirror("live/", &mirror);
    let m = mirror.join("cup");

    // The multivariant playlist offers every angle, whichever group wrote it last.
    let master = std::fs::read_to_string(m.join("master.m3u8")).unwrap();
    for a in ["a", "b", "c", "d"] {
        assert!(
            master.contains(&format!("URI=\"{a}/180p/index.m3u8\"")),
            "{a} missing:\n{master}"
        );
    }

    // Group one's angles: live to the end, no gap.
    let live: BTreeMap<&str, Vec<(u64, bool)>> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|a| (a, entries(&m.join(a).join("180p/index.m3u8"))))
        .collect();
    for a in ["a", "b"] {
        let e = &live[a];
        assert!(e.len() as u64 >= MEDIA_SECS, "{a}: {e:?}");
        assert!(e.iter().all(|(_, gap)| !gap), "{a} has a gap: {e:?}");
        for w in e.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "{a}: a seq is missing");
        }
    }
    let last = live["a"].last().unwrap().0;
    // Group two's angles: real segments, then a marked gap to the end of the match.
    let mut both_alive = (live["a"][0].0.max(live["b"][0].0), u64::MAX);
    for a in ["c", "d"] {
        let e = &live[a];
        let real = e.iter().take_while(|(_, gap)| !gap).count();
        assert!(real >= 4, "{a}: {e:?}");
        assert!(real < e.len(), "{a} was not marked as a gap: {e:?}");
        assert!(e[real..].iter().all(|(_, gap)| *gap), "{a}: {e:?}");
        assert_eq!(e.last().unwrap().0, last, "{a}: the gap runs to the end");
        for w in e.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "{a}: a seq is missing");
        }
        both_alive = (both_alive.0.max(e[0].0), both_alive.1.min(e[real - 1].0));
        let text = std::fs::read_to_string(m.join(a).join("180p/index.m3u8")).unwrap();
        assert!(text.contains("#EXT-X-ENDLIST"), "{a}:\n{text}");
    }

    // Every window: what it lists while both groups ran covers all four angles, and
    // libtorrent rechecks its torrent at 100% against the bucket's bytes.
    let mut full_windows = 0;
    let mut windows = 0;
    for file in std::fs::read_dir(m.join("windows")).unwrap().flatten() {
        let path = file.path();
        if path.extension().is_some_and(|e| e == "torrent") {
            let text = lt_check(&path, &mirror);
            assert!(
                text.contains("checked 1") && text.contains("progress_ppm 1000000"),
                "{}: {text}",
                path.display()
            );
            windows += 1;
            continue;
        }
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut by_seq: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
        for s in doc["segments"].as_array().unwrap() {
            by_seq
                .entry(s["seq"].as_u64().unwrap())
                .or_default()
                .insert(s["angle"].as_str().unwrap().to_string());
        }
        let mut full = !by_seq.is_empty();
        for (seq, angles) in &by_seq {
            if (both_alive.0..=both_alive.1).contains(seq) {
                assert_eq!(
                    angles.len(),
                    4,
                    "{}: seq {seq} has {angles:?}",
                    path.display()
                );
            } else {
                full = false;
            }
        }
        full_windows += usize::from(full);
    }
    assert!(windows >= 8, "{windows} window torrents");
    assert!(
        full_windows >= 2,
        "{full_windows} windows from while both groups ran"
    );
}
