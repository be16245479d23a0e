//! How an encrypted upstream's certificate is checked, and DNS over TLS (RFC 7858).
//!
//! Each `tls://` or `https://` upstream gets one rustls [`ClientConfig`], made at start:
//! the system's roots (read once, by `rustls-native-certs`, which honours
//! `SSL_CERT_FILE` and `SSL_CERT_DIR` as OpenSSL does), or the certificates of its
//! `ca_file` only, checked for [`Upstream::tls_name`]. `insecure_skip_verify = true`
//! keeps the handshake's signatures checked but accepts any certificate; the server
//! says so with a WARN at every start. The crypto provider is `ring`.
//!
//! DoT goes through hickory-net's [`tls_exchange`](hickory_net::tls::tls_exchange): one
//! TLS connection carries many queries at once (RFC 7766 pipelining, each with its own
//! id, answers in any order), kept by the forwarder until it fails.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_net::runtime::TokioRuntimeProvider;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tracing::warn;
use winsink_policy::Upstream;

use super::{net_failure, Exchange, Failure};

/// Most queries in flight on one DoT connection (hickory's default is 32): as many as
/// the server lets wait for upstreams at all.
const MAX_IN_FLIGHT: usize = crate::listen::MAX_FORWARDS;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trusted roots, read once for every upstream without a `ca_file`.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                warn!("reading the system's trusted certificates: {e}");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            if ignored > 0 {
                warn!("{ignored} of the system's trusted certificates do not parse; ignored");
            }
            if added == 0 {
                warn!(
                    "no trusted root certificates found (system store, SSL_CERT_FILE, \
                     SSL_CERT_DIR): tls:// and https:// upstreams without ca_file will \
                     fail to verify"
                );
            }
            Arc::new(roots)
        })
        .clone()
}

/// The roots of a `ca_file`.
fn file_roots(path: &std::path::Path) -> Result<Arc<RootCertStore>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "ca_file {}: no usable CA certificate in it",
            path.display()
        ));
    }
    Ok(Arc::new(roots))
}

/// The client side of an encrypted upstream: its rustls config and the name checked.
#[derive(Clone)]
pub(super) struct Dialer {
    pub(super) config: Arc<ClientConfig>,
    pub(super) name: ServerName<'static>,
    /// [`Self::name`] as text (the HTTP/2 client takes it so).
    pub(super) name_text: Arc<str>,
}

impl Dialer {
    /// The config for `upstream` (`ca_file` read now); the WARN of an
    /// `insecure_skip_verify` upstream is given here, at every start.
    pub(super) fn new(upstream: &Upstream, alpn: &[&[u8]]) -> Result<Self, String> {
        let text = upstream.tls_name();
        let name = ServerName::try_from(text.clone())
            .map_err(|e| format!("{text:?} is not a name a certificate can be checked for: {e}"))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let mut config = if upstream.verify.insecure_skip_verify {
            warn!(
                upstream = %upstream,
                "upstream {upstream}: insecure_skip_verify = true: its certificate is NOT \
                 checked, so anyone on the path can answer in its name"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
                .with_no_client_auth()
        } else {
            let roots = match &upstream.verify.ca_file {
                Some(path) => file_roots(path)?,
                None => system_roots(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            config: Arc::new(config),
            name,
            name_text: text.into(),
        })
    }
}

/// A new DoT connection to `addr`, ready for queries.
pub(super) async fn connect(
    addr: SocketAddr,
    dialer: &Dialer,
    timeout: Duration,
    provider: TokioRuntimeProvider,
) -> Result<Exchange, Failure> {
    hickory_net::tls::tls_exchange(
        addr,
        dialer.name.clone(),
        (*dialer.config).clone(),
        timeout,
        Some(MAX_IN_FLIGHT),
        provider,
    )
    .await
    .map_err(|e| net_failure("tls", &e))
}

/// `insecure_skip_verify = true`: any certificate is accepted, but the handshake's
/// signatures are still checked, so the connection is at least to the key holder.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
