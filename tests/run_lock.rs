//! Issue 14, item 7: two `run`s of one match on one spool would overwrite each other's
//! objects and encrypt two plaintexts with one key and IV. The second exits 2 naming the first
//! one's pid; another match on the same spool is not held up.

mod common;

use common::*;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn a_second_run_of_a_match_on_the_same_spool_exits_2_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let spool = tmp.path().join("spool");
    let origin = format!("file://{}", tmp.path().join("origin").display());
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let start = |match_id: &str| {
        let mut cmd = run_match(match_id, &profile, &keys, &origin);
        cmd.args(["--angle", "main=test:", "--no-seed"])
            .arg("--spool")
            .arg(&spool);
        cmd
    };
    let first = start("final")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id();
    let _first = Guard(first);
    let lock = spool.join("final/run.lock");
    wait_for("the first run's lock", Duration::from_secs(30), || {
        std::fs::read_to_string(&lock).is_ok_and(|p| p == pid.to_string())
    });

    let out = run_with_deadline(start("final"), Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "match final is already running with this spool (pid {pid}"
        )),
        "{err}"
    );

    // Another match on the same spool runs.
    let mut other = start("semi");
    other.args(["--fast", "--duration", "2"]);
    let out = run_with_deadline(other, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
