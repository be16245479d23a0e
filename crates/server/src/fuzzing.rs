//! Entry points for the fuzz targets in `fuzz/` and for tests and benches that need the
//! query path without sockets; hidden from the docs and not a stable API.
//!
//! [`Harness::answer`] is the query path of the UDP and TCP loops (`Engine::answer_now`):
//! parse the request, refuse clients outside `allow_clients`, decide, write the sinkhole
//! or error answer, or replay a cached upstream answer, and format the query-log line.
//! [`Harness::cache_upstream`] takes an upstream's answer apart and stores it as the
//! forwarder does, so that raw upstream bytes reach the replay path too. Nothing here
//! opens a socket: a harness has no upstreams, and a cache miss is only reported.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use winsink_policy::{Policy, Startup};

use crate::cache::Cache;
use crate::engine::{Engine, Received, Request, Scratch};
use crate::forward::{same_question, Forwarder};
use crate::reply::Reply;
use crate::wire::{cache_key, parse_query};
use crate::{LogFormat, LogTarget, QueryLog, ServerError};

pub use crate::engine::{Handled, Proto};

/// One engine with its scratch buffers, serving requests without sockets.
pub struct Harness {
    engine: Engine,
    scratch: Scratch,
    log: Arc<QueryLog>,
    key: Vec<u8>,
    cache_size: usize,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl Harness {
    /// An engine for `policy`, with `startup`'s payload and cache size (at least one
    /// entry, so that the cache is exercised), whose query log writes `format` lines to
    /// `/dev/null`.
    pub fn new(policy: Policy, startup: &Startup, format: LogFormat) -> Result<Self, ServerError> {
        let log = Arc::new(QueryLog::start(
            &LogTarget::File(PathBuf::from("/dev/null")),
            format,
            NonZeroUsize::MIN.saturating_add(4095), // 4096 lines
        )?);
        let payload = startup.udp_payload;
        let cache_size = startup.cache_size.max(1);
        // No upstreams: the forwarder spawns nothing and is never asked.
        let forwarder = Forwarder::new(&[], Duration::from_secs(1), payload.get());
        let engine = Engine::new(
            Arc::new(ArcSwap::from_pointee(policy)),
            cache_size,
            forwarder,
            log.clone(),
            payload,
        );
        Ok(Self {
            engine,
            scratch: Scratch::default(),
            log,
            key: Vec::new(),
            cache_size,
        })
    }

    /// Empties the cache, so that each fuzz input starts from the same state.
    pub fn clear_cache(&mut self) {
        self.engine.cache = Cache::new(self.cache_size);
    }

    /// Handles `packet` from `client` as the UDP or TCP loop does.
    pub fn answer(
        &mut self,
        packet: &[u8],
        client: SocketAddr,
        proto: Proto,
        out: &mut Vec<u8>,
    ) -> Handled {
        let req = Request {
            packet,
            client,
            proto,
            received: Received::now(),
        };
        let handled = self.engine.answer_now(req, &mut self.scratch, out);
        self.engine.flush_log(&mut self.scratch);
        handled
    }

    /// Takes `upstream` apart as an upstream's answer to `query` and caches it as stored
    /// `age` seconds ago, with the checks the forwarder makes first. Returns whether it
    /// was cached.
    pub fn cache_upstream(&mut self, query: &[u8], upstream: &[u8], age: u32) -> bool {
        let Ok(q) = parse_query(query) else {
            return false;
        };
        let policy = self.engine.policy.load();
        let Ok(reply) = Reply::from_upstream(upstream.to_vec(), Arc::from("fuzz"), policy.cache())
        else {
            return false;
        };
        if !same_question(reply.question(), q.question()) || reply.lifetime == 0 {
            return false;
        }
        let now = Instant::now();
        let stored = now
            .checked_sub(Duration::from_secs(u64::from(age)))
            .unwrap_or(now);
        cache_key(&q, &mut self.key);
        self.engine.cache.insert(&self.key, Arc::new(reply), stored);
        true
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.log.close();
    }
}
