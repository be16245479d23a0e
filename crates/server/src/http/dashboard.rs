//! The dashboard: the page at `/`, its assets, and `/api/v1/timeseries`.
//!
//! The page is plain HTML, CSS and JavaScript with the uPlot charting library, compiled
//! into the binary (`assets/dashboard/` of this crate; uPlot under `vendor/` with its
//! licence, checked against its npm package by `.ci/run`): no CDN, no build step, works
//! offline. It polls the JSON API at a modest rate (see `app.js`), which only reads
//! counters, the ring and the statistics, never the DNS path's state.
//!
//! The "over time" plot reads the per-minute buckets of [`crate::timeseries`], which a
//! task fills by sampling the query counters every
//! [`SAMPLE_EVERY`](crate::timeseries::SAMPLE_EVERY) (and each request samples them
//! once more, so the current minute is up to date).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{error, AppState};
use crate::metrics::{Decided, Metrics};
use crate::timeseries::{Timeseries, KEEP_MINUTES, SAMPLE_EVERY};

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $file:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../assets/dashboard/", $file)),
        }
    };
}

/// Every file the page loads, by the name under `/assets/`.
const ASSETS: &[Asset] = &[
    asset!("app.js", "app.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "icon.svg", "image/svg+xml"),
    asset!(
        "uPlot.iife.min.js",
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "uPlot.min.css",
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8"
    ),
];

const INDEX: &[u8] = include_bytes!("../../assets/dashboard/index.html");

/// Only this server's own files and API; no framing (the toggles must not be clickjacked).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn file(content_type: &'static str, body: &'static [u8]) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Assets change with the binary: revalidate rather than guess a lifetime.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// `GET /`: the page.
pub(crate) async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

/// `GET /assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => file(a.content_type, a.body),
        None => error(StatusCode::NOT_FOUND, format!("no asset {name:?}")),
    }
}

/// The buckets and the lock around them (taken by the sampler and the handler only).
#[derive(Debug, Default)]
pub(crate) struct Buckets(Mutex<Timeseries>);

impl Buckets {
    /// Adds what the query counters of `m` grew by since the last sample.
    pub(crate) fn sample(&self, m: &Metrics, now: SystemTime) {
        let counts = m.queries();
        let totals: Vec<(&str, &str, u64)> = counts
            .iter()
            .enumerate()
            .filter(|(_, row)| row.iter().any(|&n| n > 0))
            .filter_map(|(slot, row)| Some((m.labels.text(slot)?, row)))
            .flat_map(|(text, row)| {
                Decided::ALL
                    .iter()
                    .map(move |d| (text, d.as_str(), row[*d as usize]))
            })
            .collect();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(now, totals);
    }

    /// Samples `m` every [`SAMPLE_EVERY`] until `shutdown`.
    pub(crate) async fn run(
        m: std::sync::Arc<Metrics>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            m.buckets.sample(&m, SystemTime::now());
        }
    }
}

/// `?span=&step=` of `/api/v1/timeseries`, in seconds.
#[derive(Debug, Deserialize)]
pub(crate) struct Span {
    span: Option<u64>,
    step: Option<u64>,
}

/// `GET /api/v1/timeseries?span=3600&step=60`: queries per area (the `area` label of
/// `winsink_queries_total`) and decision, per `step` seconds (a whole number of minutes,
/// default 60) over the last `span` seconds (default 3600, at most 86400): see
/// [`crate::timeseries::Window`] for the shape.
pub(crate) async fn timeseries(State(s): State<AppState>, Query(q): Query<Span>) -> Response {
    let span = q.span.unwrap_or(3600);
    let step = q.step.unwrap_or(60);
    if span == 0 || span > KEEP_MINUTES * 60 {
        return error(
            StatusCode::BAD_REQUEST,
            format!("span must be 1 to {} seconds", KEEP_MINUTES * 60),
        );
    }
    if step < 60 || step % 60 != 0 || step > span.max(60) {
        return error(
            StatusCode::BAD_REQUEST,
            "step must be a whole number of minutes (60, 300, ...), at most span",
        );
    }
    let m = &s.inner.metrics;
    let now = SystemTime::now();
    m.buckets.sample(m, now);
    let window = m
        .buckets
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .window(now, Duration::from_secs(span), Duration::from_secs(step));
    Json(window).into_response()
}
