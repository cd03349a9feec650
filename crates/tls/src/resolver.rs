//! Certificate resolution at handshake time, which is what makes hot swap reach configurations already handed out.

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::debug;

use crate::CertStore;

/// Serves the store's current certificate on inbound connections.
#[derive(Debug)]
pub(crate) struct ServerResolver {
    pub(crate) store: Arc<CertStore>,
}

impl ResolvesServerCert for ServerResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Every host shares one certificate (certbot issues one with all three names), so SNI only decides whether
        // the name is worth a log line. Clients without SNI, and those asking for a name we don't host (scanners,
        // an address typed by hand), get the same certificate, as from Prosody or nginx: a handshake failure would
        // tell them less than the name mismatch they will see.
        if let Some(name) = client_hello
            .server_name()
            .filter(|name| !self.store.serves_host(name))
        {
            debug!(
                sni = name,
                "TLS client asked for a host this server does not serve"
            );
        }
        Some(self.store.certified_key())
    }
}

/// Presents the store's current certificate when this server is the TLS client, on outgoing federation links.
#[derive(Debug)]
pub(crate) struct ClientResolver {
    pub(crate) store: Arc<CertStore>,
}

impl ResolvesClientCert for ClientResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // rustls itself checks the key can sign with one of the peer's schemes, and goes on without a client
        // certificate if not.
        Some(self.store.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
