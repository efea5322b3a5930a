use super::*;
use crate::profile::Profile;
use std::path::Path;

const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/playlists");

fn demo() -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml");
    Profile::load(&path).expect("demo profile")
}

/// Compares with a golden file. `UPDATE_GOLDEN=1 cargo test` rewrites it after a deliberate change.
fn golden(name: &str, actual: &str) {
    let path = Path::new(GOLDEN_DIR).join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

fn entry(tl: &Timeline, seq: u64) -> PlaylistEntry {
    PlaylistEntry {
        seq: Seq::new(seq),
        duration: tl.segment_secs(),
        pdt: tl.seq_start(Seq::new(seq)),
        discontinuity: false,
        key: None,
        signature: None,
        gap: false,
        gap_signature: None,
    }
}

#[test]
fn live_playlist_golden() {
    let tl = Timeline::new(2000, 5);
    let mut p = LivePlaylist::new(&tl, 30);
    for seq in 897_685_200..897_685_203 {
        p.push(entry(&tl, seq));
    }
    golden("live.m3u8", &p.render());
}

#[test]
fn encrypted_playlist_with_discontinuity_and_endlist_golden() {
    let tl = Timeline::new(2000, 5);
    let mut p = LivePlaylist::new(&tl, 30);
    for seq in [897_685_203u64, 897_685_204, 897_685_207] {
        let mut e = entry(&tl, seq);
        e.discontinuity = seq == 897_685_207;
        let period = tl.window_of(Seq::new(seq)).get();
        let mut iv = [0u8; 16];
        iv[8..].copy_from_slice(&seq.to_be_bytes());
        e.key = Some(SegmentKey {
            uri: format!("http://127.0.0.1:8081/keys/final/{period}"),
            iv,
        });
        p.push(e);
    }
    p.end();
    golden("encrypted-ended.m3u8", &p.render());
}

#[test]
fn dvr_window_slides_and_counts_discontinuities() {
    let tl = Timeline::new(2000, 5);
    let mut p = LivePlaylist::new(&tl, 3);
    for seq in 100..106 {
        let mut e = entry(&tl, seq);
        e.discontinuity = seq == 101 || seq == 102;
        p.push(e);
    }
    let m = p.to_m3u8();
    assert_eq!(m.media_sequence, 103);
    assert_eq!(m.segments.len(), 3);
    assert_eq!(m.discontinuity_sequence, 2);
    assert_eq!(m.segments[0].uri, "103.ts");
    assert_eq!(p.last_seq(), Some(Seq::new(105)));
}

#[test]
fn dvr_never_drops_below_three_segments() {
    let tl = Timeline::new(2000, 5);
    let mut p = LivePlaylist::new(&tl, 1);
    for seq in 0..10 {
        p.push(entry(&tl, seq));
    }
    assert_eq!(p.entries().count(), 3);
}

#[test]
fn target_duration_rounds_up() {
    let tl = Timeline::new(1500, 4);
    let mut p = LivePlaylist::new(&tl, 10);
    p.push(entry(&tl, 1));
    assert_eq!(p.to_m3u8().target_duration, 2);
    assert!(p.render().contains("#EXTINF:1.500,"));
}

#[test]
fn match_master_golden() {
    let angles = vec!["cam1".to_string(), "cam2".to_string()];
    golden(
        "match-master.m3u8",
        &render_master(&match_master(&demo(), &angles)),
    );
}

#[test]
fn angle_master_golden() {
    golden("angle-master.m3u8", &render_master(&angle_master(&demo())));
}

#[test]
fn angles_are_video_alternatives_of_every_rung() {
    let angles = vec!["main".to_string(), "pov".to_string(), "crowd".to_string()];
    let m = match_master(&demo(), &angles);
    assert_eq!(m.variants.len(), 2);
    assert_eq!(m.alternatives.len(), 6);
    for v in &m.variants {
        let group = v.video.clone().expect("VIDEO group");
        let names: Vec<_> = m
            .alternatives
            .iter()
            .filter(|a| a.group_id == group)
            .map(|a| (a.name.as_str(), a.default))
            .collect();
        assert_eq!(
            names,
            vec![("main", true), ("pov", false), ("crowd", false)]
        );
        assert!(v.uri.starts_with("main/"));
    }
}

#[test]
fn every_golden_round_trips_through_the_parser() {
    for entry in std::fs::read_dir(GOLDEN_DIR).expect("golden dir") {
        let path = entry.expect("dir entry").path();
        let text = std::fs::read(&path).expect("read golden");
        let parsed = m3u8_rs::parse_playlist_res(&text)
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        let mut again = Vec::new();
        parsed.write_to(&mut again).expect("write");
        let reparsed = m3u8_rs::parse_playlist_res(&again).expect("reparse");
        assert_eq!(parsed, reparsed, "{}", path.display());
    }
}

#[test]
fn garbage_is_not_a_playlist() {
    assert!(m3u8_rs::parse_playlist_res(b"not a playlist").is_err());
}
