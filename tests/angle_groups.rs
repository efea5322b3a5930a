//! Angle groups (`run --remote-angle`): one match split across two machines by angle, on one
//! S3 origin (moto). Group one encodes angles a and b, group two c and d; each names the
//! other's angles as remote. Group two is killed with SIGKILL once the groups have made
//! windows together; group one runs on.
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
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the two groups may take to make windows together (a margin for a loaded
/// machine, not a schedule).
const KILL_BY: Duration = Duration::from_secs(40);
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

/// The runs of a media playlist (gap or not, and how many entries), empty while the
/// playlist is not there.
fn lives(playlist: &Path) -> Vec<(bool, usize)> {
    if !playlist.exists() {
        return Vec::new();
    }
    entries(playlist)
        .iter()
        .fold(Vec::new(), |mut runs: Vec<(bool, usize)>, (_, gap)| {
            match runs.last_mut() {
                Some((g, n)) if g == gap => *n += 1,
                _ => runs.push((*gap, 1)),
            }
            runs
        })
}

/// `run` of match `cup` for group `i` (its own spool; its log in `{dir}/{i}.log`, appended).
fn group_run(dir: &Path, profile: &Path, keys: &Path, origin: &str, i: usize) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{i}.log")))
        .unwrap();
    let mut cmd = run_match("cup", profile, keys, origin);
    cmd.arg("--spool")
        .arg(dir.join(format!("spool-{i}")))
        .env("RUST_LOG", "info,swarmpack=debug")
        .stdout(Stdio::null())
        .stderr(log);
    cmd
}

fn angles(cmd: &mut Command, local: &[&str], remote: &[&str]) {
    for a in local {
        cmd.args(["--angle", &format!("{a}=test:")]);
    }
    for a in remote {
        cmd.args(["--remote-angle", a]);
    }
}

/// The body of `url`, or `None` while it is not there.
fn fetch(url: &str) -> Option<Vec<u8>> {
    let out = Command::new("curl").args(["-s", "-f", url]).output().ok()?;
    out.status.success().then_some(out.stdout)
}

/// How many of the windows `live.json` on the origin at `base` lists cover all four angles
/// at every seq.
fn full_windows_on_origin(base: &str) -> usize {
    let Some(live) = fetch(&format!("{base}live.json"))
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return 0;
    };
    let listed: Vec<u64> = live["windows"]
        .as_array()
        .map(|w| w.iter().filter_map(|n| n.as_u64()).collect())
        .unwrap_or_default();
    listed
        .iter()
        .filter(|w| {
            let Some(doc) = fetch(&format!("{base}windows/{w}.json"))
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            else {
                return false;
            };
            let mut by_seq: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
            for s in doc["segments"].as_array().into_iter().flatten() {
                if let (Some(seq), Some(angle)) = (s["seq"].as_u64(), s["angle"].as_str()) {
                    by_seq.entry(seq).or_default().insert(angle);
                }
            }
            !by_seq.is_empty() && by_seq.values().all(|a| a.len() == 4)
        })
        .count()
}

fn read_logs(dir: &Path) -> Vec<String> {
    (0..2)
        .map(|i| std::fs::read_to_string(dir.join(format!("{i}.log"))).unwrap())
        .collect()
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
    let mut runs: Vec<Child> = [(["a", "b"], ["c", "d"]), (["c", "d"], ["a", "b"])]
        .iter()
        .enumerate()
        .map(|(i, (local, remote))| {
            let mut cmd = group_run(tmp.path(), &profile, &keys, "s3://matches/live", i);
            cmd.args(["--duration", &MEDIA_SECS.to_string()]);
            angles(&mut cmd, local, remote);
            moto.env(&mut cmd);
            cmd.spawn().unwrap()
        })
        .collect();
    let (first, second) = runs.split_at_mut(1);
    // Group two is killed once the origin holds windows that cover all four angles (not at a
    // fixed time: a slow start must not put the kill before any window covers both groups).
    let base = format!("{}/matches/live/cup/", moto.endpoint);
    wait_for(
        "three windows of both groups on the origin",
        KILL_BY,
        || full_windows_on_origin(&base) >= 3,
    );
    assert!(
        first[0].try_wait().unwrap().is_none(),
        "group one's {MEDIA_SECS} s ended before group two was stopped: the machine is too slow for this test"
    );
    let status = kill_then_wait(&mut second[0], &mut first[0]);
    let logs = read_logs(tmp.path());
    assert!(status.success(), "group one failed:\n{}", logs[0]);
    for log in &logs {
        assert!(
            !log.contains("already holds other bytes"),
            "the groups made different window objects:\n{log}"
        );
    }

    let verified = assert_verifies(&base, &keys);
    assert!(verified.contains("signed gap(s)"), "{verified}");
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

/// Group two stops (SIGKILL once it has segments on the origin) and comes back with the same
/// spool once group one has marked its angles as a gap, then stops again once it has
/// segments after the gap; group one runs 40 s, on one directory origin. Group two's angles show its
/// segments, a marked gap, a discontinuity and its segments again, then a gap to the end, and
/// the hash chain over every window stays whole.
#[test]
fn a_group_machine_that_comes_back_continues_its_angles_after_the_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("origin");
    let origin = format!("file://{}", root.display());
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let group_two = || {
        let mut cmd = group_run(tmp.path(), &profile, &keys, &origin, 1);
        angles(&mut cmd, &["c", "d"], &["a", "b"]);
        cmd.spawn().unwrap()
    };
    let mut one = group_run(tmp.path(), &profile, &keys, &origin, 0);
    one.args(["--duration", "40"]);
    angles(&mut one, &["a", "b"], &["c", "d"]);
    let mut one = one.spawn().unwrap();
    let mut two = group_two();
    // Each step waits for what the origin shows (not for a wall-clock time, which a loaded
    // machine would miss): group two's segments, then group one's gap for them, then group
    // two's segments again after it came back.
    let c = root.join("cup/c/180p/index.m3u8");
    let d = root.join("cup/d/180p/index.m3u8");
    let still_running = |one: &mut Child, what: &str| {
        assert!(
            one.try_wait().unwrap().is_none(),
            "group one's 40 s ended before {what}: the machine is too slow for this test"
        );
    };
    wait_for("group two's first segments", KILL_BY, || {
        lives(&c).first().is_some_and(|(gap, n)| !gap && *n >= 3)
    });
    still_running(&mut one, "group two's first stop");
    two.kill().unwrap();
    two.wait().unwrap();
    // Both angles: group one marks each after its own grace, and a machine that came back
    // before d was marked would continue d after a plain discontinuity (a seq jump, which
    // the packager allows), not after a gap.
    wait_for(
        "group one to mark group two's angles as a gap",
        KILL_BY,
        || lives(&c).len() == 2 && lives(&d).len() == 2,
    );
    let mut two = group_two();
    wait_or_show(
        "group two's segments after it came back",
        KILL_BY,
        || {
            lives(&c)
                .iter()
                .skip(2)
                .filter(|(gap, _)| !gap)
                .map(|(_, n)| n)
                .sum::<usize>()
                >= 3
        },
        || {
            format!(
                "{:?}\n{}\n{}",
                lives(&c),
                std::fs::read_to_string(&c).unwrap_or_default(),
                read_logs(tmp.path()).join("\n----\n")
            )
        },
    );
    still_running(&mut one, "group two's second stop");
    let status = kill_then_wait(&mut two, &mut one);
    let logs = read_logs(tmp.path());
    assert!(status.success(), "group one failed:\n{}", logs[0]);
    assert!(
        logs[1].contains("continuing match cup"),
        "group two did not continue:\n{}",
        logs[1]
    );
    assert!(
        !logs[0].contains("already holds other bytes"),
        "group one made other window objects than the origin's:\n{}",
        logs[0]
    );
    let verified = assert_verifies(&root.join("cup").display().to_string(), &keys);
    assert!(verified.contains("signed gap(s)"), "{verified}");
    for a in ["c", "d"] {
        let playlist = root.join("cup").join(a).join("180p/index.m3u8");
        let e = entries(&playlist);
        for w in e.windows(2) {
            // Seqs run on, except where the machine came back (its restart skips the seq
            // after the last listed one, which it may have put up unlisted before it died).
            let comeback = w[0].1 && !w[1].1;
            assert!(
                w[1].0 == w[0].0 + 1 || comeback && w[1].0 > w[0].0,
                "{a}: a seq is missing: {e:?}"
            );
        }
        // Real, gap, real again, gap: the machine's two lives and the two stops.
        let runs: Vec<bool> = e.iter().fold(Vec::new(), |mut runs, (_, gap)| {
            if runs.last() != Some(gap) {
                runs.push(*gap);
            }
            runs
        });
        assert_eq!(runs, [false, true, false, true], "{a}: {e:?}");
        let text = std::fs::read_to_string(&playlist).unwrap();
        assert_eq!(
            text.matches("#EXT-X-DISCONTINUITY\n").count(),
            1,
            "{a}:\n{text}"
        );
        assert!(text.contains("#EXT-X-ENDLIST"), "{a}:\n{text}");
    }
}
