//! Shared fixtures for rookery-tls's integration tests: a data directory with certbot's layout, a TLS server on
//! 127.0.0.1:0 that reports what it saw of each connection, and a client.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of this module

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rookery_test_support::TestCa;
use rookery_tls::rustls::pki_types::{CertificateDer, ServerName};
use rookery_tls::rustls::{CertificateError, ClientConfig, ProtocolVersion, ServerConfig};
use rookery_tls::tokio_rustls::client::TlsStream;
use rookery_tls::tokio_rustls::{TlsAcceptor, TlsConnector};
use rookery_tls::{CertStore, tls_exporter};
use tempfile::TempDir;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

pub const DOMAIN: &str = "example.test";
pub const GROUPS: &str = "groups.example.test";
pub const SHARE: &str = "share.example.test";
pub const HOSTS: [&str; 3] = [DOMAIN, GROUPS, SHARE];

pub fn hosts() -> Vec<String> {
    HOSTS.map(str::to_owned).to_vec()
}

/// A data directory laid out like a Snikket volume, and a CA for its certificates.
pub struct Fixture {
    pub dir: TempDir,
    pub ca: TestCa,
}

impl Fixture {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            ca: TestCa::new(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("letsencrypt/live").join(DOMAIN)
    }

    pub fn self_signed_dir(&self) -> PathBuf {
        self.dir.path().join("rookery/self-signed")
    }

    /// Installs a CA-issued certificate for all three hosts in the certificate directory.
    pub fn install(&self) {
        self.ca.install_certbot_layout(&self.cert_dir(), &HOSTS);
    }

    pub fn open(&self) -> Arc<CertStore> {
        Arc::new(
            CertStore::open(&self.cert_dir(), &self.data_dir(), &hosts()).expect("open the store"),
        )
    }

    pub fn write(&self, file: &str, contents: impl AsRef<[u8]>) {
        std::fs::create_dir_all(self.cert_dir()).expect("create the certificate directory");
        let path = self.cert_dir().join(file);
        // Replace rather than write through: the file may be a symlink into archive/.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, contents).expect("write");
    }
}

/// What the server saw of one connection.
#[derive(Debug)]
pub struct ServerSide {
    pub version: Option<ProtocolVersion>,
    pub alpn: Option<Vec<u8>>,
    pub sni: Option<String>,
    pub exporter: Option<Vec<u8>>,
    pub client_certificates: Option<Vec<CertificateDer<'static>>>,
}

/// A TLS server on 127.0.0.1:0 serving one `ServerConfig`, reporting every handshake's outcome.
pub struct TestServer {
    pub addr: SocketAddr,
    outcomes: Mutex<mpsc::UnboundedReceiver<Result<ServerSide, String>>>,
}

impl TestServer {
    pub async fn start(config: Arc<ServerConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = mpsc::unbounded_channel();
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(mut tls) => {
                            let conn = tls.get_ref().1;
                            let side = ServerSide {
                                version: conn.protocol_version(),
                                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                                sni: conn.server_name().map(str::to_owned),
                                exporter: tls_exporter(conn),
                                client_certificates: conn.peer_certificates().map(|chain| {
                                    chain.iter().map(|c| c.clone().into_owned()).collect()
                                }),
                            };
                            let _ = tx.send(Ok(side));
                            // Hold the connection until the client goes away.
                            let mut buf = [0u8; 64];
                            while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                });
            }
        });
        Self {
            addr,
            outcomes: Mutex::new(rx),
        }
    }

    /// The server's view of the next connection that finished (or failed) its handshake.
    pub async fn next(&self) -> Result<ServerSide, String> {
        let mut outcomes = self.outcomes.lock().await;
        tokio::time::timeout(Duration::from_secs(10), outcomes.recv())
            .await
            .expect("the server reports within 10 s")
            .expect("the server task runs")
    }

    pub async fn connect(
        &self,
        client: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<TlsStream<TcpStream>> {
        connect(self.addr, client, server_name).await
    }
}

pub async fn connect(
    addr: SocketAddr,
    client: Arc<ClientConfig>,
    server_name: &str,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).expect("valid server name");
    TlsConnector::from(client).connect(name, tcp).await
}

/// The end-entity certificate the server presented.
pub fn peer_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("the server sent certificates")[0]
        .clone()
        .into_owned()
}

/// The certificate problem a client reported, when its handshake failed for one.
pub fn certificate_error(err: &io::Error) -> Option<&CertificateError> {
    match err.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(problem) => Some(problem),
        _ => None,
    }
}

pub fn is_name_mismatch(err: &io::Error) -> bool {
    matches!(
        certificate_error(err),
        Some(CertificateError::NotValidForNameContext { .. })
    )
}

pub fn is_unknown_issuer(err: &io::Error) -> bool {
    matches!(
        certificate_error(err),
        Some(CertificateError::UnknownIssuer)
    )
}
