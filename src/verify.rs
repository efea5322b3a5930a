//! `swarmpack verify`: checks a published match the way a careful peer would. Every window
//! manifest's Ed25519 signature, the hash chain between windows, every segment's length and
//! SHA-256, and that each torrent's infohashes, v1 piece hashes and v2 roots match the data.
//! Works on a local match directory or over HTTP. Reports one line per problem.

use crate::package::manifest::{LivePointer, WindowManifest, hex, sha256_hex};
use crate::package::torrent::{self, TorrentFile, TorrentMeta};
use bendy::value::Value;
use ring::signature::{ED25519, UnparsedPublicKey};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: {message}")]
    PublicKey { path: PathBuf, message: String },
    #[error("{location}: {message}")]
    Fetch { location: String, message: String },
}

/// Where the match directory is.
pub enum Source {
    Dir(PathBuf),
    Http(String),
}

impl Source {
    pub fn parse(s: &str) -> Source {
        if s.starts_with("http://") || s.starts_with("https://") {
            Source::Http(format!("{}/", s.trim_end_matches('/')))
        } else {
            Source::Dir(PathBuf::from(s))
        }
    }

    /// The object at `rel`, or None if it does not exist.
    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, VerifyError> {
        match self {
            Source::Dir(dir) => match std::fs::read(dir.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(VerifyError::Fetch {
                    location: dir.join(rel).display().to_string(),
                    message: e.to_string(),
                }),
            },
            Source::Http(base) => {
                let url = format!("{base}{rel}");
                match ureq::get(&url)
                    .timeout(std::time::Duration::from_secs(30))
                    .call()
                {
                    Ok(resp) => {
                        let mut bytes = Vec::new();
                        std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).map_err(
                            |e| VerifyError::Fetch {
                                location: url.clone(),
                                message: e.to_string(),
                            },
                        )?;
                        Ok(Some(bytes))
                    }
                    Err(ureq::Error::Status(404, _)) => Ok(None),
                    Err(e) => Err(VerifyError::Fetch {
                        location: url,
                        message: e.to_string(),
                    }),
                }
            }
        }
    }
}

/// Reads a raw Ed25519 public key from SPKI PEM (`pubkey.pem`).
pub fn read_pubkey(path: &std::path::Path) -> Result<Vec<u8>, VerifyError> {
    use base64::Engine;
    let err = |message: &str| VerifyError::PublicKey {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(&e.to_string()))?;
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| err("expected a PEM public key"))?;
    match der.len() {
        44 if der[..12]
            == [
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ] =>
        {
            Ok(der[12..].to_vec())
        }
        _ => Err(err(
            "expected an Ed25519 SPKI public key (as `swarmpack keygen` writes)",
        )),
    }
}

/// Verification outcome: every problem found, one line each.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub windows: usize,
    pub segments: usize,
}

struct Checker<'a> {
    src: &'a Source,
    key: UnparsedPublicKey<Vec<u8>>,
    report: Report,
}

impl Checker<'_> {
    fn problem(&mut self, line: String) {
        self.report.problems.push(line);
    }

    /// Fetches `rel` and its `.sig`, and checks the signature. Returns the bytes if signed.
    fn signed(&mut self, rel: &str) -> Result<Option<Vec<u8>>, VerifyError> {
        let Some(bytes) = self.src.get(rel)? else {
            return Ok(None);
        };
        match self.src.get(&format!("{rel}.sig"))? {
            None => self.problem(format!("{rel}.sig: missing")),
            Some(sig) if sig.len() != 64 => self.problem(format!(
                "{rel}.sig: {} bytes, expected a 64-byte Ed25519 signature",
                sig.len()
            )),
            Some(sig) => {
                if self.key.verify(&bytes, &sig).is_err() {
                    self.problem(format!(
                        "{rel}: signature does not verify with the public key"
                    ));
                }
            }
        }
        Ok(Some(bytes))
    }

    fn window(&mut self, w: u64, bytes: &[u8]) -> Result<Option<WindowManifest>, VerifyError> {
        let rel = format!("windows/{w}.json");
        let doc: WindowManifest = match serde_json::from_slice(bytes) {
            Ok(d) => d,
            Err(e) => {
                self.problem(format!("{rel}: not a window manifest ({e})"));
                return Ok(None);
            }
        };
        if doc.window != w {
            self.problem(format!(
                "{rel}: says window {}, expected {w} (swapped manifest)",
                doc.window
            ));
        }
        let mut files = Vec::new();
        for s in &doc.segments {
            self.report.segments += 1;
            match self.src.get(&s.path)? {
                None => self.problem(format!("{}: missing (listed in {rel})", s.path)),
                Some(data) if data.len() as u64 != s.length => self.problem(format!(
                    "{}: {} bytes, {rel} says {}",
                    s.path,
                    data.len(),
                    s.length
                )),
                Some(data) if sha256_hex(&data) != s.sha256 => self.problem(format!(
                    "{}: SHA-256 {} differs from {rel} ({})",
                    s.path,
                    sha256_hex(&data),
                    s.sha256
                )),
                Some(data) => files.push((
                    s.angle.clone(),
                    s.rung.clone(),
                    format!("{}.ts", s.seq),
                    data,
                )),
            }
        }
        self.torrent(&doc, &files)?;
        Ok(Some(doc))
    }

    fn torrent(
        &mut self,
        doc: &WindowManifest,
        files: &[(String, String, String, Vec<u8>)],
    ) -> Result<(), VerifyError> {
        let rel = doc.torrent.path.clone();
        let Some(bytes) = self.src.get(&rel)? else {
            self.problem(format!("{rel}: missing"));
            return Ok(());
        };
        let Ok(top) = torrent::decode(&bytes) else {
            self.problem(format!("{rel}: not bencode"));
            return Ok(());
        };
        let Some(info) = dict(&top, "info") else {
            self.problem(format!("{rel}: no info dictionary"));
            return Ok(());
        };
        let info_bytes = torrent::encode(info);
        let (v1, v2) = torrent::infohashes(&bytes).expect("decoded above, and it has an info dict");
        let (v1, v2) = (hex(&v1), hex(&v2));
        if v1 != doc.torrent.infohash_v1 || v2 != doc.torrent.infohash_v2 {
            self.problem(format!(
                "{rel}: infohashes {v1} / {v2} differ from windows/{}.json",
                doc.window
            ));
        }
        if files.len() != doc.segments.len() {
            return Ok(()); // Missing or altered segments are already reported.
        }
        // Rebuild the info dictionary from the data: v1 pieces and v2 roots must come out equal.
        let tf: Vec<TorrentFile> = files
            .iter()
            .map(|(a, r, n, d)| TorrentFile {
                path: [a, r, n],
                bytes: d,
            })
            .collect();
        let meta = TorrentMeta {
            name: doc.match_id.clone(),
            trackers: Vec::new(),
            web_seed: String::new(),
            creation_date: 0,
            comment: String::new(),
        };
        match torrent::build(&tf, &meta) {
            Ok(rebuilt) => {
                let rebuilt_top = torrent::decode(&rebuilt.bytes).expect("our own output decodes");
                if dict(&rebuilt_top, "info").map(torrent::encode) != Some(info_bytes) {
                    self.problem(format!(
                        "{rel}: piece hashes or merkle roots do not match the segments"
                    ));
                }
            }
            Err(e) => self.problem(format!("{rel}: {e}")),
        }
        Ok(())
    }
}

fn dict<'v>(v: &'v Value<'static>, key: &str) -> Option<&'v Value<'static>> {
    match v {
        Value::Dict(d) => d.get(key.as_bytes()),
        _ => None,
    }
}

/// Verifies the match at `src` (its directory: `live.json`, `windows/`, segments), or only
/// window `only` and its link to the one before.
pub fn verify(src: &Source, pubkey: &[u8], only: Option<u64>) -> Result<Report, VerifyError> {
    let mut c = Checker {
        src,
        key: UnparsedPublicKey::new(&ED25519, pubkey.to_vec()),
        report: Report::default(),
    };
    let newest = match only {
        Some(w) => w,
        None => {
            let Some(live) = c.signed("live.json")? else {
                c.problem("live.json: missing; nothing points at the newest window".into());
                return Ok(c.report);
            };
            match serde_json::from_slice::<LivePointer>(&live) {
                Ok(p) if !p.windows.is_empty() => p.windows[0],
                _ => {
                    c.problem("live.json: not a window pointer".into());
                    return Ok(c.report);
                }
            }
        }
    };
    // Walk the chain from the newest window back to the first (whose link is null).
    let mut w = newest;
    let mut next: Option<(u64, Option<String>)> = None;
    loop {
        let rel = format!("windows/{w}.json");
        let Some(bytes) = c.signed(&rel)? else {
            match &next {
                Some((n, _)) => c.problem(format!("windows/{n}.json: links to a previous window, but {rel} is missing (window removed from the chain)")),
                None => c.problem(format!("{rel}: missing")),
            }
            break;
        };
        c.report.windows += 1;
        if let Some((n, Some(expected))) = &next {
            let actual = sha256_hex(&bytes);
            if &actual != expected {
                c.problem(format!("windows/{n}.json: prev_manifest_sha256 {expected} does not match {rel} ({actual})"));
            }
        }
        let Some(doc) = c.window(w, &bytes)? else {
            break;
        };
        if only.is_some() && next.is_some() {
            break;
        }
        match (
            doc.prev_manifest_sha256,
            doc.prev_window.or(w.checked_sub(1)),
        ) {
            (Some(prev), Some(before)) => {
                next = Some((w, Some(prev)));
                w = before;
            }
            _ => break,
        }
    }
    Ok(c.report)
}
