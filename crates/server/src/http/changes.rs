//! Changing an area's action from the dashboard, by editing the config file.
//!
//! `POST /api/v1/areas/{id}/action` with `{"action": "block"}` sets `[areas] id =
//! "block"` in the config file winsink was started with
//! ([`winsink_policy::edit::change_area_action`]: comments and layout kept, replaced
//! atomically); the running reload then loads it as it would an editor's save. The file
//! stays the single source of truth, and the change shows in `git diff`.
//! `GET /api/v1/config` says whether the page may change it, and if not why.
//!
//! Who may: a request that carried the bearer token (`[http] token_file`; the listener
//! checked it), or, without a token, a page opened at a loopback address when
//! `[http] allow_changes = true` (default false). Cross-site requests cannot: a change
//! needs the `X-Winsink-Change` header and a JSON body, which a page of another origin
//! can only send after a CORS preflight that winsink never grants; an `Origin` other
//! than the page's own, and a `Host` that is not a loopback address on a token-less
//! listener (DNS rebinding), are refused. The token is sent in a header by the page,
//! never kept in a cookie.

use std::path::PathBuf;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tracing::info;
use winsink_policy::{edit, Action, PolicyError};

use super::{error, AppState};

/// The header a change must carry (any value); the dashboard sends `area-action`.
pub const CHANGE_HEADER: &str = "x-winsink-change";

/// What the binary knows about its config file, for the change routes.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// The config file winsink was started with; `None` when it runs the built-in
    /// config (then there is nothing to change).
    pub path: Option<PathBuf>,
    /// Whether every request carries a checked bearer token (`[http] token_file`).
    pub token: bool,
    /// `[http] allow_changes`: a page opened at a loopback address may change areas
    /// without a token.
    pub allow_changes: bool,
}

#[derive(Clone)]
struct ChangeState {
    app: AppState,
    file: ConfigFile,
}

/// The routes `GET /api/v1/config` and `POST /api/v1/areas/{id}/action`, for
/// [`Http::merge`](super::Http::merge) (the binary knows the config file's path).
pub fn config_routes(app: AppState, file: ConfigFile) -> Router {
    Router::new()
        .route("/api/v1/config", get(config))
        .route("/api/v1/areas/{id}/action", post(set_action))
        .with_state(ChangeState { app, file })
}

/// How a change is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Token,
    Loopback,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Loopback => "loopback",
        }
    }
}

/// Whether `host` (a `Host` header) names a loopback address.
fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether this request may change the config, before looking at the file; the file.
fn may_change(s: &ChangeState, headers: &HeaderMap) -> Result<(Via, PathBuf), String> {
    let Some(path) = s.file.path.clone() else {
        return Err(
            "winsink runs its built-in config: there is no config file to change \
                    (start it with --config FILE)"
                .to_owned(),
        );
    };
    if s.file.token {
        return Ok((Via::Token, path));
    }
    if !s.file.allow_changes {
        return Err(
            "changes from this page are off: set [http] allow_changes = true \
                    (loopback listeners), or [http] token_file and use its token"
                .to_owned(),
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !loopback_host(host) {
        return Err(format!(
            "[http] allow_changes only works on a page opened at a loopback address \
             (127.0.0.1, [::1], localhost), not {host:?}"
        ));
    }
    Ok((Via::Loopback, path))
}

/// `GET /api/v1/config`: `{"path", "changes": {"allowed", "via", "reason"}}`.
async fn config(State(s): State<ChangeState>, headers: HeaderMap) -> Response {
    let allowed = match may_change(&s, &headers) {
        Ok((via, path)) => match tokio::task::spawn_blocking(move || edit::writable(&path)).await {
            Ok(Ok(())) => Ok(via),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Err(reason) => Err(reason),
    };
    let changes = match allowed {
        Ok(via) => json!({"allowed": true, "via": via.as_str(), "reason": null}),
        Err(reason) => json!({"allowed": false, "via": null, "reason": reason}),
    };
    let path = s.file.path.as_ref().map(|p| p.display().to_string());
    Json(json!({"path": path, "changes": changes})).into_response()
}

/// The body of a change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetAction {
    action: Action,
}

/// Refuses what a browser would only send for another site's page.
fn cross_site(headers: &HeaderMap) -> Option<String> {
    if !headers.contains_key(CHANGE_HEADER) {
        return Some(format!(
            "a change needs the {CHANGE_HEADER} header (the dashboard sends it)"
        ));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = host.is_some_and(|h| {
            origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h))
        });
        if !own {
            return Some(format!(
                "a change from origin {origin:?} is not this page's"
            ));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return Some(format!("a change from a {site} page is refused"));
        }
    }
    None
}

/// `POST /api/v1/areas/{id}/action` with `{"action": "block" | "log" | "allow"}`:
/// `{"area", "before", "after", "written", "path"}`; 403 when not allowed, 404 for an
/// unknown area, 409 when the file cannot be changed.
async fn set_action(
    State(s): State<ChangeState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<SetAction>, JsonRejection>,
) -> Response {
    if let Some(why) = cross_site(&headers) {
        return error(StatusCode::FORBIDDEN, why);
    }
    let path = match may_change(&s, &headers) {
        Ok((_, path)) => path,
        Err(why) => return error(StatusCode::FORBIDDEN, why),
    };
    let action = match body {
        Ok(Json(b)) => b.action,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"action\": \"block\" | \"log\" | \"allow\"}} ({e})"),
            )
        }
    };
    let policy = s.app.policy();
    let shown = path.display().to_string();
    let area = id.clone();
    let changed = tokio::task::spawn_blocking(move || {
        edit::change_area_action(&path, &policy, &area, action)
    })
    .await;
    match changed {
        Ok(Ok(c)) => {
            if c.written {
                info!(
                    "dashboard: {} = {:?} written to {} (was {})",
                    c.area,
                    c.after.as_str(),
                    c.path.display(),
                    c.before.map_or("not set", Action::as_str)
                );
            }
            Json(json!({
                "area": c.area,
                "before": c.before,
                "after": c.after,
                "written": c.written,
                "path": shown,
            }))
            .into_response()
        }
        Ok(Err(e @ PolicyError::NoSuchArea { .. })) => error(StatusCode::NOT_FOUND, e.to_string()),
        Ok(Err(e)) => error(StatusCode::CONFLICT, format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:8053",
            "127.9.9.9",
            "[::1]:8053",
            "localhost:8053",
            "LOCALHOST",
        ] {
            assert!(loopback_host(h), "{h}");
        }
        for h in [
            "",
            "192.168.56.2:8053",
            "evil.example:8053",
            "[fe80::1]:80",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(h), "{h}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn another_sites_page_cannot_change_the_config() {
        let own = [
            ("host", "127.0.0.1:8053"),
            (CHANGE_HEADER, "area-action"),
            ("origin", "http://127.0.0.1:8053"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(cross_site(&headers(&own)), None);
        assert_eq!(
            cross_site(&headers(&own[..2])),
            None,
            "curl sends no Origin"
        );
        let e = cross_site(&headers(&own[..1])).unwrap();
        assert!(e.contains(CHANGE_HEADER), "{e}");
        let e = cross_site(&headers(&[
            own[0],
            own[1],
            ("origin", "http://evil.example"),
        ]))
        .unwrap();
        assert!(e.contains("evil.example"), "{e}");
        let e = cross_site(&headers(&[
            own[0],
            own[1],
            ("sec-fetch-site", "cross-site"),
        ]))
        .unwrap();
        assert!(e.contains("cross-site"), "{e}");
    }
}
