//! The spool's records: order, damage, quarantine, depth and a disk that refuses them.

use super::*;

#[test]
fn records_survive_reopening_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, left) = Spool::open(dir.path(), Durability::Fsync).unwrap();
    assert!(left.is_empty());
    let a = spool
        .put("m/a/hi/1.ts", ObjectKind::Segment, b"one")
        .unwrap();
    let b = spool
        .put("m/a/hi/index.m3u8", ObjectKind::MediaPlaylist, b"two!")
        .unwrap();
    let c = spool.put("m/a/hi/2.ts", ObjectKind::Segment, b"3").unwrap();
    spool.remove(a.id);
    drop(spool);
    let (spool, left) = Spool::open(dir.path(), Durability::Fsync).unwrap();
    assert_eq!(left, vec![b.clone(), c.clone()]);
    assert_eq!(spool.read(&b).unwrap(), b"two!");
    let d = spool.put("m/x", ObjectKind::Pointer, b"").unwrap();
    assert!(d.id > c.id, "ids keep increasing across runs");
}

#[test]
fn a_quarantined_record_leaves_the_queue_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(tmp.path(), Durability::Fsync).unwrap();
    let e = spool
        .put("m/a/r/7.ts", ObjectKind::Segment, b"abc")
        .unwrap();
    let data = spool.quarantine(&e, "HTTP 403").unwrap();
    assert_eq!(std::fs::read(&data).unwrap(), b"abc");
    let note = std::fs::read_to_string(data.with_extension("json")).unwrap();
    assert!(
        note.contains("\"reason\": \"HTTP 403\"") && note.contains("m/a/r/7.ts"),
        "{note}"
    );
    let (_, leftovers) = Spool::open(tmp.path(), Durability::Fsync).unwrap();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn depth_counts_complete_records_only() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(depth(&dir.path().join("none")), Depth::default());
    let (spool, _) = Spool::open(dir.path(), Durability::Fsync).unwrap();
    let a = spool.put("m/1.ts", ObjectKind::Segment, b"12345").unwrap();
    spool.put("m/2.ts", ObjectKind::Segment, b"678").unwrap();
    std::fs::write(dir.path().join("0000000000000099.data"), b"half").unwrap();
    let d = depth(dir.path());
    assert_eq!((d.objects, d.bytes), (2, 8));
    assert!(d.oldest.is_some());
    spool.remove(a.id);
    assert_eq!((depth(dir.path()).objects, depth(dir.path()).bytes), (1, 3));
}

#[test]
fn half_written_records_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), Durability::Fsync).unwrap();
    let a = spool
        .put("m/a/hi/1.ts", ObjectKind::Segment, b"one")
        .unwrap();
    std::fs::remove_file(spool.meta_path(a.id)).unwrap();
    let (_, left) = Spool::open(dir.path(), Durability::Fsync).unwrap();
    assert!(left.is_empty());
    assert!(!spool.data_path(a.id).exists());
}

#[test]
fn damage_is_reported_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = Spool::open(dir.path(), Durability::Fsync).unwrap();
    let a = spool
        .put("m/a/hi/1.ts", ObjectKind::Segment, b"one")
        .unwrap();
    std::fs::write(spool.data_path(a.id), b"on").unwrap();
    let e = spool.read(&a).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{:016}.data", a.id)) && e.contains("expected 3"),
        "{e}"
    );
    // A damaged or empty .meta (a power cut before the OS wrote it) goes to the dead
    // letters with its reason; the rest of the spool opens.
    std::fs::write(spool.meta_path(a.id), b"").unwrap();
    let b = spool
        .put("m/a/hi/2.ts", ObjectKind::Segment, b"two")
        .unwrap();
    let (reopened, left) = Spool::open(dir.path(), Durability::Fsync).unwrap();
    assert_eq!(left, vec![b]);
    assert_eq!(reopened.stats().damaged_at_open.load(Ordering::Relaxed), 1);
    let dead = dir.path().join(DEAD_LETTER);
    assert!(dead.join(format!("{:016}.data", a.id)).exists());
    let note = std::fs::read_to_string(dead.join(format!("{:016}.json", a.id))).unwrap();
    assert!(note.contains("is damaged"), "{note}");
}

#[test]
fn a_disk_that_refuses_records_is_bridged_in_memory_up_to_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let (mut spool, _) = Spool::open(&spool_dir, Durability::Fsync).unwrap();
    spool.memory_budget = 10;
    let on_disk = spool.put("m/1.ts", ObjectKind::Segment, b"disk").unwrap();
    // The disk goes away (as a full or failing one refuses every write).
    std::fs::remove_dir_all(&spool_dir).unwrap();
    let a = spool.put("m/2.ts", ObjectKind::Segment, b"abcdef").unwrap();
    let b = spool.put("m/3.ts", ObjectKind::Segment, b"ghij").unwrap();
    let stats = spool.stats();
    assert_eq!(stats.write_failures.load(Ordering::Relaxed), 2);
    assert_eq!(stats.memory_bytes.load(Ordering::Relaxed), 10);
    assert_eq!(spool.read(&a).unwrap(), b"abcdef");
    let e = spool.put("m/4.ts", ObjectKind::Segment, b"k").unwrap_err();
    assert!(
        matches!(
            e,
            SpoolError::Full {
                held: 10,
                budget: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("m/4.ts"), "{e}");
    spool.remove(a.id);
    assert_eq!(stats.memory_bytes.load(Ordering::Relaxed), 4);
    assert!(spool.put("m/5.ts", ObjectKind::Segment, b"lm").is_ok());
    // The disk is back: records go there again.
    std::fs::create_dir_all(&spool_dir).unwrap();
    let c = spool.put("m/6.ts", ObjectKind::Segment, b"nop").unwrap();
    assert!(spool.data_path(c.id).exists());
    assert_eq!(spool.read(&b).unwrap(), b"ghij");
    assert!(
        spool.read(&on_disk).is_err(),
        "that record went with the disk"
    );
}
