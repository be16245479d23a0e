//! The addresses of upstreams given by name (`tls://dns.example`,
//! `https://dns.example/dns-query`), found through `[server] bootstrap` with
//! hickory-resolver and kept until their TTL runs out.
//!
//! A name is resolved when a connection to it is first needed and again once the answer's
//! TTL is over (the next query after that waits for the lookup); a connection to an
//! address the new answer no longer has is replaced. A name that does not resolve fails
//! the query's attempt like an unreachable upstream: the start-up probe's WARN names it,
//! and it is asked again after the hold-down. Negative answers are kept 30 s at most.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::TokioResolver;
use tokio::time::Instant;
use winsink_policy::{Transport, Upstream};

use super::Failure;

/// Longest a name that did not resolve is remembered as such.
const NEGATIVE_MAX: Duration = Duration::from_secs(30);

/// The addresses a name resolved to, and until when they hold.
type Found = (Arc<[IpAddr]>, Instant);

/// The bootstrap resolver and the addresses it found.
pub(super) struct Bootstrap {
    resolver: TokioResolver,
    servers: String,
    found: Mutex<HashMap<String, Found>>,
}

impl Bootstrap {
    /// A resolver asking `servers` (plain DNS) in turn, each lookup within `timeout`.
    pub(super) fn new(servers: &[Upstream], timeout: Duration) -> Result<Self, String> {
        let configs = servers
            .iter()
            .filter_map(|s| {
                let addr = s.addr()?;
                let mut c = match s.transport {
                    Transport::Tcp => ConnectionConfig::tcp(),
                    _ => ConnectionConfig::udp(),
                };
                c.port = addr.port();
                Some(NameServerConfig::new(addr.ip(), true, vec![c]))
            })
            .collect();
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 1;
        opts.cache_size = 64;
        opts.negative_max_ttl = Some(NEGATIVE_MAX);
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(configs),
            hickory_net::runtime::TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| e.to_string())?;
        let servers = servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Self {
            resolver,
            servers,
            found: Mutex::new(HashMap::new()),
        })
    }

    /// The addresses of `name` on `port`: the ones found before while their TTL lasts,
    /// else a fresh lookup.
    pub(super) async fn addrs(&self, name: &str, port: u16) -> Result<Vec<SocketAddr>, Failure> {
        let now = Instant::now();
        let known = {
            let found = self.found.lock().unwrap_or_else(|e| e.into_inner());
            found
                .get(name)
                .filter(|(_, until)| *until > now)
                .map(|(ips, _)| ips.clone())
        };
        let ips = match known {
            Some(ips) => ips,
            None => {
                let lookup = self
                    .resolver
                    .lookup_ip(format!("{name}."))
                    .await
                    .map_err(|e| {
                        Failure::Network(format!(
                            "cannot resolve {name} through the bootstrap servers ({}): {e}",
                            self.servers
                        ))
                    })?;
                let ips: Arc<[IpAddr]> = lookup.iter().collect();
                if ips.is_empty() {
                    return Err(Failure::Network(format!(
                        "{name} has no address (bootstrap servers: {})",
                        self.servers
                    )));
                }
                let until = Instant::from_std(lookup.valid_until());
                self.found
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name.to_owned(), (ips.clone(), until));
                ips
            }
        };
        Ok(ips.iter().map(|&ip| SocketAddr::new(ip, port)).collect())
    }
}
