//! The certificate the DoT and DoH listeners show: loaded from `[tls] cert_file` and
//! `key_file` (PEM), and swapped while running.
//!
//! The listeners' rustls configuration does not hold a certificate: it holds a
//! `CertResolver`, which rustls asks once per handshake and which hands out whatever
//! [`Certificate`] is in its [`ArcSwap`] at that moment. Storing a new one (a renewal) is
//! one atomic pointer swap: the next handshake gets it, and a connection already open
//! keeps the session keys it negotiated, so nothing established is dropped. A new pair
//! that does not load never reaches the slot: [`Certificate::load`] fails first, naming
//! the file and what is wrong with it.
//!
//! Accepted: a chain of `CERTIFICATE` blocks, the server's certificate first (certbot's
//! `fullchain.pem`), and a private key as `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY`
//! (PKCS#1) or `EC PRIVATE KEY` (SEC1); ECDSA (P-256, P-384), Ed25519 and RSA keys, with
//! rustls' `ring` provider. The key must belong to the first certificate.
//!
//! rustls serves its own certificate whatever its dates; clients do not. So the first
//! certificate's validity is read too, and [`Certificate::validity_warning`] says when it
//! has expired, is not valid yet, or expires within [`EXPIRY_WARNING_DAYS`] (`check`
//! prints it, `run` logs it when it starts and when it reads the files again). An
//! expired certificate still loads: refusing it would take down plain DNS with it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use winsink_policy::TlsFiles;

use crate::ServerError;

/// Days before its end that a certificate is said to be expiring.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// A certificate chain and its private key, checked to belong together.
#[derive(Clone)]
pub struct Certificate {
    key: Arc<CertifiedKey>,
    files: TlsFiles,
    /// The first certificate's notBefore and notAfter, in seconds since the Unix epoch
    /// (`None` if its dates do not parse; rustls accepted the certificate anyway).
    validity: Option<(i64, i64)>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("files", &self.files)
            .field("chain", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    /// The same files holding the same chain (a key that changed without its
    /// certificate cannot load).
    fn eq(&self, other: &Self) -> bool {
        self.files == other.files && self.key.cert == other.key.cert
    }
}

impl Certificate {
    /// Reads and checks `files`: the chain parses, the key parses and is one rustls can
    /// sign with, and it matches the first certificate.
    pub fn load(files: &TlsFiles) -> Result<Self, ServerError> {
        let cert_err = |reason: String| ServerError::Tls {
            key: "cert_file",
            path: files.cert_file.clone(),
            reason,
        };
        let key_err = |reason: String| ServerError::Tls {
            key: "key_file",
            path: files.key_file.clone(),
            reason,
        };
        let chain_pem = read(&files.cert_file).map_err(cert_err)?;
        let chain = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_err(pem_reason(&e)))?;
        if chain.is_empty() {
            return Err(cert_err(
                "no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks, \
                 the server's certificate first)"
                    .to_owned(),
            ));
        }
        let key_pem = read(&files.key_file).map_err(key_err)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
            pem::Error::NoItemsFound => key_err(
                "no private key in it (expected PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or \
                 `EC PRIVATE KEY`)"
                    .to_owned(),
            ),
            e => key_err(pem_reason(&e)),
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => key_err(format!(
                "this key does not belong to the first certificate of {}",
                files.cert_file.display()
            )),
            e => key_err(format!("not a key rustls can sign with: {e}")),
        })?;
        let validity = key.cert.first().and_then(validity);
        Ok(Self {
            key: Arc::new(key),
            files: files.clone(),
            validity,
        })
    }

    /// When the first certificate stops being valid (its notAfter), in seconds since the
    /// Unix epoch; `None` if its dates did not parse.
    pub fn not_after(&self) -> Option<i64> {
        self.validity.map(|(_, until)| until)
    }

    /// What an operator must hear about the first certificate's dates at `now`: that it
    /// has expired, is not valid yet, or expires within [`EXPIRY_WARNING_DAYS`]; `None`
    /// while it is valid for longer.
    pub fn validity_warning(&self, now: SystemTime) -> Option<String> {
        let (not_before, not_after) = self.validity?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let file = self.files.cert_file.display();
        let day = 86_400;
        let renew = "renew it: winsink reads it again when the file changes";
        if now >= not_after {
            let ago = (now - not_after) / day;
            Some(format!(
                "[tls] cert_file {file}: the certificate expired on {} ({ago} day{} ago): \
                 DoT and DoH clients that check it refuse every connection; {renew}",
                date(not_after),
                plural(ago)
            ))
        } else if now < not_before {
            Some(format!(
                "[tls] cert_file {file}: the certificate is not valid before {}: DoT and DoH \
                 clients that check it refuse every connection until then",
                date(not_before)
            ))
        } else if not_after - now < EXPIRY_WARNING_DAYS * day {
            let left = (not_after - now) / day;
            Some(format!(
                "[tls] cert_file {file}: the certificate expires on {}, in {}; {renew}",
                date(not_after),
                if left == 0 {
                    "less than a day".to_owned()
                } else {
                    format!("{left} day{}", plural(left))
                }
            ))
        } else {
            None
        }
    }

    /// How many certificates the chain holds (the server's and its intermediates).
    pub fn chain_len(&self) -> usize {
        self.key.cert.len()
    }

    /// The files it was read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// `der`'s notBefore and notAfter in seconds since the Unix epoch.
fn validity(der: &CertificateDer<'_>) -> Option<(i64, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let v = cert.validity();
    Some((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
fn date(secs: i64) -> String {
    let (y, m, d) = crate::civil::civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        in_day / 3600,
        in_day % 3600 / 60
    )
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))
}

fn pem_reason(e: &pem::Error) -> String {
    format!("not valid PEM: {e}")
}

/// The certificate in force, shared by every DoT and DoH listener; store a new one to
/// swap it (new handshakes get it).
pub type CertSlot = Arc<ArcSwap<Certificate>>;

/// Hands rustls the certificate in the slot at each handshake.
#[derive(Debug)]
pub(crate) struct CertResolver(pub(crate) CertSlot);

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load().key.clone())
    }
}
