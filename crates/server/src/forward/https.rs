//! DNS over HTTPS (RFC 8484) upstreams, over HTTP/2.
//!
//! hickory-net's [`HttpsClientStream`] sends each query as a POST of
//! `application/dns-message` on a stream of its own, so one connection carries as many
//! queries at once as the server's `SETTINGS_MAX_CONCURRENT_STREAMS` allows; the
//! forwarder keeps the connection until it fails. The certificate is checked as for DoT
//! ([`super::tls::Dialer`], with ALPN `h2`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::h2::HttpsClientStream;
use hickory_net::runtime::TokioRuntimeProvider;

use super::tls::Dialer;
use super::{net_failure, Exchange, Failure};

/// The ALPN protocol DoH speaks (RFC 8484 §5.2: HTTP/2 at least).
pub(super) const ALPN: &[u8] = b"h2";

/// A new DoH connection to `addr`, for `path` (`/dns-query`).
pub(super) async fn connect(
    addr: SocketAddr,
    dialer: &Dialer,
    path: &Arc<str>,
    timeout: Duration,
    provider: TokioRuntimeProvider,
) -> Result<Exchange, Failure> {
    let mut builder = HttpsClientStream::builder(dialer.config.clone(), provider);
    builder.request_timeout(timeout);
    builder
        .exchange(addr, dialer.name_text.clone(), path.clone())
        .await
        .map_err(|e| net_failure("https", &e))
}
