//! DNS over HTTPS (RFC 8484) for clients: `/dns-query`, GET (`?dns=` base64url) and POST
//! (`application/dns-message`), over HTTP/2 and HTTP/1.1, on hyper with tokio-rustls.
//!
//! # Why not hickory-server's HTTPS listener
//!
//! hickory-server 0.26.3's `register_https_listener` serves HTTP/2 only: its TLS
//! configuration offers the ALPN protocol `h2` alone and every connection goes straight
//! into an HTTP/2 handshake, and its request reader (hickory-net's `h2::message_from`)
//! refuses a request that is not HTTP/2 ("only HTTP/2 supported") and every GET
//! ("GET unimplemented"). RFC 8484 clients may use GET (it is the cache-friendly form,
//! and `kdig +https-get`, `curl` and browsers' DoH use it), and HTTP/1.1 clients exist.
//! So this listener is hyper's (already the metrics listener's HTTP stack), which
//! speaks both versions on one port (chosen by ALPN, `h2` then `http/1.1`), with the
//! same rustls provider (`ring`) and the same [`CertResolver`] as the DoT listener, so a
//! new certificate reaches both at once. DoT stays on hickory-server.
//!
//! Connections count toward `[server] tcp_max_connections` and
//! `tcp_max_connections_per_client` with TCP's (one registry: at the limit the longest idle
//! one, TCP or DoH, is closed to make room), and are closed after `tcp_idle_timeout_secs`
//! without a request head (HTTP/1.1) or an answered ping (HTTP/2).
//!
//! Each request's DNS message goes through the same [`Engine`] as UDP, TCP and DoT;
//! the answer's bytes are the HTTP body as the engine wrote them (no re-encoding).
//! HTTP status codes say only what is wrong with the HTTP request (RFC 8484 §4.2.1):
//! 404 for another path, 405 for another method, 415 for another content type, 400
//! for a missing or undecodable `dns` parameter or a message with no DNS header, 413
//! for a body over 65,535 bytes. Every DNS outcome, SERVFAIL and REFUSED included, is a
//! 200 with the DNS answer.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::engine::{self, Engine, Handled, Proto, Received, Scratch};
use crate::tcp::Admitted;
use crate::tls::{CertResolver, CertSlot};

/// The path DoH is served on (RFC 8484's example, and what Windows and browsers use).
pub const DNS_QUERY_PATH: &str = "/dns-query";
/// The media type of a DNS message.
const DNS_MESSAGE: &str = "application/dns-message";
/// Largest DNS message, so the largest body accepted.
const MAX_MESSAGE: usize = 65_535;

/// What every DoH connection shares.
#[derive(Clone)]
pub(crate) struct Doh {
    pub(crate) engine: Arc<Engine>,
    /// Room for cache misses waiting for upstreams, shared with the other transports.
    pub(crate) forwards: Arc<Semaphore>,
    /// Time allowed for a handshake, a request head, and between HTTP/2 pings.
    pub(crate) idle: Duration,
}

/// The rustls configuration of the DoH listener: `h2` and `http/1.1`, the certificate
/// in `cert`.
fn tls_config(cert: CertSlot) -> io::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(CertResolver(cert)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts DoH connections on `listener` until `shutdown`.
pub(crate) async fn accept_loop(
    doh: Doh,
    listener: TcpListener,
    cert: CertSlot,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(cert)?));
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    warn!(error = %e, "https accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // The TCP limits hold for DoH connections too (one registry), so that neither
        // can take the descriptors the other, or cache misses, need.
        let admitted = match doh.engine.tcp.get().map(|c| c.admit_stream(peer.ip())) {
            Some(Some(a)) => Some(a),
            Some(None) => {
                debug!(%peer, "https connection not admitted; closing it");
                continue;
            }
            None => None,
        };
        let (doh, acceptor, shutdown) = (doh.clone(), acceptor.clone(), shutdown.clone());
        tracker.spawn(async move {
            let _ = stream.set_nodelay(true);
            let tls = match tokio::time::timeout(doh.idle, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "https: handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "https: handshake timed out");
                    return;
                }
            };
            doh.serve(tls, peer, admitted.map(Arc::new), shutdown).await;
        });
    }
}

impl Doh {
    /// Serves one connection's requests until the client closes it or shutdown (the
    /// requests in progress then get a second to finish).
    async fn serve(
        self,
        tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        peer: SocketAddr,
        admitted: Option<Arc<Admitted>>,
        shutdown: CancellationToken,
    ) {
        let idle = self.idle;
        let evicted = admitted
            .as_ref()
            .map_or_else(CancellationToken::new, |a| a.evicted().clone());
        let service = hyper::service::service_fn(move |req| {
            let (doh, admitted) = (self.clone(), admitted.clone());
            async move {
                let _busy = admitted.as_ref().map(|a| a.busy());
                Ok::<_, Infallible>(doh.answer(req, peer).await)
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(idle);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(idle))
            .keep_alive_timeout(idle);
        let conn = builder.serve_connection(TokioIo::new(tls), service);
        let mut conn = std::pin::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(%peer, error = %e, "https connection ended");
                }
                return;
            }
            () = shutdown.cancelled() => {}
            () = evicted.cancelled() => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
    }

    /// One HTTP request: its DNS message, answered by the engine.
    async fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let received = Received::now();
        let (head, body) = req.into_parts();
        // The body is read (up to MAX_MESSAGE) before any answer, an error's too: an
        // HTTP/2 stream answered and closed while its client is still sending the body
        // fails at the client as a framing error (curl: "(92) Stream error in the HTTP/2
        // framing layer") instead of showing the status.
        let body = Limited::new(body, MAX_MESSAGE).collect().await;
        let packet = match request_packet(&head, body) {
            Ok(p) => p,
            Err(code) => return status(code),
        };
        let req = engine::Request {
            packet: &packet,
            client: peer,
            proto: Proto::Https,
            received,
        };
        let mut s = Scratch::default();
        let mut out = Vec::with_capacity(512);
        let answered = match self.engine.answer_now(req, &mut s, &mut out) {
            Handled::Answer => true,
            Handled::Drop => false,
            Handled::Forward => match self.forwards.try_acquire() {
                Ok(_permit) => self.engine.answer_forwarded(req, &mut s, &mut out).await,
                Err(_) => self.engine.answer_overloaded(req, &mut s, &mut out),
            },
        };
        if !answered {
            // No DNS header, or a response rather than a query.
            return status(StatusCode::BAD_REQUEST);
        }
        self.engine.flush_log(&mut s);
        let mut r = Response::new(Full::new(Bytes::from(out)));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(DNS_MESSAGE));
        r
    }
}

/// The DNS message of a request, or the HTTP error that answers it: 404 for another
/// path, 405 for another method, 415 for a POST of another content type, 413 for a body
/// over [`MAX_MESSAGE`], 400 for a GET without a valid `dns` parameter or a body that
/// broke off.
fn request_packet(
    head: &hyper::http::request::Parts,
    body: Result<http_body_util::Collected<Bytes>, Box<dyn std::error::Error + Send + Sync>>,
) -> Result<Vec<u8>, StatusCode> {
    if head.uri.path() != DNS_QUERY_PATH {
        return Err(StatusCode::NOT_FOUND);
    }
    match head.method {
        Method::GET => dns_parameter(head.uri.query()).ok_or(StatusCode::BAD_REQUEST),
        Method::POST => {
            let media = head
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            if media.map(|m| m.split(';').next().unwrap_or("").trim()) != Some(DNS_MESSAGE) {
                return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            }
            match body {
                Ok(body) => Ok(body.to_bytes().to_vec()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    Err(StatusCode::PAYLOAD_TOO_LARGE)
                }
                Err(_) => Err(StatusCode::BAD_REQUEST),
            }
        }
        _ => Err(StatusCode::METHOD_NOT_ALLOWED),
    }
}

/// The DNS message of a GET's `dns` parameter (base64url, RFC 4648 §5, padding
/// optional).
fn dns_parameter(query: Option<&str>) -> Option<Vec<u8>> {
    let value = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("dns="))?;
    let value = value.trim_end_matches('=');
    let packet = data_encoding::BASE64URL_NOPAD
        .decode(value.as_bytes())
        .ok()?;
    (packet.len() <= MAX_MESSAGE).then_some(packet)
}

/// An empty answer with `code`; a 405 says which methods are allowed.
fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    if code == StatusCode::METHOD_NOT_ALLOWED {
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dns_parameter_is_base64url_with_or_without_padding() {
        // RFC 8484 §4.1.1's example: www.example.com A, id 0.
        let q = "dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
        let packet = dns_parameter(Some(q)).unwrap();
        assert_eq!(packet.len(), 33);
        assert_eq!(&packet[13..16], b"www");
        assert_eq!(dns_parameter(Some(&format!("ct=x&{q}=="))), Some(packet));
        assert_eq!(dns_parameter(Some("dns=not*base64")), None);
        assert_eq!(dns_parameter(Some("name=x")), None);
        assert_eq!(dns_parameter(None), None);
    }
}
