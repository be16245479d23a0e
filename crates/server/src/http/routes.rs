//! The route table: every path the server crate serves, one line each.
//!
//! To add a route, add its line here and its handler in a module of its own under
//! `http/` (declared in `http/mod.rs`); routes that need the binary's knowledge go
//! through [`Http::merge`](super::Http::merge) instead.

use axum::routing::get;
use axum::Router;

use super::{api, dashboard, health, AppState};

/// Every route.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/assets/{name}", get(dashboard::asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/summary", get(api::summary))
        .route("/api/v1/queries", get(api::queries))
        .route("/api/v1/top", get(api::top))
        .route("/api/v1/explain", get(api::explain))
        .route("/api/v1/uncatalogued", get(api::uncatalogued))
        .route("/api/v1/timeseries", get(dashboard::timeseries))
}
