//! `[server] upstreams`: where forwarded queries go, parsed when the config is read.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How winsink talks to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// DNS over UDP, retried over TCP when truncated.
    Udp,
    /// DNS over TCP.
    Tcp,
}

/// An upstream resolver: `udp://HOST:PORT`, `tcp://HOST:PORT`, or a bare `HOST[:PORT]`
/// (UDP, port 53). HOST is an IP address; IPv6 goes in brackets when a port follows
/// (`udp://[2001:db8::1]:53`).
///
/// It deserializes from that text, so a bad URL in the config file is an error that
/// names its line, whether `winsink check` or `winsink run` reads the file.
///
/// ```
/// use winsink_policy::{Transport, Upstream};
///
/// let u: Upstream = "tcp://[::1]:5300".parse().unwrap();
/// assert_eq!(u.transport, Transport::Tcp);
/// assert_eq!("192.0.2.1".parse::<Upstream>().unwrap().to_string(), "udp://192.0.2.1:53");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Upstream {
    /// UDP or TCP.
    pub transport: Transport,
    /// Address and port.
    pub addr: SocketAddr,
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

impl FromStr for Upstream {
    type Err = UpstreamError;

    fn from_str(s: &str) -> Result<Self, UpstreamError> {
        let bad = |reason: &'static str| UpstreamError {
            input: s.to_owned(),
            reason,
        };
        let (transport, rest) = if let Some(r) = s.strip_prefix("udp://") {
            (Transport::Udp, r)
        } else if let Some(r) = s.strip_prefix("tcp://") {
            (Transport::Tcp, r)
        } else if s.contains("://") {
            return Err(bad("the scheme must be udp:// or tcp://"));
        } else {
            (Transport::Udp, s)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let addr = if let Ok(a) = rest.parse::<SocketAddr>() {
            a
        } else if let Ok(ip) = rest
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            SocketAddr::new(ip, 53)
        } else {
            return Err(bad("expected an IP address with an optional port, like 192.0.2.1:53 or [2001:db8::1]:53"));
        };
        if addr.port() == 0 {
            return Err(bad("port 0 is not a port to send queries to"));
        }
        Ok(Self { transport, addr })
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

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.transport {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        };
        write!(f, "{scheme}://{}", self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_urls() {
        let u: Upstream = "udp://127.0.0.1:5300".parse().unwrap();
        assert_eq!(u.transport, Transport::Udp);
        assert_eq!(u.addr, "127.0.0.1:5300".parse().unwrap());
        assert_eq!(u.to_string(), "udp://127.0.0.1:5300");
        let u: Upstream = "tcp://[::1]:53".parse().unwrap();
        assert_eq!(u.transport, Transport::Tcp);
        let u: Upstream = "192.0.2.1".parse().unwrap();
        assert_eq!(u.to_string(), "udp://192.0.2.1:53");
        let u: Upstream = "2001:db8::1".parse().unwrap();
        assert_eq!(u.addr.port(), 53);
        for bad in [
            "https://1.1.1.1",
            "udp://dns.example:53",
            "udp://1.2.3.4:0",
            "",
        ] {
            let e = bad.parse::<Upstream>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
