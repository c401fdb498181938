//! The HTTP edge: accepting connections within caps, and hyper's server with its timers.
//!
//! `axum::serve` sets no header-read, idle or connection limits, so one client holding
//! thousands of silent or half-sent connections could exhaust the process's file descriptors.
//! Here every accepted socket first takes a slot (one of `max_connections`, and one of its
//! address's `max_connections_per_address`) held by the socket itself until it closes — an
//! upgraded websocket keeps its slot; a socket that finds no slot gets a short 503 and is
//! closed at once. hyper's HTTP/1.1 builder serves each connection with its header-read timer
//! (running from accept and again while a kept-alive connection waits); a connection that
//! neither sends nor has a request in hand for `idle_timeout` is shut down gracefully. Request
//! and body timeouts are tower-http layers on the router (`api::router`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::config::HttpLimits;

pub const OPEN: &str = "pledgeflow_http_connections_open";
pub const REFUSED: &str = "pledgeflow_http_connections_refused_total";

/// Largest request head (request line and headers) read.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// File descriptors kept aside for the database pool, mail, files and the listener.
const RESERVED_FDS: u64 = 128;

/// Raises the soft limit on open files to the hard one and lowers `max_connections` when the
/// hard limit leaves too little room, so the accept loop refuses before the kernel does.
pub fn fit_to_open_file_limit(limits: &mut HttpLimits) {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let Ok((soft, _)) = rlimit::Resource::NOFILE.get() else { return };
    let room = soft.saturating_sub(RESERVED_FDS).max(16);
    if u64::from(limits.max_connections) > room {
        tracing::warn!(configured = limits.max_connections, open_file_limit = soft, effective = room, "PLEDGEFLOW_HTTP_MAX_CONNECTIONS lowered to fit the open-file limit (raise `ulimit -n` to allow more)");
        limits.max_connections = room as u32;
        limits.max_connections_per_address = limits.max_connections_per_address.min(limits.max_connections);
    }
}

/// Connection slots: in all, and per client address.
struct Caps {
    total: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, u32>>,
    max_per_address: u32,
}

/// One admitted connection's place; given back when the socket is dropped.
struct Slot {
    _total: OwnedSemaphorePermit,
    address: Option<IpAddr>,
    caps: Arc<Caps>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ip) = self.address {
            let mut map = self.caps.per_address.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
        metrics::gauge!(OPEN).decrement(1.0);
    }
}

/// The address a connection is counted under. The peer's own address for now: a trusted proxy
/// (configured with the deployment) would return `None` here, counted in all but not per
/// address, its clients then told apart per request by the address it reports.
fn counted_address(peer: SocketAddr) -> Option<IpAddr> {
    Some(peer.ip().to_canonical())
}

impl Caps {
    fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Slot, &'static str> {
        let permit = self.total.clone().try_acquire_owned().map_err(|_| "total")?;
        let address = counted_address(peer);
        if let Some(ip) = address {
            let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.max_per_address {
                return Err("per_address");
            }
            *n += 1;
        }
        metrics::gauge!(OPEN).increment(1.0);
        Ok(Slot { _total: permit, address, caps: self.clone() })
    }
}

/// When a connection last received bytes, and how many of its requests are in hand.
struct Activity {
    born: Instant,
    last_read_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self { born: Instant::now(), last_read_ms: AtomicU64::new(0), in_flight: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        self.last_read_ms.store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// When the connection will have been idle for `idle`, or `None` while a request is in hand.
    fn idle_at(&self, idle: Duration) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| self.born + Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed)) + idle)
    }
}

/// The socket with its slot (released when hyper, or the websocket after an upgrade, drops it)
/// and its activity clock.
struct Tracked {
    io: TcpStream,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Counts a request in hand from the moment hyper has read its head until its answer is made.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 100\r\n\r\n{\"errors\":[{\"message\":\"the server is at its connection limit\",\"extensions\":{\"code\":\"UNAVAILABLE\"}}]}";

/// A refused socket gets the 503 if its buffer takes it at once (it does, being new), then is
/// closed: nothing waits on it.
fn refuse(stream: TcpStream, reason: &'static str) {
    metrics::counter!(REFUSED, "reason" => reason).increment(1);
    let _ = stream.try_write(FULL);
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the connections finish
/// what they hold (at most `request_timeout`).
pub async fn serve(listener: TcpListener, router: axum::Router, limits: HttpLimits, shutdown: impl std::future::Future<Output = ()> + Send) -> std::io::Result<()> {
    let caps = Arc::new(Caps {
        total: Arc::new(Semaphore::new(limits.max_connections as usize)),
        per_address: Mutex::new(HashMap::new()),
        max_per_address: limits.max_connections_per_address,
    });
    // HTTP/1.1 only, hyper's own builder: hyper-util's `auto` builder would also take HTTP/2
    // with prior knowledge (its http2 feature is on through other crates), which has no
    // header-read timer, and it sniffs the protocol before hyper's timer starts.
    let mut builder = Builder::new();
    // hyper buffers up to ~400 KiB per connection by default: a thousand slow heads would hold
    // 400 MB. 64 KiB is ample for a request head (431 beyond) and for reading a body through.
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true).max_header_size(MAX_HEAD_BYTES).max_buf_size(MAX_HEAD_BYTES);
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut last_error_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors (or a connection reset before accept): wait a moment
                // rather than spin; say so at most once a second.
                if last_error_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "accept failed");
                    last_error_logged = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let slot = match caps.admit(peer) {
            Ok(slot) => slot,
            Err(reason) => {
                refuse(stream, reason);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked { io: stream, activity: activity.clone(), _slot: slot });
        tokio::spawn(connection(io, peer, activity, router.clone(), builder.clone(), limits.idle_timeout, stop_rx.clone()));
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // Each connection task holds a receiver: they are all gone once `closed` resolves.
    let _ = tokio::time::timeout(limits.request_timeout + Duration::from_secs(1), stop_tx.closed()).await;
    Ok(())
}

async fn connection(io: TokioIo<Tracked>, peer: SocketAddr, activity: Arc<Activity>, router: axum::Router, builder: Arc<Builder>, idle: Duration, mut stop: watch::Receiver<bool>) {
    let tracked = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = InFlight::begin(&tracked);
        let answer = tower::ServiceExt::oneshot(router.clone(), request);
        async move {
            let response = answer.await;
            drop(in_flight);
            response
        }
    });
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    let mut closing = false;
    loop {
        let wake = activity.idle_at(idle).unwrap_or_else(|| Instant::now() + idle);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended");
                }
                break;
            }
            _ = tokio::time::sleep_until(wake.into()), if !closing => {
                if activity.idle_at(idle).is_some_and(|at| at <= Instant::now()) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = stop.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_whole_http_response() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let _: serde_json::Value = serde_json::from_str(body).unwrap();
    }

    #[tokio::test]
    async fn slots_are_counted_in_all_and_per_address_and_given_back() {
        let caps = Arc::new(Caps { total: Arc::new(Semaphore::new(3)), per_address: Mutex::new(HashMap::new()), max_per_address: 2 });
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1000".parse().unwrap();
        let a1 = caps.admit(a).unwrap();
        let a2 = caps.admit(a).unwrap();
        assert_eq!(caps.admit(a).err(), Some("per_address"));
        let b1 = caps.admit(b).unwrap();
        assert_eq!(caps.admit(b).err(), Some("total"));
        drop(a1);
        assert!(caps.admit(a).is_ok());
        drop((a2, b1));
        assert!(caps.per_address.lock().unwrap().is_empty(), "dropped slots give their addresses back");
        assert_eq!(caps.total.available_permits(), 3);
    }
}
