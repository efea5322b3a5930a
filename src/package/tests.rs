use super::*;
use crate::timecode::NS_PER_SEC;
use std::path::Path;

fn packager(angles: &[&str]) -> Packager {
    let profile = Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml"))
        .expect("demo profile");
    let angles: Vec<String> = angles.iter().map(|a| a.to_string()).collect();
    Packager::new("final", &profile, &angles, Box::new(Clear))
}

fn seg(angle: &str, rung: &str, seq: u64) -> EncodedSegment {
    let mut bytes = vec![0u8; 188];
    bytes[0] = 0x47;
    EncodedSegment {
        angle: angle.into(),
        rung: rung.into(),
        seq: Seq(seq),
        duration_ns: 2 * NS_PER_SEC,
        bytes,
    }
}

fn drain(p: &mut Packager) -> Vec<(String, ObjectKind)> {
    std::iter::from_fn(|| p.pull())
        .map(|o| (o.path, o.kind))
        .collect()
}

#[test]
fn masters_first_then_each_segment_before_its_playlist() {
    let mut p = packager(&["cam1", "cam2"]);
    let first = drain(&mut p);
    assert_eq!(
        first,
        vec![
            ("final/master.m3u8".into(), ObjectKind::MasterPlaylist),
            ("final/cam1/master.m3u8".into(), ObjectKind::MasterPlaylist),
            ("final/cam2/master.m3u8".into(), ObjectKind::MasterPlaylist),
        ]
    );
    p.push(seg("cam2", "180p", 10)).unwrap();
    assert_eq!(
        drain(&mut p),
        vec![
            ("final/cam2/180p/10.ts".into(), ObjectKind::Segment),
            (
                "final/cam2/180p/index.m3u8".into(),
                ObjectKind::MediaPlaylist
            ),
        ]
    );
}

#[test]
fn playlist_names_the_segment_with_pdt_of_its_boundary() {
    let mut p = packager(&["cam1"]);
    drain(&mut p);
    p.push(seg("cam1", "360p", 897_685_200)).unwrap();
    let _segment = p.pull().unwrap();
    let playlist = String::from_utf8(p.pull().unwrap().bytes).unwrap();
    assert!(
        playlist.contains("#EXT-X-MEDIA-SEQUENCE:897685200"),
        "{playlist}"
    );
    assert!(
        playlist.contains(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T18:00:00.000Z\n#EXTINF:2.000,\n897685200.ts"
        ),
        "{playlist}"
    );
}

#[test]
fn gaps_become_discontinuities() {
    let mut p = packager(&["cam1"]);
    drain(&mut p);
    p.push(seg("cam1", "360p", 5)).unwrap();
    p.push(seg("cam1", "360p", 6)).unwrap();
    p.push(seg("cam1", "360p", 9)).unwrap();
    let last = std::iter::from_fn(|| p.pull()).last().unwrap();
    let text = String::from_utf8(last.bytes).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    assert!(
        text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:18.000Z")
    );
}

#[test]
fn out_of_order_and_unknown_segments_are_refused() {
    let mut p = packager(&["cam1"]);
    p.push(seg("cam1", "360p", 5)).unwrap();
    assert_eq!(
        p.push(seg("cam1", "360p", 5)),
        Err(PackageError::OutOfOrder {
            angle: "cam1".into(),
            rung: "360p".into(),
            seq: Seq(5),
            last: Seq(5)
        })
    );
    assert!(matches!(
        p.push(seg("cam9", "360p", 6)),
        Err(PackageError::Unknown { .. })
    ));
    assert!(matches!(
        p.push(seg("cam1", "4k", 6)),
        Err(PackageError::Unknown { .. })
    ));
}

#[test]
fn finish_ends_every_playlist() {
    let mut p = packager(&["cam1", "cam2"]);
    p.push(seg("cam1", "360p", 5)).unwrap();
    drain(&mut p);
    p.finish();
    let ended: Vec<_> = std::iter::from_fn(|| p.pull()).collect();
    assert_eq!(ended.len(), 4);
    for o in ended {
        assert_eq!(o.kind, ObjectKind::MediaPlaylist);
        assert!(
            String::from_utf8(o.bytes)
                .unwrap()
                .ends_with("#EXT-X-ENDLIST\n")
        );
    }
}

struct Marker;
impl Protection for Marker {
    fn seal(&mut self, s: &mut EncodedSegment) -> Option<SegmentKey> {
        s.bytes.reverse();
        Some(SegmentKey {
            uri: "k".into(),
            iv: [7; 16],
        })
    }
}

#[test]
fn protection_seam_transforms_bytes_and_names_the_key() {
    let profile =
        Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml")).unwrap();
    let mut p = Packager::new("m", &profile, &["a".to_string()], Box::new(Marker));
    drain(&mut p);
    p.push(seg("a", "360p", 1)).unwrap();
    let s = p.pull().unwrap();
    assert_eq!(s.bytes[187], 0x47);
    let text = String::from_utf8(p.pull().unwrap().bytes).unwrap();
    assert!(
        text.contains("#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x07070707070707070707070707070707"),
        "{text}"
    );
}
