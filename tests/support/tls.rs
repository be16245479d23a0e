//! Test certificates: a CA made in the test, and leaf certificates it signs, written as
//! PEM files into a temporary folder (`rcgen`; RSA keys from the `rsa` crate, since ring
//! cannot generate them).
//!
//! ```ignore
//! let ca = TestCa::new();
//! let leaf = ca.leaf(&["dns.test", "127.0.0.1"], KeyKind::Ecdsa);
//! // ca.cert_pem(), leaf.cert, leaf.key: paths to PEM files.
//! ```

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256,
};

/// The kind of key a certificate is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// ECDSA P-256 with SHA-256.
    Ecdsa,
    /// RSA 2048 with SHA-256 (PKCS#1 v1.5 signatures).
    Rsa,
}

/// A certificate authority that lives for one test: its certificate is `ca.pem` in
/// [`TestCa::dir`], and every leaf it signs is written beside it.
pub(crate) struct TestCa {
    dir: tempfile::TempDir,
    params: CertificateParams,
    key: KeyPair,
    issued: usize,
}

/// A leaf certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    /// The certificate chain (the leaf, then the CA).
    pub(crate) cert: PathBuf,
    /// The leaf certificate alone.
    pub(crate) cert_only: PathBuf,
    /// The private key (PKCS#8).
    pub(crate) key: PathBuf,
}

fn key_pair(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::Ecdsa => KeyPair::generate().expect("ECDSA key"),
        KeyKind::Rsa => {
            use rsa::pkcs8::{EncodePrivateKey, LineEnding};
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
            let pem = key.to_pkcs8_pem(LineEnding::LF).expect("RSA key as PEM");
            KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).expect("RSA key pair")
        }
    }
}

impl TestCa {
    /// A fresh CA with an ECDSA key, `ca.pem` written.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: two CAs of one test are two issuers, not one with two keys.
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        params.distinguished_name.push(
            DnType::CommonName,
            format!("winsink test CA {}-{n}", std::process::id()),
        );
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = key_pair(KeyKind::Ecdsa);
        let cert = params.self_signed(&key).expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write ca.pem");
        Self {
            dir,
            params,
            key,
            issued: 0,
        }
    }

    /// The folder the PEM files are in.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (`ca.pem`), to trust.
    pub(crate) fn cert_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for `names` (DNS names or IP addresses, as subject
    /// alternative names), signed by this CA, with a key of `kind`. Each call writes
    /// new files (`leaf-N.pem`, `leaf-N.chain.pem`, `leaf-N.key`).
    pub(crate) fn leaf(&mut self, names: &[&str], kind: KeyKind) -> Leaf {
        self.leaf_with(names, kind, |_| {})
    }

    /// An ECDSA server certificate for `names` valid from midnight UTC of `from` to
    /// midnight UTC of `until` (year, month, day), as [`leaf`](Self::leaf) writes one.
    pub(crate) fn leaf_valid(
        &mut self,
        names: &[&str],
        from: (i32, u8, u8),
        until: (i32, u8, u8),
    ) -> Leaf {
        self.leaf_with(names, KeyKind::Ecdsa, |p| {
            p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
            p.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        })
    }

    fn leaf_with(
        &mut self,
        names: &[&str],
        kind: KeyKind,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Leaf {
        let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if kind == KeyKind::Rsa {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        adjust(&mut params);
        let key = key_pair(kind);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
        self.issued += 1;
        let n = self.issued;
        let ca = std::fs::read_to_string(self.cert_pem()).expect("read ca.pem");
        let leaf = Leaf {
            cert: self.dir.path().join(format!("leaf-{n}.chain.pem")),
            cert_only: self.dir.path().join(format!("leaf-{n}.pem")),
            key: self.dir.path().join(format!("leaf-{n}.key")),
        };
        std::fs::write(&leaf.cert, format!("{}{ca}", cert.pem())).expect("write chain");
        std::fs::write(&leaf.cert_only, cert.pem()).expect("write leaf");
        std::fs::write(&leaf.key, key.serialize_pem()).expect("write key");
        leaf
    }
}
