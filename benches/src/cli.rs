//! Command-line options shared by the load generators (`loadgen`, `imbench`): where the server is, TLS, SASL and
//! the account names and passwords.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, ValueEnum};

use crate::conn::{Auth, Security, Target};
use crate::scram::ScramHash;
use crate::tls;

/// How to reach the server and log in: the options every workload shares.
#[derive(Parser, Debug)]
pub struct ConnArgs {
    /// The server's c2s address.
    #[arg(long, default_value = "127.0.0.1:5222")]
    pub server: String,
    /// The XMPP domain.
    #[arg(long, default_value = "bench.local")]
    pub domain: String,
    /// STARTTLS (required) or no TLS at all.
    #[arg(long, value_enum, default_value_t = TlsMode::Starttls)]
    pub tls: TlsMode,
    /// Accept any server certificate (benchmark servers have self-signed ones).
    #[arg(long, conflicts_with = "ca_file")]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// SASL mechanism.
    #[arg(long, value_enum, default_value_t = Mechanism::ScramSha1)]
    pub auth: Mechanism,
    /// Account names are this prefix followed by a number.
    #[arg(long, default_value = "bench")]
    pub user_prefix: String,
    /// The number of the first account.
    #[arg(long, default_value_t = 1)]
    pub first_user: usize,
    /// The password pattern: `{n}` becomes the account number, `{user}` the account name.
    #[arg(long, default_value = "benchpass-{n}")]
    pub password: String,
    /// Seconds to wait for any single network step.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

/// `--tls`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TlsMode {
    Starttls,
    None,
}

/// `--auth`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mechanism {
    #[value(name = "scram-sha-1")]
    ScramSha1,
    #[value(name = "scram-sha-256")]
    ScramSha256,
    Plain,
    Anonymous,
}

/// A command-line number of seconds as a `Duration`.
pub fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| anyhow!("--{name} must be a non-negative number of seconds"))
}

impl ConnArgs {
    pub fn target(&self) -> anyhow::Result<Target> {
        let addr: SocketAddr = self
            .server
            .to_socket_addrs()
            .with_context(|| format!("bad --server {:?}", self.server))?
            .next()
            .ok_or_else(|| anyhow!("--server {:?} has no address", self.server))?;
        let security = match self.tls {
            TlsMode::None => Security::Plain,
            TlsMode::Starttls => {
                let trust = match (&self.ca_file, self.insecure) {
                    (Some(path), _) => tls::Trust::CaFile(path),
                    (None, true) => tls::Trust::Insecure,
                    (None, false) => bail!("STARTTLS needs --ca-file <PEM> or --insecure"),
                };
                Security::StartTls(tls::client_config(&trust)?)
            }
        };
        Ok(Target {
            addr,
            domain: self.domain.clone(),
            security,
            step_timeout: secs("timeout", self.timeout)?,
        })
    }

    /// The credentials of session `i` (0-based).
    pub fn auth(&self, i: usize) -> Auth {
        let n = self.first_user + i;
        let username = format!("{}{n}", self.user_prefix);
        let password = self
            .password
            .replace("{n}", &n.to_string())
            .replace("{user}", &username);
        match self.auth {
            Mechanism::ScramSha1 => Auth::Scram {
                hash: ScramHash::Sha1,
                username,
                password,
            },
            Mechanism::ScramSha256 => Auth::Scram {
                hash: ScramHash::Sha256,
                username,
                password,
            },
            Mechanism::Plain => Auth::Plain { username, password },
            Mechanism::Anonymous => Auth::Anonymous,
        }
    }
}
