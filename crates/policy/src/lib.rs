//! Config files → an immutable compiled policy → a decision per query.
//!
//! `winsink-policy` turns the operator's config file (TOML, `config/winsink.toml` by
//! default) into a [`Policy`]: every catalog endpoint, custom rule and list entry compiled
//! into one [`winsink_matcher::Matcher`], plus the action of each area for everyone and
//! for each client group. [`Policy::decide`] answers, for (client address, query name),
//! a [`Verdict`] and every [`Match`] behind it, with one matcher walk and no allocation.
//!
//! # The config file
//!
//! ```toml
//! # Catalogs: files relative to this file, or `builtin:windows11-enterprise`
//! # (the default when the key is absent).
//! catalogs = ["builtin:windows11-enterprise"]
//! # Action of areas not listed in [areas]: "block", "log" or "allow". Default "log".
//! default_action = "log"
//!
//! [areas]                       # area id = action, or a table:
//! office = "log"
//! diagnostic-data = { action = "block", acknowledge_shared = ["self.events.data.microsoft.com"] }
//!
//! [[rules]]                     # custom rules: pattern, action, optional note
//! pattern = "*.ads.example"
//! action = "block"
//! note = "lab ad servers"
//!
//! [[lists]]                     # external lists (see the `list` formats)
//! path = "lists/hosts.txt"      # relative to this file
//! format = "hosts"              # auto (default) | hosts | plain | adblock
//! action = "block"
//! label = "stevenblack"         # shown in logs; default: the file name
//!
//! [[lists]]                     # a list by URL, downloaded in the background
//! url = "https://example.org/hosts.txt"
//! refresh = "24h"               # default 24h
//! action = "block"
//!
//! [[groups]]                    # client groups
//! name = "strict"
//! clients = ["10.0.10.0/24", "fd00:10::/64"]
//! sinkhole = { mode = "nxdomain" }   # optional override of [sinkhole]
//! default_action = "block"      # optional: areas [groups.areas] does not name
//! [groups.areas]
//! microsoft-store = "block"
//! [[groups.rules]]
//! pattern = "login.live.com"
//! action = "allow"
//!
//! [server]    # see settings::ServerSettings
//! [sinkhole]  # see settings::SinkholeSettings
//! [cache]     # see settings::CacheSettings
//! [log]       # see settings::LogSettings
//! [http]      # see settings::HttpSettings
//! [tls]       # see settings::TlsSettings
//! [url_lists] # cache_dir, max_size_mib, timeout: see the `url_list` module
//! ```
//!
//! Unknown keys, unknown area ids, unknown action words, invalid patterns and CIDRs are
//! errors that name the file, the line and the key, and suggest the closest valid name;
//! so are values the server could only honour by changing them (`udp_payload` below 512,
//! `min_ttl` above `max_ttl`, a zero timeout or queue). A malformed line of a list file is
//! a warning, never an error. Warnings also name settings that cannot take effect:
//! sinkhole addresses without `mode = "custom"`, a group network outside
//! `allow_clients`, and names that one area blocks while another logs or allows them
//! (unless that area's `acknowledge_shared`, or a `[[rules]]` entry for the name, says it
//! is meant; see [`Policy::shared_endpoints`]).
//!
//! # Actions and precedence
//!
//! `block` answers with the sinkhole; `log` forwards but logs the query as "would be
//! blocked" (the audit mode that shows what a block would break); `allow` forwards.
//! For one query, every matching catalog endpoint, rule and list entry is considered:
//!
//! 1. An `allow` **rule or list** matching the name wins — the client's group rules
//!    first, then global ones.
//! 2. Otherwise any matching `block` (area, rule or list) → [`Verdict::Block`].
//! 3. Otherwise any matching `log` → [`Verdict::Log`] (forward, log as would-block).
//! 4. Otherwise, if only `allow` areas matched → [`Verdict::Allow`].
//! 5. Otherwise → [`Verdict::Pass`] (forwarded, not in any area).
//!
//! A client group's area actions replace the global ones for clients in that group; its
//! rules apply only to them. A client in several groups belongs to the one with the
//! longest (most specific) prefix. Every matching rule is reported, whichever decided:
//! blocking Diagnostic Data blocks `self.events.data.microsoft.com`, and the decision says
//! that Office uses it too.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::path::Path;
//! use winsink_policy::{Policy, Verdict};
//!
//! let loaded = Policy::from_config_str(
//!     r#"
//!     catalogs = []
//!     [[rules]]
//!     pattern = "*.ads.example"
//!     action = "block"
//!     [[rules]]
//!     pattern = "ok.ads.example"
//!     action = "allow"
//!     "#,
//!     Path::new("."),
//!     "example.toml",
//! )
//! .unwrap();
//! let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
//! assert_eq!(loaded.policy.decide(client, "x.ads.example").verdict, Verdict::Block);
//! assert_eq!(loaded.policy.decide(client, "OK.ads.example.").verdict, Verdict::Allow);
//! assert_eq!(loaded.policy.decide(client, "example.org").verdict, Verdict::Pass);
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]
// Functions past 80 lines (clippy.toml) are split into named steps or say why not; tests may be long.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

mod change;
mod compile;
mod config;
mod decision;
pub mod edit;
mod entries;
mod error;
pub mod list;
mod policy;
mod precedence;
pub mod settings;
mod shared;
mod startup;
mod suffixes;
mod summary;
mod upstream;
mod url_list;

pub use change::{AreaName, Change};
pub use compile::{builtin_catalog, Loaded, BUILTIN_CATALOGS, BUILTIN_PREFIX, DEFAULT_CATALOGS};
pub use decision::{
    Action, AreaRecord, AreaRef, DecidedBy, DecidedByRecord, Decision, Explanation, Impact,
    ImpactScope, Match, MatchRecord, MatchSource, SourceRecord, Verdict, MAX_REPORTED_MATCHES,
};
pub use error::PolicyError;
pub use list::{BadLine, ListFormat};
pub use policy::Policy;
pub use settings::{
    CacheSettings, CacheTtls, HttpSettings, LogFormat, LogQueries, LogSettings, RateLimitAction,
    ServerSettings, SinkholeMode, SinkholeSettings, Timeout, TlsSettings, UdpPayload,
    MICROSOFT_SUFFIXES,
};
pub use shared::{general_purpose, SharedEndpoint, GENERAL_PURPOSE_HOSTS};
pub use startup::{LogSink, RateLimit, Startup, TlsFiles};
pub use suffixes::DomainSuffixes;
pub use summary::{AreaSummary, CatalogSummary, GroupSummary, ListSummary, RuleSummary, Summary};
pub use upstream::{
    Host, Transport, Upstream, UpstreamEntry, UpstreamError, UpstreamTable, Verify,
};
pub use url_list::{Downloads, UrlList, DEFAULT_REFRESH};

#[cfg(test)]
mod tests;
