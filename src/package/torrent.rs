//! Window torrents: a hybrid v1+v2 (BEP 3 + BEP 52) multi-file metainfo per window.
//!
//! `info.name` is the match and the files are `{angle}/{rung}/{seq}.ts`, in path order. BEP 47
//! pad files align every file to a piece boundary, so every segment verifies on its own in
//! both v1 and v2. Pure: segment bytes in, metainfo bytes and infohashes out. Hashes are
//! computed from the bytes in memory, never by walking files.
//!
//! May call: `bencode`.

use super::bencode::{Value, bytes, dict};
pub use super::bencode::{decode as decode_value, encode};
use ring::digest;
use std::collections::BTreeMap;

/// BEP 52 merkle block size in bytes.
pub const BLOCK: usize = 16 * 1024;
/// Smallest and largest piece length swarmpack picks, in bytes.
pub const MIN_PIECE: u64 = 16 * 1024;
pub const MAX_PIECE: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TorrentError {
    #[error("a window torrent needs at least one file")]
    Empty,
    #[error("metainfo is not valid bencode: {0}")]
    Bencode(String),
    #[error("metainfo field {0} is missing or has the wrong type")]
    Field(&'static str),
}

/// One file of the window: its path below `name`, and its bytes as stored.
#[derive(Clone, Copy, Debug)]
pub struct TorrentFile<'a> {
    /// `[angle, rung, "{seq}.ts"]`.
    pub path: [&'a str; 3],
    pub bytes: &'a [u8],
}

/// Everything outside the file data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentMeta {
    /// `info.name`: the match ID.
    pub name: String,
    /// Tracker announce URLs; the first is `announce`, each is a tier of `announce-list`.
    pub trackers: Vec<String>,
    /// BEP 19 web seed: the origin's public URL (ends with `/`).
    pub web_seed: String,
    /// Unix seconds.
    pub creation_date: i64,
    pub comment: String,
}

/// A built window torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowTorrent {
    /// The `.torrent` file.
    pub bytes: Vec<u8>,
    /// SHA-1 of the bencoded info dict.
    pub v1: [u8; 20],
    /// SHA-256 of the bencoded info dict.
    pub v2: [u8; 32],
    pub piece_length: u64,
    /// Lengths of the BEP 47 pad files it names (`.pad/{length}`), distinct, ascending.
    /// Clients that ignore BEP 47 (aria2) fetch them from the web seed, so the origin
    /// publishes zero-filled files under `{match}/.pad/`.
    pub pads: Vec<u64>,
}

/// The piece length for a window whose largest file has `max_file` bytes: the power of two
/// nearest an eighth of it, within 16 KiB..=1 MiB, so a segment spans a handful of pieces.
pub const fn piece_length_for(max_file: u64) -> u64 {
    let target = max_file / 8;
    let mut p = MIN_PIECE;
    while p < target && p < MAX_PIECE {
        p *= 2;
    }
    p
}

/// Bytes of padding after a file of `len` bytes so the next file starts on a piece boundary.
pub const fn pad_after(len: u64, piece: u64) -> u64 {
    (piece - len % piece) % piece
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// SHA-1 of v1 pieces. RustCrypto's `sha1` uses the CPU's SHA extensions when it has them
/// (about 5x ring's SHA-1 here, which has no SHA-NI path); SHA-256 stays with ring (SHA-NI).
fn sha1(data: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(data).into()
}

fn parent(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(l);
    ctx.update(r);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// BEP 52 merkle tree of one non-empty file: its pieces root, and its piece layer (the
/// hashes of each piece's subtree) when the file is longer than one piece.
pub fn merkle(data: &[u8], piece: u64) -> ([u8; 32], Option<Vec<u8>>) {
    let mut layer: Vec<[u8; 32]> = data.chunks(BLOCK).map(sha256).collect();
    let leaves = layer.len().next_power_of_two();
    layer.resize(leaves, [0u8; 32]);
    let blocks_per_piece = (piece as usize / BLOCK).max(1);
    let pieces = (data.len() as u64).div_ceil(piece) as usize;
    let mut piece_layer = None;
    let mut width = 1usize;
    loop {
        if width == blocks_per_piece && pieces > 1 {
            piece_layer = Some(layer[..pieces].concat());
        }
        if layer.len() == 1 {
            break;
        }
        layer = layer.chunks(2).map(|p| parent(&p[0], &p[1])).collect();
        width *= 2;
    }
    (layer[0], piece_layer)
}

/// Decodes canonical bencode into a value.
pub fn decode(data: &[u8]) -> Result<Value, TorrentError> {
    decode_value(data).map_err(TorrentError::Bencode)
}

/// The v1 (SHA-1) and v2 (SHA-256) infohashes of a `.torrent` file: hashes of its bencoded
/// `info` dictionary.
pub fn infohashes(torrent: &[u8]) -> Result<([u8; 20], [u8; 32]), TorrentError> {
    let top = decode(torrent)?;
    let info = super::bencode::get(&top, "info").ok_or(TorrentError::Field("info"))?;
    let info_bytes = encode(info);
    Ok((sha1(&info_bytes), sha256(&info_bytes)))
}

/// `torrent` with its `announce` and `announce-list` replaced by `trackers` (removed when
/// there are none). `info`, and so both infohashes, stay as they are.
pub fn with_trackers(torrent: &[u8], trackers: &[String]) -> Result<Vec<u8>, TorrentError> {
    let Value::Dict(mut top) = decode(torrent)? else {
        return Err(TorrentError::Field("info"));
    };
    let key = |k: &str| librqbit_bencode::ByteBufOwned::from(k.as_bytes());
    top.remove(&key("announce"));
    top.remove(&key("announce-list"));
    if let Some(first) = trackers.first() {
        top.insert(key("announce"), bytes(first.as_bytes()));
        let tiers = trackers
            .iter()
            .map(|t| Value::List(vec![bytes(t.as_bytes())]))
            .collect();
        top.insert(key("announce-list"), Value::List(tiers));
    }
    Ok(encode(&Value::Dict(top)))
}

/// Builds the hybrid torrent of one window. Files are sorted by path (the v2 file tree is a
/// dict, and the v1 file list must follow the same order).
pub fn build(files: &[TorrentFile], meta: &TorrentMeta) -> Result<WindowTorrent, TorrentError> {
    let mut files: Vec<TorrentFile> = files.to_vec();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let max = files
        .iter()
        .map(|f| f.bytes.len() as u64)
        .max()
        .unwrap_or(0);
    let piece = piece_length_for(max);
    let last = files.len().saturating_sub(1);
    let hashed: Vec<HashedFile> = files
        .iter()
        .enumerate()
        .map(|(i, f)| hash_file(f.path, f.bytes, piece, i == last))
        .collect();
    assemble(&hashed, piece, meta)
}

/// One file's share of a torrent (its v1 piece hashes and its v2 merkle root and layer), so
/// a large torrent can be built one file at a time without holding every file in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashedFile {
    pub path: [String; 3],
    pub length: u64,
    v1_pieces: Vec<u8>,
    root: Option<[u8; 32]>,
    layer: Option<Vec<u8>>,
}

/// Hashes one file for a torrent of `piece`-byte pieces. Its last v1 piece is completed with
/// pad zeros (the next file starts on a piece boundary) unless it is the `last` file.
pub fn hash_file(path: [&str; 3], data: &[u8], piece: u64, last: bool) -> HashedFile {
    let mut v1_pieces = Vec::new();
    for chunk in data.chunks(piece as usize) {
        if chunk.len() as u64 == piece || last {
            v1_pieces.extend_from_slice(&sha1(chunk));
        } else {
            let mut padded = chunk.to_vec();
            padded.resize(piece as usize, 0);
            v1_pieces.extend_from_slice(&sha1(&padded));
        }
    }
    let (root, layer) = if data.is_empty() {
        (None, None)
    } else {
        let (root, layer) = merkle(data, piece);
        (Some(root), layer)
    };
    HashedFile {
        path: path.map(str::to_string),
        length: data.len() as u64,
        v1_pieces,
        root,
        layer,
    }
}

/// The torrent of files hashed by [`hash_file`] with the same `piece`, in path order.
pub fn assemble(
    files: &[HashedFile],
    piece: u64,
    meta: &TorrentMeta,
) -> Result<WindowTorrent, TorrentError> {
    if files.is_empty() {
        return Err(TorrentError::Empty);
    }
    let mut v1_files = Vec::new();
    let mut pads = std::collections::BTreeSet::new();
    let mut pieces = Vec::new();
    let mut layers: BTreeMap<Vec<u8>, Value> = BTreeMap::new();
    let mut tree: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>> = BTreeMap::new();
    let last = files.len() - 1;
    for (i, f) in files.iter().enumerate() {
        let len = f.length;
        let path = f
            .path
            .iter()
            .map(|p| bytes(p.clone().into_bytes()))
            .collect();
        v1_files.push(dict(vec![
            ("length", Value::Integer(len as i64)),
            ("path", Value::List(path)),
        ]));
        pieces.extend_from_slice(&f.v1_pieces);
        let pad = pad_after(len, piece);
        if i != last && pad > 0 {
            pads.insert(pad);
            v1_files.push(dict(vec![
                ("attr", bytes("p")),
                ("length", Value::Integer(pad as i64)),
                (
                    "path",
                    Value::List(vec![bytes(".pad"), bytes(pad.to_string())]),
                ),
            ]));
        }
        let mut entry = vec![("length", Value::Integer(len as i64))];
        if let Some(root) = f.root {
            entry.push(("pieces root", bytes(root.to_vec())));
            if let Some(layer) = &f.layer {
                layers.insert(root.to_vec(), bytes(layer.clone()));
            }
        }
        tree.entry(f.path[0].clone())
            .or_default()
            .entry(f.path[1].clone())
            .or_default()
            .insert(f.path[2].clone(), dict(vec![("", dict(entry))]));
    }
    let file_tree = dict(tree.into_iter().map(|(angle, rungs)| {
        let rungs = dict(rungs.into_iter().map(|(rung, segs)| (rung, dict(segs))));
        (angle, rungs)
    }));
    let info = dict(vec![
        ("file tree", file_tree),
        ("files", Value::List(v1_files)),
        ("meta version", Value::Integer(2)),
        ("name", bytes(meta.name.as_bytes())),
        ("piece length", Value::Integer(piece as i64)),
        ("pieces", bytes(pieces)),
    ]);
    let info_bytes = encode(&info);
    let mut top = vec![
        ("comment", bytes(meta.comment.as_bytes())),
        (
            "created by",
            bytes(concat!("swarmpack ", env!("CARGO_PKG_VERSION"))),
        ),
        ("creation date", Value::Integer(meta.creation_date)),
        ("info", info),
        ("piece layers", dict(layers)),
        (
            "url-list",
            Value::List(vec![bytes(meta.web_seed.as_bytes())]),
        ),
    ];
    if let Some(first) = meta.trackers.first() {
        top.push(("announce", bytes(first.as_bytes())));
        let tiers = meta
            .trackers
            .iter()
            .map(|t| Value::List(vec![bytes(t.as_bytes())]))
            .collect();
        top.push(("announce-list", Value::List(tiers)));
    }
    Ok(WindowTorrent {
        bytes: encode(&dict(top)),
        v1: sha1(&info_bytes),
        v2: sha256(&info_bytes),
        piece_length: piece,
        pads: pads.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests;
