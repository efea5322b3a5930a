//! The one way swarmpack serves HTTP (`keyserver`, `serve`, every `--metrics`): axum routes on
//! hyper connections, behind limits no client can talk its way past.
//!
//! - A client must send a request's headers within [`Limits::header_timeout`] of the
//!   connection opening or of its previous response, or the connection is closed. An idle or
//!   slow-loris connection therefore holds a slot for seconds, not forever.
//! - At most [`Limits::connections`] connections are open at once, and at most
//!   [`Limits::per_address`] from one IP address, so one host cannot take every slot. A
//!   connection over either cap is closed as soon as it is accepted. The total stays below the
//!   process's file-descriptor limit, so the server never runs out of descriptors and stops
//!   accepting (which is how 1,000 half-open connections used to starve `/healthz`).
//!
//! May call: `sync`.

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much one server takes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub connections: usize,
    pub per_address: usize,
    pub header_timeout: Duration,
}

/// Descriptors kept back from the connection cap for files, the spool and the runtime.
const RESERVED_DESCRIPTORS: u64 = 128;

impl Limits {
    /// 4,096 connections (fewer when the descriptor limit is low), 64 per address, and
    /// 10 s to send a request's headers.
    pub fn standard() -> Limits {
        Limits::for_descriptors(raise_descriptor_limit())
    }

    /// The limits for a process that may hold `descriptors` open files.
    pub fn for_descriptors(descriptors: u64) -> Limits {
        let connections = descriptors
            .saturating_sub(RESERVED_DESCRIPTORS)
            .clamp(16, 4096) as usize;
        Limits {
            connections,
            per_address: 64.min(connections),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Raises the soft limit on open files to the hard limit, as servers do, and returns it.
fn raise_descriptor_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
        lim.rlim_cur
    }
}

/// Who holds the open connections.
#[derive(Default)]
struct Slots {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
    /// When a refusal was last logged, so a flood writes one line a second, not one per socket.
    last_warned: Option<Instant>,
    refused_since_warning: u64,
}

/// One open connection's slot, given back when the connection ends.
struct Slot {
    slots: Arc<Mutex<Slots>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = crate::sync::lock(&self.slots);
        s.total -= 1;
        if let Some(n) = s.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                s.by_address.remove(&self.address);
            }
        }
    }
}

fn take_slot(slots: &Arc<Mutex<Slots>>, address: IpAddr, limits: &Limits) -> Option<Slot> {
    let mut s = crate::sync::lock(slots);
    let from_address = s.by_address.get(&address).copied().unwrap_or(0);
    if s.total >= limits.connections || from_address >= limits.per_address {
        s.refused_since_warning += 1;
        if s.last_warned
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(
                "refused {} connection(s): {} open (cap {}), {from_address} from {address} (cap {})",
                s.refused_since_warning,
                s.total,
                limits.connections,
                limits.per_address
            );
            s.last_warned = Some(Instant::now());
            s.refused_since_warning = 0;
        }
        return None;
    }
    s.total += 1;
    *s.by_address.entry(address).or_insert(0) += 1;
    Some(Slot {
        slots: slots.clone(),
        address,
    })
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish
/// (for at most 5 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // rather than spin, and go on.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = take_slot(&slots, peer.ip(), &limits) else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("requests still open after 5 s at shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        let l = Limits::for_descriptors(1024);
        assert_eq!(l.connections, 896);
        assert_eq!(l.per_address, 64);
        assert_eq!(Limits::for_descriptors(1_048_576).connections, 4096);
        let tiny = Limits::for_descriptors(20);
        assert_eq!((tiny.connections, tiny.per_address), (16, 16));
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let limits = Limits {
            connections: 3,
            per_address: 2,
            header_timeout: Duration::from_secs(1),
        };
        let slots = Arc::new(Mutex::new(Slots::default()));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        let a1 = take_slot(&slots, a, &limits).unwrap();
        let _a2 = take_slot(&slots, a, &limits).unwrap();
        assert!(take_slot(&slots, a, &limits).is_none(), "per-address cap");
        let _b1 = take_slot(&slots, b, &limits).unwrap();
        assert!(take_slot(&slots, b, &limits).is_none(), "total cap");
        drop(a1);
        assert!(take_slot(&slots, b, &limits).is_some(), "a slot given back");
    }
}
