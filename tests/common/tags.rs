//! Segment signatures checked from outside: the signed message of every
//! `#EXT-X-SWARMPACK-SEGMENT` tag is rebuilt here from the contract's six lines (not with
//! swarmpack's own code) and verified with openssl against the match's `pubkey.pem`.

use std::path::Path;
use std::process::{Command, Stdio};

/// `openssl pkeyutl -verify -rawin` of `msg` against the detached signature `sig`.
pub fn openssl_verifies_sig(pubkey: &Path, msg: &Path, sig: &Path) -> bool {
    Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(pubkey)
        .arg("-rawin")
        .arg("-in")
        .arg(msg)
        .arg("-sigfile")
        .arg(sig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn base64url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("SIG={text}: not base64url: {e}"))
}

pub fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(data)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Checks every segment line of the media playlist `playlist` (under `origin_root`, the
/// directory holding `{match}/`): its tag must be there, its BYTES and SHA256 must describe
/// the file on disk (SHA-256 by openssl), and openssl must verify its SIG over the rebuilt
/// message. A gap entry with no segment tag must carry `#EXT-X-SWARMPACK-GAP:SIG=…`, which
/// openssl must verify over `swarmpack-gap/1\n{path}\n`. Returns how many segment tags were
/// checked; panics naming the first entry that fails.
pub fn assert_segment_tags_verify(origin_root: &Path, playlist: &Path, pubkey: &Path) -> usize {
    let text = std::fs::read_to_string(playlist).unwrap();
    let rel_dir = playlist
        .parent()
        .unwrap()
        .strip_prefix(origin_root)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let scratch = tempfile::tempdir().unwrap();
    let (mut key_uri, mut iv) = (String::new(), String::new());
    let mut tag: Option<String> = None;
    let mut gap_sig: Option<String> = None;
    let mut checked = 0;
    for line in text.lines() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-KEY:") {
            key_uri = attr(attrs, "URI").trim_matches('"').to_string();
            iv = attr(attrs, "IV")
                .trim_start_matches("0x")
                .to_ascii_lowercase();
        } else if let Some(value) = line.strip_prefix("#EXT-X-SWARMPACK-SEGMENT:") {
            tag = Some(value.to_string());
        } else if let Some(value) = line.strip_prefix("#EXT-X-SWARMPACK-GAP:SIG=") {
            gap_sig = Some(value.to_string());
        } else if !line.starts_with('#') && !line.is_empty() && tag.is_none() {
            let sig = gap_sig.take().unwrap_or_else(|| {
                panic!(
                    "{}: {line} has no tag and no signed gap:\n{text}",
                    playlist.display()
                )
            });
            let msg = format!("swarmpack-gap/1\n{rel_dir}/{line}\n");
            let (m, s) = (scratch.path().join("msg"), scratch.path().join("sig"));
            std::fs::write(&m, msg.as_bytes()).unwrap();
            std::fs::write(&s, base64url_decode(&sig)).unwrap();
            assert!(
                openssl_verifies_sig(pubkey, &m, &s),
                "{rel_dir}/{line}: openssl does not verify its gap signature over:\n{msg}"
            );
        } else if !line.starts_with('#') && !line.is_empty() {
            gap_sig = None;
            let value = tag
                .take()
                .unwrap_or_else(|| panic!("{}: {line} has no tag:\n{text}", playlist.display()));
            let (bytes, sha, sig) = (
                attr(&value, "BYTES"),
                attr(&value, "SHA256"),
                attr(&value, "SIG"),
            );
            let file = playlist.parent().unwrap().join(line);
            let data = std::fs::read(&file).unwrap();
            // The path the tag signs: the segment's own, below the origin root, whichever
            // playlist names it (a highlight's names `../../../../ANGLE/RUNG/SEQ.ts`).
            let path = std::fs::canonicalize(&file)
                .unwrap()
                .strip_prefix(std::fs::canonicalize(origin_root).unwrap())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert_eq!(bytes, data.len().to_string(), "{rel_dir}/{line}: BYTES");
            assert_eq!(sha, sha256_hex(&data), "{rel_dir}/{line}: SHA256");
            let msg = format!("swarmpack-segment/1\n{path}\n{bytes}\n{sha}\n{key_uri}\n{iv}\n");
            let (m, s) = (scratch.path().join("msg"), scratch.path().join("sig"));
            std::fs::write(&m, msg.as_bytes()).unwrap();
            std::fs::write(&s, base64url_decode(sig)).unwrap();
            assert!(
                openssl_verifies_sig(pubkey, &m, &s),
                "{rel_dir}/{line}: openssl does not verify its tag over:\n{msg}"
            );
            checked += 1;
        }
    }
    checked
}

/// The value of attribute `name` in an attribute list (quoted values keep their quotes).
fn attr<'a>(list: &'a str, name: &str) -> &'a str {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').unwrap_or((rest, ""));
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').map_or(after.len(), |i| i + 2);
            (&after[..end], after[end..].strip_prefix(',').unwrap_or(""))
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        if key == name {
            return value;
        }
        rest = next;
    }
    panic!("attribute {name} missing in {list}")
}
