//! Issue 25, items 7 to 10: the control API against a local user and an API-token holder.
//! Each check failed on the main before the fix:
//! - a percent-encoded `..%2F..%2Fx` ID naming a FIFO at `x/run.lock` blocked the whole API
//!   (the run lock was opened before the ID was checked);
//! - state directories and files were 0755/0644, even when made so before the controller;
//! - the origin's password and an SRT passphrase were on the run's command line (`ps`), the
//!   API token and webhook secret in its environment, and `GET` showed the origin's password;
//! - any origin was taken, and a marker any distance ahead.

mod common;

use common::control::*;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_control_api_checks_ids_keeps_state_private_and_secrets_off_command_lines() {
    let s = Setup::small();
    // State made readable by others before the controller ever ran.
    std::fs::create_dir_all(s.state.join("matches/final")).unwrap();
    std::fs::create_dir_all(s.state.join("spool")).unwrap();
    for d in ["", "matches", "matches/final", "spool"] {
        std::fs::set_permissions(s.state.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(s.state.join("matches/final/run.log"), "").unwrap();
    std::fs::set_permissions(
        s.state.join("matches/final/run.log"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // A FIFO where a traversing ID's run lock would be.
    let trap = s.tmp.path().join("trap");
    std::fs::create_dir_all(&trap).unwrap();
    let fifo = std::ffi::CString::new(trap.join("run.lock").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

    let hook_port = free_tcp_port();
    let _hooks = receiver(hook_port, &s.tmp.path().join("hooks.jsonl"));
    let port = free_tcp_port();
    let _ctl = controller(&s, port, hook_port);
    wait_for("the controller", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    // 7. IDs are checked before anything is opened with them.
    let (code, answer) = call(
        port,
        "DELETE",
        "/v1/matches/..%2F..%2Ftrap",
        &[bearer()],
        None,
    );
    assert_eq!(code, 404, "{answer}");
    let (code, answer) = call(port, "GET", "/v1/matches", &[bearer()], None);
    assert_eq!(code, 200, "the API is blocked: {answer}");

    // 10. Only allowed origins; no marker far ahead.
    let srt_port = free_udp_port();
    let body = |origin: &str| {
        format!(
            r#"{{"match":"final","profile":"small","angles":{{"main":"srt://127.0.0.1:{srt_port}?mode=listener&passphrase=venue-passphrase-42"}},"origin":"{origin}","duration":600}}"#
        )
    };
    let allowed = format!("file://{}", s.origin.display());
    for other in [
        format!("{allowed}-evil"),
        "https://user:origin-password@cdn.example/live/".to_string(),
    ] {
        let (code, answer) = call(
            port,
            "POST",
            "/v1/matches",
            &[bearer()],
            Some(&body(&other)),
        );
        assert_eq!(code, 422, "{answer}");
        let e = answer["error"].as_str().unwrap();
        assert!(
            e.starts_with("origin: ") && e.contains("--origin-allow"),
            "{e}"
        );
        assert!(!e.contains("origin-password"), "{e}");
    }
    let (code, answer) = call(
        port,
        "POST",
        "/v1/matches",
        &[bearer()],
        Some(&body(&allowed)),
    );
    assert_eq!(code, 201, "{answer}");
    let far = (chrono::Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (code, answer) = call(
        port,
        "POST",
        "/v1/matches/final/markers",
        &[bearer()],
        Some(&format!(r#"{{"label":"later","start":"{far}"}}"#)),
    );
    assert_eq!(code, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().starts_with("start: "),
        "{answer}"
    );

    // 9. The run: its secrets by its environment, none of the controller's.
    wait_for("the run's pid", Duration::from_secs(30), || {
        get(port, "final")["pid"].as_u64().is_some()
    });
    let shown = get(port, "final");
    let pid = shown["pid"].as_u64().unwrap();
    let _kill = KillPid(pid as u32);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("run --match final"), "{cmdline}");
    for secret in ["venue-passphrase-42", "--origin", "--angle"] {
        assert!(
            !cmdline.contains(secret),
            "{secret} on the command line: {cmdline}"
        );
    }
    let environ = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
        .replace('\0', "\n");
    for inherited in ["SWARMPACK_API_TOKEN", "SWARMPACK_WEBHOOK_SECRET"] {
        assert!(
            !environ.contains(inherited),
            "the run inherited {inherited}"
        );
    }
    assert!(
        environ.contains("SWARMPACK_ANGLES=main=srt://"),
        "no angles for the run"
    );
    let uri = shown["angles"]["main"]["uri"].as_str().unwrap();
    assert!(
        uri.contains("passphrase=(hidden)") && !uri.contains("venue"),
        "{shown}"
    );

    // 8. Everything the controller made or took over is its owner's alone.
    let m = s.state.join("matches/final");
    for dir in [
        s.state.clone(),
        s.state.join("matches"),
        m.clone(),
        s.state.join("spool"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in ["match.json", "run.log", "events.jsonl", "markers.jsonl"] {
        assert_eq!(mode(&m.join(file)), 0o600, "{file}");
    }
    wait_for("the run's spool", Duration::from_secs(30), || {
        s.state.join("spool/final").is_dir()
    });
    assert_eq!(mode(&s.state.join("spool/final")), 0o700);

    let (code, _) = call(port, "DELETE", "/v1/matches/final", &[bearer()], None);
    assert_eq!(code, 202);
    wait_for("the stop", Duration::from_secs(60), || {
        !get(port, "final")["state"]
            .as_str()
            .is_some_and(|s| s == "stopping" || s == "live" || s == "starting")
    });
}
