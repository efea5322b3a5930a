//! Real libtorrent (Debian's python3-libtorrent, driven by `tests/py/`) against what
//! swarmpack publishes and seeds, and byte-for-byte checks of what it downloads.

use std::path::Path;
use std::process::Command;

/// Asserts every file in `got` is byte-identical to the file of the same name in `origin`;
/// returns how many there are.
pub fn assert_same_files(got: &Path, origin: &Path) -> usize {
    let mut files = 0;
    for e in std::fs::read_dir(got).unwrap().flatten() {
        let theirs = std::fs::read(origin.join(e.file_name())).unwrap();
        assert!(
            std::fs::read(e.path()).unwrap() == theirs,
            "{} differs from the origin's",
            e.path().display()
        );
        files += 1;
    }
    files
}

/// `tests/py/lt_swarm.py`: scrapes every tracker in `scrapes` until each counts
/// `min_complete` seeders, then downloads `torrent` with its web seeds removed into `save`.
/// Returns its JSON report.
pub fn lt_swarm(
    torrent: &Path,
    save: &Path,
    scrapes: &[String],
    min_complete: u32,
) -> serde_json::Value {
    let out = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/lt_swarm.py"))
        .arg(torrent)
        .arg(save)
        .arg(scrapes.join(","))
        .args(["60", &min_complete.to_string()])
        .output()
        .expect("python3-libtorrent is installed (scripts/setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lt_swarm.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

/// Whether a libtorrent helper's JSON report lists `addr` among the peers it met.
pub fn met_peer(report: &serde_json::Value, addr: &str) -> bool {
    // A seeder that dialled libtorrent shows by IP and client only (librqbit's peer ID
    // starts "-rQ"): its address there has its outgoing port, not the one it listens on.
    let ip = addr.rsplit_once(':').map_or(addr, |(ip, _)| ip);
    let dialled_in = format!("{ip}:in:-rQ");
    report["peers"].as_array().is_some_and(|peers| {
        peers
            .iter()
            .any(|p| p.as_str() == Some(addr) || p.as_str() == Some(dialled_in.as_str()))
    })
}

/// `tests/py/lt_check.py TORRENT SAVE_PATH` (libtorrent loads the torrent and rechecks it
/// against the files); panics unless it ran, and returns what it printed.
pub fn lt_check(torrent: &Path, save: &Path) -> String {
    let lt = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/lt_check.py"))
        .arg(torrent)
        .arg(save)
        .output()
        .expect("python3-libtorrent is installed (scripts/setup)");
    let text = String::from_utf8_lossy(&lt.stdout).into_owned();
    assert!(
        lt.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&lt.stderr)
    );
    text
}
