//! The `rookery` program: wiring the crates into one server, and the command-line tool.
//!
//! [`start`] takes an already-validated configuration and already-bound listeners, so that tests can run the real
//! server on `127.0.0.1:0` in-process; the binary binds the configured ports and calls the same function.
#![forbid(unsafe_code)]

pub mod cli;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rookery_config::Config;
use rookery_core::Server;
use rookery_net::{C2sListener, C2sMode, ConnectionLimiter, ResumableSessions};
use rookery_store::Store;
use rookery_tls::CertStore;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// How long connections get to say goodbye at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The sockets the server accepts on.
#[derive(Default)]
pub struct Listeners {
    /// Client connections with STARTTLS.
    pub c2s: Vec<TcpListener>,
    /// Client connections with direct TLS.
    pub c2s_direct_tls: Vec<TcpListener>,
}

impl Listeners {
    /// Binds every configured listener on every configured interface. A port of 0 turns a listener off.
    pub fn bind(config: &Config) -> anyhow::Result<Self> {
        let mut listeners = Self::default();
        for (port, list) in [
            (config.c2s_port, &mut listeners.c2s),
            (config.c2s_direct_tls_port, &mut listeners.c2s_direct_tls),
        ] {
            if port == 0 {
                continue;
            }
            for ip in &config.interfaces {
                let addr = SocketAddr::new(*ip, port);
                match bind_tcp(addr) {
                    Ok(listener) => list.push(listener),
                    // "All addresses" includes `::`; a machine without IPv6 still serves IPv4.
                    Err(err)
                        if ip.is_ipv6() && ip.is_unspecified() && config.interfaces.len() > 1 =>
                    {
                        tracing::warn!(%addr, %err, "cannot listen on IPv6; serving IPv4 only");
                    }
                    Err(err) => {
                        return Err(err).with_context(|| format!("cannot listen on {addr}"));
                    }
                }
            }
        }
        Ok(listeners)
    }
}

/// A listening socket. An IPv6 socket is IPv6-only, so that `0.0.0.0` and `::` can share a port.
fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// A running server.
pub struct RunningServer {
    pub server: Arc<Server>,
    pub certs: Arc<CertStore>,
    tracker: TaskTracker,
}

impl RunningServer {
    /// Stops accepting, tells every client `<system-shutdown/>`, and waits (bounded) for the connections to end.
    pub async fn stop(self) {
        self.server.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not close in time");
        }
        self.server.store.close().await;
    }
}

/// Opens the database and certificates and starts serving on `listeners`.
pub async fn start(config: Config, listeners: Listeners) -> anyhow::Result<RunningServer> {
    rookery_tls::install_crypto_provider();
    let config = Arc::new(config);
    let db_path = config.database_path();
    let store = Store::open_sqlite(&db_path)
        .await
        .with_context(|| format!("cannot open the database {}", db_path.display()))?;
    let certs = Arc::new(open_certificates(&config)?);

    let server = Server::new(
        Arc::clone(&config),
        store,
        rookery_modules::default_modules(),
    );
    rookery_modules::circles::ensure_default_circle(&server)
        .await
        .context("cannot create the default circle")?;
    let tracker = TaskTracker::new();
    tracker.spawn(
        Arc::clone(&certs)
            .spawn_reloader(config.limits.cert_reload_interval, server.shutdown.clone()),
    );
    tracker.spawn(rookery_modules::register::run_account_cleanup(Arc::clone(
        &server,
    )));
    tracker.spawn(rookery_modules::mam::run_archive_cleanup(Arc::clone(
        &server,
    )));

    let profile = tls_profile(&config);
    let limiter = ConnectionLimiter::new(
        config.limits.max_connections,
        config.limits.max_connections_per_ip,
    );
    let resumable = Arc::new(ResumableSessions::default());
    for (mode, list) in [
        (C2sMode::StartTls, listeners.c2s),
        (C2sMode::DirectTls, listeners.c2s_direct_tls),
    ] {
        // XEP-0368: direct TLS clients say ALPN "xmpp-client"; clients that send no ALPN are served as well.
        let alpn: &[&[u8]] = if mode == C2sMode::DirectTls {
            &[b"xmpp-client"]
        } else {
            &[]
        };
        let tls = certs.server_config(profile, alpn);
        for listener in list {
            let c2s = C2sListener {
                server: Arc::clone(&server),
                certs: Arc::clone(&certs),
                tls: Arc::clone(&tls),
                mode,
                limiter: Arc::clone(&limiter),
                resumable: Arc::clone(&resumable),
                tracker: tracker.clone(),
            };
            tracker.spawn(c2s.run(listener));
        }
    }
    tracing::info!(domain = %server.domain, "Rookery is serving");
    Ok(RunningServer {
        server,
        certs,
        tracker,
    })
}

/// The names the certificate must cover: the domain and its two service subdomains.
pub fn certificate_names(config: &Config) -> Vec<String> {
    vec![
        config.domain_ascii.clone(),
        format!("groups.{}", config.domain_ascii),
        format!("share.{}", config.domain_ascii),
    ]
}

fn open_certificates(config: &Config) -> anyhow::Result<CertStore> {
    let names = certificate_names(config);
    CertStore::open(&config.cert_dir(), &config.data_dir, &names)
        .context("cannot set up TLS certificates")
}

fn tls_profile(config: &Config) -> rookery_tls::TlsProfile {
    match config.tls_profile {
        rookery_config::TlsProfile::Modern => rookery_tls::TlsProfile::Modern,
        rookery_config::TlsProfile::Intermediate => rookery_tls::TlsProfile::Intermediate,
    }
}
