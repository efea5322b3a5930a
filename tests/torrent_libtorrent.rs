//! Window torrents as libtorrent (python3-libtorrent) sees them: hybrid v1+v2, with the web
//! seed and trackers, and a recheck against the files reports 100%.

mod common;

use common::lt_check;
use swarmpack::package::torrent::{TorrentFile, TorrentMeta, build};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn libtorrent_loads_a_hybrid_window_torrent_and_rechecks_it_complete() {
    let tmp = tempfile::tempdir().unwrap();
    // Segment-like files: sizes that are and are not multiples of the piece length.
    let mut owned = Vec::new();
    for (i, (angle, rung)) in [
        ("main", "360p"),
        ("main", "180p"),
        ("pov", "360p"),
        ("pov", "180p"),
    ]
    .iter()
    .enumerate()
    {
        for seq in 0..3u64 {
            let len = 131_072 * (i + 1)
                + if seq == 1 {
                    0
                } else {
                    1_000 + 188 * seq as usize
                };
            let bytes: Vec<u8> = (0..len)
                .map(|n| (n as u64 * 31 + seq * 7 + i as u64) as u8)
                .collect();
            owned.push((
                angle.to_string(),
                rung.to_string(),
                format!("{}.ts", 897_685_200 + seq),
                bytes,
            ));
        }
    }
    for (a, r, n, b) in &owned {
        let dir = tmp.path().join("final").join(a).join(r);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(n), b).unwrap();
    }
    let files: Vec<TorrentFile> = owned
        .iter()
        .map(|(a, r, n, b)| TorrentFile {
            path: [a, r, n],
            bytes: b,
        })
        .collect();
    let meta = TorrentMeta {
        name: "final".into(),
        trackers: vec![
            "udp://127.0.0.1:6969/announce".into(),
            "http://127.0.0.1:6969/announce".into(),
        ],
        web_seed: "http://127.0.0.1:8080/".into(),
        creation_date: 1_795_370_400,
        comment: "window 179537040 of match final".into(),
    };
    let t = build(&files, &meta).unwrap();
    let torrent = tmp.path().join("179537040.torrent");
    std::fs::write(&torrent, &t.bytes).unwrap();

    let text = lt_check(&torrent, tmp.path());
    let field = |k: &str| field_of(&text, k);
    assert_eq!(field("v1"), format!("1 {}", hex(&t.v1)), "v1 infohash");
    assert_eq!(field("v2"), format!("1 {}", hex(&t.v2)), "v2 infohash");
    assert_eq!(field("name"), "final");
    assert_eq!(field("webseeds"), "http://127.0.0.1:8080/");
    assert_eq!(
        field("trackers"),
        "udp://127.0.0.1:6969/announce http://127.0.0.1:6969/announce"
    );
    assert_eq!(field("checked"), "1", "{text}");
    assert_eq!(
        field("progress_ppm"),
        "1000000",
        "recheck against the files: {text}"
    );
    assert_eq!(field("seeding"), "1");

    // One flipped byte in one segment: libtorrent must no longer see a complete window.
    let victim = tmp.path().join("final/pov/180p/897685201.ts");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let text = lt_check(&torrent, tmp.path());
    // The recheck finished: its verdict is on the bytes as they are now.
    assert_eq!(field_of(&text, "checked"), "1", "{text}");
    assert_eq!(field_of(&text, "seeding"), "0", "{text}");
    assert_ne!(field_of(&text, "progress_ppm"), "1000000", "{text}");
}

fn field_of(text: &str, k: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{k} ")))
        .unwrap_or_else(|| panic!("no {k} in {text}"))
        .to_string()
}
