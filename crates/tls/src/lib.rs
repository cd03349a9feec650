//! Rookery's TLS certificates and listener configuration.
//!
//! One [`CertStore`] serves the certificate for `DOMAIN`, `groups.DOMAIN` and `share.DOMAIN`. It reads certbot's
//! layout (`<data>/letsencrypt/live/<DOMAIN_ASCII>/{fullchain,privkey}.pem`) so that an existing Snikket volume keeps
//! its certificate, falls back to a persisted self-signed certificate when there is none, and swaps in a renewed
//! certificate without a restart: every [`rustls::ServerConfig`] it hands out resolves the certificate through the
//! store at handshake time.
//!
//! The crate also owns the TLS side of SASL channel binding ([`tls_exporter`], [`CertStore::tls_server_end_point`]).
#![forbid(unsafe_code)]

mod binding;
mod error;
mod material;
mod profile;
mod resolver;
mod self_signed;
mod store;

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;

pub use binding::{TLS_EXPORTER_LABEL, tls_exporter, tls_server_end_point_for};
pub use error::TlsError;
pub use profile::TlsProfile;
pub use store::{CertSource, CertStatus, CertStore};

/// Re-exported so that listeners and tests use exactly the rustls this crate builds configurations with.
pub use rustls;
pub use tokio_rustls;

/// Installs aws-lc-rs as rustls' process-wide provider; safe to call many times.
///
/// Rookery's own configurations name their provider explicitly ([`crypto_provider`]), so this only matters for
/// libraries that build rustls configurations from the process default (HTTP and ACME clients): with both ring and
/// aws-lc-rs in the dependency tree, rustls cannot pick one by itself and would panic.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race against another caller is fine: the winner installed a provider already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The aws-lc-rs provider every configuration from this crate uses, shared rather than rebuilt per listener.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_the_provider_twice_is_harmless() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(CryptoProvider::get_default().is_some());
        assert!(Arc::ptr_eq(&crypto_provider(), &crypto_provider()));
    }
}
