//! Encrypted upstreams: winsink → a real Unbound over DNS over TLS and DNS over HTTPS,
//! with a CA and certificates made in the test.

use std::process::Command;

use crate::support::tls::{KeyKind, TestCa};
use crate::support::unbound::Unbound;

/// The name the test certificates are made for.
const NAME: &str = "dns.lab.test";

/// knot-dnsutils' client, installed with Unbound wherever `.ci/run` installs it.
const KDIG: &str = "kdig";

/// What `kdig +tls` against `unbound` prints when it checks the certificate against the
/// test CA for `hostname`.
fn kdig_tls(unbound: &Unbound, ca: &TestCa, hostname: &str) -> String {
    let out = Command::new(KDIG)
        .arg(format!("@{}", unbound.tls.ip()))
        .args(["-p", &unbound.tls.port().to_string()])
        .arg(format!("+tls-ca={}", ca.cert_pem().display()))
        .arg(format!("+tls-hostname={hostname}"))
        .args(["+time=3", "+retry=0", "www.lab.test", "A"])
        .output()
        .expect("run kdig");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The test CA's certificates are ones a real TLS client (kdig, GnuTLS) accepts for the
/// names they were made for, and refuses for another, with an ECDSA key and an RSA key.
#[test]
fn test_ca_certificates_serve_unbound_over_tls_with_ecdsa_and_rsa() {
    if Command::new(KDIG).arg("-V").output().is_err() {
        assert!(
            std::env::var_os("WINSINK_REQUIRE_UNBOUND").is_none(),
            "WINSINK_REQUIRE_UNBOUND is set but kdig is not installed"
        );
        eprintln!("skipped: kdig is not installed (apt-get install knot-dnsutils)");
        return;
    }
    for kind in [KeyKind::Ecdsa, KeyKind::Rsa] {
        let mut ca = TestCa::new();
        let leaf = ca.leaf(&[NAME, "127.0.0.1"], kind);
        let Some(unbound) = Unbound::start(&leaf) else {
            return;
        };
        let good = kdig_tls(&unbound, &ca, NAME);
        assert!(
            good.contains("192.0.2.10"),
            "{kind:?}: {good}\n{}",
            unbound.log()
        );
        let bad = kdig_tls(&unbound, &ca, "other.lab.test");
        assert!(
            !bad.contains("192.0.2.10"),
            "{kind:?}: a wrong name was accepted: {bad}"
        );
    }
}
