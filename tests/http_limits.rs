//! Issue 14 item 11: half-open and idle connections cannot starve swarmpack's HTTP servers.
//! The key server runs with the 1,024-descriptor limit services commonly get; 1,100 clients
//! from one address send half a request and wait. Before the limits, the server ran out of
//! descriptors and `/healthz` timed out.

mod common;

use common::*;
use socket2::{Domain, Socket, Type};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A connection from `from` that sends half a request's headers and waits.
fn half_open(from: &str, to: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into())?;
    s.connect(&to.into())?;
    let mut t: TcpStream = s.try_clone()?.into();
    t.write_all(b"GET /healthz HTTP/1.1\r\nHost: origin\r\n")?;
    Ok(s)
}

fn healthz(addr: SocketAddr) -> Result<String, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    agent
        .get(&format!("http://{addr}/healthz"))
        .call()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|e| e.to_string())
}

#[test]
fn half_open_connections_cannot_starve_healthz() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keygen(tmp.path());
    let port = free_tcp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log = tmp.path().join("keyserver.log");
    let mut cmd = swarmpack();
    cmd.arg("keyserver")
        .arg("--keys")
        .arg(&keys)
        .args(["--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    // SAFETY: setrlimit is async-signal-safe and touches only this child.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let _server = Guard(cmd.spawn().unwrap());
    wait_for("the key server", Duration::from_secs(20), || {
        healthz(addr).is_ok()
    });

    // 1,100 half-open connections from 127.0.0.2 (any 127/8 address is loopback).
    let mut held = Vec::new();
    for _ in 0..1100 {
        match half_open("127.0.0.2", addr) {
            Ok(s) => held.push(s),
            // The server may close a refused connection before the request is written.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("opening a connection: {e}"),
        }
    }
    assert!(held.len() >= 64, "only {} connections opened", held.len());
    let start = Instant::now();
    let answer = healthz(addr);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        answer.as_deref(),
        Ok("ok\n"),
        "/healthz with 1,100 half-open connections held ({:?}):\n{}",
        start.elapsed(),
        log_text()
    );
    assert!(
        log_text().contains("from 127.0.0.2 (cap 64)"),
        "the refusals are logged:\n{}",
        log_text()
    );

    // The header-read deadline closes a half-open connection, and an idle one, on its own.
    let mut first: TcpStream = held.swap_remove(0).into();
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 64];
    let got = first.read(&mut buf);
    assert!(
        matches!(&got, Ok(0))
            || matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "a half-open connection stayed open: {got:?}"
    );
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let opened = Instant::now();
    let got = idle.read(&mut buf);
    assert!(
        matches!(got, Ok(0)) && opened.elapsed() < Duration::from_secs(25),
        "an idle connection was not closed by the server: {got:?} after {:?}",
        opened.elapsed()
    );
}
