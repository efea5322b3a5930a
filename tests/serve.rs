//! `swarmpack serve`: a match's origin directory, the key server and (only when asked) dev
//! tokens from one address. curl checks byte ranges (what a BEP 19 web seed needs), the keys
//! open only with a token, and `/dev-token` is off unless `--dev-tokens`.

mod common;

use common::*;
use std::process::{Command, Output};
use std::time::Duration;

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap()
}

fn status(url: &str, extra: &[&str]) -> String {
    let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    args.extend_from_slice(extra);
    args.push(url);
    String::from_utf8_lossy(&curl(&args).stdout).to_string()
}

fn start(origin: &std::path::Path, keys: &std::path::Path, port: u16, dev: bool) -> Guard {
    let flags: &[&std::ffi::OsStr] = if dev { &["--dev-tokens".as_ref()] } else { &[] };
    serve(origin, keys, port, flags)
}

#[test]
fn serve_gives_ranges_keys_with_tokens_and_dev_tokens_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let profile = small_profile(tmp.path(), 2, "http://127.0.0.1:9/", "");
    let origin = tmp.path().join("origin");
    let mut run = run_match(
        "cup",
        &profile,
        &keys,
        &format!("file://{}", origin.display()),
    );
    run.args(["--fast", "--duration", "4", "--angle", "main=test:"]);
    let out = run_with_deadline(run, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = origin.join("cup/main/180p");
    let pl = media_playlist(&dir.join("index.m3u8"));
    let first = &pl.segments[0];
    let on_disk = std::fs::read(dir.join(&first.uri)).unwrap();

    let port = free_tcp_port();
    let base = format!("http://127.0.0.1:{port}");
    let server = start(&origin, &keys, port, false);
    // A byte range of a segment: 206, the right bytes, a Content-Range naming the length.
    let seg_url = format!("{base}/cup/main/180p/{}", first.uri);
    let ranged = curl(&["-D", "-", "-r", "188-375", &seg_url]);
    let text = String::from_utf8_lossy(&ranged.stdout);
    assert!(text.starts_with("HTTP/1.1 206"), "{text}");
    assert!(
        text.to_lowercase()
            .contains(&format!("content-range: bytes 188-375/{}", on_disk.len())),
        "{text}"
    );
    let body = curl(&["-r", "188-375", &seg_url]).stdout;
    assert_eq!(body, on_disk[188..376]);
    // The whole file, the playlist, and nothing outside the origin.
    assert_eq!(curl(&[&seg_url]).stdout, on_disk);
    assert_eq!(
        status(&format!("{base}/cup/main/180p/index.m3u8"), &[]),
        "200"
    );
    assert_eq!(status(&format!("{base}/cup/nope.ts"), &[]), "404");
    assert_eq!(
        status(&format!("{base}/../keys/content.secret"), &["--path-as-is"]),
        "404"
    );
    // Keys: refused without a token, given with one; dev tokens are off.
    let key_path = {
        let uri = first.key.as_ref().and_then(|k| k.uri.clone()).unwrap();
        uri.split_once("/keys/").unwrap().1.to_string()
    };
    let key_url = format!("{base}/keys/{key_path}");
    assert_eq!(status(&key_url, &[]), "401");
    let token = String::from_utf8_lossy(
        &swarmpack()
            .args(["token", "--match", "cup", "--session", "t", "--ttl", "1h"])
            .args(["--periods", "0-99999999999"])
            .arg("--keys")
            .arg(&keys)
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let key = curl(&["-H", &format!("Authorization: Bearer {token}"), &key_url]).stdout;
    assert_eq!(key.len(), 16);
    assert_eq!(status(&format!("{base}/dev-token?match=cup"), &[]), "404");
    drop(server);

    // With --dev-tokens: a token for the match that opens its keys, and a clear refusal of
    // a bad match name.
    let port = free_tcp_port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = start(&origin, &keys, port, true);
    let dev = curl(&[&format!("{base}/dev-token?match=cup&session=op1")]).stdout;
    let dev = String::from_utf8_lossy(&dev).to_string();
    let key_url = format!("{base}/keys/{key_path}");
    let key2 = curl(&["-H", &format!("Authorization: Bearer {dev}"), &key_url]).stdout;
    assert_eq!(key2, key, "the dev token opens the same key");
    assert_eq!(status(&format!("{base}/dev-token?match=../x"), &[]), "400");

    // Issue 15: what a site embedding the player loads from here answers any origin; the
    // dev tokens do not.
    let allowed = |url: &str| {
        let head = curl(&[
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Origin: http://fans.test",
            url,
        ]);
        String::from_utf8_lossy(&head.stdout)
            .to_lowercase()
            .contains("access-control-allow-origin: *")
    };
    for path in [
        format!("/cup/main/180p/{}", first.uri),
        "/cup/main/180p/index.m3u8".into(),
        "/.player/player.js".into(),
        "/.player/p2pml-hlsjs.js".into(),
        "/.player/pubkey.pem".into(),
    ] {
        assert!(allowed(&format!("{base}{path}")), "{path}: no CORS");
    }
    assert!(!allowed(&format!("{base}/dev-token?match=cup")));
    assert_eq!(
        curl(&[&format!("{base}/.player/pubkey.pem")]).stdout,
        std::fs::read(keys.join("pubkey.pem")).unwrap(),
        "the pinned key is the one serve --keys was given"
    );
    // The p2p-media-loader bundle imports its core by a path, not a bare name that only an
    // import map (which an embedding site has not got) resolves.
    let hlsjs = curl(&[&format!("{base}/.player/p2pml-hlsjs.js")]).stdout;
    let hlsjs = String::from_utf8_lossy(&hlsjs);
    assert!(hlsjs.contains(r#"from "./p2pml-core.js""#));
    assert!(!hlsjs.contains(r#"from "p2p-media-loader-core""#));

    // Issue 14, item 10: dev tokens are signed with a development secret, so the production
    // key server refuses them (and still takes a real token).
    let kport = free_tcp_port();
    let _keyserver = Guard(
        swarmpack()
            .arg("keyserver")
            .arg("--keys")
            .arg(&keys)
            .args(["--listen", &format!("127.0.0.1:{kport}")])
            .spawn()
            .unwrap(),
    );
    wait_for("the key server", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", kport)).is_ok()
    });
    let prod_url = format!("http://127.0.0.1:{kport}/keys/{key_path}");
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    assert_eq!(status(&prod_url, &["-H", &bearer(&dev)]), "401");
    assert_eq!(status(&prod_url, &["-H", &bearer(&token)]), "200");

    // And --dev-tokens on a public address is refused unless forced.
    let mut public = swarmpack();
    public
        .arg("serve")
        .arg("--origin")
        .arg(&origin)
        .arg("--keys")
        .arg(&keys)
        .args([
            "--listen",
            &format!("0.0.0.0:{}", free_tcp_port()),
            "--dev-tokens",
        ]);
    let out = run_with_deadline(public, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--public-dev-tokens"), "{err}");
}
