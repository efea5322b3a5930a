//! Bad input exits 2 with a message that names the file, the field and what was expected.

mod common;

use common::*;
use std::path::Path;

fn run_err(args: &[&str]) -> (i32, String) {
    let out = swarmpack().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `swarmpack run --match m --profile PROFILE` plus `rest`.
fn run_with(profile: &Path, rest: &[&str]) -> (i32, String) {
    let mut args = vec![
        "run",
        "--match",
        "m",
        "--profile",
        profile.to_str().unwrap(),
    ];
    args.extend_from_slice(rest);
    run_err(&args)
}

#[test]
fn bad_profile_field_exits_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(profile("demo.toml"))
        .unwrap()
        .replace("window = 5", "window = 0");
    std::fs::write(&p, text).unwrap();
    let (code, err) = run_with(&p, &["--angle", "a=test:"]);
    assert_eq!(code, 2, "{err}");
    let expected =
        "bad.toml: field `segment.window`: expected a whole number from 1 to 1000, found 0";
    assert!(err.contains(expected), "{err}");
}

#[test]
fn unknown_scheme_exits_2_with_accepted_forms() {
    let (code, err) = run_with(&profile("demo.toml"), &["--angle", "a=udp://1.2.3.4:5"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--angle a=udp://1.2.3.4:5: unknown scheme \"udp\"; expected test:"),
        "{err}"
    );
}

#[test]
fn bad_names_and_duplicates_exit_2() {
    let p = profile("demo.toml");
    let (code, err) = run_err(&[
        "run",
        "--match",
        "../x",
        "--profile",
        p.to_str().unwrap(),
        "--angle",
        "a=test:",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--match \"../x\""), "{err}");
    let (code, err) = run_with(&p, &["--angle", "a=test:", "--angle", "a=test:"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("given twice"), "{err}");
    let (code, err) = run_with(&p, &["--angle", "notaspec"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected NAME=URI"), "{err}");
}

#[test]
fn missing_profile_and_bad_origin_exit_2() {
    let (code, err) = run_with(Path::new("/nope.toml"), &["--angle", "a=test:"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nope.toml: cannot read the profile"), "{err}");
    let (code, err) = run_with(
        &profile("demo.toml"),
        &["--angle", "a=test:", "--origin", "gopher://x"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--origin \"gopher://x\": expected file:///absolute/dir"),
        "{err}"
    );
    let (code, err) = run_with(
        &profile("demo.toml"),
        &[
            "--angle",
            "a=test:",
            "--origin",
            "file:///proc/swarmpack-no",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("origin file:///proc/swarmpack-no: cannot create the directory"),
        "{err}"
    );
}

#[test]
fn redundant_runs_and_angle_groups_refuse_what_cannot_coordinate() {
    let demo = profile("demo.toml");
    let cases: [(&[&str], &str); 5] = [
        (
            &["--redundant", "--origin", "http://127.0.0.1:9/dav/"],
            "WebDAV has no create-if-absent",
        ),
        (&["--redundant", "--fast"], "--redundant with --fast"),
        (
            &["--remote-angle", "a"],
            "--remote-angle a: this run encodes a itself",
        ),
        (
            &["--remote-angle", "c", "--remote-angle", "c"],
            "--remote-angle c: given twice",
        ),
        (
            &["--remote-angle", "../c"],
            "--remote-angle \"../c\": expected",
        ),
    ];
    for (flags, expected) in cases {
        let mut rest = vec!["--angle", "a=test:"];
        rest.extend_from_slice(flags);
        let (code, err) = run_with(&demo, &rest);
        assert_eq!(code, 2, "{flags:?}: {err}");
        assert!(err.contains(expected), "{flags:?}: {err}");
    }
    let (code, err) = run_with(
        &demo,
        &[
            "--angle",
            "a=test:",
            "--remote-angle",
            "c",
            "--origin",
            "https://127.0.0.1:9/dav/",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected an s3:// or file:// origin"), "{err}");
}

#[test]
fn help_teaches_the_feeds() {
    let out = swarmpack().args(["run", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "srt://HOST:PORT?mode=listener",
        "rtmp://HOST",
        "file:/abs/path",
        "test:",
        "--duration",
        "Examples:",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn print_pipeline_shows_gst_launch_text() {
    let p = profile("esports-1080p.toml");
    let out = swarmpack()
        .args([
            "run",
            "--match",
            "m",
            "--profile",
            p.to_str().unwrap(),
            "--angle",
            "a=test:",
            "--print-pipeline",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("gst-launch-1.0 -e videotestsrc"), "{text}");
    assert!(
        text.contains("x264enc name=enc_1080p60") && text.contains("option-string=\"level=4.2\""),
        "{text}"
    );
}

#[test]
fn keygen_refuses_to_overwrite_and_token_checks_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path());
    let k = keys.to_str().unwrap();
    let (code, err) = run_err(&["keygen", "--out", k]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("content.secret: already exists; keygen never overwrites keys"),
        "{err}"
    );
    let (code, err) = run_err(&[
        "token",
        "--keys",
        k,
        "--match",
        "final",
        "--session",
        "s",
        "--ttl",
        "soon",
        "--periods",
        "1-2",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--ttl \"soon\": expected a duration such as 90s"),
        "{err}"
    );
    let (code, err) = run_err(&[
        "token",
        "--keys",
        "/nonexistent",
        "--match",
        "final",
        "--session",
        "s",
        "--ttl",
        "1h",
        "--periods",
        "1-2",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("run `swarmpack keygen --out /nonexistent` first"),
        "{err}"
    );
    // A token names the periods it opens: a profile, or an explicit range.
    for (extra, needle) in [
        (vec![], "--profile"),
        (
            vec!["--periods", "9-3"],
            "--periods \"9-3\": expected FIRST-LAST",
        ),
        (vec!["--periods", "1-2", "--ttl", "99999999d"], "--ttl"),
    ] {
        let mut args = vec!["token", "--keys", k, "--match", "final", "--session", "s"];
        if !extra.contains(&"--ttl") {
            args.extend(["--ttl", "1h"]);
        }
        args.extend(extra.iter().copied());
        let (code, err) = run_err(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, err) = run_with(
        &profile("demo.toml"),
        &["--angle", "a=test:", "--keys", "/nonexistent"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no keys here"), "{err}");
}

#[test]
fn keyserver_on_a_busy_port_exits_1_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, err) = run_err(&[
        "keyserver",
        "--keys",
        keys.to_str().unwrap(),
        "--listen",
        &addr,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    let (code, err) = run_err(&[
        "keyserver",
        "--keys",
        keys.to_str().unwrap(),
        "--listen",
        "localhost",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("expected ADDRESS:PORT"), "{err}");
}

#[test]
fn run_time_setup_failures_name_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keygen(dir.path());
    let origin = format!("file://{}", dir.path().join("origin").display());
    let base = |angle: &str| {
        vec![
            "--keys".to_string(),
            keys.to_str().unwrap().to_string(),
            "--origin".to_string(),
            origin.clone(),
            "--duration".to_string(),
            "2".to_string(),
            "--angle".to_string(),
            angle.to_string(),
        ]
    };
    let run = |extra: Vec<String>| {
        let args: Vec<&str> = extra.iter().map(String::as_str).collect();
        run_with(&profile("demo.toml"), &args)
    };

    // A source nobody serves: the match still runs (on the slate, retrying the feed), and
    // the log says so.
    let dead = free_tcp_port();
    let (code, err) = run(base(&format!("cam=rtmp://127.0.0.1:{dead}/live/x")));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("angle cam: no signal from the feed yet; slate on air, retrying"),
        "{err}"
    );
    let slate = media_playlist(&dir.path().join("origin/m/cam/360p/index.m3u8"));
    assert!(!slate.segments.is_empty(), "the slate is published");

    // The seeder's port is taken.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let mut args = base("cam=test:");
    args.extend(["--seed-listen".to_string(), addr.clone()]);
    let (code, err) = run(args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("seed.listen {addr}: cannot listen for peers")),
        "{err}"
    );

    // A spool that cannot be created.
    let mut args = base("cam=test:");
    args.extend(["--spool".to_string(), "/proc/swarmpack-spool".to_string()]);
    let (code, err) = run(args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("spool /proc/swarmpack-spool/m: cannot create the directory")
            && err.contains("No such file or directory"),
        "{err}"
    );
}

#[test]
fn seed_help_teaches_and_bad_flags_exit_2_naming_the_flag() {
    let out = swarmpack().args(["seed", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--origin",
        "--pubkey",
        "--cache",
        "--wait-for-match",
        "Nothing unverified is seeded",
        "run --no-seed",
    ] {
        assert!(help.contains(needle), "seed --help lacks {needle}:\n{help}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let pubkey = keys.join("pubkey.pem");
    let p = pubkey.to_str().unwrap();
    for (extra, needle) in [
        (
            vec!["--pubkey", p, "--listen", "nowhere"],
            "--listen \"nowhere\"",
        ),
        (vec!["--pubkey", p, "--poll", "soon"], "--poll \"soon\""),
        (vec!["--pubkey", "/nonexistent.pem"], "/nonexistent.pem"),
        (
            vec!["--pubkey", keys.join("token.secret").to_str().unwrap()],
            "token.secret",
        ),
    ] {
        let mut args = vec!["seed", "--origin", "file:///nonexistent", "--match", "m"];
        args.extend_from_slice(&extra);
        let (code, err) = run_err(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
    let (code, err) = run_err(&[
        "seed", "--origin", "ftp://x/", "--match", "m", "--pubkey", p,
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--origin"), "{err}");
}

#[test]
fn secrets_readable_by_others_are_refused_naming_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let k = keys.to_str().unwrap();
    let args = [
        "token",
        "--keys",
        k,
        "--match",
        "m",
        "--session",
        "s",
        "--ttl",
        "1h",
        "--periods",
        "1-2",
    ];
    assert_eq!(run_err(&args).0, 0, "0600 keys load");
    for name in ["content.secret", "token.secret", "signing.pk8"] {
        let path = keys.join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (code, err) = run_err(&args);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(
            err.contains(&format!(
                "{name}: mode 644 lets other users read this secret"
            )) && err.contains("chmod 600"),
            "{name}: {err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
