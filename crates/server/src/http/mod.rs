//! The HTTP listener: `/metrics`, `/healthz`, `/readyz` and the JSON API under
//! `/api/v1/`, on the server's own Tokio runtime (axum on hyper).
//!
//! It must never slow DNS down. It shares no lock with the query path: handlers read
//! atomics, the lock-free recent-queries ring, the policy through its `ArcSwap`, and the
//! statistics that only the statistics task and the handlers lock. A slow or hostile
//! client cannot take DNS capacity either:
//!
//! - at most [`MAX_CONNECTIONS`] connections at once (more are closed on accept);
//! - a request head must arrive within [`HEADER_TIMEOUT`] (also the keep-alive idle
//!   time) and fit in [`MAX_HEAD`] bytes; a body is at most [`MAX_BODY`] bytes;
//! - a request is answered within [`REQUEST_TIMEOUT`] (else 408), at most
//!   [`MAX_IN_FLIGHT`] at once, and a connection lives at most [`CONNECTION_LIFETIME`].
//!
//! When `[http] token_file` is set, every request but `/healthz` and `/readyz` needs
//! `Authorization: Bearer TOKEN` (compared in constant time), else 401. A listen address
//! that is not loopback needs a token file: the config does not load without one.
//!
//! # Adding routes
//!
//! Every route of the server crate is one line of the table in `http/routes.rs`; a handler is
//! an axum handler taking [`State<AppState>`](axum::extract::State), in a module of its
//! own under `http/` (as `api.rs` and `health.rs` are). Routes that need what only the
//! binary knows (the config file's path, say) are built there as an
//! [`axum::Router`] and handed to [`Http::merge`]; they get the same token check and
//! limits. [`AppState`] gives handlers the metrics, the policy in force and the
//! upstreams' health.

pub(crate) mod api;
pub mod changes;
pub(crate) mod dashboard;
pub(crate) mod health;
pub(crate) mod routes;

pub use changes::{config_routes, ConfigFile};

use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};
use winsink_policy::settings::HttpSettings;
use winsink_policy::Policy;

use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::ServerError;

/// Most HTTP connections open at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Time for a request head to arrive, and for an idle keep-alive connection to stay.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time to answer one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest life of one connection.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Largest request head, bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body, bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// Requests handled at once.
pub const MAX_IN_FLIGHT: usize = 8;

/// The `[http]` settings as the listener uses them: addresses, and the token read from
/// `token_file`.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Addresses to listen on (empty: no listener).
    pub listen: Vec<SocketAddr>,
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl HttpConfig {
    /// Takes `[http]`, with `listen` replacing its addresses when given (`--http`), and
    /// reads the token file. A non-loopback address without a token file is an error.
    pub fn from_settings(
        s: &HttpSettings,
        listen: Option<&[SocketAddr]>,
    ) -> Result<Self, ServerError> {
        let listen = listen.unwrap_or(&s.listen).to_vec();
        if let Some(addr) = s.unprotected_address(&listen) {
            return Err(ServerError::HttpUnprotected { addr });
        }
        let token = match &s.token_file {
            None => None,
            Some(path) => Some(read_token(path)?),
        };
        Ok(Self { listen, token })
    }

    /// Whether requests must carry a bearer token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// A config with `token` given directly (tests and embedders).
    pub fn with_token(listen: Vec<SocketAddr>, token: Option<&str>) -> Self {
        Self {
            listen,
            token: token.map(Into::into),
        }
    }
}

fn read_token(path: &PathBuf) -> Result<Arc<str>, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|source| ServerError::HttpToken {
        path: path.clone(),
        reason: source.to_string(),
    })?;
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(ServerError::HttpToken {
            path: path.clone(),
            reason: "the file must hold one token: one line without spaces".into(),
        });
    }
    Ok(token.into())
}

/// Bound HTTP sockets; hand them to [`Http::serve`].
#[derive(Debug)]
pub struct HttpListeners {
    listeners: Vec<StdTcpListener>,
}

impl HttpListeners {
    /// The addresses actually bound (the real port when port 0 was asked for); `run`
    /// logs each as `http: serving /metrics, /healthz, /readyz and /api/v1/ on ADDR`.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }
}

/// Binds every address of `addrs` (a failure names the address).
pub fn bind_http(addrs: &[SocketAddr]) -> Result<HttpListeners, ServerError> {
    let listeners = addrs
        .iter()
        .map(|&addr| {
            let err = |source| ServerError::Bind {
                proto: "http",
                addr,
                source,
            };
            let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
                .map_err(err)?;
            if addr.is_ipv6() {
                s.set_only_v6(true).map_err(err)?;
            }
            s.set_reuse_address(true).map_err(err)?;
            s.bind(&addr.into()).map_err(err)?;
            s.listen(128).map_err(err)?;
            s.set_nonblocking(true).map_err(err)?;
            Ok(s.into())
        })
        .collect::<Result<_, ServerError>>()?;
    Ok(HttpListeners { listeners })
}

/// What handlers can read. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Shared>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) engine: Arc<Engine>,
    /// The DoT/DoH certificate in force, when there are such listeners.
    pub(crate) cert: Option<crate::tls::CertSlot>,
}

impl AppState {
    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.inner.engine.policy.load_full()
    }

    /// The handle reloads store new policies into.
    pub fn policy_handle(&self) -> Arc<ArcSwap<Policy>> {
        self.inner.engine.policy.clone()
    }
}

/// The HTTP service of one server: its routes, the token check and the limits.
pub struct Http {
    state: AppState,
    router: Router,
    token: Option<Arc<str>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http").finish_non_exhaustive()
    }
}

impl Http {
    pub(crate) fn new(state: AppState, config: &HttpConfig) -> Self {
        let router = routes::routes().with_state(state.clone());
        Self {
            state,
            router,
            token: config.token.clone(),
        }
    }

    /// The state handlers see, for routes built outside this crate.
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Adds routes built elsewhere (see the module docs).
    #[must_use]
    pub fn merge(mut self, routes: Router) -> Self {
        self.router = self.router.merge(routes);
        self
    }

    /// The complete service: routes, token check, limits.
    fn app(self) -> Router {
        use tower_http::limit::RequestBodyLimitLayer;
        use tower_http::timeout::TimeoutLayer;
        let token = self.token;
        self.router
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let token = token.clone();
                    async move { authorize(token.as_deref(), req, next).await }
                },
            ))
            .layer(tower::limit::ConcurrencyLimitLayer::new(MAX_IN_FLIGHT))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIMEOUT,
            ))
            .layer(RequestBodyLimitLayer::new(MAX_BODY))
    }

    /// Serves `listeners` until `shutdown`, and runs the statistics task meanwhile.
    pub async fn serve(self, listeners: HttpListeners, shutdown: CancellationToken) {
        let metrics = self.state.inner.metrics.clone();
        let stats = tokio::spawn(crate::metrics::stats::Stats::run(
            metrics.clone(),
            shutdown.clone(),
        ));
        let buckets = tokio::spawn(dashboard::Buckets::run(metrics, shutdown.clone()));
        let app = self.app();
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let tracker = TaskTracker::new();
        let mut loops = tokio::task::JoinSet::new();
        for l in listeners.listeners {
            let listener = match TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => {
                    warn!(error = %e, "cannot register an HTTP socket; it is not served");
                    continue;
                }
            };
            loops.spawn(accept_loop(
                listener,
                app.clone(),
                limit.clone(),
                tracker.clone(),
                shutdown.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}
        tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
        let _ = stats.await;
        let _ = buckets.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            debug!(%peer, "http connection limit reached; closing the new connection");
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
            tokio::pin!(lifetime);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "http connection ended");
                    }
                    return;
                }
                () = shutdown.cancelled() => {}
                () = &mut lifetime => {}
            }
            // Let the request in progress finish, briefly.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        });
    }
}

/// Paths that need no token: probes must work without a secret.
const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

async fn authorize(token: Option<&str>, req: Request, next: Next) -> Response {
    let Some(token) = token else {
        return next.run(req).await;
    };
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if given.is_some_and(|g| token_matches(g, token)) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"winsink\"")],
        axum::Json(serde_json::json!({"error": "a bearer token is required (Authorization: Bearer TOKEN)"})),
    )
        .into_response()
}

/// Compares in time that does not depend on where the two differ.
fn token_matches(given: &str, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

/// A JSON error body with `status`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("s3cret!", "s3cret"));
        assert!(!token_matches("", "s3cret"));
    }

    #[test]
    fn a_token_file_must_hold_one_token() {
        let dir = std::env::temp_dir().join(format!("winsink-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("ok");
        std::fs::write(&ok, "abc123\n").unwrap();
        assert_eq!(&*read_token(&ok).unwrap(), "abc123");
        let bad = dir.join("bad");
        std::fs::write(&bad, "  \n").unwrap();
        let e = read_token(&bad).unwrap_err().to_string();
        assert!(e.contains("one token"), "{e}");
        let e = read_token(&dir.join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_non_loopback_listener_needs_a_token_file() {
        let s = HttpSettings::default();
        let open: Vec<SocketAddr> = vec!["0.0.0.0:8053".parse().unwrap()];
        let e = HttpConfig::from_settings(&s, Some(&open))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("0.0.0.0:8053") && e.contains("token_file"),
            "{e}"
        );
        let lo: Vec<SocketAddr> = vec!["[::1]:8053".parse().unwrap()];
        assert!(HttpConfig::from_settings(&s, Some(&lo)).is_ok());
    }
}
