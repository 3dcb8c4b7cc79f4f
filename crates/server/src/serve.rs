//! The accept loop: axum's router on hyper's HTTP/1 server, with what
//! `axum::serve` lacks for a service on the open internet: a header-read
//! timeout (hyper also applies it while a kept-alive connection waits for its
//! next request, so idle connections close too), and bounds on open
//! connections overall and per client network, so that a flood of slow
//! connections can neither use up the file descriptors nor crowd out others.
//! Connections beyond a bound are closed at once.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::Service;

use crate::client_address::TrustedProxies;
use crate::limits::client_key;

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);
/// File descriptors kept back from connections: the database, key files, mail, logs.
const RESERVED_DESCRIPTORS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A client must send a request's headers within this; also the idle keep-alive limit.
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
}

impl ConnectionLimits {
    /// Bounds that fit this process's file-descriptor limit: all but a reserve
    /// for connections, and an eighth of those for any one client network.
    pub fn for_this_process() -> Self {
        let descriptors = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(1024);
        let max_connections = descriptors.saturating_sub(RESERVED_DESCRIPTORS).clamp(16, 100_000);
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections,
            max_per_client: (max_connections / 8).max(4),
        }
    }
}

/// Counts open connections, overall and per client network.
struct OpenConnections {
    limits: ConnectionLimits,
    counts: Mutex<(usize, HashMap<String, usize>)>,
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    open: Arc<OpenConnections>,
    client: String,
}

impl OpenConnections {
    fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Slot> {
        let client = client_key(client);
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (total, per_client) = &mut *counts;
        let mine = per_client.entry(client.clone()).or_insert(0);
        if *total >= self.limits.max_connections || *mine >= self.limits.max_per_client {
            if *mine == 0 {
                per_client.remove(&client);
            }
            return None;
        }
        *mine += 1;
        *total += 1;
        Some(Slot { open: Arc::clone(self), client })
    }
}

impl OpenConnections {
    /// A connection counted only against the overall bound.
    fn admit_shared(self: &Arc<Self>) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.0 >= self.limits.max_connections {
            return None;
        }
        counts.0 += 1;
        Some(Slot { open: Arc::clone(self), client: String::new() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (total, per_client) = &mut *counts;
        *total = total.saturating_sub(1);
        if let Some(mine) = per_client.get_mut(&self.client) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

/// Serves `router` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    proxies: TrustedProxies,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let proxies = Arc::new(proxies);
    let open = Arc::new(OpenConnections { limits, counts: Mutex::new((0, HashMap::new())) });
    let graceful = GracefulShutdown::new();
    let mut shed_logged = false;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (or a connection reset before accept): back off, don't spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A trusted proxy carries many clients: only the overall bound applies to it.
        let admitted = if proxies.trusts(peer.ip()) { open.admit_shared() } else { open.admit(peer.ip()) };
        let Some(slot) = admitted else {
            if !shed_logged {
                tracing::warn!(client = %peer.ip(), "connection limit reached: closing new connections at once");
                shed_logged = true;
            }
            drop(stream);
            continue;
        };
        shed_logged = false;
        let (router, proxies) = (router.clone(), Arc::clone(&proxies));
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let client = proxies.client(peer, request.headers());
            request.extensions_mut().insert(ConnectInfo(client));
            router.clone().call(request)
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("connections still open when the shutdown grace ran out"),
    }
    Ok(())
}
