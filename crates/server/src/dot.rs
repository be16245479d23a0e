//! DNS over TLS (RFC 7858) for clients: hickory-server's TLS listener, with a request
//! handler that hands each message to the [`Engine`] as UDP and TCP do.
//!
//! hickory-server accepts the connections, runs the handshake (rustls, `ring`
//! provider, ALPN `dot`, the certificate from [`CertResolver`] at every handshake),
//! closes connections idle for `tcp_idle_timeout_secs`, reads the length-prefixed
//! messages and decodes each into its `Request`. The seam is the request's raw bytes
//! ([`Request::as_slice`]): [`DotHandler`] gives them to the same
//! [`Engine::answer_now`] / [`Engine::answer_forwarded`] the other transports use
//! (`allow_clients`, the rate limit, the policy, the sinkhole answer, the cache, the
//! query-log line with `"proto":"tls"`, the metrics), and the engine writes its answer
//! as bytes. hickory's `ResponseHandler` takes only a `MessageResponse` built from
//! records, so those bytes are decoded once more into a hickory `Message` and
//! re-encoded on the way out: the records, flags, RCODE and OPT record (with its
//! Extended DNS Error) are the engine's, the name compression hickory's.
//!
//! hickory-server awaits each message's handler before it reads the connection's next
//! one. A cache miss therefore runs in a task of its own (at most [`MAX_FORWARDS`]
//! across the server, as on UDP) and the handler returns at once, so that queries
//! pipelined behind a slow miss are answered without waiting for it.
//!
//! [`MAX_FORWARDS`]: crate::listen::MAX_FORWARDS

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::runtime::Time;
use hickory_proto::op::{Header, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, DecodeError};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::engine::{self, Engine, Handled, Proto, Received, Scratch};
use crate::tls::{CertResolver, CertSlot};

/// The request handler of the DoT listener.
pub(crate) struct DotHandler {
    pub(crate) engine: Arc<Engine>,
    /// Room for cache misses waiting for upstreams, shared with UDP and TCP.
    pub(crate) forwards: Arc<Semaphore>,
    /// Where cache-miss tasks run, so that shutdown waits for them.
    pub(crate) tracker: TaskTracker,
}

/// Serves DoT on `listener` with hickory-server until `shutdown`.
pub(crate) async fn serve(
    handler: DotHandler,
    listener: tokio::net::TcpListener,
    cert: CertSlot,
    idle: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> io::Result<()> {
    let mut server = hickory_server::Server::new(handler);
    server.register_tls_listener(listener, idle, Arc::new(CertResolver(cert)))?;
    shutdown.cancelled().await;
    server
        .shutdown_gracefully()
        .await
        .map_err(|e| io::Error::other(e.to_string()))
}

#[async_trait::async_trait]
impl RequestHandler for DotHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let client = request.src();
        let received = Received::now();
        let req = engine::Request {
            packet: request.as_slice(),
            client,
            proto: Proto::Tls,
            received,
        };
        let mut s = Scratch::default();
        let mut out = Vec::with_capacity(512);
        match self.engine.answer_now(req, &mut s, &mut out) {
            Handled::Answer => {
                self.engine.flush_log(&mut s);
                send(response, &out, client).await
            }
            Handled::Drop => nothing_sent(request),
            Handled::Forward => {
                let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
                    if self.engine.answer_overloaded(req, &mut s, &mut out) {
                        self.engine.flush_log(&mut s);
                        return send(response, &out, client).await;
                    }
                    return nothing_sent(request);
                };
                let engine = self.engine.clone();
                let packet = request.as_slice().to_vec();
                self.tracker.spawn(async move {
                    let mut s = Scratch::default();
                    let mut out = Vec::new();
                    let req = engine::Request {
                        packet: &packet,
                        client,
                        proto: Proto::Tls,
                        received,
                    };
                    if engine.answer_forwarded(req, &mut s, &mut out).await {
                        engine.flush_log(&mut s);
                        send(response, &out, client).await;
                    }
                    drop(permit);
                });
                // hickory-server does nothing with what a handler returns.
                nothing_sent(request)
            }
        }
    }
}

/// Sends the engine's answer `out` through hickory's response handle.
async fn send<R: ResponseHandler>(mut response: R, out: &[u8], client: SocketAddr) -> ResponseInfo {
    let (header, queries, message) = match decode(out) {
        Ok(parts) => parts,
        Err(e) => {
            // The engine wrote it: this would be a bug in one of the two codecs.
            debug!(%client, error = %e, "dot: the engine's answer does not decode; not sent");
            return ResponseInfo::from(header_of(0));
        }
    };
    let builder = MessageResponseBuilder::new(&queries, message.edns.as_ref());
    let answer = builder.build(
        message.metadata,
        message.answers.iter(),
        message.authorities.iter(),
        std::iter::empty(),
        message.additionals.iter(),
    );
    match response.send_response(answer).await {
        Ok(info) => info,
        Err(e) => {
            debug!(%client, error = %e, "dot: answer not sent");
            ResponseInfo::from(header)
        }
    }
}

/// The answer's header, question section (as written: the client's letter case) and
/// records.
fn decode(out: &[u8]) -> Result<(Header, Queries, Message), DecodeError> {
    let mut decoder = BinDecoder::new(out);
    let header = Header::read(&mut decoder)?;
    let queries = Queries::read(&mut decoder, usize::from(header.counts.queries))?;
    let message = Message::from_vec(out)?;
    Ok((header, queries, message))
}

fn header_of(id: u16) -> Header {
    let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::NoError;
    Header {
        metadata,
        counts: Default::default(),
    }
}

/// What the handler returns when nothing was sent (yet): hickory-server ignores it.
fn nothing_sent(request: &Request) -> ResponseInfo {
    ResponseInfo::from(header_of(request.metadata.id))
}
