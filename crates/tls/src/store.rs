//! The certificate store: which certificate is served, where it came from, and swapping it when the disk changes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::ResolvesServerCert;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ConfigBuilder, ServerConfig, WantsVerifier};
use rustls_pki_types::CertificateDer;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::material::{Fingerprint, PemFiles, ServedCert, normalize_name};
use crate::resolver::{ClientResolver, ServerResolver};
use crate::{TlsError, TlsProfile, crypto_provider, self_signed};

/// Where the served certificate came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertSource {
    /// The certificate directory (certbot's live/ layout); the path is its `fullchain.pem`.
    Disk(PathBuf),
    /// The self-signed fallback; the path is its `cert.pem`.
    SelfSigned(PathBuf),
}

/// What `rookery check` reports about the served certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertStatus {
    pub source: CertSource,
    /// The DNS names in the certificate's subjectAltName (lower-case; may hold wildcards).
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// Hosts this server serves that the certificate does not cover; clients connecting to them will reject it.
    pub missing_names: Vec<String>,
    /// Why the files in the certificate directory are not being served, when they exist but are broken (the
    /// last error from `open` or `reload`); `None` when they are served or simply absent.
    pub disk_error: Option<String>,
}

impl CertStatus {
    /// Whether clients can be expected to accept the certificate at `now`: from disk, inside its validity period and
    /// covering every host. (Whether a public CA issued it is for the clients to say.)
    pub fn looks_trustworthy_at(&self, now: SystemTime) -> bool {
        matches!(self.source, CertSource::Disk(_))
            && self.not_before <= now
            && now < self.not_after
            && self.missing_names.is_empty()
    }
}

/// Bookkeeping between reloads, so that a broken file is logged once rather than at every check.
#[derive(Default)]
struct ReloadState {
    /// The broken content last rejected, with its error message.
    rejected: Option<(Option<Fingerprint>, String)>,
    /// Set once the "certificate files disappeared" warning has been logged.
    warned_gone: bool,
}

/// The server's certificate, shared as `Arc<CertStore>` by every listener.
pub struct CertStore {
    cert_dir: PathBuf,
    self_signed_dir: PathBuf,
    /// The hosts served (DOMAIN, groups.DOMAIN, share.DOMAIN), normalised.
    hosts: Vec<String>,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<ServedCert>,
    /// Also serialises reloads, so the periodic reloader and an ACME renewal never race on the swap.
    reload_state: Mutex<ReloadState>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_dir", &self.cert_dir)
            .field("hosts", &self.hosts)
            .field("source", &self.current.load().source)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads `<cert_dir>/fullchain.pem` + `privkey.pem` (certbot's layout: `cert_dir` =
    /// `<data>/letsencrypt/live/<DOMAIN_ASCII>`).
    ///
    /// When none is there, or what is there is broken (logged as an error and reported by
    /// [`status`](Self::status)), serves a self-signed certificate for `names` kept at
    /// `<data_dir>/rookery/self-signed/{cert,key}.pem`, re-made when missing, near expiry or not covering the names,
    /// and logs a loud warning. Fails only when there are no names or the self-signed certificate cannot be written.
    pub fn open(cert_dir: &Path, data_dir: &Path, names: &[String]) -> Result<Self, TlsError> {
        let mut hosts: Vec<String> = Vec::with_capacity(names.len());
        for host in names.iter().map(|name| normalize_name(name)) {
            if !host.is_empty() && !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        if hosts.is_empty() {
            return Err(TlsError::NoNames);
        }
        let provider = crypto_provider();
        let self_signed_dir = data_dir.join("rookery").join("self-signed");
        let (cert_path, key_path) = disk_paths(cert_dir);
        let mut state = ReloadState::default();

        let from_disk = match PemFiles::read(cert_path.clone(), key_path) {
            Ok(Some(files)) => {
                let source = CertSource::Disk(cert_path.clone());
                match ServedCert::parse(&files, source, &hosts, &provider) {
                    Ok(served) => Some(served),
                    Err(e) => {
                        error!("cannot use the certificate in {}: {e}", cert_dir.display());
                        state.rejected = Some((Some(files.fingerprint()), e.to_string()));
                        None
                    }
                }
            }
            Ok(None) => None,
            Err(e) => {
                error!("cannot use the certificate in {}: {e}", cert_dir.display());
                state.rejected = Some((None, e.to_string()));
                None
            }
        };
        let served = match from_disk {
            Some(served) => {
                announce_disk_cert(&served);
                served
            }
            None => {
                let served = self_signed::load_or_create(&self_signed_dir, &hosts, &provider)?;
                warn_self_signed(&served, cert_dir);
                served
            }
        };

        Ok(Self {
            cert_dir: cert_dir.to_owned(),
            self_signed_dir,
            hosts,
            provider,
            current: ArcSwap::from_pointee(served),
            reload_state: Mutex::new(state),
        })
    }

    /// Re-reads the certificate directory and swaps in its certificate if it changed (or appeared). Returns whether
    /// it swapped.
    ///
    /// Both files are read every time and compared by digest: they are a few kilobytes, and neither mtime (which
    /// has one-second resolution on some file systems) nor the symlink targets (which certbot may reuse) tell
    /// reliably that they changed. When the new files are broken or inconsistent (key doesn't match certificate,
    /// as happens for a moment while files are copied one at a time) the old certificate stays, the error is logged
    /// once for that content, and returned. When the files disappear, the certificate in memory stays too.
    ///
    /// While serving the self-signed fallback this also renews it when it gets close to expiry.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let mut state = self
            .reload_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load_full();
        let (cert_path, key_path) = disk_paths(&self.cert_dir);

        let files = match PemFiles::read(cert_path.clone(), key_path) {
            Ok(Some(files)) => files,
            Ok(None) => {
                state.rejected = None;
                return self.without_disk_files(&current, &mut state);
            }
            Err(e) => return Err(self.reject(&mut state, None, e)),
        };
        state.warned_gone = false;
        let fingerprint = files.fingerprint();
        if current.fingerprint == fingerprint {
            // Also the way back from a broken state: the files were put back as they were.
            state.rejected = None;
            return Ok(false);
        }
        match ServedCert::parse(
            &files,
            CertSource::Disk(cert_path),
            &self.hosts,
            &self.provider,
        ) {
            Ok(served) => {
                announce_disk_cert(&served);
                self.current.store(Arc::new(served));
                state.rejected = None;
                Ok(true)
            }
            Err(e) => Err(self.reject(&mut state, Some(fingerprint), e)),
        }
    }

    /// A tokio task that calls [`reload`](Self::reload) every `interval` (first after one interval: `open` has just
    /// read the files) until `cancel` fires. Errors are logged by `reload` itself.
    pub fn spawn_reloader(
        self: Arc<Self>,
        interval: Duration,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
            // After a stall (a suspended VM), check once and carry on, rather than catching up a burst of checks.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                let store = Arc::clone(&self);
                // File reads and, rarely, key generation block; keep them off the async workers.
                if let Err(e) = tokio::task::spawn_blocking(move || store.reload()).await {
                    error!("certificate reload task failed: {e}");
                }
            }
        })
    }

    /// A rustls `ServerConfig` for a listener: the given profile's TLS versions, these ALPN protocols (e.g.
    /// `b"xmpp-client"`; empty for STARTTLS listeners), and certificates resolved through this store at every
    /// handshake, so that a reload applies to every config already handed out.
    ///
    /// `ignore_client_order` stays false: every suite either profile allows is an AEAD with forward secrecy, and the
    /// client knows best whether it has AES hardware (phones without it list ChaCha20-Poly1305 first, which is both
    /// faster and kinder to their batteries). This is Mozilla's recommendation for both profiles too.
    pub fn server_config(
        self: &Arc<Self>,
        profile: TlsProfile,
        alpn: &[&[u8]],
    ) -> Arc<ServerConfig> {
        let config = self
            .server_config_builder(profile)
            .with_no_client_auth()
            .with_cert_resolver(self.resolver());
        Arc::new(finish_server_config(config, alpn))
    }

    /// Like [`server_config`](Self::server_config), asking for client certificates checked by `verifier`: federation
    /// listeners, where peers authenticate with SASL EXTERNAL.
    pub fn server_config_with_client_auth(
        self: &Arc<Self>,
        profile: TlsProfile,
        alpn: &[&[u8]],
        verifier: Arc<dyn ClientCertVerifier>,
    ) -> Arc<ServerConfig> {
        let config = self
            .server_config_builder(profile)
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.resolver());
        Arc::new(finish_server_config(config, alpn))
    }

    /// The handshake-time resolver behind [`server_config`](Self::server_config), for listeners that build their
    /// own configuration.
    pub fn resolver(self: &Arc<Self>) -> Arc<dyn ResolvesServerCert> {
        Arc::new(ServerResolver {
            store: Arc::clone(self),
        })
    }

    /// A client-certificate resolver presenting this store's current certificate, for outgoing federation
    /// connections (`ClientConfig::builder()...with_client_cert_resolver`).
    pub fn client_cert_resolver(self: &Arc<Self>) -> Arc<dyn ResolvesClientCert> {
        Arc::new(ClientResolver {
            store: Arc::clone(self),
        })
    }

    /// The certificate chain and key served right now.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.load().key)
    }

    /// The end-entity certificate served right now.
    pub fn end_entity_certificate(&self) -> CertificateDer<'static> {
        self.current.load().end_entity().clone()
    }

    /// RFC 5929 `tls-server-end-point` channel-binding data for the certificate currently served (see
    /// [`tls_server_end_point_for`](crate::tls_server_end_point_for) for the hash choice).
    ///
    /// A connection whose handshake finished just before a reload saw the previous certificate; the window is the
    /// time between a handshake and its SASL exchange, once per renewal, and a client that hits it fails one
    /// authentication attempt and retries.
    pub fn tls_server_end_point(&self) -> Vec<u8> {
        self.current.load().end_point.clone()
    }

    /// For `rookery check`: where the certificate came from, its names, validity, and which hosts it misses.
    pub fn status(&self) -> CertStatus {
        let served = self.current.load();
        let disk_error = self
            .reload_state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rejected
            .as_ref()
            .map(|(_, message)| message.clone());
        CertStatus {
            source: served.source.clone(),
            names: served.names.clone(),
            not_before: served.not_before,
            not_after: served.not_after,
            missing_names: served.missing_names.clone(),
            disk_error,
        }
    }

    /// The hosts this store serves a certificate for, normalised.
    pub fn host_names(&self) -> &[String] {
        &self.hosts
    }

    /// Whether `name` is one of the hosts this store serves.
    pub(crate) fn serves_host(&self, name: &str) -> bool {
        let name = normalize_name(name);
        self.hosts.contains(&name)
    }

    fn server_config_builder(
        &self,
        profile: TlsProfile,
    ) -> ConfigBuilder<ServerConfig, WantsVerifier> {
        ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(profile.versions())
            .expect("aws-lc-rs has cipher suites for TLS 1.2 and 1.3")
    }

    /// The certificate directory is empty (again): keep what is served, renewing the self-signed one when due.
    fn without_disk_files(
        &self,
        current: &ServedCert,
        state: &mut ReloadState,
    ) -> Result<bool, TlsError> {
        match &current.source {
            CertSource::Disk(path) => {
                if !state.warned_gone {
                    warn!(
                        "{} and privkey.pem are gone; still serving the certificate loaded from them before",
                        path.display()
                    );
                    state.warned_gone = true;
                }
                Ok(false)
            }
            CertSource::SelfSigned(_) => {
                if self_signed::still_fits(current, SystemTime::now()) {
                    return Ok(false);
                }
                let served =
                    self_signed::create(&self.self_signed_dir, &self.hosts, &self.provider)?;
                warn_self_signed(&served, &self.cert_dir);
                self.current.store(Arc::new(served));
                Ok(true)
            }
        }
    }

    /// Records and logs (once per distinct problem) why new files were not taken.
    fn reject(
        &self,
        state: &mut ReloadState,
        fingerprint: Option<Fingerprint>,
        error: TlsError,
    ) -> TlsError {
        let rejected = (fingerprint, error.to_string());
        if state.rejected.as_ref() != Some(&rejected) {
            error!(
                "cannot use the new certificate in {}: {error}; still serving the previous one",
                self.cert_dir.display()
            );
            state.rejected = Some(rejected);
        }
        error
    }
}

fn finish_server_config(mut config: ServerConfig, alpn: &[&[u8]]) -> ServerConfig {
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    config.ignore_client_order = false;
    config
}

fn disk_paths(cert_dir: &Path) -> (PathBuf, PathBuf) {
    (cert_dir.join("fullchain.pem"), cert_dir.join("privkey.pem"))
}

fn announce_disk_cert(served: &ServedCert) {
    let CertSource::Disk(path) = &served.source else {
        return;
    };
    info!(
        path = %path.display(),
        names = %served.names.join(", "),
        not_after = %time::OffsetDateTime::from(served.not_after),
        "serving the certificate from disk"
    );
    if !served.missing_names.is_empty() {
        warn!(
            "the certificate in {} does not cover {}; clients connecting to {} will reject it. \
             Get a certificate that includes every host (DOMAIN, groups.DOMAIN and share.DOMAIN)",
            path.display(),
            served.missing_names.join(", "),
            if served.missing_names.len() == 1 {
                "that host"
            } else {
                "those hosts"
            },
        );
    }
    if !served.is_valid_at(SystemTime::now()) {
        warn!(
            "the certificate in {} is outside its validity period ({} to {}); clients will reject it",
            path.display(),
            time::OffsetDateTime::from(served.not_before),
            time::OffsetDateTime::from(served.not_after),
        );
    }
}

fn warn_self_signed(served: &ServedCert, cert_dir: &Path) {
    let path = match &served.source {
        CertSource::SelfSigned(path) | CertSource::Disk(path) => path,
    };
    warn!(
        "NO CERTIFICATE in {dir}: serving a SELF-SIGNED certificate for {names} (kept at {path}). \
         Apps and other XMPP servers will NOT trust it: clients will refuse to connect or warn their users, and \
         federation will fail. To fix it, put fullchain.pem and privkey.pem for these names in {dir} (certbot's \
         layout, e.g. from certbot itself); a new certificate there is picked up without a restart. (Rookery's own \
         ACME client is not built yet.)",
        dir = cert_dir.display(),
        names = served.names.join(", "),
        path = path.display(),
    );
}
