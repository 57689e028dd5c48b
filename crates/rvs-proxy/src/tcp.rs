//! TCP: accept, schedule, connect to the real server (retrying another pick when it refuses),
//! then relay both ways with half-close, RST propagation, idle timeouts and honest counters.
//!
//! Counters map onto IPVS's: a relay counts as active (ESTABLISHED) until either side closes
//! its half, then inactive (FIN_WAIT). InBytes/OutBytes are exact byte counts client->server
//! and server->client; InPkts/OutPkts count reads from each side (splice or read calls: a
//! relay sees reads, not packets). Bulk data moves with splice(2), never through userspace.

use crate::registry::Entry;
use crate::shared::Shared;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use rvs_core::{ConnState, ConnTicket, Counters, Flow, Protocol, ServiceKey};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// How long a connect to a real server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Flush counters to the table after this many reads (and at the end).
const FLUSH_READS: u64 = 64;

/// Accepts connections forever on one listener of a service.
pub async fn accept_loop(
    shared: Arc<Shared>,
    key: ServiceKey,
    vip: SocketAddr,
    listener: TcpListener,
) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(handle(Arc::clone(&shared), key, vip, client, peer));
            }
            Err(e) => {
                tracing::warn!(service = %key, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Schedules and connects, trying another pick while real servers refuse: at most one try
/// per dest. The next pick avoids every dest that refused this connection (the scheduler sees
/// them as overloaded), and each refused attempt is handed back with
/// [`rvs_core::Service::refused`], which also takes back its `Conns` count: `Conns` counts
/// the clients' connections, not the attempts.
async fn connect(
    shared: &Shared,
    key: ServiceKey,
    flow: &Flow,
    rng: &mut SmallRng,
) -> Option<(ConnTicket, TcpStream)> {
    let attempts = shared
        .table()
        .service(&key)
        .map_or(1, |s| s.dests().len().max(1));
    let mut avoid: Vec<SocketAddr> = Vec::new();
    for _ in 0..attempts {
        let ticket = {
            let mut table = shared.table();
            let now = shared.now();
            table
                .service_mut(&key)
                .and_then(|svc| svc.schedule_avoiding(flow, true, now, rng, &avoid).ok())
        };
        let Some(ticket) = ticket else {
            if avoid.is_empty() {
                shared.no_dest.fetch_add(1, Ordering::Relaxed);
            }
            return None;
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ticket.dest)).await {
            Ok(Ok(stream)) => return Some((ticket, stream)),
            Ok(Err(e)) => tracing::debug!(dest = %ticket.dest, error = %e, "real server refused"),
            Err(_) => tracing::debug!(dest = %ticket.dest, "connect timed out"),
        }
        shared.connect_retries.fetch_add(1, Ordering::Relaxed);
        avoid.push(ticket.dest);
        if let Some(svc) = shared.table().service_mut(&key) {
            svc.refused(ticket);
        }
    }
    None
}

async fn handle(
    shared: Arc<Shared>,
    key: ServiceKey,
    vip: SocketAddr,
    client: TcpStream,
    peer: SocketAddr,
) {
    // TCP_NODELAY comes from the listener (listen.rs).
    let flow = Flow {
        client: peer,
        local: vip,
    };
    let mut rng = SmallRng::seed_from_u64(shared.now().0 ^ u64::from(peer.port()));
    let Some((mut ticket, upstream)) = connect(&shared, key, &flow, &mut rng).await else {
        // No real server: close at once (an RST, as IPVS's no-destination drop then times out).
        reset_on_close(&client);
        return;
    };
    let _ = upstream.set_nodelay(true);
    let header = shared
        .table()
        .service(&key)
        .and_then(|s| s.config().proxy_protocol);
    let mut upstream = upstream;
    if let Some(version) = header {
        let h = crate::proxy_header::encode(version, peer, vip);
        if upstream.write_all(&h).await.is_err() {
            if let Some(svc) = shared.table().service_mut(&key) {
                svc.release(ticket);
            }
            return;
        }
    }
    let entry = Arc::new(Entry::new(
        Protocol::Tcp,
        peer,
        vip,
        ticket.dest,
        ConnState::Established,
        shared.now().0,
    ));
    let id = shared.registry.insert(Arc::clone(&entry));

    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let (abort, _) = tokio::sync::watch::channel(false);
    let ctx = Arc::new(Relay {
        shared: Arc::clone(&shared),
        key,
        ticket: ticket.clone(),
        entry,
        half_closed: AtomicBool::new(false),
        abort,
    });
    let (_, _) = tokio::join!(
        pump(Arc::clone(&ctx), cr, uw, true),
        pump(Arc::clone(&ctx), ur, cw, false)
    );

    shared.registry.remove(id);
    let mut table = shared.table();
    if let Some(svc) = table.service_mut(&key) {
        ticket.active = !ctx.half_closed.load(Ordering::Relaxed);
        svc.release(ticket);
    }
}

/// What both directions of one relay share.
struct Relay {
    shared: Arc<Shared>,
    key: ServiceKey,
    ticket: ConnTicket,
    entry: Arc<Entry>,
    half_closed: AtomicBool,
    /// Set when one direction ends with a reset or timeout: the other stops too, so both
    /// sockets close at once with an RST.
    abort: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    fn record(&self, inbound: bool, bytes: &mut u64, reads: &mut u64) {
        if *reads == 0 {
            return;
        }
        let c = if inbound {
            Counters {
                in_bytes: *bytes,
                in_pkts: *reads,
                ..Counters::default()
            }
        } else {
            Counters {
                out_bytes: *bytes,
                out_pkts: *reads,
                ..Counters::default()
            }
        };
        if let Some(svc) = self.shared.table().service_mut(&self.key) {
            svc.record(&self.ticket, c);
        }
        (*bytes, *reads) = (0, 0);
    }

    fn half_close(&self) {
        if !self.half_closed.swap(true, Ordering::Relaxed) {
            self.entry.set_state(ConnState::FinWait);
            if let Some(svc) = self.shared.table().service_mut(&self.key) {
                let mut tk = self.ticket.clone();
                svc.set_active(&mut tk, false);
            }
        }
    }
}

/// How a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The reader sent FIN; it was passed on.
    Fin,
    /// A reset or error; the other side was reset too.
    Reset,
    /// The idle timeout expired.
    Idle,
}

/// Copies one direction, counting, until EOF, error, idle timeout or the other side's abort.
///
/// Small reads (requests, interactive traffic) go through a pooled buffer; once a read fills the
/// whole buffer the direction is a bulk stream and switches to splice(2), which moves data
/// inside the kernel. The idle timer is one long-lived timer, re-armed only when it fires
/// early, so a read costs no timer registration.
async fn pump(ctx: Arc<Relay>, from: OwnedReadHalf, mut to: OwnedWriteHalf, inbound: bool) -> End {
    let (mut bytes, mut reads) = (0u64, 0u64);
    let mut abort = ctx.abort.subscribe();
    // One wait for the other direction's abort for the whole relay: made anew in every turn of
    // the loop, it would register and drop a waiter per request.
    let aborted = abort.changed();
    tokio::pin!(aborted);
    let shared = &ctx.shared;
    let idle_timeout = || {
        if ctx.half_closed.load(Ordering::Relaxed) {
            shared.tcp_fin_timeout()
        } else {
            shared.tcp_timeout()
        }
    };
    let timer = tokio::time::sleep(idle_timeout());
    tokio::pin!(timer);
    let mut bulk = false;
    let end = loop {
        tokio::select! {
            biased;
            _ = &mut aborted => break End::Reset,
            r = from.readable() => {
                if r.is_err() {
                    break End::Reset;
                }
            }
            () = &mut timer => {
                let idle = idle_timeout();
                let since = Duration::from_millis(shared.coarse_now().saturating_sub(ctx.entry.last_active_ms()));
                if since >= idle {
                    break End::Idle;
                }
                timer.as_mut().reset(tokio::time::Instant::now() + (idle - since));
                continue;
            }
        }
        let step = if bulk {
            match shared.pipes.take() {
                Ok(pipe) => {
                    let step = splice_step(
                        &ctx,
                        &from,
                        &mut to,
                        &pipe,
                        (&mut bytes, &mut reads),
                        inbound,
                    )
                    .await;
                    // Every step drains the pipe fully unless it fails, which ends the relay.
                    if !matches!(step, Step::End(End::Reset)) {
                        shared.pipes.give(pipe);
                    }
                    step
                }
                Err(_) => copy_step(&ctx, &from, &mut to, (&mut bytes, &mut reads), inbound).await,
            }
        } else {
            copy_step(&ctx, &from, &mut to, (&mut bytes, &mut reads), inbound).await
        };
        match step {
            Step::More { full } => bulk |= full,
            Step::End(end) => break end,
        }
    };
    ctx.record(inbound, &mut bytes, &mut reads);
    if end != End::Fin {
        // Close both sockets with an RST: ours now, the other direction's via the abort.
        reset_on_close(to.as_ref());
        ctx.entry.set_state(ConnState::Close);
        let _ = ctx.abort.send(true);
    }
    // Dropping a write half shuts it down unless told not to (`forget`): after a reset the
    // peer would see a clean close before the RST, and after a FIN (passed on, or left to
    // close(2), see `fin`) it would be a second one.
    to.forget();
    end
}

/// Makes closing the socket send an RST: SO_LINGER with a zero timeout, which never blocks.
fn reset_on_close(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// What one relay step did.
enum Step {
    /// Data moved (or nothing was ready); `full` when the read filled the whole buffer.
    More { full: bool },
    /// The direction ended.
    End(End),
}

/// The input ended: pass the FIN on and mark the relay half-closed.
///
/// When the other direction has ended with a FIN already, the socket `to` writes to has been
/// read to its end, so closing it (once the relay drops it) sends the FIN without a reset: the
/// shutdown(2) is left out, one syscall less per connection closed from both ends.
async fn fin(ctx: &Relay, to: &mut OwnedWriteHalf) -> Step {
    if !ctx.half_closed.load(Ordering::Relaxed) {
        let _ = to.shutdown().await;
    }
    ctx.half_close();
    Step::End(End::Fin)
}

/// A read failed: the relay ends with a reset (expected resets are not logged).
fn read_failed(e: &std::io::Error) -> Step {
    if e.kind() != ErrorKind::ConnectionReset {
        tracing::debug!(error = %e, "read failed");
    }
    Step::End(End::Reset)
}

/// `n` bytes were read and handed on (`sent`): count them, flush the counters now and then.
fn moved(
    ctx: &Relay,
    n: usize,
    sent: std::io::Result<()>,
    full: bool,
    counters: (&mut u64, &mut u64),
    inbound: bool,
) -> Step {
    let (bytes, reads) = counters;
    ctx.entry.touch(ctx.shared.coarse_now());
    *bytes += n as u64;
    *reads += 1;
    if *reads >= FLUSH_READS {
        ctx.record(inbound, bytes, reads);
    }
    match sent {
        Ok(()) => Step::More { full },
        Err(e) => {
            tracing::debug!(error = %e, "write failed");
            Step::End(End::Reset)
        }
    }
}

/// One step of the copy-free relay: splice what is ready into a pipe, then on to the other side.
async fn splice_step(
    ctx: &Relay,
    from: &OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    pipe: &crate::splice::Pipe,
    counters: (&mut u64, &mut u64),
    inbound: bool,
) -> Step {
    match crate::splice::socket_to_pipe(from.as_ref(), pipe) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Step::More { full: false },
        Ok(0) => fin(ctx, to).await,
        Ok(n) => {
            let sent = crate::splice::drain(pipe, to.as_ref(), n).await;
            moved(ctx, n, sent, true, counters, inbound)
        }
        Err(e) => read_failed(&e),
    }
}

/// Reads what is ready into `buf`. A read that does not fill the buffer has most likely
/// drained the socket, so the runtime's readiness is cleared then (through `try_io`, which
/// keeps it if a newer event arrived meanwhile): the next wait goes to epoll at once instead of
/// costing a read that would fail with EAGAIN, one system call per request and direction saved
/// on keep-alive traffic (HAProxy reads the same way).
fn read_ready(from: &OwnedReadHalf, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let stream: &TcpStream = from.as_ref();
    let mut short = 0;
    let r = stream.try_io(tokio::io::Interest::READABLE, || {
        let n = (&*socket2::SockRef::from(stream)).read(buf)?;
        if n > 0 && n < buf.len() {
            short = n;
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match r {
        Err(e) if e.kind() == ErrorKind::WouldBlock && short > 0 => Ok(short),
        other => other,
    }
}

/// One step of the buffered relay: read into a pooled buffer, write it out.
async fn copy_step(
    ctx: &Relay,
    from: &OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    counters: (&mut u64, &mut u64),
    inbound: bool,
) -> Step {
    let mut buf = ctx.shared.pool.take();
    let step = match read_ready(from, &mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Step::More { full: false },
        Ok(0) => fin(ctx, to).await,
        Ok(n) => {
            let sent = to.write_all(&buf[..n]).await;
            moved(ctx, n, sent, n == buf.len(), counters, inbound)
        }
        Err(e) => read_failed(&e),
    };
    ctx.shared.pool.give(buf);
    step
}
