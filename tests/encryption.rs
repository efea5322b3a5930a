//! Encrypted segments end to end: swarmpack encrypts a test match, the key server hands keys
//! to a token holder over HTTP, openssl decrypts every segment, ffmpeg plays the live
//! playlist through the key server, and no key or secret shows up anywhere it must not.

mod common;

use base64::Engine;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use swarmpack::keys::{Claims, KeyDir, content_key, token};

const MATCH: &str = "final";

struct Setup {
    tmp: tempfile::TempDir,
    keys: PathBuf,
    origin: PathBuf,
    key_port: u16,
    http_port: u16,
    _keyserver: Guard,
    _http: Guard,
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed (scripts/setup)");
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').expect("status line");
    let status = String::from_utf8_lossy(&body[split + 1..]).to_string();
    body.truncate(split);
    (status, body)
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let key_port = free_tcp_port();
    let profile_path = profile_with(
        tmp.path(),
        "demo.toml",
        "http://127.0.0.1:8080/keys",
        &format!("http://127.0.0.1:{key_port}/keys"),
    );
    let origin = tmp.path().join("origin");
    let out = run_two_test_angles(MATCH, &profile_path, &keys, &origin, 6);
    std::fs::write(tmp.path().join("run.log"), &out.stderr).unwrap();

    let keyserver_log = std::fs::File::create(tmp.path().join("keyserver.log")).unwrap();
    let keyserver = Guard(
        swarmpack()
            .env("RUST_LOG", "info,swarmpack=debug")
            .arg("keyserver")
            .arg("--keys")
            .arg(&keys)
            .args(["--listen", &format!("127.0.0.1:{key_port}")])
            .stdout(Stdio::null())
            .stderr(keyserver_log)
            .spawn()
            .unwrap(),
    );
    let http_port = free_tcp_port();
    let http = http_server(&origin, http_port);
    for port in [key_port, http_port] {
        wait_for("a server to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }
    Setup {
        tmp,
        keys,
        origin,
        key_port,
        http_port,
        _keyserver: keyserver,
        _http: http,
    }
}

fn viewer_token(keys: &Path, match_id: &str) -> String {
    let out = swarmpack()
        .arg("token")
        .arg("--keys")
        .arg(keys)
        .args(["--match", match_id, "--session", "viewer-1", "--ttl", "10m"])
        .arg("--profile")
        .arg(profile("demo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn playlists(origin: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for angle in ["main", "pov"] {
        for rung in ["360p", "180p"] {
            v.push(origin.join(MATCH).join(angle).join(rung));
        }
    }
    v
}

#[test]
fn keys_fetched_over_http_decrypt_every_segment_with_openssl_and_ffmpeg_plays_with_a_token() {
    let s = setup();
    let token = viewer_token(&s.keys, MATCH);
    let auth = format!("Authorization: Bearer {token}");
    let plain_dir = s.tmp.path().join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let mut periods = std::collections::BTreeSet::new();
    for dir in playlists(&s.origin) {
        let playlist = media_playlist(&dir.join("index.m3u8"));
        assert_eq!(playlist.segments.len(), 3);
        for seg in &playlist.segments {
            let (uri, period, iv) = key_tag(seg);
            assert_eq!(
                uri,
                format!("http://127.0.0.1:{}/keys/{MATCH}/{period}", s.key_port)
            );
            periods.insert(period);
            let (status, key) = curl(&["-H", &auth, &uri]);
            assert_eq!(status, "200", "{uri}");
            assert_eq!(key.len(), 16);
            let plain = plain_dir.join(format!(
                "{}-{}",
                dir.file_name().unwrap().to_string_lossy(),
                seg.uri
            ));
            let ok = Command::new("openssl")
                .args([
                    "enc",
                    "-d",
                    "-aes-128-cbc",
                    "-K",
                    &hex(&key),
                    "-iv",
                    &hex(&iv),
                    "-in",
                ])
                .arg(dir.join(&seg.uri))
                .arg("-out")
                .arg(&plain)
                .status()
                .unwrap();
            assert!(ok.success(), "openssl could not decrypt {}", seg.uri);
            assert!(decode_errors(&plain).is_empty(), "{}", plain.display());
            assert!(first_video_frame(&plain).key);
            let kinds: Vec<String> = streams(&plain)
                .into_iter()
                .map(|(t, c, _)| format!("{t}:{c}"))
                .collect();
            assert!(
                kinds.contains(&"video:h264".to_string())
                    && kinds.contains(&"audio:aac".to_string()),
                "{kinds:?}"
            );
        }
    }
    assert!(!periods.is_empty());

    // ffmpeg plays the live playlist over HTTP, keys through the key server with the token.
    let url = format!(
        "http://127.0.0.1:{}/{MATCH}/main/360p/index.m3u8",
        s.http_port
    );
    let count = |headers: Option<&str>| {
        let mut cmd = Command::new("ffprobe");
        cmd.args(["-v", "error"]);
        if let Some(h) = headers {
            cmd.args(["-headers", &format!("{h}\r\n")]);
        }
        cmd.args([
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            &url,
        ]);
        let out = cmd.output().unwrap();
        // One line per program and stream: every one that reports a count must agree.
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let frames = text
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        (out.status.success(), frames)
    };
    let (ok, frames) = count(Some(&auth));
    assert!(ok);
    assert_eq!(
        frames,
        3 * 60,
        "every frame of three 2 s segments at 30 fps decodes"
    );
    let (ok, frames) = count(None);
    assert!(
        !ok || frames == 0,
        "without a token the player must not decode ({frames} frames)"
    );
}

#[test]
fn key_server_refuses_what_it_must() {
    let s = setup();
    let base = format!("http://127.0.0.1:{}", s.key_port);
    let good = viewer_token(&s.keys, MATCH);
    let secrets = KeyDir::load(&s.keys).unwrap();
    let expired = token::issue(
        secrets.token_secret(),
        &Claims {
            v: token::VERSION,
            match_id: MATCH.into(),
            session: "v".into(),
            nbf: 1,
            exp: 2,
            periods: [0, 1 << 40],
        },
    );
    let other_keys = keygen(&s.tmp.path().join("other"));
    let forged = viewer_token(&other_keys, MATCH);
    let other_match = viewer_token(&s.keys, "semi");
    // A period of this match, as its playlist names it.
    let first = &media_playlist(&playlists(&s.origin)[0].join("index.m3u8")).segments[0];
    let (_, period, _) = key_tag(first);
    let key_url = format!("{base}/keys/{MATCH}/{period}");
    let bearer = |t: &str| format!("Authorization: Bearer {t}");

    let (status, body) = curl(&["-H", &bearer(&good), &key_url]);
    assert_eq!(status, "200");
    assert_eq!(
        body,
        content_key(secrets.content_secret(), MATCH, period)
            .0
            .to_vec()
    );
    // Issue 14, item 1: the token opens only the periods of its validity (and the DVR window
    // before it), not period 1 and not a period a day ahead.
    let day_ahead = period + 86_400 / 10;
    for p in [1, day_ahead] {
        let (status, body) = curl(&["-H", &bearer(&good), &format!("{base}/keys/{MATCH}/{p}")]);
        assert_eq!(
            status,
            "403",
            "period {p}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (status, _) = curl(&[&format!("{key_url}?token={good}")]);
    assert_eq!(status, "200", "?token= works too");

    for (what, args) in [
        ("missing", vec![key_url.clone()]),
        (
            "garbage",
            vec!["-H".into(), bearer("not-a-token"), key_url.clone()],
        ),
        (
            "forged",
            vec!["-H".into(), bearer(&forged), key_url.clone()],
        ),
        (
            "expired",
            vec!["-H".into(), bearer(&expired), key_url.clone()],
        ),
        ("garbage query", vec![format!("{key_url}?token=%00%ff")]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(curl(&args).0, "401", "{what}");
    }
    assert_eq!(curl(&["-H", &bearer(&other_match), &key_url]).0, "403");
    for path in [
        "/keys/final/abc",
        "/keys/final/-1",
        "/keys/..%2F..%2Fetc/1",
        "/keys/FINAL/1",
    ] {
        assert_eq!(
            curl(&["-H", &bearer(&good), &format!("{base}{path}")]).0,
            "400",
            "{path}"
        );
    }
    for path in [
        "/keys/final",
        "/keys/final/1/2",
        "/keys/../../etc/passwd",
        "/",
    ] {
        assert_eq!(
            curl(&[
                "--path-as-is",
                "-H",
                &bearer(&good),
                &format!("{base}{path}")
            ])
            .0,
            "404",
            "{path}"
        );
    }
    assert_eq!(curl(&[&format!("{base}/healthz")]).0, "200");
    // CORS preflight for browser players.
    let out = Command::new("curl")
        .args([
            "-s",
            "-i",
            "-X",
            "OPTIONS",
            "-H",
            "Origin: http://player.example",
        ])
        .args([
            "-H",
            "Access-Control-Request-Method: GET",
            "-H",
            "Access-Control-Request-Headers: authorization",
            &key_url,
        ])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(head.contains("authorization"), "{head}");
}

#[test]
fn no_key_or_secret_reaches_the_origin_or_the_logs() {
    let s = setup();
    // Make the key server work so its log has something in it.
    let token = viewer_token(&s.keys, MATCH);
    for period in 0..3 {
        curl(&[
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("http://127.0.0.1:{}/keys/{MATCH}/{period}", s.key_port),
        ]);
    }
    let secrets = KeyDir::load(&s.keys).unwrap();
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("content secret".into(), secrets.content_secret().to_vec()),
        ("token secret".into(), secrets.token_secret().to_vec()),
    ];
    for dir in playlists(&s.origin) {
        for seg in &media_playlist(&dir.join("index.m3u8")).segments {
            let (_, period, _) = key_tag(seg);
            needles.push((
                format!("key {period}"),
                content_key(secrets.content_secret(), MATCH, period)
                    .0
                    .to_vec(),
            ));
        }
    }
    let mut forms = Vec::new();
    for (name, raw) in &needles {
        forms.push((format!("{name} raw"), raw.clone()));
        forms.push((format!("{name} hex"), hex(raw).into_bytes()));
        forms.push((format!("{name} HEX"), hex(raw).to_uppercase().into_bytes()));
        forms.push((
            format!("{name} base64"),
            base64::engine::general_purpose::STANDARD
                .encode(raw)
                .into_bytes(),
        ));
        forms.push((
            format!("{name} base64url"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(raw)
                .into_bytes(),
        ));
    }
    let mut files = vec![
        s.tmp.path().join("run.log"),
        s.tmp.path().join("keyserver.log"),
    ];
    let mut stack = vec![s.origin.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                files.push(p)
            }
        }
    }
    assert!(files.len() > 20, "scanned {} files", files.len());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for (what, needle) in &forms {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "{what} found in {}",
                f.display()
            );
        }
    }
    let log = std::fs::read_to_string(s.tmp.path().join("keyserver.log")).unwrap();
    assert!(
        log.contains("key server on"),
        "the scan read a real log: {log}"
    );
}
