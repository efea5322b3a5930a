//! Issue 14, item 4: a keys directory inside the origin would publish and serve the secrets
//! (`GET /keys/content.secret` fell through to the origin directory). Both `serve` and `run`
//! with a `file://` origin refuse that layout with exit 2, naming both directories.

mod common;

use common::*;
use std::time::Duration;

#[test]
fn serve_and_run_refuse_keys_inside_the_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin");
    std::fs::create_dir_all(&origin).unwrap();
    let keys = keygen(&origin);
    assert!(keys.starts_with(&origin));

    let port = free_tcp_port();
    let out = run_with_deadline(serve_command(&origin, &keys, port), Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("lies inside the origin"), "{err}");
    // Nothing listens, so nothing can be fetched.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let mut run = run_match(
        "m",
        &profile,
        &keys,
        &format!("file://{}", origin.display()),
    );
    run.args(["--angle", "main=test:", "--fast", "--duration", "2"]);
    let out = run_with_deadline(run, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("lies inside the origin"), "{err}");
    assert!(!origin.join("m").exists(), "nothing was published");

    // Keys beside the origin are fine.
    let outside = keygen(&tmp.path().join("elsewhere"));
    let _ok = Guard(serve_command(&origin, &outside, port).spawn().unwrap());
    wait_for("serve to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}
