//! Redundant encoders (`run --redundant`): two runs of one match, each with its own spool and
//! seeder, publish to one origin. The first is killed with SIGKILL once both are making the
//! match; the second runs to the end. The origin must then hold one stream, as if one run had made it:
//! - `verify` passes over the whole match, and openssl verifies every segment's tag against
//!   the bytes on the origin;
//! - every seq of every rendition is there once, and no playlist has a gap or a discontinuity;
//! - no object was written twice (the bucket's versions on S3; a watcher of every file's
//!   inode and mtime on `file://`);
//! - neither run found a manifest or torrent of the other's that differed from its own (each
//!   would be logged as a conflict), so both made them byte for byte the same;
//! - each run's seeding copy holds exactly the origin's bytes: what a run lost a claim with
//!   never reached its peers, so no key and IV was used for two published ciphertexts.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long two runs may take to start making the match together (each start is a couple
/// of seconds; this is a margin for a loaded machine, not a schedule).
const KILL_BY: Duration = Duration::from_secs(40);

/// Segments the run logging to `log` adopted from the other, counted past byte `from`.
fn adoptions(log: &str, from: usize) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .get(from..)
        .unwrap_or("")
        .matches("another run published it first")
        .count()
}
/// Media seconds of the surviving run (1 s segments).
const MEDIA_SECS: u64 = 16;

struct Pair {
    logs: [String; 2],
    spools: [PathBuf; 2],
}

/// Starts two redundant runs of match `cup` (angles main and pov), kills the first once
/// both are making the match, and waits for the second to end cleanly.
fn run_pair(dir: &Path, origin: &str, env: &dyn Fn(&mut Command)) -> (Pair, PathBuf) {
    let keys = keygen(dir);
    let profile = small_profile(dir, 2, "http://127.0.0.1:9/", "");
    let pair = Pair::new(dir);
    let mut runs: Vec<Child> = (0..2)
        .map(|i| {
            let mut cmd = pair.run(i, &profile, &keys, origin, MEDIA_SECS);
            env(&mut cmd);
            cmd.spawn().unwrap()
        })
        .collect();
    let (first, second) = runs.split_at_mut(1);
    // The first is killed once both runs are making the match (each seq made by both is
    // adopted by one of them, which it logs), not at a fixed time: a slow start must not put
    // the kill before the runs overlap.
    wait_for("both runs making the match", KILL_BY, || {
        pair.logs.iter().map(|l| adoptions(l, 0)).sum::<usize>() >= 3
    });
    let status = kill_then_wait(&mut first[0], &mut second[0]);
    let pair = pair.read_logs();
    assert!(
        status.success(),
        "the surviving run failed:\n{}",
        pair.logs[1]
    );
    (pair, keys)
}

impl Pair {
    fn new(dir: &Path) -> Pair {
        Pair {
            logs: [dir.join("a.log"), dir.join("b.log")].map(|p| p.display().to_string()),
            spools: [dir.join("spool-a"), dir.join("spool-b")],
        }
    }

    /// Redundant run `i` of match `cup` (angles main and pov) for `secs` of media, with its
    /// own spool; its log is appended to (a run that comes back adds to it).
    fn run(&self, i: usize, profile: &Path, keys: &Path, origin: &str, secs: u64) -> Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.logs[i])
            .unwrap();
        let mut cmd = run_match("cup", profile, keys, origin);
        cmd.args(["--redundant", "--duration", &secs.to_string()])
            .args(["--angle", "main=test:", "--angle", "pov=test:"])
            .arg("--spool")
            .arg(&self.spools[i])
            .env("RUST_LOG", "info,swarmpack=debug")
            .stdout(Stdio::null())
            .stderr(log);
        cmd
    }

    /// The same pair with each log's text in place of its path.
    fn read_logs(self) -> Pair {
        Pair {
            logs: self.logs.map(|p| std::fs::read_to_string(p).unwrap()),
            spools: self.spools,
        }
    }
}

/// The checks every origin kind shares, on a directory holding `cup/` as the origin does.
fn assert_one_stream(root: &Path, keys: &Path, pair: &Pair) {
    let match_dir = root.join("cup");
    let playlists = media_playlists(&match_dir);
    assert_eq!(playlists.len(), 2, "{playlists:?}");
    for playlist in &playlists {
        let text = std::fs::read_to_string(playlist).unwrap();
        let name = playlist.strip_prefix(root).unwrap().display().to_string();
        assert!(text.contains("#EXT-X-ENDLIST"), "{name}:\n{text}");
        for mark in ["#EXT-X-DISCONTINUITY\n", "#EXT-X-GAP"] {
            assert!(!text.contains(mark), "{name} has {mark}:\n{text}");
        }
        let parsed = media_playlist(playlist);
        let listed: Vec<u64> = parsed
            .segments
            .iter()
            .map(|s| s.uri.trim_end_matches(".ts").parse().unwrap())
            .collect();
        assert!(listed.len() as u64 >= MEDIA_SECS, "{name}:\n{text}");
        assert_eq!(listed[0], parsed.media_sequence, "{name}");
        for pair in listed.windows(2) {
            assert_eq!(pair[1], pair[0] + 1, "{name}: a seq is missing:\n{text}");
        }
        // The origin holds exactly the listed seqs: none lost, none extra from either run.
        let held: BTreeSet<u64> = std::fs::read_dir(playlist.parent().unwrap())
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".ts").map(|s| s.parse().unwrap())
            })
            .collect();
        assert_eq!(held, listed.iter().copied().collect(), "{name}");
        let tags = assert_segment_tags_verify(root, playlist, &keys.join("pubkey.pem"));
        assert_eq!(tags, listed.len(), "{name}");
    }
    // Each seq both runs made was claimed by one and adopted by the other.
    let adopted: usize = pair
        .logs
        .iter()
        .map(|l| l.matches("another run published it first").count())
        .sum();
    assert!(adopted > 0, "no run adopted a segment:\n{}", pair.logs[1]);
    for log in &pair.logs {
        assert!(
            !log.contains("already holds other bytes"),
            "the two runs made different objects:\n{log}"
        );
    }
    // What each run seeds is what the origin holds.
    for spool in &pair.spools {
        let seed = spool.join("cup/seed");
        let mut compared = 0;
        for file in files_under(&seed) {
            if file.extension().is_some_and(|e| e == "ts") {
                let rel = file.strip_prefix(&seed).unwrap();
                let on_origin = std::fs::read(root.join(rel)).unwrap();
                assert!(
                    std::fs::read(&file).unwrap() == on_origin,
                    "{} seeds other bytes than the origin's",
                    file.display()
                );
                compared += 1;
            }
        }
        assert!(compared > 0, "{}: nothing seeded", seed.display());
    }
}

/// Playlists, `live.json` and `p2p.json` (each with its signature) are put by every run;
/// everything else is written once.
fn is_immutable(path: &str) -> bool {
    !path.ends_with(".m3u8") && !path.contains("live.json") && !path.contains("p2p.json")
}

#[test]
fn two_redundant_runs_on_s3_make_one_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let moto = s3::Moto::start();
    let (pair, keys) = run_pair(tmp.path(), "s3://matches/live", &|cmd| moto.env(cmd));
    assert_verifies(&format!("{}/matches/live/cup/", moto.endpoint), &keys);
    let versions = moto.key_versions("live/cup/");
    let immutable: Vec<_> = versions.iter().filter(|(k, _)| is_immutable(k)).collect();
    assert!(immutable.len() > 40, "{versions:?}");
    for (key, n) in &immutable {
        assert_eq!(*n, 1, "{key} was written {n} times");
    }
    let mirror = tmp.path().join("mirror");
    moto.mirror("live/", &mirror);
    assert_one_stream(&mirror, &keys, &pair);
}

/// Every file's identity (inode, length, mtime) as seen by polling the origin directory.
type Seen = BTreeMap<String, BTreeSet<(u64, u64, i64, i64)>>;

fn watch(dir: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    std::thread::spawn(move || {
        use std::os::unix::fs::MetadataExt;
        let mut seen = Seen::new();
        while !stop.load(Ordering::Relaxed) {
            for file in files_under(&dir) {
                let Ok(m) = std::fs::metadata(&file) else {
                    continue;
                };
                let rel = file.strip_prefix(&dir).unwrap().display().to_string();
                seen.entry(rel)
                    .or_default()
                    .insert((m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    })
}

#[test]
fn two_redundant_runs_on_a_directory_make_one_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("origin");
    std::fs::create_dir_all(&root).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(root.clone(), stop.clone());
    let origin = format!("file://{}", root.display());
    let (pair, keys) = run_pair(tmp.path(), &origin, &|_| {});
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    let immutable: Vec<_> = seen
        .iter()
        // Not the writers' staging files: `.tmp`, and object_store's `{path}#{n}` (both runs
        // stage the mutable playlists under the same names, then rename them into place).
        .filter(|(p, _)| is_immutable(p) && !p.contains(".tmp") && !p.contains('#'))
        .collect();
    assert!(immutable.len() > 40, "{seen:?}");
    for (path, identities) in &immutable {
        assert_eq!(
            identities.len(),
            1,
            "{path} was written more than once: {identities:?}"
        );
    }
    assert_verifies(&root.join("cup").display().to_string(), &keys);
    assert_one_stream(&root, &keys, &pair);
}

/// The first run is killed once both make the match and comes back with its spool three
/// seconds later; the second is killed once the first is making the match again; the first
/// runs on to its end. The match goes on through both losses as one
/// stream: no gap, no discontinuity.
#[test]
fn a_redundant_run_that_comes_back_rejoins_without_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("origin");
    let origin = format!("file://{}", root.display());
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let pair = Pair::new(tmp.path());
    let mut a = pair.run(0, &profile, &keys, &origin, 30).spawn().unwrap();
    let mut b = pair.run(1, &profile, &keys, &origin, 30).spawn().unwrap();
    // Each kill waits for the runs to overlap (adoptions in their own logs), not for a time.
    let overlapping = |from: [usize; 2]| {
        adoptions(&pair.logs[0], from[0]) + adoptions(&pair.logs[1], from[1]) >= 2
    };
    wait_for("both runs making the match", KILL_BY, || {
        overlapping([0, 0])
    });
    a.kill().unwrap();
    a.wait().unwrap();
    // b alone for three segments, then a comes back with its spool.
    std::thread::sleep(Duration::from_secs(3));
    let logged = |i: usize| std::fs::metadata(&pair.logs[i]).map_or(0, |m| m.len() as usize);
    let from = [logged(0), logged(1)];
    let mut a = pair.run(0, &profile, &keys, &origin, 24).spawn().unwrap();
    wait_for("the run that came back making the match", KILL_BY, || {
        overlapping(from)
    });
    let status = kill_then_wait(&mut b, &mut a);
    let pair = pair.read_logs();
    assert!(
        status.success(),
        "the run that came back failed:\n{}",
        pair.logs[0]
    );
    assert!(
        pair.logs[0].matches("joining match cup").count() >= 1,
        "{}",
        pair.logs[0]
    );
    assert_verifies(&root.join("cup").display().to_string(), &keys);
    assert_one_stream(&root, &keys, &pair);
}
