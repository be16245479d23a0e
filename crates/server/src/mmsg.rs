//! Batched UDP I/O on Linux: `recvmmsg` and `sendmmsg`.
//!
//! One `recvmmsg(MSG_WAITFORONE)` blocks for the first datagram and takes every other
//! one already queued; their answers then leave in one `sendmmsg`. Besides halving the
//! system calls, sending a batch back to back means a client that waits on its socket is
//! woken once per batch rather than once per answer, and waking another thread (an
//! inter-processor interrupt, costly in a VM) is the largest single cost of a UDP answer.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams taken per call.
pub(crate) const BATCH: usize = 32;
/// Room per datagram. A query is far smaller; a longer one arrives cut and gets FORMERR.
const SLOT: usize = 4096;

/// Wakes a thread blocked receiving on `fd` for good: `shutdown(SHUT_RD)` marks the
/// socket closed for reading (for an unconnected UDP socket Linux reports ENOTCONN but
/// still sets the flag and wakes the waiters), and every later receive returns 0 at once.
pub(crate) fn wake(fd: RawFd) {
    // SAFETY: shutdown on a file descriptor has no memory-safety preconditions.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RD);
    }
}

/// The C structures behind a batch, one of each per datagram: its address, its one
/// buffer (`iovec`) and its header.
struct Headers {
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Headers {
    fn new() -> Self {
        // SAFETY: all-zero is a valid value of these plain C structs.
        let (addr, iov, hdr) = unsafe {
            (
                zeroed::<libc::sockaddr_storage>(),
                zeroed::<libc::iovec>(),
                zeroed::<libc::mmsghdr>(),
            )
        };
        Self {
            addrs: vec![addr; BATCH],
            iovs: vec![iov; BATCH],
            hdrs: vec![hdr; BATCH],
        }
    }

    /// Points header `i` at `len` bytes from `base` and at address `i`, of which the
    /// first `namelen` bytes count. The pointers are rebuilt before every call, so that
    /// moving a batch can never leave one dangling.
    fn set(&mut self, i: usize, base: *mut u8, len: usize, namelen: libc::socklen_t) {
        self.iovs[i] = libc::iovec {
            iov_base: base.cast(),
            iov_len: len,
        };
        // SAFETY: all-zero is a valid msghdr.
        let mut h: libc::msghdr = unsafe { zeroed() };
        h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = namelen;
        h.msg_iov = &mut self.iovs[i];
        h.msg_iovlen = 1;
        self.hdrs[i] = libc::mmsghdr {
            msg_hdr: h,
            msg_len: 0,
        };
    }
}

/// Receive buffers for one socket.
pub(crate) struct RecvBatch {
    bufs: Vec<u8>,
    h: Headers,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self {
            bufs: vec![0; BATCH * SLOT],
            h: Headers::new(),
        }
    }

    /// Blocks until at least one datagram is there (or the socket's receive timeout
    /// passes) and takes up to [`BATCH`]. Returns how many.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for (i, slot) in self.bufs.chunks_exact_mut(SLOT).enumerate() {
            let room = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            self.h.set(i, slot.as_mut_ptr(), SLOT, room);
        }
        // SAFETY: every header points into buffers owned by `self`, alive for the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.h.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last [`recv`](Self::recv) and its sender (`None` for an
    /// address family other than IP).
    pub(crate) fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let len = (self.h.hdrs[i].msg_len as usize).min(SLOT);
        let data = &self.bufs[i * SLOT..i * SLOT + len];
        (data, from_storage(&self.h.addrs[i]))
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in, which fits in the storage.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is suitably aligned.
            let a: &mut libc::sockaddr_in =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast() };
            a.sin_family = libc::AF_INET as libc::sa_family_t;
            a.sin_port = v4.port().to_be();
            a.sin_addr = libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &mut libc::sockaddr_in6 =
                unsafe { &mut *(s as *mut libc::sockaddr_storage).cast() };
            a.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            a.sin6_port = v6.port().to_be();
            a.sin6_flowinfo = v6.flowinfo().to_be();
            a.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            a.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Send buffers for one socket.
pub(crate) struct SendBatch {
    h: Headers,
}

impl SendBatch {
    pub(crate) fn new() -> Self {
        Self { h: Headers::new() }
    }

    /// Sends `msgs[i]` to `dests[i]` for every i (at most [`BATCH`]). A datagram the
    /// kernel refuses is skipped (and returned as the error of the last one refused).
    pub(crate) fn send(
        &mut self,
        fd: RawFd,
        msgs: &[Vec<u8>],
        dests: &[SocketAddr],
    ) -> io::Result<()> {
        let n = msgs.len().min(dests.len()).min(BATCH);
        for i in 0..n {
            let namelen = to_storage(dests[i], &mut self.h.addrs[i]);
            // The kernel only reads through this pointer.
            self.h
                .set(i, msgs[i].as_ptr().cast_mut(), msgs[i].len(), namelen);
        }
        let mut done = 0;
        let mut last_err = None;
        while done < n {
            // SAFETY: headers done..n point at `msgs` and `self`, alive for the call; the
            // kernel only reads the message bytes.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    self.h.hdrs.as_mut_ptr().add(done),
                    (n - done) as libc::c_uint,
                    0,
                )
            };
            if sent < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // sendmmsg reports an error only when the first datagram fails: skip it.
                last_err = Some(e);
                done += 1;
            } else {
                done += sent as usize;
            }
        }
        last_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_batch_goes_in_and_out() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for i in 0..3u8 {
            client
                .send_to(&[i; 7], server.local_addr().unwrap())
                .unwrap();
        }
        let mut rb = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = rb.recv(server.as_raw_fd()).unwrap();
            for i in 0..n {
                let (data, from) = rb.get(i);
                assert_eq!(from, Some(client.local_addr().unwrap()));
                got.push(data.to_vec());
            }
        }
        assert_eq!(got, vec![vec![0; 7], vec![1; 7], vec![2; 7]]);
        let mut sb = SendBatch::new();
        let dest = client.local_addr().unwrap();
        sb.send(server.as_raw_fd(), &got, &[dest, dest, dest])
            .unwrap();
        let mut buf = [0u8; 16];
        for i in 0..3u8 {
            let (len, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[i; 7]);
        }
    }

    #[test]
    fn a_datagram_the_kernel_refuses_is_skipped_and_the_rest_are_sent() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let dest = client.local_addr().unwrap();
        // Larger than any UDP datagram: EMSGSIZE. First (sendmmsg itself fails) and in
        // the middle (sendmmsg stops short before it).
        let huge = vec![0u8; 70_000];
        let msgs = vec![huge.clone(), vec![1; 5], huge, vec![2; 5]];
        let err = SendBatch::new()
            .send(server.as_raw_fd(), &msgs, &[dest; 4])
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err}");
        let mut buf = [0u8; 16];
        for i in 1..=2u8 {
            let (len, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[i; 5]);
        }
    }

    #[test]
    fn ipv6_addresses_round_trip() {
        let addr: SocketAddr = "[2001:db8::1]:5353".parse().unwrap();
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut s: libc::sockaddr_storage = unsafe { zeroed() };
        to_storage(addr, &mut s);
        assert_eq!(from_storage(&s), Some(addr));
    }
}

#[cfg(test)]
mod wake_tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn shutdown_wakes_a_blocked_receiver() {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let s = sock.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut rb = RecvBatch::new();
            let _ = tx.send(rb.recv(s.as_raw_fd()));
        });
        std::thread::sleep(Duration::from_millis(100));
        wake(sock.as_raw_fd());
        // It returns (an empty datagram, or none) instead of blocking for ever; a
        // receiver still blocked fails the test rather than hanging it.
        let r = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the receiver is still blocked after wake");
        assert!(r.is_ok(), "{r:?}");
    }
}
