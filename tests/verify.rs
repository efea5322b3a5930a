//! `swarmpack verify` passes on a clean match, locally and over HTTP, and fails with a
//! precise message on each kind of tampering.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// One real match, made once for all the cases here (22 s: at least three windows).
fn clean_match() -> &'static (tempfile::TempDir, PathBuf) {
    static MATCH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    MATCH.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let keys = keygen(tmp.path());
        let origin = tmp.path().join("origin");
        run_two_test_angles("final", &profile("demo.toml"), &keys, &origin, 22);
        let dir = origin.join("final");
        (tmp, dir)
    })
}

/// A tampered copy of the clean match.
fn copy_of_match() -> (tempfile::TempDir, PathBuf) {
    let (_, dir) = clean_match();
    let tmp = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(dir)
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    let copy = tmp.path().join("final");
    (tmp, copy)
}

fn verify(target: &str, extra: &[&str]) -> (i32, String) {
    let (_, dir) = clean_match();
    let out = swarmpack()
        .arg("verify")
        .arg(target)
        .arg("--pubkey")
        .arg(dir.join("pubkey.pem"))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn windows(dir: &Path) -> Vec<u64> {
    let mut w: Vec<u64> = std::fs::read_dir(dir.join("windows"))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .strip_suffix(".json")
                .and_then(|n| n.parse().ok())
        })
        .collect();
    w.sort();
    w
}

fn a_segment(dir: &Path) -> PathBuf {
    let w = windows(dir)[1];
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("windows/{w}.json"))).unwrap())
            .unwrap();
    PathBuf::from(doc["segments"][0]["path"].as_str().unwrap())
}

#[test]
fn a_clean_match_verifies_locally_and_over_http() {
    let (_, dir) = clean_match();
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!((code, out.as_str()), (0, ""));
    let w = windows(dir)[1].to_string();
    assert_eq!(verify(dir.to_str().unwrap(), &["--window", &w]).0, 0);
    let port = free_tcp_port();
    let _http = http_server(dir.parent().unwrap(), port);
    let (code, out) = verify(&format!("http://127.0.0.1:{port}/final/"), &[]);
    assert_eq!((code, out.as_str()), (0, ""));
}

#[test]
fn one_flipped_byte_in_a_segment_is_named() {
    let (_t, dir) = copy_of_match();
    let seg = a_segment(&dir);
    let path = dir.join(&seg);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[500] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("{}: SHA-256", seg.display())),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "exactly one problem: {out}");
}

#[test]
fn a_deleted_segment_is_named() {
    let (_t, dir) = copy_of_match();
    let seg = a_segment(&dir);
    std::fs::remove_file(dir.join(&seg)).unwrap();
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("{}: missing", seg.display())),
        "{out}"
    );
}

#[test]
fn a_swapped_manifest_is_caught() {
    let (_t, dir) = copy_of_match();
    let w = windows(&dir);
    let (a, b) = (w[1], w[2]);
    for ext in ["json", "json.sig"] {
        let pa = dir.join(format!("windows/{a}.{ext}"));
        let pb = dir.join(format!("windows/{b}.{ext}"));
        let (da, db) = (std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
        std::fs::write(&pa, db).unwrap();
        std::fs::write(&pb, da).unwrap();
    }
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "windows/{b}.json: says window {a}, expected {b} (swapped manifest)"
        )),
        "{out}"
    );
}

#[test]
fn a_truncated_signature_is_caught() {
    let (_t, dir) = copy_of_match();
    let w = windows(&dir)[1];
    let sig = dir.join(format!("windows/{w}.json.sig"));
    let bytes = std::fs::read(&sig).unwrap();
    std::fs::write(&sig, &bytes[..40]).unwrap();
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "windows/{w}.json.sig: 40 bytes, expected a 64-byte Ed25519 signature"
        )),
        "{out}"
    );
}

#[test]
fn a_window_removed_from_the_chain_is_caught() {
    let (_t, dir) = copy_of_match();
    let w = windows(&dir);
    let gone = w[1];
    std::fs::remove_file(dir.join(format!("windows/{gone}.json"))).unwrap();
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "windows/{}.json: links to a previous window, but windows/{gone}.json is missing",
            w[2]
        )),
        "{out}"
    );
}

#[test]
fn a_tampered_torrent_is_caught() {
    let (_t, dir) = copy_of_match();
    let w = windows(&dir)[1];
    let path = dir.join(format!("windows/{w}.torrent"));
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip a byte inside the v1 piece hashes ("6:pieces" then "<len>:<hashes>").
    let key = bytes.windows(8).position(|x| x == b"6:pieces").unwrap() + 8;
    let colon = key + bytes[key..].iter().position(|b| *b == b':').unwrap();
    bytes[colon + 5] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("windows/{w}.torrent: infohashes")),
        "{out}"
    );
}

/// `verify` on `dir` fails, and its report names the segment `seg` of `main/360p` as one
/// whose signature does not verify. Returns the report.
fn fails_naming_signature_of(dir: &Path, seg: &str) -> String {
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "main/360p/index.m3u8: {seg}: segment signature does not verify"
        )),
        "{out}"
    );
    out
}

/// The clean match's `main/360p` live playlist, its text and the URI of its segment `i`.
fn playlist_text(dir: &Path) -> (PathBuf, String) {
    let p = dir.join("main/360p/index.m3u8");
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

fn nth_segment_uri(text: &str, i: usize) -> String {
    text.lines()
        .filter(|l| l.ends_with(".ts"))
        .nth(i)
        .unwrap()
        .to_string()
}

/// Replaces the first occurrence of `from` after the line naming segment `i - 1` (so the
/// change lands in segment `i`'s tags).
fn edit_segment_tags(text: &str, i: usize, from: &str, to: &str) -> String {
    let start = if i == 0 {
        0
    } else {
        let prev = nth_segment_uri(text, i - 1);
        text.find(&format!("\n{prev}\n")).unwrap() + prev.len() + 2
    };
    let at = start + text[start..].find(from).expect("text to edit");
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

#[test]
fn a_changed_key_uri_in_a_playlist_is_named() {
    let (_t, dir) = copy_of_match();
    let (p, text) = playlist_text(&dir);
    let seg = nth_segment_uri(&text, 2);
    std::fs::write(&p, edit_segment_tags(&text, 2, "URI=\"http", "URI=\"https")).unwrap();
    let out = fails_naming_signature_of(&dir, &seg);
    assert_eq!(out.lines().count(), 1, "exactly one problem: {out}");
}

#[test]
fn a_changed_iv_in_a_playlist_is_named() {
    let (_t, dir) = copy_of_match();
    let (p, text) = playlist_text(&dir);
    let seg = nth_segment_uri(&text, 3);
    // The same IV with its last hex digit changed.
    let iv = media_playlist(&p).segments[3]
        .key
        .as_ref()
        .and_then(|k| k.iv.clone())
        .expect("an IV on every segment");
    let last = if iv.ends_with('0') { "1" } else { "0" };
    let changed = format!("{}{last}", &iv[..iv.len() - 1]);
    let tampered = edit_segment_tags(&text, 3, &format!("IV={iv}"), &format!("IV={changed}"));
    std::fs::write(&p, tampered).unwrap();
    fails_naming_signature_of(&dir, &seg);
}

#[test]
fn a_segment_swapped_for_another_is_named() {
    // Its bytes replaced by another segment's: named against its window manifest (once).
    let (_t, dir) = copy_of_match();
    let (_, text) = playlist_text(&dir);
    let (a, b) = (nth_segment_uri(&text, 1), nth_segment_uri(&text, 2));
    let rendition = dir.join("main/360p");
    std::fs::copy(rendition.join(&a), rendition.join(&b)).unwrap();
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("main/360p/{b}: ")), "{out}");
    assert_eq!(out.lines().count(), 1, "exactly one problem: {out}");

    // Two segment lines swapped in the playlist: each tag now sits before another path.
    let (_t2, dir) = copy_of_match();
    let (p, text) = playlist_text(&dir);
    let swapped = text
        .replace(&format!("\n{a}\n"), "\nA-PLACEHOLDER\n")
        .replace(&format!("\n{b}\n"), &format!("\n{a}\n"))
        .replace("\nA-PLACEHOLDER\n", &format!("\n{b}\n"));
    std::fs::write(&p, swapped).unwrap();
    let out = fails_naming_signature_of(&dir, &a);
    assert!(
        out.contains(&format!(
            "main/360p/index.m3u8: {b}: segment signature does not verify"
        )),
        "{out}"
    );
}

#[test]
fn a_removed_tag_is_named() {
    let (_t, dir) = copy_of_match();
    let (p, text) = playlist_text(&dir);
    let seg = nth_segment_uri(&text, 4);
    let start = text
        .find(&format!("\n{}\n", nth_segment_uri(&text, 3)))
        .unwrap();
    let tag_at = start + text[start..].find("#EXT-X-SWARMPACK-SEGMENT:").unwrap();
    let tag_end = tag_at + text[tag_at..].find('\n').unwrap() + 1;
    std::fs::write(&p, format!("{}{}", &text[..tag_at], &text[tag_end..])).unwrap();
    let (code, out) = verify(dir.to_str().unwrap(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "main/360p/index.m3u8: {seg}: no #EXT-X-SWARMPACK-SEGMENT tag"
        )),
        "{out}"
    );
}

/// Issue 14, item 9: a manifest is not trusted before its signature checks. One naming a
/// path outside the match is not read, and one linking back to itself does not loop.
#[test]
fn a_tampered_manifest_cannot_make_verify_read_outside_the_match_or_loop() {
    let (_t, dir) = copy_of_match();
    let w = windows(&dir);
    let (first, newest) = (w[1], *w.last().unwrap());
    let path = dir.join(format!("windows/{first}.json"));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["segments"][0]["path"] = "../../../../../../etc/passwd".into();
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let looped = dir.join(format!("windows/{newest}.json"));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&looped).unwrap()).unwrap();
    doc["prev_window"] = newest.into();
    std::fs::write(&looped, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let mut cmd = swarmpack();
    cmd.arg("verify")
        .arg(&dir)
        .arg("--pubkey")
        .arg(dir.join("pubkey.pem"));
    let out = run_with_deadline(cmd, std::time::Duration::from_secs(60));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("windows/{newest}.json: signature does not verify")),
        "{report}"
    );
    // Checked on its own (the chain cannot reach it past the looping manifest).
    let mut cmd = swarmpack();
    cmd.arg("verify")
        .arg(&dir)
        .arg("--pubkey")
        .arg(dir.join("pubkey.pem"))
        .args(["--window", &first.to_string()]);
    let out = run_with_deadline(cmd, std::time::Duration::from_secs(60));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("lists path \"../../../../../../etc/passwd\"")
            && report.contains("not read"),
        "{report}"
    );
    assert!(!report.contains("root:"), "{report}");
}
