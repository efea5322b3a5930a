//! Issue 25: nothing the origin holds is trusted until the match key says so. Each test plays
//! an origin writer who does not hold `keys/` (a CDN bucket, a WebDAV box, a leaked S3 key)
//! against a real run on a `file://` origin, and each failed on the main before the fix
//! (`SWARMPACK_TEST_BIN=<old build> cargo test --test origin_trust` shows it):
//! - item 0: a directory in the way of one future segment froze the match (exit 1 after
//!   `--drain-timeout`); now that one seq is a signed gap and the match goes on;
//! - item 1: a redundant run adopted and signed bytes planted at future seqs; now a seq whose
//!   claim does not verify is lost (a signed gap), and nothing is signed for the planted bytes;
//! - item 2: an unsigned `#EXT-X-GAP` entry at a far-future seq made the next restart drop
//!   every segment and exit 1, and `verify` took it as a marked gap; now the restart keeps the
//!   signed prefix and goes on, and `verify` names the unsigned gap;
//! - items 4 and 6: `verify` names a torrent whose announce list is not the signed magnet's,
//!   and an unsigned or changed `p2p.json`.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const MATCH: &str = "trust";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn has_tag(seg: &m3u8_rs::MediaSegment, tag: &str) -> bool {
    seg.unknown_tags.iter().any(|t| t.tag == tag)
}

fn seq_of(seg: &m3u8_rs::MediaSegment) -> u64 {
    seg.uri.trim_end_matches(".ts").parse().unwrap()
}

/// The ended playlist at `path` went on at least 5 seqs past `lost`, and `lost` is its only
/// gap, signed (`#EXT-X-SWARMPACK-GAP`). Returns that entry.
fn assert_only_gap(path: &Path, lost: u64, what: &str) -> m3u8_rs::MediaSegment {
    let playlist = media_playlist(path);
    assert!(playlist.end_list, "{what}");
    let seqs: Vec<u64> = playlist.segments.iter().map(seq_of).collect();
    assert!(*seqs.last().unwrap() >= lost + 5, "{what}: {seqs:?}");
    let gaps: Vec<u64> = playlist
        .segments
        .iter()
        .filter(|s| has_tag(s, "X-GAP"))
        .map(seq_of)
        .collect();
    assert_eq!(gaps, vec![lost], "{what}: only the lost seq is a gap");
    let gap = playlist
        .segments
        .into_iter()
        .find(|s| seq_of(s) == lost)
        .unwrap();
    assert!(
        has_tag(&gap, "X-SWARMPACK-GAP"),
        "{what}: {:?}",
        gap.unknown_tags
    );
    gap
}

/// Keys and a one-rung, 1 s-segment profile in `dir`, and `run` of match [`MATCH`] with
/// one `test:` angle and no seeder, to `origin`; the keys directory comes back too.
fn one_angle_run(dir: &Path, origin: &str) -> (Command, PathBuf) {
    let keys = keygen(dir);
    let profile = small_profile(dir, 2, "http://127.0.0.1:9/", "");
    let mut cmd = run_match(MATCH, &profile, &keys, origin);
    cmd.args(["--angle", "main=test:", "--no-seed"]);
    (cmd, keys)
}

/// `swarmpack verify` over the match: (exit success, stdout + stderr).
fn verify(root: &Path, keys: &Path) -> (bool, String) {
    let out = swarmpack()
        .args(["verify", &root.join(MATCH).display().to_string()])
        .arg("--pubkey")
        .arg(keys.join("pubkey.pem"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn a_directory_in_the_way_of_one_segment_costs_that_seq_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("origin");
    let blocked = unix_now() + 6;
    let rel = format!("{MATCH}/main/180p/{blocked}.ts");
    std::fs::create_dir_all(root.join(&rel)).unwrap();
    let (mut cmd, keys) = one_angle_run(tmp.path(), &format!("file://{}", root.display()));
    cmd.args(["--duration", "14"])
        .args(["--drain-timeout", "5s"]);
    let out = run_with_deadline(cmd, Duration::from_secs(90));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the match froze behind {rel}:\n{log}");
    assert!(log.contains(&format!("{blocked}.ts")), "{log}");
    assert_only_gap(
        &root.join(MATCH).join("main/180p/index.m3u8"),
        blocked,
        "a directory in the way",
    );
    // verify still fails naming it: the origin refused a segment of the match.
    let (ok, text) = verify(&root, &keys);
    assert!(!ok && text.contains(&format!("{blocked}.ts")), "{text}");
}

/// Item 0 on S3: a key the bucket policy refuses (403 on its PUT, as an object lock would)
/// is a refusal of that one object, for a plain run and for a redundant run's claim.
#[test]
fn a_key_the_bucket_refuses_costs_that_seq_only_on_s3() {
    for redundant in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let moto = common::s3::Moto::start();
        let blocked = unix_now() + 6;
        let key = format!("live/{MATCH}/main/180p/{blocked}.ts");
        // A redundant run creates the claim first: refuse that.
        let refused = if redundant {
            format!("{key}.claim")
        } else {
            key.clone()
        };
        moto.deny_put(std::slice::from_ref(&refused));
        let (mut cmd, _keys) = one_angle_run(tmp.path(), "s3://matches/live");
        moto.env(&mut cmd);
        cmd.args(["--duration", "14"])
            .args(["--drain-timeout", "5s"]);
        if redundant {
            cmd.arg("--redundant");
        }
        let out = run_with_deadline(cmd, Duration::from_secs(90));
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "redundant={redundant}: the match froze:\n{log}"
        );
        let mirror = tmp.path().join("mirror");
        moto.mirror("live/", &mirror);
        let gap = assert_only_gap(
            &mirror.join(MATCH).join("main/180p/index.m3u8"),
            blocked,
            &format!("redundant={redundant}"),
        );
        if redundant {
            // Lost before it was signed: no tag, and its bytes never went up.
            assert!(!has_tag(&gap, "X-SWARMPACK-SEGMENT"));
            assert!(!mirror.join(&key["live/".len()..]).exists());
            assert!(
                log.contains(&format!("{blocked} of main/180p is lost")),
                "{log}"
            );
        }
    }
}

#[test]
fn a_redundant_run_never_signs_bytes_planted_on_the_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("origin");
    let dir = root.join(MATCH).join("main/180p");
    std::fs::create_dir_all(&dir).unwrap();
    // The IV derivation is public and the seqs predictable: an origin writer plants chosen
    // ciphertext at future seqs, once with no claim, once with a claim of its own making.
    let now = unix_now();
    let planted = [now + 6, now + 7, now + 9];
    for seq in planted {
        std::fs::write(dir.join(format!("{seq}.ts")), format!("attacker {seq}")).unwrap();
    }
    std::fs::write(
        dir.join(format!("{}.ts.claim", planted[2])),
        format!(
            "#EXT-X-SWARMPACK-SEGMENT:BYTES=13,SHA256={},SIG={}\n",
            "0".repeat(64),
            "A".repeat(86)
        ),
    )
    .unwrap();
    let (mut cmd, keys) = one_angle_run(tmp.path(), &format!("file://{}", root.display()));
    cmd.arg("--redundant").args(["--duration", "16"]);
    let out = run_with_deadline(cmd, Duration::from_secs(90));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");

    let playlist_path = dir.join("index.m3u8");
    let playlist = media_playlist(&playlist_path);
    let first = seq_of(&playlist.segments[0]);
    assert!(first < planted[0], "the run started late: {first}");
    for seq in planted {
        let entry = playlist
            .segments
            .iter()
            .find(|s| seq_of(s) == seq)
            .unwrap_or_else(|| panic!("{seq} is not listed"));
        assert!(
            !has_tag(entry, "X-SWARMPACK-SEGMENT"),
            "{seq}: the run signed the planted bytes: {:?}",
            entry.unknown_tags
        );
        assert!(has_tag(entry, "X-GAP") && has_tag(entry, "X-SWARMPACK-GAP"));
        assert_eq!(
            std::fs::read_to_string(dir.join(format!("{seq}.ts"))).unwrap(),
            format!("attacker {seq}")
        );
        assert!(
            log.contains(&format!("{seq} of main/180p is lost")),
            "{log}"
        );
    }
    // Every tag the run wrote verifies with openssl against the bytes on the origin, as does
    // every gap signature; every other seq was claimed with a claim of the run's own.
    let tagged = assert_segment_tags_verify(&root, &playlist_path, &keys.join("pubkey.pem"));
    assert_eq!(tagged, playlist.segments.len() - planted.len());
    for s in &playlist.segments {
        let seq = seq_of(s);
        if !planted.contains(&seq) {
            let claim = std::fs::read_to_string(dir.join(format!("{seq}.ts.claim"))).unwrap();
            let tag = s
                .unknown_tags
                .iter()
                .find(|t| t.tag == "X-SWARMPACK-SEGMENT");
            assert_eq!(claim.trim_end(), tag.unwrap().to_string(), "{seq}");
        }
    }
    // The lost seqs are signed gaps: verify passes and counts them.
    let (ok, text) = verify(&root, &keys);
    assert!(ok, "{text}");
    assert!(text.contains("3 signed gap(s)"), "{text}");
}

#[test]
fn an_unsigned_gap_moves_no_floor_and_fails_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("origin");
    let origin = format!("file://{}", root.display());
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let spool = tmp.path().join("spool");
    let run = |secs: &str| {
        let mut cmd = run_match(MATCH, &profile, &keys, &origin);
        cmd.args(["--angle", "main=test:", "--no-seed", "--duration", secs])
            .arg("--spool")
            .arg(&spool);
        run_with_deadline(cmd, Duration::from_secs(60))
    };
    let out = run("4");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // An origin writer appends a gap entry at a far-future seq and removes the end.
    let playlist_path = root.join(MATCH).join("main/180p/index.m3u8");
    let text = std::fs::read_to_string(&playlist_path).unwrap();
    let far = unix_now() + 1_000_000;
    let forged = text.replace(
        "#EXT-X-ENDLIST\n",
        &format!(
            "#EXT-X-PROGRAM-DATE-TIME:2027-01-01T00:00:00.000+00:00\n#EXT-X-GAP\n#EXTINF:1,\n{far}.ts\n"
        ),
    );
    assert_ne!(forged, text);
    std::fs::write(&playlist_path, &forged).unwrap();
    let (ok, report) = verify(&root, &keys);
    assert!(!ok, "verify accepted an unsigned gap:\n{report}");
    assert!(
        report.contains(&format!("{far}.ts: a gap (EXT-X-GAP) without")),
        "{report}"
    );

    // The restart keeps what the match key vouches for and goes on after it.
    let out = run("4");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the forged gap stopped the restart:\n{log}"
    );
    assert!(
        log.contains(&format!("{far}.ts: a gap (EXT-X-GAP) without")),
        "{log}"
    );
    let playlist = media_playlist(&playlist_path);
    assert!(playlist.segments.iter().all(|s| seq_of(s) < far));
    assert!(
        playlist.segments.len() >= 6,
        "{:?}",
        playlist.segments.len()
    );
    let (ok, report) = verify(&root, &keys);
    assert!(ok, "{report}");

    // Items 4 and 6: the unsigned parts of a torrent and an unsigned p2p.json.
    let m = root.join(MATCH);
    let torrent = std::fs::read_dir(m.join("windows"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "torrent"))
        .unwrap();
    let original = std::fs::read(&torrent).unwrap();
    let forged = swarmpack::package::torrent::with_trackers(
        &original,
        &["http://127.0.0.1:9/announce".to_string()],
    )
    .unwrap();
    std::fs::write(&torrent, forged).unwrap();
    let (ok, report) = verify(&root, &keys);
    let name = torrent.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        !ok && report.contains(&format!("{name}: its announce list")),
        "{report}"
    );
    std::fs::write(&torrent, original).unwrap();
    let p2p = m.join("p2p.json");
    let text = std::fs::read_to_string(&p2p).unwrap();
    std::fs::write(&p2p, text.replace("swarmpack/", "elsewhere/")).unwrap();
    let (ok, report) = verify(&root, &keys);
    assert!(
        !ok && report.contains("p2p.json: signature does not verify"),
        "{report}"
    );
    std::fs::write(&p2p, &text).unwrap();
    std::fs::remove_file(m.join("p2p.json.sig")).unwrap();
    let (ok, report) = verify(&root, &keys);
    assert!(!ok && report.contains("p2p.json.sig: missing"), "{report}");
}
