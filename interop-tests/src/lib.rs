//! Runs the built `rookery` binary as a user would, and real peers against it.
//!
//! The binary is `$ROOKERY_BIN`, else `target/debug/rookery` (`cargo test --workspace` builds it before running any
//! test; `./scripts/test` builds it explicitly). Python peers run from `$ROOKERY_PYTHON`, else the `.venv` that
//! `./scripts/test` makes at the repository root.
#![forbid(unsafe_code)]

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use rookery_test_support::TestCa;

/// The domain the interop servers serve.
pub const DOMAIN: &str = "interop.test";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("interop-tests is inside the repository")
        .to_path_buf()
}

/// The `rookery` binary to test.
pub fn rookery_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ROOKERY_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    let bin = target.join("debug/rookery");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p rookery` or run ./scripts/test",
        bin.display()
    );
    bin
}

/// The Python interpreter that has the interop peers (slixmpp) installed.
pub fn python() -> PathBuf {
    if let Some(py) = std::env::var_os("ROOKERY_PYTHON") {
        return PathBuf::from(py);
    }
    let py = repo_root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: ./scripts/test installs the Python peers (slixmpp)",
        py.display()
    );
    py
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `rookery` process with its own data directory and ports.
pub struct Rookery {
    child: Option<Child>,
    pub data_dir: tempfile::TempDir,
    pub c2s: SocketAddr,
    pub c2s_direct_tls: SocketAddr,
    log_path: PathBuf,
    env: Vec<(String, String)>,
}

impl Rookery {
    /// The environment a `rookery` command needs to work on this instance.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Prepares an instance: data directory, ports, and (unless `certificate` is None) a CA-signed certificate in
    /// certbot's layout. Not started yet.
    pub fn new(certificate: Option<&TestCa>) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        if let Some(ca) = certificate {
            let live = data_dir.path().join("letsencrypt/live").join(DOMAIN);
            ca.install_certbot_layout(
                &live,
                &[
                    DOMAIN,
                    &format!("groups.{DOMAIN}"),
                    &format!("share.{DOMAIN}"),
                ],
            );
        }
        let c2s = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let c2s_direct_tls = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let env = vec![
            ("SNIKKET_DOMAIN".to_owned(), DOMAIN.to_owned()),
            ("SNIKKET_ADMIN_EMAIL".to_owned(), format!("admin@{DOMAIN}")),
            (
                "SNIKKET_TWEAK_DATA_DIR".to_owned(),
                data_dir.path().display().to_string(),
            ),
            (
                "SNIKKET_TWEAK_INTERFACES".to_owned(),
                "127.0.0.1".to_owned(),
            ),
            ("SNIKKET_TWEAK_C2S_PORT".to_owned(), c2s.port().to_string()),
            (
                "SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT".to_owned(),
                c2s_direct_tls.port().to_string(),
            ),
            ("SNIKKET_LOGLEVEL".to_owned(), "debug".to_owned()),
        ];
        let log_path = data_dir.path().join("rookery.log");
        Self {
            child: None,
            data_dir,
            c2s,
            c2s_direct_tls,
            log_path,
            env,
        }
    }

    /// Sets a variable of this instance's environment (`SNIKKET_SITE_NAME`, ...) before it starts.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Runs `rookery ARGS…` against this instance's configuration and returns its output.
    pub fn command(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(rookery_bin());
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().cloned())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run rookery");
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("rookery output")
    }

    /// `rookery user add NAME --password PW`, which must succeed.
    pub fn add_user(&self, name: &str, password: &str) {
        let out = self.command(&["user", "add", name, "--password", password], None);
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `rookery circle delete default`, which must succeed: for tests that need accounts to be strangers, since
    /// the server's first start puts every existing account in the default circle (mutual subscriptions at login).
    pub fn delete_default_circle(&self) {
        let out = self.command(&["circle", "delete", "default"], None);
        assert!(
            out.status.success(),
            "circle delete failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `rookery serve` and waits until it accepts client connections.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::create(&self.log_path)?;
        let mut cmd = Command::new(rookery_bin());
        cmd.arg("serve")
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(cmd.spawn().context("start rookery")?);
        let deadline = Instant::now() + Duration::from_secs(30);
        // Ready once it says so; the ports are bound a moment before.
        while TcpStream::connect(self.c2s).is_err() || !self.log().contains("Rookery is serving") {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "rookery exited with {status} before listening:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "rookery did not listen on {} within 30 s:\n{}",
                    self.c2s,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Stops the server with SIGTERM, as `docker stop` would, and waits for it.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where the database is.
    pub fn database(&self) -> PathBuf {
        self.data_dir.path().join("rookery/rookery.sqlite")
    }
}

impl Drop for Rookery {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a Python peer script from interop-tests/python with arguments; returns (success, stdout+stderr).
pub fn run_python(script: &str, args: &[String]) -> (bool, String) {
    let path = repo_root().join("interop-tests/python").join(script);
    let out = Command::new(python())
        .arg(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
