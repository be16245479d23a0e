//! `/healthz`, `/readyz` and `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::metrics::encode::{Gauges, Snapshot, CONTENT_TYPE};

/// `GET /healthz`: 200 while the process runs.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: 200 when the DNS sockets are served, a policy is in force and some
/// upstream answered its last query (or none is configured); else 503 with the
/// reasons.
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    let r = crate::readiness(&s.inner.engine, &s.inner.metrics);
    let body = json!({
        "ready": r.reasons.is_empty(),
        "sockets": r.serving,
        "policy": true,
        "upstreams": r.upstreams,
        "reasons": r.reasons,
    });
    let status = if r.reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    let sh = &s.inner;
    let policy = sh.engine.policy.load_full();
    let gauges = Gauges {
        cache_entries: sh.engine.cache.entries() as u64,
        tcp_connections: sh.engine.tcp.get().map_or(0, |c| c.open()) as u64,
        tcp_refused: sh.engine.tcp.get().map_or(0, |c| c.refused()),
        querylog_dropped: sh.engine.log_dropped(),
        upstream_up: crate::upstream_up(&sh.engine),
        cert_not_after: sh.cert.as_ref().and_then(|c| c.load().not_after()),
    };
    let text = Snapshot::take(&sh.metrics, &policy, gauges).text();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
