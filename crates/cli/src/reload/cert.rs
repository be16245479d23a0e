//! The reloader applied to the certificate of the DoT and DoH listeners: [`CertSource`]
//! reads `[tls] cert_file` and `key_file` again when either changes, and a pair that
//! loads is stored into the slot the listeners' certificate resolver reads at every
//! handshake. Connections already open keep theirs; a pair that does not load (a key
//! written before its certificate, a truncated file) keeps the running certificate and
//! is said in a WARN, once per distinct broken content.
//!
//! The same watching as the policy's ([`super::watch`]): directory watches, so that
//! certbot's `live/` symlinks repointed into `archive/` and cert-manager's `..data` swap
//! are seen, debounced, and compared by content, so a `touch` reloads nothing.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;
use tracing::warn;
use winsink_policy::TlsFiles;
use winsink_server::tls::{CertSlot, Certificate};

use super::{Changes, Loaded, Options, Reloader, Source};

/// The certificate in force, reloaded from its files.
pub(crate) struct CertSource {
    files: TlsFiles,
}

impl CertSource {
    fn paths(&self) -> Vec<PathBuf> {
        vec![self.files.cert_file.clone(), self.files.key_file.clone()]
    }
}

impl Source for CertSource {
    type Snapshot = Certificate;

    fn load(&self) -> anyhow::Result<Loaded<Certificate>> {
        let value = Certificate::load(&self.files)?;
        let warnings = value
            .validity_warning(std::time::SystemTime::now())
            .into_iter()
            .collect();
        Ok(Loaded {
            value,
            files: self.paths(),
            warnings,
            need_restart: Vec::new(),
        })
    }

    fn changes(&self, _old: &Certificate, new: &Certificate) -> Changes {
        Changes {
            applied: vec![format!(
                "[tls] certificate of the DoT and DoH listeners read again from {} \
                 ({} certificate{} in the chain); new connections get it",
                new.files().cert_file.display(),
                new.chain_len(),
                if new.chain_len() == 1 { "" } else { "s" }
            )],
            need_restart: Vec::new(),
            alarms: Vec::new(),
        }
    }

    fn failure_line(&self, err: &anyhow::Error) -> String {
        format!("the new certificate does not load; still serving the previous one: {err:#}")
    }

    fn log_failure(&self, err: &anyhow::Error) {
        warn!("{}", self.failure_line(err));
    }
}

/// Keeps `slot` in step with `files` until `shutdown`.
pub(crate) fn start(files: TlsFiles, slot: CertSlot, shutdown: CancellationToken) -> Reloader {
    let source = CertSource { files };
    let options = Options::new(source.paths(), Vec::new());
    super::spawn(std::sync::Arc::new(source), slot, options, shutdown)
}
