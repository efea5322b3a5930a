use super::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[tokio::test]
async fn create_never_replaces_what_a_directory_origin_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Origin::local(tmp.path()).unwrap();
    let first = Bytes::from_static(b"the first run's segment");
    assert_eq!(
        o.create("m/a/r/7.ts", first.clone()).await.unwrap(),
        Created::New
    );
    assert_eq!(
        o.create("m/a/r/7.ts", first.clone()).await.unwrap(),
        Created::Same
    );
    let other = o
        .create("m/a/r/7.ts", Bytes::from_static(b"another run's"))
        .await
        .unwrap();
    assert_eq!(
        other,
        Created::Other {
            len: first.len() as u64,
            sha256: crate::hex::sha256(&first),
        }
    );
    let held = std::fs::read(tmp.path().join("m/a/r/7.ts")).unwrap();
    assert_eq!(held, first, "kept, not overwritten");
    // A plain put still replaces (playlists move with the match).
    o.put("m/a/r/7.ts", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(std::fs::read(tmp.path().join("m/a/r/7.ts")).unwrap(), b"x");
}

#[test]
fn only_playlists_and_the_pointer_are_replaced() {
    use crate::package::ObjectKind as K;
    for kind in [K::Segment, K::Torrent, K::Manifest, K::Pad, K::PublicKey] {
        assert!(kind.is_immutable(), "{kind:?}");
    }
    for kind in [K::MediaPlaylist, K::MasterPlaylist, K::Pointer] {
        assert!(!kind.is_immutable(), "{kind:?}");
    }
}

#[tokio::test]
async fn a_directory_in_the_way_is_a_refusal_and_a_dead_origin_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Origin::local(tmp.path()).unwrap();
    std::fs::create_dir_all(tmp.path().join("m/a/r/7.ts")).unwrap();
    let e = o
        .put("m/a/r/7.ts", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(e.is_refusal(), "{e}");
    assert!(o.put("m/a/r/8.ts", Bytes::from_static(b"x")).await.is_ok());
    // Nothing listens on port 9: the origin is down, not refusing.
    let down = Origin::open("http://127.0.0.1:9/").unwrap();
    let e = down
        .put("m/x.ts", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(!e.is_refusal(), "{e}");
    assert_eq!(
        http_status("Server returned non-2xx status code: 413 Payload Too Large: "),
        Some(413)
    );
    assert_eq!(http_status("connection refused"), None);
}

/// Issue 25, item 5: a hostile origin can neither fill memory nor hang a reader.
#[tokio::test]
async fn reads_are_capped_and_file_origins_read_regular_files_only() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Origin::local(tmp.path()).unwrap();
    std::fs::create_dir_all(tmp.path().join("m")).unwrap();
    std::fs::write(tmp.path().join("m/big.json"), vec![b' '; 100]).unwrap();
    let e = o.get_limited("m/big.json", 99).await.unwrap_err();
    assert!(e.is_refusal(), "{e}");
    assert!(e.to_string().contains("expected at most 99 bytes"), "{e}");
    assert_eq!(
        o.get_limited("m/big.json", 100)
            .await
            .unwrap()
            .unwrap()
            .len(),
        100
    );
    // A FIFO would block the read for ever; a directory is no object either.
    let fifo = tmp.path().join("m/live.json");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = o.get("m/live.json").await.unwrap_err();
    assert!(
        e.to_string().contains("a FIFO; expected a regular file"),
        "{e}"
    );
    std::fs::create_dir_all(tmp.path().join("m/dir.ts")).unwrap();
    let e = o.get("m/dir.ts").await.unwrap_err();
    assert!(e.to_string().contains("a directory"), "{e}");
    assert_eq!(o.get("m/none/x.ts").await.unwrap(), None);
    assert_eq!(
        o.get("m/big.json/x").await.unwrap(),
        None,
        "not a directory"
    );

    // An HTTP origin that answers with far more than a document may hold, with and
    // without a Content-Length: the read stops at the cap.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/m/sized.json",
            axum::routing::get(|| async { vec![b'x'; (MAX_DOCUMENT + 1) as usize] }),
        )
        .route(
            "/m/endless.json",
            axum::routing::get(|| async {
                let chunk = bytes::Bytes::from(vec![b'x'; 1 << 20]);
                let endless = futures_util::stream::repeat_with(move || {
                    Ok::<_, std::io::Error>(chunk.clone())
                });
                axum::body::Body::from_stream(endless)
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let o = Origin::open(&format!("http://{addr}/")).unwrap();
    let e = o.get("m/sized.json").await.unwrap_err();
    assert!(
        e.to_string().contains("expected at most 8388608 bytes"),
        "{e}"
    );
    // object_store refuses a body without a length before reading it.
    let e = o.get("m/endless.json").await.unwrap_err();
    assert!(e.to_string().contains("GET m/endless.json"), "{e}");
}

#[test]
fn local_put_creates_directories_and_replaces_whole() {
    let dir = tempfile::tempdir().unwrap();
    let o = Origin::local(dir.path()).unwrap();
    block_on(async {
        o.put("m/cam1/360p/index.m3u8", Bytes::from_static(b"one"))
            .await
            .unwrap();
        o.put("m/cam1/360p/index.m3u8", Bytes::from_static(b"two"))
            .await
            .unwrap();
        o.put("m/.pad/100", Bytes::from_static(b"\0"))
            .await
            .unwrap();
    });
    let got = std::fs::read(dir.path().join("m/cam1/360p/index.m3u8")).unwrap();
    assert_eq!(got, b"two");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("m/cam1/360p"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    assert!(dir.path().join("m/.pad/100").is_file());
    let (found, missing) = block_on(async {
        (
            o.get("m/cam1/360p/index.m3u8").await.unwrap(),
            o.get("m/none.ts").await.unwrap(),
        )
    });
    assert_eq!(found.as_deref(), Some(&b"two"[..]));
    assert_eq!(missing, None);
}

#[test]
fn paths_cannot_escape_the_root() {
    for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"] {
        assert!(checked_relative(bad).is_err(), "{bad}");
    }
    assert!(checked_relative("m/w/1.json").is_ok());
}

#[test]
fn unwritable_root_is_refused_up_front() {
    let e = Origin::open("file:///proc/swarmpack-cannot-write")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("origin file:///proc/swarmpack-cannot-write: cannot create"),
        "{e}"
    );
}

#[test]
fn urls_are_checked_and_passwords_never_shown() {
    assert!(Origin::open("http://127.0.0.1:9/origin/").is_ok());
    let o = Origin::open("https://ingest:hunter2@cdn.example/live/").unwrap();
    assert_eq!(o.describe(), "https://ingest:***@cdn.example/live/");
    assert_eq!(
        o.scrub("connect to hunter2 failed"),
        "connect to *** failed"
    );
    for bad in ["ftp://x", "file://", "http://", "s3://", "out"] {
        let e = Origin::open(bad).unwrap_err().to_string();
        assert!(e.contains("expected file:///absolute/dir"), "{bad}: {e}");
    }
    let e = Origin::open("ftp://u:hunter2@x/").unwrap_err().to_string();
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn failed_put_names_origin_and_path() {
    // Nothing listens on port 9 (discard) on loopback in the test environment.
    let o = Origin::open("http://127.0.0.1:9/origin/").unwrap();
    let e = block_on(o.put("m/a/1.ts", Bytes::from_static(b"x")))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("origin http://127.0.0.1:9/origin/: PUT m/a/1.ts: "),
        "{e}"
    );
}
