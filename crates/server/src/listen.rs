//! Sockets: binding them, and the UDP loops that serve them (TCP connections: [`crate::tcp`]).

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::engine::{Engine, Handled, Proto, Received, Request, Scratch};
use crate::ServerError;

/// Sockets bound for one listen address: several UDP sockets sharing the port with
/// `SO_REUSEPORT` (the kernel spreads datagrams over them, so every core serves), and one
/// TCP listener on the same port.
#[derive(Debug)]
pub struct BoundAddr {
    /// The address actually bound (the real port when port 0 was asked for).
    pub addr: SocketAddr,
    udp: Vec<StdUdpSocket>,
    tcp: StdTcpListener,
}

impl BoundAddr {
    /// How many UDP sockets serve this address.
    pub fn udp_sockets(&self) -> usize {
        self.udp.len()
    }
}

/// Every bound listen address; hand it to [`crate::Server::run`].
#[derive(Debug)]
pub struct Listeners {
    /// One entry per listen address, in the order given.
    pub bound: Vec<BoundAddr>,
    /// The DoT and DoH listeners ([`bind_encrypted`]); none from [`bind`].
    pub encrypted: Vec<EncryptedAddr>,
}

impl Listeners {
    /// The addresses actually bound.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.bound.iter().map(|b| b.addr).collect()
    }
}

/// Which encrypted transport a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// DNS over TLS (RFC 7858).
    Tls,
    /// DNS over HTTPS (RFC 8484).
    Https,
}

impl Encryption {
    /// `tls` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::Https => "https",
        }
    }
}

/// A TCP listener bound for DoT or DoH.
#[derive(Debug)]
pub struct EncryptedAddr {
    /// The address actually bound (the real port when port 0 was asked for).
    pub addr: SocketAddr,
    /// What it serves.
    pub kind: Encryption,
    pub(crate) listener: StdTcpListener,
}

/// Binds a TCP listener for each DoT address of `tls` and each DoH address of `https`.
pub fn bind_encrypted(
    tls: &[SocketAddr],
    https: &[SocketAddr],
) -> Result<Vec<EncryptedAddr>, ServerError> {
    let all = tls
        .iter()
        .map(|a| (*a, Encryption::Tls))
        .chain(https.iter().map(|a| (*a, Encryption::Https)));
    all.map(|(addr, kind)| {
        let err = |source| ServerError::Bind {
            proto: kind.as_str(),
            addr,
            source,
        };
        let listener = tcp_listener(addr).map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        Ok(EncryptedAddr {
            addr,
            kind,
            listener,
        })
    })
    .collect()
}

/// Attempts at finding a port free for both UDP and TCP when port 0 is asked for.
const PORT_ATTEMPTS: usize = 32;

/// Binds UDP and TCP on every address of `addrs`, `udp_per_addr` UDP sockets each (0: one
/// per CPU). Port 0 picks one free port for both protocols, so that a client can retry a
/// truncated UDP answer over TCP on the same port.
pub fn bind(addrs: &[SocketAddr], udp_per_addr: usize) -> Result<Listeners, ServerError> {
    let per_addr = if udp_per_addr == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        udp_per_addr
    };
    let mut bound = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        bound.push(bind_one(addr, per_addr)?);
    }
    Ok(Listeners {
        bound,
        encrypted: Vec::new(),
    })
}

fn bind_one(addr: SocketAddr, per_addr: usize) -> Result<BoundAddr, ServerError> {
    let err = |proto: &'static str, at: SocketAddr| {
        move |source: io::Error| ServerError::Bind {
            proto,
            addr: at,
            source,
        }
    };
    let attempts = if addr.port() == 0 { PORT_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let first = udp_socket(addr).map_err(err("udp", addr))?;
        let actual = first.local_addr().map_err(err("udp", addr))?;
        let mut udp = vec![first];
        for _ in 1..per_addr {
            udp.push(udp_socket(actual).map_err(err("udp", actual))?);
        }
        match tcp_listener(actual) {
            Ok(tcp) => {
                return Ok(BoundAddr {
                    addr: actual,
                    udp,
                    tcp,
                })
            }
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(err("tcp", actual)(e)),
        }
    }
    Err(err("tcp", addr)(last.unwrap_or_else(|| {
        io::Error::from(io::ErrorKind::AddrInUse)
    })))
}

fn udp_socket(addr: SocketAddr) -> io::Result<StdUdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    // A deeper receive queue absorbs bursts; the kernel caps it at rmem_max.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<StdTcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Splits bound sockets: UDP sockets for [`udp_thread`], the TCP listener for Tokio.
pub(crate) fn split(b: BoundAddr) -> io::Result<(Vec<StdUdpSocket>, TcpListener)> {
    Ok((b.udp, TcpListener::from_std(b.tcp)?))
}

/// Most UDP cache misses waiting for upstreams at once, per server; past it a miss gets
/// SERVFAIL at once, so that a flood of unique names cannot pile up tasks and upstream
/// queries without bound.
pub(crate) const MAX_FORWARDS: usize = 4096;

/// How often a UDP thread blocked in `recv_from` looks at the shutdown token where a
/// blocked receive cannot be woken (not Linux).
#[cfg(not(target_os = "linux"))]
const SHUTDOWN_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Wakes the UDP threads blocked on `sockets` once `shutdown` is cancelled. On Linux the
/// threads block without a timeout (arming a timer for every wait costs a VM exit on
/// virtual machines), so they must be woken.
pub(crate) async fn wake_udp_on_shutdown(
    sockets: Vec<Arc<StdUdpSocket>>,
    shutdown: CancellationToken,
) {
    shutdown.cancelled().await;
    #[cfg(target_os = "linux")]
    for s in &sockets {
        use std::os::fd::AsRawFd;
        // The Arc keeps the descriptor open, so this cannot hit a reused number.
        crate::mmsg::wake(s.as_raw_fd());
    }
    drop(sockets);
}

/// Serves one UDP socket until `shutdown`, on the calling (blocking) thread.
///
/// Blocking system calls and no readiness polling: per batch of queries one receive and
/// one send (Linux, see [`crate::mmsg`]), which is what makes a sinkhole answer or a
/// cache hit cheap. Only cache misses go to the async runtime, through `tracker`.
pub(crate) fn udp_thread(
    engine: Arc<Engine>,
    sock: Arc<StdUdpSocket>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    forwards: Arc<Semaphore>,
) {
    #[cfg(target_os = "linux")]
    let setup = sock.set_nonblocking(false);
    #[cfg(not(target_os = "linux"))]
    let setup = sock
        .set_nonblocking(false)
        .and_then(|()| sock.set_read_timeout(Some(SHUTDOWN_POLL)));
    if let Err(e) = setup {
        warn!(error = %e, "cannot set up a UDP socket; it is not served");
        return;
    }
    let udp = Udp {
        engine,
        sock,
        tracker,
        forwards,
    };
    udp.serve(&shutdown);
}

/// What a UDP thread answers with.
struct Udp {
    engine: Arc<Engine>,
    sock: Arc<StdUdpSocket>,
    tracker: TaskTracker,
    /// Room for cache misses waiting for upstreams ([`MAX_FORWARDS`]).
    forwards: Arc<Semaphore>,
}

impl Udp {
    /// The receive loop, batched: `recvmmsg` and `sendmmsg`.
    #[cfg(target_os = "linux")]
    fn serve(&self, shutdown: &CancellationToken) {
        use std::os::fd::AsRawFd;

        use crate::mmsg::{RecvBatch, SendBatch, BATCH};

        let fd = self.sock.as_raw_fd();
        let mut scratch = Scratch::default();
        let mut rx = RecvBatch::new();
        let mut tx = SendBatch::new();
        let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(1024)).collect();
        let mut dests: Vec<SocketAddr> = Vec::with_capacity(BATCH);
        while !shutdown.is_cancelled() {
            let n = match rx.recv(fd) {
                Ok(n) => n,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            };
            // One clock reading for the batch: the queries arrived together.
            let received = Received::now();
            dests.clear();
            for i in 0..n {
                let (packet, Some(client)) = rx.get(i) else {
                    continue;
                };
                let req = Request {
                    packet,
                    client,
                    proto: Proto::Udp,
                    received,
                };
                if self.dispatch(req, &mut scratch, &mut outs[dests.len()]) {
                    dests.push(client);
                }
            }
            if let Err(e) = tx.send(fd, &outs[..dests.len()], &dests) {
                debug!(error = %e, "udp send failed");
            }
            self.engine.flush_log(&mut scratch);
        }
    }

    /// The receive loop, one datagram per system call.
    #[cfg(not(target_os = "linux"))]
    fn serve(&self, shutdown: &CancellationToken) {
        let mut scratch = Scratch::default();
        let mut buf = vec![0u8; 65_535];
        let mut out = Vec::with_capacity(4096);
        while !shutdown.is_cancelled() {
            let (len, client) = match self.sock.recv_from(&mut buf) {
                Ok(v) => v,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            };
            let req = Request {
                packet: &buf[..len],
                client,
                proto: Proto::Udp,
                received: Received::now(),
            };
            if self.dispatch(req, &mut scratch, &mut out) {
                if let Err(e) = self.sock.send_to(&out, client) {
                    debug!(peer = %client, error = %e, "udp send failed");
                }
            }
            self.engine.flush_log(&mut scratch);
        }
    }

    /// Answers one datagram: `true` when `out` holds the answer to send back now. A
    /// cache miss is answered by a task of its own ([`forward`](Self::forward)), or with
    /// SERVFAIL at once when [`MAX_FORWARDS`] wait already.
    fn dispatch(&self, req: Request<'_>, scratch: &mut Scratch, out: &mut Vec<u8>) -> bool {
        match self.engine.answer_now(req, scratch, out) {
            Handled::Answer => true,
            Handled::Drop => false,
            Handled::Forward => match self.forwards.clone().try_acquire_owned() {
                Ok(permit) => {
                    self.forward(req, permit);
                    false
                }
                Err(_) => self.engine.answer_overloaded(req, scratch, out),
            },
        }
    }

    /// Answers a cache miss in a task of its own.
    fn forward(&self, req: Request<'_>, permit: OwnedSemaphorePermit) {
        let packet = req.packet.to_vec();
        let (client, received) = (req.client, req.received);
        let engine = self.engine.clone();
        let sock = self.sock.clone();
        self.tracker.spawn(async move {
            let _permit = permit;
            let mut scratch = Scratch::default();
            let mut out = Vec::new();
            let req = Request {
                packet: &packet,
                client,
                proto: Proto::Udp,
                received,
            };
            if engine.answer_forwarded(req, &mut scratch, &mut out).await {
                // A UDP send does not wait for the peer; at worst briefly for room in the
                // socket's send buffer.
                if let Err(e) = sock.send_to(&out, client) {
                    debug!(peer = %client, error = %e, "udp send failed");
                }
            }
        });
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}
