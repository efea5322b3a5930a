//! `swarmpack verify`: checks a published match the way a careful peer would. Every window
//! manifest's Ed25519 signature, the hash chain between windows, every segment's length and
//! SHA-256, and that each torrent's infohashes, v1 piece hashes and v2 roots match the data.
//! Works on a match on any origin `run` publishes to (a directory, HTTP, S3), read through
//! [`crate::publish::Origin`]. Reports one line per problem.
//!
//! May call: `layout`, `package`, `pem`, `publish`.

use crate::package::bencode::get as dict;
use crate::package::chain::{self, Link, LinkError};
use crate::package::manifest::{LivePointer, WindowManifest, hex, sha256_hex};
use crate::package::playlist::media_uris;
use crate::package::segment_sig::{TAG, tagged_entries};
use crate::package::torrent::{self, TorrentFile, TorrentMeta};
use crate::publish::Origin;
use m3u8_rs::Playlist;
use ring::signature::{ED25519, UnparsedPublicKey};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: {message}")]
    PublicKey { path: PathBuf, message: String },
    #[error("{location}: {message}")]
    Fetch { location: String, message: String },
}

/// Where the match directory is: a match on an origin of any kind `run --origin` takes
/// (a directory or `file://`, `http(s)://`, `s3://`), read through the one origin reader.
pub struct Source {
    origin: Origin,
    match_id: String,
    rt: tokio::runtime::Runtime,
}

impl Source {
    /// The match at `s`: its last path segment names the match, the rest the origin.
    pub fn parse(s: &str) -> Result<Source, VerifyError> {
        let fetch = |message: String| VerifyError::Fetch {
            location: s.to_string(),
            message,
        };
        let trimmed = s.trim_end_matches('/');
        let (base, match_id) = trimmed.rsplit_once('/').unwrap_or((".", trimmed));
        if match_id.is_empty() {
            return Err(fetch("expected the match directory on the origin".into()));
        }
        let url = match base.split_once("://") {
            Some(("file", _)) | None => {
                let dir = trimmed.strip_prefix("file://").unwrap_or(trimmed);
                if !std::path::Path::new(dir).is_dir() {
                    return Err(fetch(
                        "not a directory (expected the match directory on the origin)".into(),
                    ));
                }
                format!("file://{}", base.strip_prefix("file://").unwrap_or(base))
            }
            Some(_) => base.to_string(),
        };
        let origin = Origin::open(&url).map_err(|e| fetch(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fetch(e.to_string()))?;
        Ok(Source {
            origin,
            match_id: match_id.to_string(),
            rt,
        })
    }

    /// The object at `rel` (relative to the match), or None if it does not exist. At most
    /// [`MAX_OBJECT`] bytes are read: what a manifest names is not trusted before its bytes
    /// check.
    fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, VerifyError> {
        let path = crate::layout::in_match(&self.match_id, rel);
        match self.rt.block_on(self.origin.get_limited(&path, MAX_OBJECT)) {
            Ok(found) => Ok(found),
            // The origin will not serve it (403, 410, …): missing, as verify sees it.
            Err(e) if e.is_withheld() => Ok(None),
            Err(e) => Err(VerifyError::Fetch {
                location: format!("{}/{path}", self.origin.describe()),
                message: e.to_string(),
            }),
        }
    }
}

/// The largest object `verify` reads (a segment of a 200 Mb/s rung for 6 s is 150 MB).
pub const MAX_OBJECT: u64 = 256 * 1024 * 1024;

/// Reads a raw Ed25519 public key from SPKI PEM (`pubkey.pem`).
pub fn read_pubkey(path: &std::path::Path) -> Result<Vec<u8>, VerifyError> {
    let err = |message: String| VerifyError::PublicKey {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    crate::pem::parse_ed25519_spki_pem(&text).map_err(|e| err(e.to_string()))
}

/// Verification outcome: every problem found, one line each.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub windows: usize,
    pub segments: usize,
    /// `#EXT-X-SWARMPACK-SEGMENT` tags checked in the media playlists.
    pub tags: usize,
    /// Signed gaps (EXT-X-GAP with a verified #EXT-X-SWARMPACK-GAP and no segment tag): seqs
    /// the match will never have (an angle's machine stopped, or a claim was lost).
    pub gaps: usize,
}

struct Checker<'a> {
    src: &'a Source,
    key: UnparsedPublicKey<Vec<u8>>,
    public_key: Vec<u8>,
    report: Report,
    /// Length and SHA-256 of every segment read so far, by path below the match.
    digests: HashMap<String, (u64, String)>,
    /// Segments already reported as missing or altered (one line per problem).
    reported: HashSet<String>,
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

    fn window(&mut self, doc: &WindowManifest) -> Result<(), VerifyError> {
        let rel = crate::layout::window_manifest_rel(doc.window);
        let mut files = Vec::new();
        for s in &doc.segments {
            self.report.segments += 1;
            if let Err(expected) = s.check_path() {
                self.reported.insert(s.path.clone());
                self.problem(format!(
                    "{rel}: lists path {:?}, expected {expected}; not read",
                    s.path
                ));
                continue;
            }
            let Some(data) = self.src.get(&s.path)? else {
                self.reported.insert(s.path.clone());
                self.problem(format!("{}: missing (listed in {rel})", s.path));
                continue;
            };
            match s.check_bytes(&data) {
                Ok(sha) => {
                    self.digests.insert(s.path.clone(), (s.length, sha));
                    let name = format!("{}.ts", s.seq);
                    files.push((s.angle.clone(), s.rung.clone(), name, data));
                }
                Err(mismatch) => {
                    self.reported.insert(s.path.clone());
                    self.problem(format!("{}: {mismatch} in {rel}", s.path));
                }
            }
        }
        self.torrent(doc, &files)
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
        // The announce list is outside the infohash: it must name the signed magnet's trackers.
        let signed = crate::package::vod::Distribution::from_magnet(&doc.torrent.magnet);
        if torrent::with_trackers(&bytes, &signed.trackers)
            .ok()
            .as_deref()
            != Some(&bytes[..])
        {
            self.problem(format!(
                "{rel}: its announce list is not the trackers of windows/{}.json's signed magnet link ({})",
                doc.window,
                signed.trackers.join(", ")
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

impl Checker<'_> {
    /// Every media playlist the multivariant playlists name (live and VOD): each segment's
    /// `#EXT-X-SWARMPACK-SEGMENT` tag must verify for its path, key URI and IV, and describe
    /// the bytes the origin holds.
    fn playlists(&mut self, match_id: &str) -> Result<(), VerifyError> {
        let mut media = BTreeSet::new();
        for master in ["master.m3u8", "vod.m3u8"] {
            let Some(bytes) = self.src.get(master)? else {
                if master == "master.m3u8" {
                    self.problem("master.m3u8: missing".into());
                }
                continue;
            };
            match media_uris(&bytes) {
                Some(uris) => media.extend(uris),
                None => self.problem(format!("{master}: not a multivariant playlist")),
            }
        }
        for rel in media {
            if !crate::layout::is_plain_relative(&rel) || !rel.ends_with(".m3u8") {
                self.problem(format!(
                    "a multivariant playlist names {rel:?}, expected ANGLE/RUNG/index.m3u8"
                ));
                continue;
            }
            self.media_playlist(match_id, &rel)?;
        }
        Ok(())
    }

    fn media_playlist(&mut self, match_id: &str, rel: &str) -> Result<(), VerifyError> {
        let Some(bytes) = self.src.get(rel)? else {
            self.problem(format!("{rel}: missing"));
            return Ok(());
        };
        let playlist = match m3u8_rs::parse_playlist_res(&bytes) {
            Ok(Playlist::MediaPlaylist(p)) => p,
            _ => {
                self.problem(format!("{rel}: not a media playlist"));
                return Ok(());
            }
        };
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        for entry in tagged_entries(&playlist) {
            let uri = &entry.uri;
            let seg_rel = format!("{dir}/{uri}");
            if !crate::layout::is_plain_relative(&seg_rel) || !uri.ends_with(".ts") {
                self.problem(format!("{rel}: names {uri:?}, expected SEQ.ts"));
                continue;
            }
            self.report.tags += 1;
            let path = crate::layout::in_match(match_id, &seg_rel);
            let tag = match (&entry.key, &entry.tag) {
                (Err(e), _) => {
                    self.problem(format!("{rel}: {uri}: {e}"));
                    continue;
                }
                (_, Some(Err(e))) => {
                    self.problem(format!("{rel}: {uri}: #EXT-{TAG}: {e}"));
                    continue;
                }
                // A signed gap with no segment tag: a machine of an angle group stopped and
                // the others carried its playlist on without it, or a redundant run lost the
                // seq to a claim it could not verify. It names no bytes.
                (_, None) if entry.signed_gap(&self.public_key, &path) => {
                    self.report.tags -= 1;
                    self.report.gaps += 1;
                    continue;
                }
                (_, None) if entry.gap => {
                    self.problem(format!(
                        "{rel}: {uri}: a gap (EXT-X-GAP) without a #EXT-{} signature that verifies for {path}: \
                         not the match's (only the match key may say a seq will never have bytes)",
                        crate::package::segment_sig::GAP_TAG
                    ));
                    continue;
                }
                (_, None) => {
                    self.problem(format!("{rel}: {uri}: no #EXT-{TAG} tag"));
                    continue;
                }
                _ => match entry.verified(&self.public_key, &path) {
                    Some(tag) => tag,
                    None => {
                        self.problem(format!(
                            "{rel}: {uri}: segment signature does not verify for {path} with this key URI and IV \
                             (segment, key URI or IV changed)"
                        ));
                        continue;
                    }
                },
            };
            if entry.gap {
                self.problem(format!(
                    "{rel}: {uri}: a gap (EXT-X-GAP): the origin refused this segment while the match was live"
                ));
                continue;
            }
            if self.reported.contains(&seg_rel) {
                continue; // Already named against its window manifest.
            }
            let digest = match self.digests.get(&seg_rel) {
                Some(d) => Some(d.clone()),
                None => self
                    .src
                    .get(&seg_rel)?
                    .map(|data| (data.len() as u64, sha256_hex(&data))),
            };
            let tagged = (tag.bytes, hex(&tag.sha256));
            match digest {
                None => self.problem(format!("{seg_rel}: missing (named in {rel})")),
                Some(found) if found != tagged => self.problem(format!(
                    "{seg_rel}: {} bytes with SHA-256 {}, but its tag in {rel} says {} and {} \
                     (segment swapped or altered)",
                    found.0, found.1, tagged.0, tagged.1
                )),
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// Verifies the match at `src` (its directory: `live.json`, `windows/`, segments, media
/// playlists), or only window `only` and its link to the one before.
pub fn verify(src: &Source, pubkey: &[u8], only: Option<u64>) -> Result<Report, VerifyError> {
    let mut c = Checker {
        src,
        key: UnparsedPublicKey::new(&ED25519, pubkey.to_vec()),
        public_key: pubkey.to_vec(),
        report: Report::default(),
        digests: HashMap::new(),
        reported: HashSet::new(),
    };
    // p2p.json names the trackers every viewer's browser contacts: signed, or a problem.
    c.signed("p2p.json")?;
    let Some(live) = c.signed("live.json")? else {
        c.problem("live.json: missing; nothing points at the newest window".into());
        return Ok(c.report);
    };
    let pointer = match serde_json::from_slice::<LivePointer>(&live) {
        Ok(p) if !p.windows.is_empty() => p,
        _ => {
            c.problem("live.json: not a window pointer".into());
            return Ok(c.report);
        }
    };
    let match_id = pointer.match_id.clone();
    // The first link is unchecked when only one window is asked for: its hash comes from
    // the manifest itself, the signature still has to hold.
    let mut next = match only {
        Some(w) => Some(Link {
            window: w,
            sha256: String::new(),
        }),
        None => chain::head(&pointer),
    };
    // Walk the chain from the newest window back to the first (whose link is null).
    let mut after: Option<u64> = None;
    while let Some(mut link) = next.take() {
        let rel = link.path();
        let Some(bytes) = c.signed(&rel)? else {
            match after {
                Some(n) => c.problem(format!("windows/{n}.json: links to a previous window, but {rel} is missing (window removed from the chain)")),
                None => c.problem(format!("{rel}: missing")),
            }
            break;
        };
        c.report.windows += 1;
        if link.sha256.is_empty() {
            link.sha256 = sha256_hex(&bytes);
        }
        let sig = c.src.get(&format!("{rel}.sig"))?.unwrap_or_default();
        let (doc, prev) = match chain::check(&match_id, &link, &bytes, &sig, pubkey) {
            Ok(checked) => checked,
            // The signature is reported by `signed` already; the chain goes on past it.
            Err(LinkError::Signature) => match serde_json::from_slice::<WindowManifest>(&bytes) {
                Ok(doc) => {
                    let prev = chain::previous(&doc).ok().flatten();
                    (doc, prev)
                }
                Err(e) => {
                    c.problem(format!("{rel}: not a window manifest ({e})"));
                    break;
                }
            },
            Err(LinkError::Hash { found, expected }) => {
                let from =
                    after.map_or("live.json".to_string(), crate::layout::window_manifest_rel);
                c.problem(format!(
                    "{from}: links to {rel} with SHA-256 {expected}, but {rel} has {found}"
                ));
                break;
            }
            Err(e) => {
                c.problem(format!("{rel}: {e}"));
                break;
            }
        };
        c.window(&doc)?;
        if only.is_some() && after.is_some() {
            break;
        }
        after = Some(link.window);
        next = prev;
    }
    if only.is_none() {
        c.playlists(&match_id)?;
    }
    Ok(c.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_take_the_forms_run_takes() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("final")).unwrap();
        let dir = tmp.path().join("final").display().to_string();
        for form in [dir.clone(), format!("file://{dir}"), format!("{dir}/")] {
            let s = Source::parse(&form).unwrap();
            assert_eq!(s.match_id, "final");
            assert_eq!(s.origin.local_root(), Some(tmp.path()), "{form}");
        }
        let http = Source::parse("http://h/o/final/").unwrap();
        assert_eq!(
            (http.match_id.as_str(), http.origin.describe()),
            ("final", "http://h/o")
        );
        let s3 = Source::parse("s3://bucket/prefix/final").unwrap();
        assert_eq!(s3.match_id, "final");
        for missing in ["file:///no/such/match", "/no/such/match"] {
            let e = Source::parse(missing).err().unwrap().to_string();
            assert!(
                e.contains("/no/such/match") && e.contains("not a directory"),
                "{e}"
            );
        }
    }
}
