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

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use winsink_policy::TlsFiles;

use crate::ServerError;

/// A certificate chain and its private key, checked to belong together.
#[derive(Clone)]
pub struct Certificate {
    key: Arc<CertifiedKey>,
    files: TlsFiles,
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
        Ok(Self {
            key: Arc::new(key),
            files: files.clone(),
        })
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
