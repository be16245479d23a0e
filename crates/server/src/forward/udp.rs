//! One query to a UDP upstream: winsink's own exchange.
//!
//! hickory's UDP client ends an exchange on the first reply whose id matches, however
//! malformed, and logs a WARN for every reply it skips; an ICMP port unreachable is
//! noticed only when its timer runs out. Here, as RFC 5452 asks of a resolver:
//!
//! - each send goes from a fresh socket (a fresh random port) *connected* to the
//!   upstream, so the kernel drops datagrams from anyone else, and reports the
//!   upstream's ICMP port unreachable as `ECONNREFUSED` on the next receive: that ends
//!   the exchange at once ([`Failure::ConnectionRefused`]), and the forwarder moves on;
//! - a reply with another id, for another question, or malformed is discarded (counted
//!   by the caller) and the exchange keeps waiting for a good one until its deadline;
//! - while no good reply came, the query is sent again every [`RESEND_EVERY`] from a new
//!   socket, up to [`UDP_ATTEMPTS`](super::UDP_ATTEMPTS) sockets, all of them listened on
//!   until the deadline.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use futures_util::future::select_all;
use tokio::io::{Interest, Ready};
use tokio::net::UdpSocket;
use tokio::time::{sleep_until, Instant};

use super::health::Failure;
use super::UDP_ATTEMPTS;

/// How long a send waits for a good reply before the query is sent again.
pub(crate) const RESEND_EVERY: Duration = Duration::from_millis(333);

/// Largest UDP reply read.
const MAX_REPLY: usize = 65_535;

/// What the caller made of a reply whose id matched.
pub(crate) enum Verdict<T> {
    /// The answer: the exchange is over.
    Accept(T),
    /// Not usable (malformed, or for another question): keep waiting. The text says why.
    Discard(String),
}

async fn socket_to(addr: SocketAddr) -> io::Result<UdpSocket> {
    let any: IpAddr = if addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let s = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    s.connect(addr).await?;
    Ok(s)
}

fn network(what: &str, e: &io::Error) -> Failure {
    if e.kind() == io::ErrorKind::ConnectionRefused {
        Failure::ConnectionRefused
    } else {
        Failure::Network(format!("{what}: {e}"))
    }
}

/// Sends `query` (whose id is `id`) to `addr` and waits until `deadline` for a reply that
/// `check` accepts; `discarded` hears of every reply that is not.
///
/// One loop over one state (the sockets sent on, the resend time, the last discarded
/// reply), kept whole: each step reads and moves that state, so named steps would pass
/// all of it back and forth.
#[allow(clippy::too_many_lines)]
pub(crate) async fn exchange<T>(
    addr: SocketAddr,
    query: &[u8],
    id: u16,
    deadline: Instant,
    mut check: impl FnMut(Vec<u8>) -> Verdict<T>,
    mut discarded: impl FnMut(&str),
) -> Result<T, Failure> {
    let started = Instant::now();
    let mut sockets: Vec<UdpSocket> = Vec::with_capacity(usize::from(UDP_ATTEMPTS));
    let mut buf = vec![0u8; MAX_REPLY];
    let mut last_discard: Option<String> = None;
    let mut next_send = started;
    loop {
        if sockets.len() < usize::from(UDP_ATTEMPTS) && Instant::now() >= next_send {
            let s = socket_to(addr)
                .await
                .map_err(|e| network("cannot open a socket", &e))?;
            s.send(query).await.map_err(|e| network("send", &e))?;
            sockets.push(s);
            next_send = Instant::now() + RESEND_EVERY;
        }
        let resend = sockets.len() < usize::from(UDP_ATTEMPTS);
        enum Event {
            Ready(usize, io::Result<Ready>),
            Resend,
            Deadline,
        }
        let event = {
            // Readable or in error: a connected UDP socket's ICMP port unreachable is
            // only an error condition (EPOLLERR), never readable.
            let ready = select_all(
                sockets
                    .iter()
                    .map(|s| Box::pin(s.ready(Interest::READABLE | Interest::ERROR))),
            );
            tokio::select! {
                biased;
                (r, k, _) = ready => Event::Ready(k, r),
                () = sleep_until(next_send), if resend => Event::Resend,
                () = sleep_until(deadline) => Event::Deadline,
            }
        };
        let received = match event {
            Event::Resend => continue,
            Event::Deadline => {
                return Err(match last_discard {
                    Some(why) => Failure::Unusable(format!(
                        "no usable reply in {} ms, only discarded ones (the last: {why})",
                        started.elapsed().as_millis()
                    )),
                    None => Failure::Timeout(deadline.saturating_duration_since(started)),
                })
            }
            Event::Ready(_, Err(e)) => Err(e),
            Event::Ready(k, Ok(r)) => {
                let s = &sockets[k];
                match s.take_error() {
                    Ok(Some(e)) => Err(e),
                    Err(e) => Err(e),
                    Ok(None) if r.is_readable() => match s.try_recv(&mut buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        other => other,
                    },
                    Ok(None) => {
                        // A spurious error wake-up: clear it, or it would wake again.
                        let _ = s.try_io(Interest::ERROR, || {
                            Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
                        });
                        continue;
                    }
                }
            }
        };
        match received {
            Err(e) => return Err(network("receive", &e)),
            Ok(len) => {
                let bytes = &buf[..len];
                let why = if bytes.get(0..2) != Some(&id.to_be_bytes()[..]) {
                    "a reply with another id".to_owned()
                } else {
                    match check(bytes.to_vec()) {
                        Verdict::Accept(t) => return Ok(t),
                        Verdict::Discard(why) => why,
                    }
                };
                discarded(&why);
                last_discard = Some(why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept_all(b: Vec<u8>) -> Verdict<Vec<u8>> {
        Verdict::Accept(b)
    }

    #[tokio::test]
    async fn a_closed_port_fails_at_once_not_at_the_deadline() {
        // A port nobody listens on: the kernel answers ICMP port unreachable.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let deadline = Instant::now() + Duration::from_secs(30);
        let r = exchange(addr, b"\x12\x34query", 0x1234, deadline, accept_all, |_| {}).await;
        assert_eq!(r.unwrap_err(), Failure::ConnectionRefused);
        assert!(Instant::now() < deadline - Duration::from_secs(25));
    }

    #[tokio::test]
    async fn discarded_replies_do_not_end_the_exchange() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = upstream.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (_, peer) = upstream.recv_from(&mut buf).await.unwrap();
            // Wrong id, right id but garbage, then the good one.
            for reply in [&b"\x99\x99good"[..], b"\x12\x34", b"\x12\x34good"] {
                upstream.send_to(reply, peer).await.unwrap();
            }
        });
        let mut told = Vec::new();
        let r = exchange(
            addr,
            b"\x12\x34query",
            0x1234,
            Instant::now() + Duration::from_secs(10),
            |b| {
                if b.len() > 2 {
                    Verdict::Accept(b)
                } else {
                    Verdict::Discard("too short".into())
                }
            },
            |why| told.push(why.to_owned()),
        )
        .await;
        assert_eq!(r.unwrap(), b"\x12\x34good");
        assert_eq!(told, ["a reply with another id", "too short"]);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn only_discarded_replies_until_the_deadline_say_so() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            while let Ok((_, peer)) = upstream.recv_from(&mut buf).await {
                let _ = upstream.send_to(b"\x12\x34", peer).await;
            }
        });
        let deadline = Instant::now() + Duration::from_millis(200);
        let r: Result<Vec<u8>, _> = exchange(
            addr,
            b"\x12\x34query",
            0x1234,
            deadline,
            |_| Verdict::Discard("3 garbage bytes".into()),
            |_| {},
        )
        .await;
        match r.unwrap_err() {
            Failure::Unusable(why) => assert!(why.contains("3 garbage bytes"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
