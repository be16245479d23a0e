//! The JSON API, read-only: `/api/v1/summary`, `queries`, `top`, `explain`,
//! `uncatalogued`. The README shows each with `curl`.
//!
//! Filters that name an area take what `winsink_queries_total`'s `area` label holds: an
//! area id (`diagnostic-data`), `list:<label>`, `rule` or `none`. Times are RFC 3339 in
//! UTC with microseconds, as in the query log; `since` also takes seconds since the
//! Unix epoch.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{error, AppState};
use crate::metrics::ring::Entry;
use crate::metrics::stats::split_name_key;
use crate::metrics::{Decided, Metrics, DECISIONS};
use crate::querylog::{write_json, write_ts, Explain, Line, NoMatch};
use crate::verdict::Why;
use winsink_policy::Policy;

/// Most entries one `/api/v1/top` answer lists.
pub(crate) const MAX_TOP: usize = 1000;

fn ts_text(us: u64) -> String {
    let mut s = String::new();
    write_ts(&mut s, UNIX_EPOCH + Duration::from_micros(us));
    s
}

/// `GET /api/v1/summary`: uptime, totals by decision, and per area the action in force,
/// queries, blocked, would-block (log), distinct clients, last seen and the impact text
/// (what blocking it breaks).
pub(crate) async fn summary(State(s): State<AppState>) -> Response {
    let m = &s.inner.metrics;
    let policy = s.policy();
    let counts = m.queries();
    let mut totals = [0u64; DECISIONS];
    for row in &counts {
        for (t, n) in totals.iter_mut().zip(row) {
            *t += n;
        }
    }
    let by_decision: BTreeMap<&str, u64> = Decided::ALL
        .iter()
        .map(|d| (d.as_str(), totals[*d as usize]))
        .collect();
    let stats = m.stats.current(m);
    let area_json = |slot: Option<usize>, id: &str, name: &str, action: Option<&str>| {
        let c = slot.map_or([0; DECISIONS], |i| counts[i]);
        let seen = slot.and_then(|i| stats.area(i));
        json!({
            "id": id,
            "name": name,
            "action": action,
            "queries": c.iter().sum::<u64>(),
            "blocked": c[Decided::Block as usize],
            "would_block": c[Decided::Log as usize],
            "allowed": c[Decided::Allow as usize],
            "clients": seen.map_or(0, |a| a.clients.len()),
            "clients_at_least": seen.is_some_and(|a| a.clients_capped),
            "last_seen": seen.filter(|a| a.last_us > 0).map(|a| ts_text(a.last_us)),
        })
    };
    let summary = policy.summary();
    let mut listed = std::collections::HashSet::new();
    let mut areas = Vec::new();
    for a in &summary.areas {
        let slot = m.labels.find(&a.id);
        if let Some(i) = slot {
            listed.insert(i);
        }
        let mut area = area_json(slot, &a.id, &a.name, Some(a.action.as_str()));
        area["impact"] = json!(a.impact);
        areas.push(area);
    }
    // What else decided: lists, rules, nothing; and areas no longer in the policy.
    let mut others = Vec::new();
    for (slot, c) in counts.iter().enumerate() {
        if listed.contains(&slot) || c.iter().all(|&n| n == 0) {
            continue;
        }
        let Some(text) = m.labels.text(slot) else {
            continue;
        };
        let name = m.labels.name(slot).unwrap_or(text);
        if m.labels.is_area(slot) {
            areas.push(area_json(Some(slot), text, name, None));
        } else {
            others.push(area_json(Some(slot), text, name, None));
        }
    }
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": m.uptime_secs(),
        "queries": totals.iter().sum::<u64>(),
        "decisions": by_decision,
        "areas": areas,
        "others": others,
        "statistics": {
            "seen": stats.seen,
            "missed": stats.missed + m.ring.lost(),
            "recent_queries": m.ring.capacity(),
        },
    }))
    .into_response()
}

/// Filters shared by `queries` and `top`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filter {
    limit: Option<usize>,
    area: Option<String>,
    decision: Option<String>,
    client: Option<String>,
    since: Option<String>,
    by: Option<String>,
}

/// A filter, checked.
struct Checked {
    label: Option<usize>,
    /// An area filter that names no label seen: nothing can match.
    nothing: bool,
    decision: Option<Decided>,
    client: Option<IpAddr>,
    since_us: Option<u64>,
}

/// The filters of `f`, or what is wrong with them (a 400).
fn check(m: &Metrics, f: &Filter) -> Result<Checked, &'static str> {
    let bad = |what: &'static str| what;
    let decision =
        match &f.decision {
            None => None,
            Some(d) => Some(Decided::from_word(d).ok_or_else(|| {
                bad("decision must be block, log, allow, pass, refuse or invalid")
            })?),
        };
    let client = match &f.client {
        None => None,
        Some(c) => Some(
            c.parse::<IpAddr>()
                .map_err(|_| bad("client must be an IP address"))?
                .to_canonical(),
        ),
    };
    let since_us = match &f.since {
        None => None,
        Some(t) => Some(parse_time(t).ok_or_else(|| {
            bad("since must be RFC 3339 (2026-11-26T01:02:03Z) or seconds since the Unix epoch")
        })?),
    };
    let label = f.area.as_deref().map(|a| m.labels.find(a));
    Ok(Checked {
        label: label.flatten(),
        nothing: matches!(label, Some(None)),
        decision,
        client,
        since_us,
    })
}

impl Checked {
    fn keeps(&self, e: &Entry) -> bool {
        !self.nothing
            && self
                .label
                .is_none_or(|l| e.label == l || e.areas.contains(&l))
            && self.decision.is_none_or(|d| e.decision == d)
            && self.client.is_none_or(|c| e.client == c)
            && self.since_us.is_none_or(|t| e.ts_us >= t)
    }
}

/// `GET /api/v1/queries?limit=&area=&decision=&client=&since=`: the most recent
/// queries, newest first (default 100, at most the ring's size), with the fields of the
/// query log's line plus `decided_by` (the `area` label). `areas` are those matched when
/// the query was answered; `patterns` and `impact` are explained by the policy in force
/// now.
pub(crate) async fn queries(State(s): State<AppState>, Query(f): Query<Filter>) -> Response {
    let m = &s.inner.metrics;
    let c = match check(m, &f) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let limit = f.limit.unwrap_or(100).min(m.ring.capacity());
    let policy = s.policy();
    let upstreams: Vec<String> = m
        .upstream_counters()
        .iter()
        .map(|u| u.label.clone())
        .collect();
    let mut out = Vec::new();
    if limit > 0 {
        m.ring.newest_first(|e| {
            if c.since_us.is_some_and(|t| e.ts_us < t) {
                return false;
            }
            if c.keeps(&e) {
                out.push(entry_json(m, &policy, &upstreams, &e));
            }
            out.len() < limit
        });
    }
    Json(json!({"count": out.len(), "queries": out})).into_response()
}

/// One ring entry as the query log writes its line (by the log's own writer, so the
/// fields stay the same), with `areas` as matched when it was answered, the measured
/// `duration_us`, and `area`: the deciding area label of `winsink_queries_total`.
/// `decided_by`, `patterns` and `impact` are explained by the policy in force now.
fn entry_json(m: &Metrics, policy: &Policy, upstreams: &[String], e: &Entry) -> Value {
    let decided = !matches!(e.decision, Decided::Refuse | Decided::Invalid);
    let d = decided.then(|| policy.decide(e.client, e.cname.as_deref().unwrap_or(&e.qname)));
    let why_decided = d.as_ref().map(|d| Why {
        decision: d,
        cname: e.cname.as_deref(),
    });
    let why: &dyn Explain = match &why_decided {
        Some(w) => w,
        None => &NoMatch,
    };
    let line = Line {
        ts: UNIX_EPOCH + Duration::from_micros(e.ts_us),
        client: e.client,
        proto: e.proto,
        qname: &e.qname,
        qtype: e.qtype,
        decision: e.decision.as_str(),
        why,
        rcode: e.rcode,
        answers: e.answers,
        cached: e.cached,
        upstream: upstreams.get(usize::from(e.upstream)).map(String::as_str),
        took_us: u64::from(e.duration_us),
        cname: e.cname.as_deref(),
    };
    let mut text = String::new();
    write_json(&mut text, &line);
    let mut v: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({}));
    let areas: Vec<Value> = e
        .areas
        .iter()
        .filter_map(|&a| Some(json!({"id": m.labels.text(a)?, "name": m.labels.name(a)?})))
        .collect();
    v["areas"] = Value::Array(areas);
    v["duration_us"] = json!(e.duration_us);
    v["area"] = json!(m.labels.text(e.label));
    v
}

/// `GET /api/v1/top?by=name|client&area=&decision=&limit=`: the names (or clients) asked
/// most since the start (default 10, at most [`MAX_TOP`]). Each `count` is at most
/// `error` above the true count, and every error is at most `error_bound` = seen /
/// capacity (the space-saving sketch's guarantee, per name, area and decision).
pub(crate) async fn top(State(s): State<AppState>, Query(f): Query<Filter>) -> Response {
    let m = &s.inner.metrics;
    let c = match check(m, &f) {
        Ok(c) => c,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    if c.client.is_some() || c.since_us.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "top takes by, area, decision and limit",
        );
    }
    let by_client = match f.by.as_deref().unwrap_or("name") {
        "name" => false,
        "client" => true,
        _ => return error(StatusCode::BAD_REQUEST, "by must be name or client"),
    };
    let limit = f.limit.unwrap_or(10).min(MAX_TOP);
    let keep = |label: u8, d: Decided| {
        !c.nothing
            && c.label.is_none_or(|l| usize::from(label) == l)
            && c.decision.is_none_or(|x| x == d)
    };
    let stats = m.stats.current(m);
    let mut merged: HashMap<String, (u64, u64)> = HashMap::new();
    let (seen, capacity) = if by_client {
        for i in stats.clients.items() {
            let (ip, label, d) = &i.key;
            if keep(*label, *d) {
                let e = merged.entry(ip.to_string()).or_default();
                e.0 += i.count;
                e.1 += i.error;
            }
        }
        (stats.clients.seen(), stats.clients.capacity())
    } else {
        for i in stats.names.items() {
            let (label, d, name) = split_name_key(&i.key);
            if keep(label, d) {
                let e = merged.entry(name.into_owned()).or_default();
                e.0 += i.count;
                e.1 += i.error;
            }
        }
        (stats.names.seen(), stats.names.capacity())
    };
    drop(stats);
    let mut list: Vec<(String, (u64, u64))> = merged.into_iter().collect();
    list.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    list.truncate(limit);
    let key = if by_client { "client" } else { "name" };
    let top: Vec<Value> = list
        .into_iter()
        .map(|(k, (count, err))| json!({ key: k, "count": count, "error": err }))
        .collect();
    Json(json!({
        "by": key,
        "seen": seen,
        "capacity": capacity,
        "error_bound": seen / capacity.max(1) as u64,
        "top": top,
    }))
    .into_response()
}

/// `GET /api/v1/explain?name=&client=`: what `winsink explain NAME --client IP --json`
/// prints, from the policy in force (client default 127.0.0.1).
pub(crate) async fn explain(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(name) = q.get("name").filter(|n| valid_name(n)) else {
        return error(
            StatusCode::BAD_REQUEST,
            "name must be a DNS name (name=www.bing.com)",
        );
    };
    let client = match q.get("client") {
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(c) => match c.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return error(StatusCode::BAD_REQUEST, "client must be an IP address"),
        },
    };
    let policy = s.policy();
    let d = policy.decide(client, name);
    Json(d.explain(name, client)).into_response()
}

fn valid_name(n: &str) -> bool {
    let n = n.strip_suffix('.').unwrap_or(n);
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        })
}

/// `GET /api/v1/uncatalogued?limit=`: names under the `[http] microsoft_suffixes` that
/// no catalog area matches, most asked first, with first and last seen (a sketch of
/// [`UNCATALOGUED_CAPACITY`](crate::metrics::stats::UNCATALOGUED_CAPACITY) names).
pub(crate) async fn uncatalogued(State(s): State<AppState>, Query(f): Query<Filter>) -> Response {
    let m = &s.inner.metrics;
    let limit = f.limit.unwrap_or(100).min(MAX_TOP);
    let stats = m.stats.current(m);
    let mut list: Vec<_> = stats.uncatalogued.items().to_vec();
    let seen = stats.uncatalogued.seen();
    drop(stats);
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    list.truncate(limit);
    let names: Vec<Value> = list
        .into_iter()
        .map(|c| {
            json!({
                "name": String::from_utf8_lossy(&c.key),
                "count": c.count,
                "error": c.error,
                "first_seen": ts_text(c.first),
                "last_seen": ts_text(c.last),
            })
        })
        .collect();
    Json(json!({"seen": seen, "names": names})).into_response()
}

/// Microseconds since the epoch of RFC 3339 `2026-11-26T01:02:03(.frac)?(Z|±hh:mm)` or
/// of a number of seconds.
fn parse_time(t: &str) -> Option<u64> {
    if let Ok(secs) = t.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some((secs * 1e6) as u64);
    }
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':'
        || b[16] != b':'
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&d)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let mut rest = &t[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &frac[..digits.min(6)];
        micros = f.parse::<i64>().ok()? * 10i64.pow(6 - f.len() as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = crate::civil::days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs * 1_000_000 + micros).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_and_epoch_seconds() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2026-11-26T01:02:03.456789Z"),
            Some(1_795_654_923_456_789)
        );
        assert_eq!(
            parse_time("2026-11-26T02:02:03.456789+01:00"),
            Some(1_795_654_923_456_789)
        );
        assert_eq!(parse_time("1795654923.5"), Some(1_795_654_923_500_000));
        assert_eq!(
            ts_text(1_795_654_923_456_789),
            "2026-11-26T01:02:03.456789Z"
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-26T01:02:03",
            "-5",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn explain_names_are_dns_names() {
        assert!(valid_name("www.bing.com"));
        assert!(valid_name("www.bing.com."));
        assert!(!valid_name(""));
        assert!(!valid_name("a..b"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"a".repeat(64)));
    }
}
