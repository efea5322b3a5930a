//! Issue 14 item 8: a full spool disk keeps the match on air. The spool is a small tmpfs
//! filled with ballast so that only a few records fit; the match runs to the end, every
//! segment reaches the origin and verifies, and the log says what happened. Before the
//! fallback, the first refused record ended the match.
//!
//! Mounting a tmpfs needs root (CI runs as root here); elsewhere the test says so and stops.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted at a directory, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_spool_disk_keeps_the_match_on_air() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&tmp.path().join("spool"), "4m") else {
        skipped(
            "spool_full::a_full_spool_disk_keeps_the_match_on_air",
            "cannot mount a tmpfs (needs root); the full-disk test did not run",
        );
        return;
    };
    // Ballast: leave 24 KiB, room for the lock and a playlist but not for a segment (~45 KB).
    let ballast = disk.0.join("ballast");
    std::fs::write(&ballast, vec![0u8; 4 * 1024 * 1024 - 24 * 1024]).ok();
    let keys = keygen(tmp.path());
    let origin = tmp.path().join("origin");
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:1/", "");
    let mut cmd = run_match(
        "full",
        &profile,
        &keys,
        &format!("file://{}", origin.display()),
    );
    cmd.args(["--angle", "main=test:", "--duration", "10", "--no-seed"])
        .arg("--spool")
        .arg(&disk.0);
    let out = run_with_deadline(cmd, Duration::from_secs(120));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the match ended:\n{log}");
    assert!(
        log.contains("holding") && log.contains("in memory") && log.contains("No space left"),
        "the full disk is not reported:\n{log}"
    );
    assert_verifies(&format!("file://{}/full", origin.display()), &keys);
    for playlist in media_playlists(&origin.join("full")) {
        let p = media_playlist(&playlist);
        assert!(p.end_list, "{}", playlist.display());
        assert!(
            p.segments.len() >= 4,
            "{}: {}",
            playlist.display(),
            p.segments.len()
        );
        assert!(
            p.segments.iter().all(|s| !s.uri.is_empty())
                && !std::fs::read_to_string(&playlist)
                    .unwrap()
                    .contains("EXT-X-GAP"),
            "{}: a segment was lost",
            playlist.display()
        );
    }
}
