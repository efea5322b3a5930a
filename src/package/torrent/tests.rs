use super::*;
use proptest::prelude::*;

fn meta() -> TorrentMeta {
    TorrentMeta {
        name: "final".into(),
        trackers: vec![
            "udp://127.0.0.1:6969/announce".into(),
            "http://127.0.0.1:6969/announce".into(),
        ],
        web_seed: "http://127.0.0.1:8080/".into(),
        creation_date: 1_795_370_400,
        comment: "window 179537040".into(),
    }
}

fn dict_get<'a>(v: &'a Value, key: &str) -> &'a Value {
    crate::package::bencode::get(v, key).unwrap_or_else(|| panic!("no {key}"))
}

fn as_bytes(v: &Value) -> &[u8] {
    match v {
        Value::Bytes(b) => b.as_ref(),
        _ => panic!("not bytes"),
    }
}

fn as_int(v: &Value) -> i64 {
    match v {
        Value::Integer(i) => *i,
        _ => panic!("not an integer"),
    }
}

#[test]
fn piece_length_follows_segment_size_within_bounds() {
    assert_eq!(piece_length_for(0), 16 * 1024);
    assert_eq!(piece_length_for(100_000), 16 * 1024);
    assert_eq!(piece_length_for(750_000), 128 * 1024);
    assert_eq!(piece_length_for(2_000_000), 256 * 1024);
    assert_eq!(piece_length_for(100_000_000), 1024 * 1024);
    for size in [0u64, 1, 16_385, 999_999, 50_000_000] {
        let p = piece_length_for(size);
        assert!(p.is_power_of_two() && (MIN_PIECE..=MAX_PIECE).contains(&p));
    }
}

#[test]
fn padding_aligns_multiples_and_non_multiples() {
    let p = 16 * 1024;
    assert_eq!(pad_after(p, p), 0);
    assert_eq!(pad_after(2 * p, p), 0);
    assert_eq!(pad_after(p + 1, p), p - 1);
    assert_eq!(pad_after(1, p), p - 1);
    assert_eq!(pad_after(0, p), 0);
}

#[test]
fn every_file_starts_on_a_piece_boundary_in_the_v1_stream() {
    let piece = 16 * 1024usize;
    // Sizes that are and are not multiples of the piece length.
    let data: Vec<Vec<u8>> = [piece, 3 * piece, piece + 1, 7, 2 * piece - 1]
        .iter()
        .enumerate()
        .map(|(i, n)| vec![i as u8 + 1; *n])
        .collect();
    let names: Vec<String> = (0..data.len()).map(|i| format!("{}.ts", 100 + i)).collect();
    let files: Vec<TorrentFile> = data
        .iter()
        .zip(&names)
        .map(|(d, n)| TorrentFile {
            path: ["main", "360p", n],
            bytes: d,
        })
        .collect();
    let t = build(&files, &meta()).unwrap();
    assert_eq!(t.piece_length, piece as u64);
    let top = decode(&t.bytes).unwrap();
    let info = dict_get(&top, "info");
    let Value::List(list) = dict_get(info, "files") else {
        panic!()
    };
    let mut offset = 0i64;
    let mut real = 0;
    for f in list {
        let len = as_int(dict_get(f, "length"));
        let is_pad = crate::package::bencode::get(f, "attr").is_some();
        if !is_pad {
            assert_eq!(offset % piece as i64, 0, "file {real} starts mid-piece");
            real += 1;
        }
        offset += len;
    }
    assert_eq!(real, 5);
    let expected_pieces: usize = data.iter().map(|d| d.len().div_ceil(piece)).sum();
    assert_eq!(
        as_bytes(dict_get(info, "pieces")).len(),
        20 * expected_pieces
    );
    // Each v1 piece hash covers one file's bytes, zero-padded except at the very end.
    let pieces = as_bytes(dict_get(info, "pieces"));
    let mut tail = data[2][piece..].to_vec();
    tail.resize(piece, 0);
    // Pieces: file 0 → 0, file 1 → 1..=3, file 2 → 4 (full) and 5 (its tail).
    assert_eq!(&pieces[20 * 5..20 * 6], &sha1(&tail));
    assert_eq!(&pieces[pieces.len() - 20..], &sha1(&data[4][piece..]));
}

#[test]
fn infohashes_are_of_the_info_dict_bytes() {
    let a = vec![1u8; 40_000];
    let t = build(
        &[TorrentFile {
            path: ["main", "360p", "1.ts"],
            bytes: &a,
        }],
        &meta(),
    )
    .unwrap();
    let top = decode(&t.bytes).unwrap();
    let info = encode(dict_get(&top, "info"));
    assert!(
        t.bytes.windows(info.len()).any(|w| w == info.as_slice()),
        "info is embedded verbatim"
    );
    assert_eq!(t.v1, sha1(&info));
    assert_eq!(t.v2, sha256(&info));
    assert_eq!(as_int(dict_get(dict_get(&top, "info"), "meta version")), 2);
}

#[test]
fn merkle_roots_and_piece_layers() {
    // One block: the root is the block's hash.
    let one = vec![5u8; 1000];
    assert_eq!(merkle(&one, 16 * 1024), (sha256(&one), None));
    // Three blocks, 16 KiB pieces: leaves padded to four with zero hashes.
    let three = vec![6u8; 3 * BLOCK];
    let h = sha256(&three[..BLOCK]);
    let root = parent(&parent(&h, &h), &parent(&h, &[0; 32]));
    let (r, layer) = merkle(&three, 16 * 1024);
    assert_eq!(r, root);
    assert_eq!(layer.unwrap(), [h, h, h].concat());
    // Same file, 32 KiB pieces: the layer is the two subtree roots.
    let (r2, layer2) = merkle(&three, 32 * 1024);
    assert_eq!(r2, root);
    assert_eq!(
        layer2.unwrap(),
        [parent(&h, &h), parent(&h, &[0; 32])].concat()
    );
}

#[test]
fn metainfo_golden() {
    let a = vec![0x47u8; 20_000];
    let b = vec![0x11u8; 5];
    let files = [
        TorrentFile {
            path: ["pov", "180p", "2.ts"],
            bytes: &b,
        },
        TorrentFile {
            path: ["main", "180p", "2.ts"],
            bytes: &a,
        },
    ];
    let t = build(&files, &meta()).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torrent/window.torrent");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &t.bytes).unwrap();
    }
    assert_eq!(
        t.bytes,
        std::fs::read(&path).expect("golden torrent (UPDATE_GOLDEN=1 to create)")
    );
}

#[test]
fn no_files_is_an_error() {
    assert_eq!(build(&[], &meta()), Err(TorrentError::Empty));
    assert!(decode(b"d3:foo").is_err());
}

proptest! {
    #[test]
    fn torrents_round_trip_through_the_decoder(sizes in proptest::collection::vec(0usize..70_000, 1..6)) {
        let data: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, n)| vec![i as u8; *n]).collect();
        let names: Vec<String> = (0..data.len()).map(|i| format!("{i}.ts")).collect();
        let files: Vec<TorrentFile> = data.iter().zip(&names).map(|(d, n)| TorrentFile { path: ["a", "r", n], bytes: d }).collect();
        let t = build(&files, &meta()).unwrap();
        let decoded = decode(&t.bytes).unwrap();
        prop_assert_eq!(encode(&decoded), t.bytes.clone());
        let info = dict_get(&decoded, "info");
        prop_assert_eq!(sha1(&encode(info)), t.v1);
        let total_pieces: usize = data.iter().map(|d| d.len().div_ceil(t.piece_length as usize)).sum();
        prop_assert_eq!(as_bytes(dict_get(info, "pieces")).len(), 20 * total_pieces);
    }
}

/// Issue 25, item 4: the announce list on the origin is outside the infohash; an edge seeder
/// puts the signed magnet link's trackers in its place, and the infohashes stay.
#[test]
fn trackers_are_replaced_and_the_infohashes_stay() {
    let a = vec![1u8; 40_000];
    let files = [TorrentFile {
        path: ["main", "360p", "1.ts"],
        bytes: &a,
    }];
    let mut rewritten = meta();
    rewritten.trackers = vec!["http://attacker.example:1/announce".into()];
    let forged = build(&files, &rewritten).unwrap();
    let signed = vec!["udp://127.0.0.1:6969/announce".to_string()];
    let fixed = with_trackers(&forged.bytes, &signed).unwrap();
    assert_eq!(infohashes(&fixed).unwrap(), (forged.v1, forged.v2));
    let top = decode(&fixed).unwrap();
    assert_eq!(as_bytes(dict_get(&top, "announce")), signed[0].as_bytes());
    assert!(!fixed.windows(8).any(|w| w == b"attacker"));
    // No signed tracker: none at all.
    let none = with_trackers(&forged.bytes, &[]).unwrap();
    assert!(!none.windows(8).any(|w| w == b"announce"));
    assert_eq!(infohashes(&none).unwrap(), (forged.v1, forged.v2));
    // As built from the same trackers, byte for byte.
    let built = build(&files, &meta()).unwrap();
    assert_eq!(
        with_trackers(&forged.bytes, &meta().trackers).unwrap(),
        built.bytes
    );
}
