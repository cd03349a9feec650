//! The real server, in-process, on `127.0.0.1:0`, with a fresh data directory and a test CA's certificate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rookery::{Listeners, RunningServer};
use rookery_config::{Config, Limits};
use rookery_sasl::Credentials;
use rookery_store::Role;
use tokio::net::TcpListener;

use crate::TestCa;
use crate::client::TestClient;

/// The domain every test server serves.
pub const TEST_DOMAIN: &str = "rookery.test";

/// A running test server.
pub struct TestServer {
    running: Option<RunningServer>,
    /// The STARTTLS client port.
    pub c2s: SocketAddr,
    /// The direct TLS client port.
    pub c2s_direct_tls: SocketAddr,
    pub ca: TestCa,
    pub domain: String,
    pub data_dir: tempfile::TempDir,
}

/// A change to the internal limits of a test server.
pub type LimitsChange = Box<dyn FnOnce(&mut Limits) + Send>;

/// Adjusts a test server before it starts.
#[derive(Default)]
pub struct TestOptions {
    /// Extra SNIKKET_* variables.
    pub vars: Vec<(String, String)>,
    /// Changes to the internal limits.
    pub limits: Option<LimitsChange>,
    /// Don't install a CA-signed certificate: the server must make its self-signed one.
    pub no_certificate: bool,
}

impl TestServer {
    /// A server with default settings.
    pub async fn start() -> Self {
        Self::start_with(TestOptions::default()).await
    }

    /// A server with options.
    pub async fn start_with(options: TestOptions) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let ca = TestCa::new();
        let domain = TEST_DOMAIN.to_owned();
        if !options.no_certificate {
            let live = data_dir.path().join("letsencrypt/live").join(&domain);
            let groups = format!("groups.{domain}");
            let share = format!("share.{domain}");
            ca.install_certbot_layout(&live, &[&domain, &groups, &share]);
        }
        let mut vars: HashMap<String, String> = [
            ("SNIKKET_DOMAIN", domain.as_str()),
            ("SNIKKET_ADMIN_EMAIL", "admin@rookery.test"),
            ("SNIKKET_TWEAK_INTERFACES", "127.0.0.1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.insert(
            "SNIKKET_TWEAK_DATA_DIR".into(),
            data_dir.path().display().to_string(),
        );
        vars.extend(options.vars);
        let mut config = Config::from_map(&vars).expect("test configuration").config;
        if let Some(change) = options.limits {
            change(&mut config.limits);
        }
        let c2s = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let c2s_direct_tls = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addrs = (
            c2s.local_addr().expect("addr"),
            c2s_direct_tls.local_addr().expect("addr"),
        );
        let listeners = Listeners {
            c2s: vec![c2s],
            c2s_direct_tls: vec![c2s_direct_tls],
        };
        let running = rookery::start(config, listeners)
            .await
            .expect("server start");
        Self {
            running: Some(running),
            c2s: addrs.0,
            c2s_direct_tls: addrs.1,
            ca,
            domain,
            data_dir,
        }
    }

    /// The running server's shared state.
    pub fn server(&self) -> &Arc<rookery_core::Server> {
        &self.running.as_ref().expect("running").server
    }

    /// A TLS client configuration trusting the test CA.
    pub fn tls_client(&self) -> Arc<rustls::ClientConfig> {
        self.ca.client_config(&[])
    }

    /// Creates an account directly in the database.
    pub async fn add_user(&self, name: &str, password: &str) {
        let credentials = Credentials::from_password(password).expect("password");
        self.server()
            .store
            .accounts()
            .create(name, &credentials, Role::Normal)
            .await
            .expect("create account");
    }

    /// A client connected with STARTTLS, not logged in.
    pub async fn connect(&self) -> TestClient {
        TestClient::connect_starttls(self.c2s, &self.domain, self.tls_client())
            .await
            .expect("connect")
    }

    /// A client logged in with SCRAM-SHA-1 and bound to `resource`.
    pub async fn login(&self, user: &str, password: &str, resource: Option<&str>) -> TestClient {
        let mut client = self.connect().await;
        client
            .login(user, password, "SCRAM-SHA-1")
            .await
            .expect("login");
        client.bind(resource).await.expect("bind");
        client
    }

    /// Stops the server, waiting for its connections to end.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}
