//! `[server] upstreams`: where forwarded queries go, parsed when the config is read.
//!
//! The forms are listed on [`Upstream`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How winsink talks to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// DNS over UDP, retried over TCP when truncated.
    Udp,
    /// DNS over TCP.
    Tcp,
    /// DNS over TLS (RFC 7858).
    Tls,
    /// DNS over HTTPS (RFC 8484), HTTP/2.
    Https,
}

impl Transport {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Https => "https",
        }
    }

    /// Whether it is encrypted (TLS or HTTPS): a certificate is checked.
    pub fn is_encrypted(self) -> bool {
        matches!(self, Self::Tls | Self::Https)
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Udp | Self::Tcp => 53,
            Self::Tls => 853,
            Self::Https => 443,
        }
    }
}

/// Where an upstream is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An address and port (an IPv6 address keeps its scope, `fe80::1%eth0`).
    Addr(SocketAddr),
    /// A host name and port, resolved by the server through `[server] bootstrap`.
    Name {
        /// The name, lower case, without a trailing dot.
        name: String,
        /// The port.
        port: u16,
    },
}

/// How an encrypted upstream's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Verify {
    /// The name the certificate must be valid for (`tls://IP#NAME` or `tls_name`);
    /// `None`: the URL's host (a name, or the address itself).
    pub tls_name: Option<String>,
    /// `ca_file`: trust only the certificates of this PEM file (resolved against the
    /// config file's folder); `None`: the system's roots (`SSL_CERT_FILE` honoured).
    pub ca_file: Option<PathBuf>,
    /// `insecure_skip_verify = true`: accept any certificate.
    pub insecure_skip_verify: bool,
}

/// An upstream resolver, parsed from its URL:
///
/// | written                              | means                                               |
/// |--------------------------------------|-----------------------------------------------------|
/// | `192.0.2.1`, `udp://192.0.2.1:53`    | DNS over UDP (retried over TCP when truncated)       |
/// | `tcp://[2001:db8::1]:53`             | DNS over TCP                                        |
/// | `tls://192.0.2.1`, `tls://HOST:853`  | DNS over TLS (RFC 7858), port 853 unless given       |
/// | `tls://192.0.2.1#dns.example`        | DoT to an address, certificate checked for a name    |
/// | `https://HOST[:PORT]/PATH`           | DNS over HTTPS (RFC 8484, HTTP/2), port 443, path `/dns-query` unless given |
///
/// HOST is an IP address (IPv6 in brackets when a port follows) or, for `tls://` and
/// `https://`, a host name, which the server resolves through `[server] bootstrap`.
/// An entry may also be a table, for the keys that only encrypted upstreams have:
///
/// ```toml
/// upstreams = [
///   "udp://192.0.2.1:53",
///   { url = "tls://192.0.2.53", tls_name = "dns.lab.example", ca_file = "lab-ca.pem" },
/// ]
/// ```
///
/// `ca_file` (PEM, relative to the config file's folder) replaces the system's roots for
/// that upstream; `insecure_skip_verify = true` accepts any certificate (said with a WARN
/// at every start) and is the only way to turn verification off.
///
/// It deserializes from that text, so a bad URL in the config file is an error that
/// names its line, whether `winsink check` or `winsink run` reads the file.
///
/// ```
/// use winsink_policy::{Host, Transport, Upstream};
///
/// let u: Upstream = "tcp://[::1]:5300".parse().unwrap();
/// assert_eq!(u.transport, Transport::Tcp);
/// assert_eq!("192.0.2.1".parse::<Upstream>().unwrap().to_string(), "udp://192.0.2.1:53");
/// let dot: Upstream = "tls://192.0.2.53#dns.lab.example".parse().unwrap();
/// assert_eq!(dot.tls_name(), "dns.lab.example");
/// assert_eq!(dot.to_string(), "tls://192.0.2.53:853#dns.lab.example");
/// let doh: Upstream = "https://dns.lab.example".parse().unwrap();
/// assert!(matches!(doh.host, Host::Name { port: 443, .. }));
/// assert_eq!(doh.to_string(), "https://dns.lab.example:443/dns-query");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Upstream {
    /// UDP, TCP, TLS or HTTPS.
    pub transport: Transport,
    /// Address, or name, and port.
    pub host: Host,
    /// The HTTP path of a DoH upstream (`/dns-query` unless the URL gives one); empty
    /// for the others.
    pub path: String,
    /// How the certificate of a TLS or HTTPS upstream is checked.
    pub verify: Verify,
}

/// Why a text is not an [`Upstream`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream {input:?}: {reason}")]
pub struct UpstreamError {
    /// The text as written.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Whether `s` is a host name: dot-separated labels of letters, digits, `-` and `_`.
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        // An all-numeric last label is a mistyped address, not a name.
        && !s.rsplit('.').next().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

fn host_and_port(rest: &str, default: u16) -> Option<Host> {
    if let Ok(a) = rest.parse::<SocketAddr>() {
        return Some(Host::Addr(a));
    }
    if let Ok(ip) = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(rest)
        .parse::<IpAddr>()
    {
        return Some(Host::Addr(SocketAddr::new(ip, default)));
    }
    let (name, port) = match rest.rsplit_once(':') {
        Some((n, p)) => (n, p.parse::<u16>().ok()?),
        None => (rest, default),
    };
    is_host_name(name).then(|| {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        Host::Name { name, port }
    })
}

impl FromStr for Upstream {
    type Err = UpstreamError;

    fn from_str(s: &str) -> Result<Self, UpstreamError> {
        let bad = |reason: &'static str| UpstreamError {
            input: s.to_owned(),
            reason,
        };
        let (transport, rest) = match s.split_once("://") {
            Some(("udp", r)) => (Transport::Udp, r),
            Some(("tcp", r)) => (Transport::Tcp, r),
            Some(("tls", r)) => (Transport::Tls, r),
            Some(("https", r)) => (Transport::Https, r),
            Some(_) => return Err(bad("the scheme must be udp://, tcp://, tls:// or https://")),
            None => (Transport::Udp, s),
        };
        let (rest, tls_name) = match rest.split_once('#') {
            Some(_) if transport != Transport::Tls => {
                return Err(bad(
                    "#NAME (the certificate's name) is for tls:// upstreams",
                ))
            }
            Some((r, name)) if is_host_name(name) => (r, Some(name.to_ascii_lowercase())),
            Some(_) => return Err(bad("the name after # is not a host name")),
            None => (rest, None),
        };
        let (rest, path) = match (transport, rest.find('/')) {
            (Transport::Https, Some(i)) => (&rest[..i], &rest[i..]),
            (Transport::Https, None) => (rest, "/dns-query"),
            (_, Some(i)) if i + 1 == rest.len() => (&rest[..i], ""),
            (_, Some(i))
                if host_and_port(&rest[..i], 53)
                    .is_some_and(|h| transport.is_encrypted() || matches!(h, Host::Addr(_))) =>
            {
                return Err(bad("only https:// upstreams have a path"))
            }
            // `udp//192.0.2.1`: not a path but a mistyped scheme; the address error says so.
            (_, Some(_)) => (rest, ""),
            (_, None) => (rest, ""),
        };
        if path.contains(['?', '#', '{', ' ']) {
            return Err(bad(
                "the path must be a plain path like /dns-query (no query or template)",
            ));
        }
        let path = if path == "/" { "/dns-query" } else { path };
        let Some(host) = host_and_port(rest, transport.default_port()) else {
            return Err(bad(if transport.is_encrypted() {
                "expected an IP address or a host name, with an optional port, like 192.0.2.1:853 or dns.example"
            } else {
                "expected an IP address with an optional port, like 192.0.2.1:53 or [2001:db8::1]:53"
            }));
        };
        if let Host::Name { .. } = host {
            if !transport.is_encrypted() {
                return Err(bad(
                    "udp:// and tcp:// upstreams take an IP address (host names are for tls:// and https://)",
                ));
            }
        }
        if host.port() == 0 {
            return Err(bad("port 0 is not a port to send queries to"));
        }
        Ok(Self {
            transport,
            host,
            path: path.to_owned(),
            verify: Verify {
                tls_name,
                ..Verify::default()
            },
        })
    }
}

impl Host {
    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            Self::Addr(a) => a.port(),
            Self::Name { port, .. } => *port,
        }
    }
}

impl Upstream {
    /// A plain (UDP or TCP) upstream at `addr`.
    pub fn plain(transport: Transport, addr: SocketAddr) -> Self {
        Self {
            transport,
            host: Host::Addr(addr),
            path: String::new(),
            verify: Verify::default(),
        }
    }

    /// Its address, when the URL gives one (not a name).
    pub fn addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Addr(a) => Some(a),
            Host::Name { .. } => None,
        }
    }

    /// The name its certificate must be valid for: `tls_name`, else the URL's host (a
    /// name, or the address as text).
    pub fn tls_name(&self) -> String {
        match (&self.verify.tls_name, &self.host) {
            (Some(n), _) => n.clone(),
            (None, Host::Name { name, .. }) => name.clone(),
            (None, Host::Addr(a)) => a.ip().to_string(),
        }
    }

    /// Applies an entry's table keys (`tls_name`, `ca_file`, `insecure_skip_verify`).
    fn with_keys(mut self, t: &UpstreamTable) -> Result<Self, &'static str> {
        let any = t.tls_name.is_some() || t.ca_file.is_some() || t.insecure_skip_verify;
        if any && !self.transport.is_encrypted() {
            return Err(
                "tls_name, ca_file and insecure_skip_verify are for tls:// and https:// upstreams",
            );
        }
        if let Some(name) = &t.tls_name {
            if !is_host_name(name) {
                return Err("tls_name is not a host name");
            }
            let name = name.to_ascii_lowercase();
            if self.verify.tls_name.as_ref().is_some_and(|n| *n != name) {
                return Err("the URL's #NAME and tls_name differ");
            }
            self.verify.tls_name = Some(name);
        }
        if t.insecure_skip_verify && t.ca_file.is_some() {
            return Err("ca_file and insecure_skip_verify = true contradict each other: one checks the certificate, the other does not");
        }
        self.verify.ca_file.clone_from(&t.ca_file);
        self.verify.insecure_skip_verify = t.insecure_skip_verify;
        Ok(self)
    }
}

impl TryFrom<String> for Upstream {
    type Error = UpstreamError;

    fn try_from(s: String) -> Result<Self, UpstreamError> {
        s.parse()
    }
}

impl From<Upstream> for String {
    fn from(u: Upstream) -> Self {
        u.to_string()
    }
}

/// The URL, normalised (`udp://192.0.2.1:53`, `tls://192.0.2.53:853#dns.example`,
/// `https://dns.example:443/dns-query`): the upstream's label in logs and metrics.
impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.transport.scheme())?;
        match &self.host {
            Host::Addr(a) => write!(f, "{a}")?,
            Host::Name { name, port } => write!(f, "{name}:{port}")?,
        }
        f.write_str(&self.path)?;
        if let Some(n) = &self.verify.tls_name {
            if self.transport == Transport::Tls {
                write!(f, "#{n}")?;
            }
        }
        Ok(())
    }
}

/// One entry of `[server] upstreams` as written: a URL, or a table with `url` and the
/// keys of encrypted upstreams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum UpstreamEntry {
    /// `"tls://192.0.2.53#dns.example"`.
    Url(String),
    /// `{ url = "…", tls_name = "…", ca_file = "…", insecure_skip_verify = false }`.
    Table(UpstreamTable),
}

/// The table form of an [`UpstreamEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTable {
    /// The URL, as a plain entry would write it.
    pub url: String,
    /// The name the certificate must be valid for. Default: the URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_name: Option<String>,
    /// A PEM file of the CA certificates to trust for this upstream (relative to the
    /// config file's folder). Default: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (a WARN at every start says so). Default: `false`.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl<'de> Deserialize<'de> for UpstreamEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = UpstreamEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("string or table")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UpstreamEntry, E> {
                Ok(UpstreamEntry::Url(v.to_owned()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<UpstreamEntry, A::Error> {
                UpstreamTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(UpstreamEntry::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl UpstreamEntry {
    /// The URL as written.
    pub fn url(&self) -> &str {
        match self {
            Self::Url(u) => u,
            Self::Table(t) => &t.url,
        }
    }

    /// The upstream it describes (`ca_file` as written, not yet resolved).
    pub fn upstream(&self) -> Result<Upstream, UpstreamError> {
        let u: Upstream = self.url().parse()?;
        match self {
            Self::Url(_) => Ok(u),
            Self::Table(t) => u.with_keys(t).map_err(|reason| UpstreamError {
                input: t.url.clone(),
                reason,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_urls() {
        let u: Upstream = "udp://127.0.0.1:5300".parse().unwrap();
        assert_eq!(u.transport, Transport::Udp);
        assert_eq!(u.addr(), Some("127.0.0.1:5300".parse().unwrap()));
        assert_eq!(u.to_string(), "udp://127.0.0.1:5300");
        let u: Upstream = "tcp://[::1]:53".parse().unwrap();
        assert_eq!(u.transport, Transport::Tcp);
        let u: Upstream = "192.0.2.1".parse().unwrap();
        assert_eq!(u.to_string(), "udp://192.0.2.1:53");
        let u: Upstream = "2001:db8::1".parse().unwrap();
        assert_eq!(u.addr().unwrap().port(), 53);
        for bad in [
            "ftp://1.1.1.1",
            "udp://dns.example:53",
            "tcp://dns.example",
            "udp://1.2.3.4:0",
            "udp://1.2.3.4/dns-query",
            "udp://1.2.3.4#dns.example",
            "https://1.2.3.4#dns.example",
            "tls://1.2.3.4#not a name",
            "tls://dns..example",
            "tls://192.0.2",
            "https://dns.example/dns-query?dns={dns}",
            "https://dns.example:x/dns-query",
            "",
        ] {
            let e = bad.parse::<Upstream>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn parses_encrypted_upstream_urls() {
        let u: Upstream = "tls://192.0.2.53".parse().unwrap();
        assert_eq!(u.transport, Transport::Tls);
        assert_eq!(u.addr(), Some("192.0.2.53:853".parse().unwrap()));
        assert_eq!(u.tls_name(), "192.0.2.53");
        assert_eq!(u.to_string(), "tls://192.0.2.53:853");
        let u: Upstream = "tls://[2001:db8::53]:8853#DNS.Lab.Example".parse().unwrap();
        assert_eq!(u.tls_name(), "dns.lab.example");
        assert_eq!(u.to_string(), "tls://[2001:db8::53]:8853#dns.lab.example");
        let u: Upstream = "tls://Dns.Example.".parse().unwrap();
        assert_eq!(
            u.host,
            Host::Name {
                name: "dns.example".into(),
                port: 853
            }
        );
        assert_eq!(u.tls_name(), "dns.example");
        let u: Upstream = "https://127.0.0.1:8443/custom/path".parse().unwrap();
        assert_eq!(u.path, "/custom/path");
        assert_eq!(u.to_string(), "https://127.0.0.1:8443/custom/path");
        let u: Upstream = "https://dns.example/".parse().unwrap();
        assert_eq!(u.to_string(), "https://dns.example:443/dns-query");
        // The label parses back to the same upstream.
        for text in [
            "tls://192.0.2.53:853#dns.example",
            "https://dns.example:443/dns-query",
            "tls://dns.example:853",
        ] {
            let u: Upstream = text.parse().unwrap();
            assert_eq!(u.to_string(), text);
            assert_eq!(u.to_string().parse::<Upstream>().unwrap(), u);
        }
    }

    fn table(url: &str) -> UpstreamTable {
        UpstreamTable {
            url: url.into(),
            tls_name: None,
            ca_file: None,
            insecure_skip_verify: false,
        }
    }

    #[test]
    fn table_keys_apply_to_encrypted_upstreams_only() {
        let t = UpstreamTable {
            tls_name: Some("dns.lab.example".into()),
            ca_file: Some("ca.pem".into()),
            ..table("tls://192.0.2.53")
        };
        let u = UpstreamEntry::Table(t).upstream().unwrap();
        assert_eq!(u.tls_name(), "dns.lab.example");
        assert_eq!(u.verify.ca_file, Some(PathBuf::from("ca.pem")));
        assert!(!u.verify.insecure_skip_verify);
        let why = |t: UpstreamTable| UpstreamEntry::Table(t).upstream().unwrap_err().reason;
        assert!(why(UpstreamTable {
            tls_name: Some("x.example".into()),
            ..table("udp://192.0.2.1")
        })
        .contains("for tls:// and https://"));
        assert!(why(UpstreamTable {
            tls_name: Some("other.example".into()),
            ..table("tls://192.0.2.1#dns.example")
        })
        .contains("differ"));
        assert!(why(UpstreamTable {
            ca_file: Some("ca.pem".into()),
            insecure_skip_verify: true,
            ..table("https://dns.example")
        })
        .contains("contradict"));
    }
}
