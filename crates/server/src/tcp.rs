//! TCP clients: admission (a per-client and a global connection limit), and one
//! connection's queries, answered concurrently.
//!
//! **Admission.** One client address may hold at most `tcp_max_connections_per_client`
//! connections, so that it cannot take every slot; past that its new connections are
//! closed at once. When all `tcp_max_connections` slots are taken, the connection idle
//! the longest (no query in flight) is closed to make room, as Unbound and BIND shrink
//! idle timeouts under pressure: a new client is served and a parked one loses
//! nothing it was waiting for. Only when every connection has a query in flight is the
//! new one refused. Refusals and evictions are counted and said in one WARN at most
//! every [`TOLD_EVERY`].
//!
//! **Pipelining** (RFC 7766 §6.2.1.1). A connection's queries are read one after the
//! other; those answered at once (sinkhole, cache, refusal) are written back at once,
//! and each cache miss runs in a task of its own, at most [`IN_FLIGHT`] per connection,
//! whose answer is written when it is ready: a slow miss does not hold back a sinkhole
//! answer queued behind it. Answers carry their query's id; clients match them by it.
//!
//! Answers are written by one writer per connection, from a queue; a client that stops
//! reading loses the connection after the idle timeout, as one that stops sending does.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::engine::{Engine, Handled, Proto, Received, Request, Scratch};
use crate::limit::{TellEvery, TOLD_EVERY};

/// Most cache misses of one connection waiting for upstreams at once; the connection's
/// next query is read when one finishes.
pub(crate) const IN_FLIGHT: usize = 32;

/// The TCP limits, read at start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpLimits {
    /// Most connections at once.
    pub(crate) max: usize,
    /// Most connections of one client address at once.
    pub(crate) per_client: usize,
    /// A connection with nothing to do for this long is closed.
    pub(crate) idle: Duration,
}

/// One open connection, as admission sees it.
#[derive(Debug)]
struct Conn {
    ip: IpAddr,
    /// Milliseconds since the registry's epoch of the last query or answer.
    last_active: AtomicU64,
    /// Cache misses of this connection waiting for upstreams.
    in_flight: AtomicUsize,
    /// Cancelled to close it (evicted).
    evict: CancellationToken,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, Arc<Conn>>,
    per_ip: HashMap<IpAddr, usize>,
    /// The last address refused for holding too many connections.
    last_refused: Option<IpAddr>,
}

impl Registry {
    fn remove(&mut self, id: u64) {
        let Some(c) = self.open.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_ip.get_mut(&c.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&c.ip);
            }
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Its address holds `per_client` connections already.
    PerClient,
    /// Every slot is taken by a connection with a query in flight.
    Full,
}

/// Every open TCP connection, across the listen addresses.
#[derive(Debug)]
pub(crate) struct Connections {
    limits: TcpLimits,
    epoch: Instant,
    registry: Mutex<Registry>,
    refused_per_client: AtomicU64,
    refused_full: AtomicU64,
    evicted: AtomicU64,
    told: TellEvery,
    /// Connections open, kept beside the registry so that `/metrics` reads it without
    /// its lock.
    open: AtomicUsize,
}

/// A connection's place in the registry, given back on drop.
struct Slot {
    conns: Arc<Connections>,
    id: u64,
    conn: Arc<Conn>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut r = self.conns.lock();
        r.remove(self.id);
        self.conns.open.store(r.open.len(), Ordering::Relaxed);
    }
}

impl Connections {
    pub(crate) fn new(limits: TcpLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: TcpLimits {
                max: limits.max.max(1),
                per_client: limits.per_client.max(1),
                idle: limits.idle,
            },
            epoch: Instant::now(),
            registry: Mutex::new(Registry::default()),
            refused_per_client: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            told: TellEvery::default(),
            open: AtomicUsize::new(0),
        })
    }

    /// Connections open now (no lock).
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused since the start: per client or with every slot busy.
    pub(crate) fn refused(&self) -> u64 {
        self.refused_per_client.load(Ordering::Relaxed) + self.refused_full.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Admits a connection from `ip`, closing the longest idle one if every slot is
    /// taken.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let ip = ip.to_canonical();
        let now = self.now_ms();
        let mut r = self.lock();
        if r.per_ip.get(&ip).copied().unwrap_or(0) >= self.limits.per_client {
            r.last_refused = Some(ip);
            drop(r);
            self.refused_per_client.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::PerClient);
        }
        if r.open.len() >= self.limits.max {
            let victim = r
                .open
                .iter()
                .filter(|(_, c)| c.in_flight.load(Ordering::Relaxed) == 0)
                .min_by_key(|(_, c)| c.last_active.load(Ordering::Relaxed))
                .map(|(&id, c)| (id, c.clone()));
            let Some((id, c)) = victim else {
                drop(r);
                self.refused_full.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Full);
            };
            // Out of the count now; its task closes it in a moment.
            r.remove(id);
            c.evict.cancel();
            self.evicted.fetch_add(1, Ordering::Relaxed);
        }
        r.next += 1;
        let id = r.next;
        let conn = Arc::new(Conn {
            ip,
            last_active: AtomicU64::new(now),
            in_flight: AtomicUsize::new(0),
            evict: CancellationToken::new(),
        });
        r.open.insert(id, conn.clone());
        *r.per_ip.entry(ip).or_default() += 1;
        self.open.store(r.open.len(), Ordering::Relaxed);
        Ok(Slot {
            conns: self.clone(),
            id,
            conn,
        })
    }

    /// Says what was refused or evicted since the last time, at most every
    /// [`TOLD_EVERY`].
    fn tell(&self) {
        let pending = [&self.refused_per_client, &self.refused_full, &self.evicted]
            .iter()
            .any(|c| c.load(Ordering::Relaxed) > 0);
        if !pending {
            return;
        }
        if !self.told.claim(self.now_ms()) {
            return;
        }
        let per_client = self.refused_per_client.swap(0, Ordering::Relaxed);
        let full = self.refused_full.swap(0, Ordering::Relaxed);
        let evicted = self.evicted.swap(0, Ordering::Relaxed);
        let mut parts = Vec::new();
        if per_client > 0 {
            let who = self
                .lock()
                .last_refused
                .map_or_else(String::new, |ip| format!(", the last from {ip}"));
            parts.push(format!(
                "{per_client} connections refused from clients that held {} already (tcp_max_connections_per_client{who})",
                self.limits.per_client
            ));
        }
        if evicted > 0 {
            parts.push(format!(
                "{evicted} idle connections closed to make room ({} open, tcp_max_connections)",
                self.limits.max
            ));
        }
        if full > 0 {
            parts.push(format!(
                "{full} connections refused with all {} busy",
                self.limits.max
            ));
        }
        if !parts.is_empty() {
            warn!(
                "tcp: {}; next report in {} s at the earliest",
                parts.join("; "),
                TOLD_EVERY.as_secs()
            );
        }
    }
}

impl Conn {
    fn touch(&self, conns: &Connections) {
        self.last_active.store(conns.now_ms(), Ordering::Relaxed);
    }
}

/// A connection of another stream transport (DoH) admitted under the same limits as
/// TCP's: it counts toward `tcp_max_connections` and the per-client limit, and may be
/// evicted when idle to make room.
pub(crate) struct Admitted(Slot);

/// A request in progress on an [`Admitted`] connection: while it lives, the connection
/// is not idle and is never evicted.
pub(crate) struct Busy<'a>(&'a Slot);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.conn.touch(&self.0.conns);
        self.0.conn.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admitted {
    /// Cancelled when the connection is evicted to make room for a new one.
    pub(crate) fn evicted(&self) -> &CancellationToken {
        &self.0.conn.evict
    }

    /// Marks a request in progress until the guard is dropped.
    pub(crate) fn busy(&self) -> Busy<'_> {
        self.0.conn.in_flight.fetch_add(1, Ordering::Relaxed);
        self.0.conn.touch(&self.0.conns);
        Busy(&self.0)
    }
}

impl Connections {
    /// Admits a connection from `ip` as [`accept_loop`] admits a TCP one; `None` (said
    /// in the periodic WARN) when it is refused.
    pub(crate) fn admit_stream(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let admitted = self.admit(ip);
        self.tell();
        admitted.ok().map(Admitted)
    }
}

/// Accepts TCP connections until `shutdown`.
pub(crate) async fn accept_loop(
    engine: Arc<Engine>,
    listener: TcpListener,
    conns: Arc<Connections>,
    forwards: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match conns.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                debug!(%peer, ?why, "tcp connection not admitted; closing it");
                drop(stream);
                conns.tell();
                continue;
            }
        };
        conns.tell();
        let connection = Connection {
            engine: engine.clone(),
            peer,
            slot,
            forwards: forwards.clone(),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        };
        tracker.spawn(async move {
            if let Err(e) = connection.serve(stream).await {
                debug!(%peer, error = %e, "tcp connection ended");
            }
        });
    }
}

/// One client connection.
struct Connection {
    engine: Arc<Engine>,
    peer: SocketAddr,
    slot: Slot,
    forwards: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// A DNS message with its two-byte length in front.
fn framed(out: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(out.len() + 2);
    f.extend_from_slice(&(out.len() as u16).to_be_bytes());
    f.extend_from_slice(out);
    f
}

impl Connection {
    /// Serves the connection until the client closes it, it idles past the timeout, it
    /// is evicted, or shutdown; queries in flight are answered first.
    async fn serve(self, stream: TcpStream) -> io::Result<()> {
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel::<Vec<u8>>(IN_FLIGHT + 1);
        // Cancelled when the writer gives up (the client stopped reading).
        let dead = CancellationToken::new();
        let writer = write_answers(
            wr,
            rx,
            self.slot.conns.limits.idle,
            dead.clone(),
            &self.slot,
        );
        let (read, ()) = tokio::join!(self.read_queries(rd, tx, &dead), writer);
        // The slot is freed (by drop) before the client sees the close, so that it may
        // connect again at once.
        read
    }

    /// A query that goes upstream, answered from a task of its own so that later queries
    /// on the connection are not held up (at most [`IN_FLIGHT`] at once per connection;
    /// SERVFAIL at once when too many forwards are waiting). `false` when the connection
    /// is to end.
    async fn forward(
        &self,
        req: Request<'_>,
        in_flight: &Arc<Semaphore>,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
        tx: &mpsc::Sender<Vec<u8>>,
    ) -> bool {
        let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
            if self.engine.answer_overloaded(req, scratch, out) {
                self.engine.flush_log(scratch);
                if tx.send(framed(out)).await.is_err() {
                    return false;
                }
            }
            return true;
        };
        let (conn, conns) = (&self.slot.conn, &self.slot.conns);
        let Ok(mine) = in_flight.clone().acquire_owned().await else {
            return false;
        };
        conn.in_flight.fetch_add(1, Ordering::Relaxed);
        let (engine, tx) = (self.engine.clone(), tx.clone());
        let (conn, conns) = (conn.clone(), conns.clone());
        let (packet, peer, received) = (req.packet.to_vec(), self.peer, req.received);
        self.tracker.spawn(async move {
            let mut s = Scratch::default();
            let mut out = Vec::new();
            let req = Request {
                packet: &packet,
                client: peer,
                proto: Proto::Tcp,
                received,
            };
            if engine.answer_forwarded(req, &mut s, &mut out).await {
                engine.flush_log(&mut s);
                let _ = tx.send(framed(&out)).await;
            }
            conn.touch(&conns);
            conn.in_flight.fetch_sub(1, Ordering::Relaxed);
            drop((permit, mine));
        });
        true
    }

    async fn read_queries(
        &self,
        mut rd: OwnedReadHalf,
        tx: mpsc::Sender<Vec<u8>>,
        dead: &CancellationToken,
    ) -> io::Result<()> {
        let conn = &self.slot.conn;
        let conns = &self.slot.conns;
        let idle = conns.limits.idle;
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut buf = Vec::new();
        let mut out = Vec::with_capacity(4096);
        let mut scratch = Scratch::default();
        loop {
            let mut len = [0u8; 2];
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return Ok(()),
                () = conn.evict.cancelled() => return Ok(()),
                () = dead.cancelled() => return Ok(()),
                r = tokio::time::timeout(idle, rd.read_exact(&mut len)) => match r {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                    Ok(Err(e)) => return Err(e),
                    // Idle, unless answers are still due.
                    Err(_) if conn.in_flight.load(Ordering::Relaxed) > 0 => continue,
                    Err(_) => return Ok(()),
                },
            }
            buf.resize(usize::from(u16::from_be_bytes(len)), 0);
            match tokio::time::timeout(idle, rd.read_exact(&mut buf)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()),
            }
            conn.touch(conns);
            let req = Request {
                packet: &buf,
                client: self.peer,
                proto: Proto::Tcp,
                received: Received::now(),
            };
            match self.engine.answer_now(req, &mut scratch, &mut out) {
                Handled::Answer => {
                    self.engine.flush_log(&mut scratch);
                    if tx.send(framed(&out)).await.is_err() {
                        return Ok(());
                    }
                }
                Handled::Drop => {}
                Handled::Forward => {
                    if !self
                        .forward(req, &in_flight, &mut scratch, &mut out, &tx)
                        .await
                    {
                        return Ok(());
                    }
                }
            }
            // A client outside allow_clients has its REFUSED; it may not keep a
            // connection slot that allowed clients need.
            if !self.engine.allows(self.peer.ip()) {
                return Ok(());
            }
            // One large message must not keep 64 KiB buffers for the connection's life:
            // with every connection slot taken that would be hundreds of MiB.
            for b in [&mut buf, &mut out] {
                if b.capacity() > 16 * 1024 {
                    b.clear();
                    b.shrink_to(4096);
                }
            }
        }
    }
}

/// Writes queued answers until every sender is gone; gives up (cancelling `dead`) when
/// an answer cannot leave within `idle`.
async fn write_answers(
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
    idle: Duration,
    dead: CancellationToken,
    slot: &Slot,
) {
    while let Some(frame) = rx.recv().await {
        // A client that stops reading must not hold its connection slot for ever: the
        // answer gets as long to leave as a query gets to arrive.
        match tokio::time::timeout(idle, wr.write_all(&frame)).await {
            Ok(Ok(())) => slot.conn.touch(&slot.conns),
            _ => {
                dead.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_client: usize) -> TcpLimits {
        TcpLimits {
            max,
            per_client,
            idle: Duration::from_secs(10),
        }
    }

    #[test]
    fn one_client_cannot_hold_more_than_its_share() {
        let conns = Connections::new(limits(100, 2));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        let s1 = conns.admit(a).unwrap();
        let _s2 = conns.admit(a).unwrap();
        assert_eq!(conns.admit(a).err(), Some(Refusal::PerClient));
        let _b1 = conns.admit(b).unwrap();
        drop(s1);
        let _s3 = conns.admit(a).unwrap();
        assert_eq!(conns.lock().per_ip[&a], 2);
        assert_eq!(
            conns.lock().per_ip[&"192.0.2.2".parse::<IpAddr>().unwrap()],
            1
        );
    }

    #[test]
    fn at_the_limit_the_longest_idle_connection_makes_room() {
        let conns = Connections::new(limits(2, 10));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let old = conns.admit(ip).unwrap();
        let busy = conns.admit(ip).unwrap();
        old.conn.last_active.store(0, Ordering::Relaxed);
        busy.conn.last_active.store(0, Ordering::Relaxed);
        busy.conn.in_flight.store(1, Ordering::Relaxed);
        let new = conns.admit(ip).unwrap();
        assert!(old.conn.evict.is_cancelled(), "the idle one goes");
        assert!(
            !busy.conn.evict.is_cancelled(),
            "not the one with a query in flight"
        );
        assert_eq!(conns.lock().open.len(), 2);
        // Both left have a query in flight: nothing can make room.
        new.conn.in_flight.store(1, Ordering::Relaxed);
        assert_eq!(conns.admit(ip).err(), Some(Refusal::Full));
        drop(old);
        assert_eq!(
            conns.lock().open.len(),
            2,
            "the evicted one was counted out already"
        );
    }
}
