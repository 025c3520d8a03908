//! The serving certificate, read again whenever its files change (as
//! cert-manager and the kubelet rotate a Secret's files), without a restart
//! and without dropping a connection.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tracing::{info, warn};

use crate::error::Error;
use crate::metrics::Metrics;

/// How often the files are looked at. The kubelet updates a mounted Secret
/// a minute or so after it changed, so a second more costs nothing; a
/// `stat` of two files a second costs nothing either.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies a version of a file: a Secret volume swaps a symlink to
/// a new directory, so the inode changes even when the times do not.
type Stamp = Option<(SystemTime, u64, u64)>;

/// The certificate and key in use, and where they are read from.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    seen: Mutex<(Stamp, Stamp)>,
    provider: Arc<CryptoProvider>,
}

// === impl CertStore ===

impl CertStore {
    /// Reads the certificate chain and key, or says why they cannot serve.
    pub fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, Error> {
        let seen = (stamp(cert), stamp(key));
        let current = read(cert, key, &provider).map_err(|reason| Error::Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason,
        })?;
        Ok(CertStore {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(current)),
            seen: Mutex::new(seen),
            provider,
        })
    }

    /// Reads the files again if they changed since last seen: `None` when
    /// they did not, else whether the new pair is in use. A pair that
    /// cannot serve (a half-written file, a key of another certificate)
    /// leaves the old one in use; it is tried again once a file changes.
    pub fn reload_if_changed(&self) -> Option<Result<(), String>> {
        let now = (stamp(&self.cert), stamp(&self.key));
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return None;
            }
            *seen = now;
        }
        Some(read(&self.cert, &self.key, &self.provider).map(|fresh| {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        }))
    }

    /// Looks at the files every [`CHECK_INTERVAL`], for ever.
    pub async fn watch(self: Arc<Self>, metrics: Arc<Metrics>) {
        let mut tick = tokio::time::interval(CHECK_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.reload_if_changed() {
                None => {}
                Some(Ok(())) => {
                    metrics.reloaded(true);
                    info!(cert = %self.cert.display(), "serving certificate reloaded");
                }
                Some(Err(reason)) => {
                    metrics.reloaded(false);
                    warn!(cert = %self.cert.display(), key = %self.key.display(),
                        "the certificate files changed but cannot serve ({reason}): the previous certificate stays in use");
                }
            }
        }
    }

    /// A rustls configuration that serves whatever certificate is current,
    /// over HTTP/2 or HTTP/1.1 (ALPN).
    pub fn server_config(self: Arc<Self>) -> Result<ServerConfig, Error> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls {
                cert: self.cert.clone(),
                key: self.key.clone(),
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(self);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// A file's version, `None` when it cannot be read.
fn stamp(path: &Path) -> Stamp {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = meta.ino();
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

/// Reads a PEM chain and key and checks that they belong together.
fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no PEM certificate in it", cert.display()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, key_der, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => "the key is not the certificate's".to_owned(),
        e => e.to_string(),
    })
}
