//! A small raw XMPP client for tests: it speaks exactly what a test asks for, including things a well-behaved
//! client never would (bad XML, huge stanzas, plaintext after STARTTLS).
//!
//! SASL runs through the `sasl` crate of the xmpp-rs project, an implementation independent of ours. That crate
//! cannot bind to `tls-server-end-point`, so for it this module has a SCRAM client of its own, built on the `sasl`
//! crate's primitives.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rookery_xml::{Element, Limits, StreamEvent, StreamParser, ns};
use rustls::pki_types::ServerName;
use sasl::client::Mechanism as _;
use sasl::common::scram::ScramProvider as _;
use sha2::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use x509_parser::oid_registry::{
    OID_PKCS1_MD5WITHRSAENC, OID_PKCS1_SHA1WITHRSA, OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256,
    OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
};
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// How long a test waits for the server before calling it a hang. Not a speed assertion: a generous bound so
/// that a broken server fails the test instead of blocking CI.
pub const PATIENCE: Duration = Duration::from_secs(20);

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while upgrading.
    Taken,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::Taken => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::Taken => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::Taken => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Self::Taken => Poll::Ready(Ok(())),
        }
    }
}

/// Which channel binding a SCRAM login uses. Any may be combined with any SCRAM mechanism, so that tests can
/// also send what the server must refuse (a binding with a non-PLUS mechanism, or none with a -PLUS one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// gs2 flag `n`: the client does not support channel binding.
    None,
    /// RFC 9266 `tls-exporter`, through the `sasl` crate's client.
    TlsExporter,
    /// RFC 5929 `tls-server-end-point` (see [`TestClient::tls_server_end_point`]), through this module's own
    /// SCRAM client.
    TlsServerEndPoint,
}

/// What the server ended a stream with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A `<stream:error>` with this condition, then the stream closed.
    StreamError(String),
    /// `</stream:stream>` or the connection closed without an error.
    Closed,
}

/// A test client connection.
pub struct TestClient {
    stream: Stream,
    parser: StreamParser,
    domain: String,
    /// The last stream features received.
    pub features: Option<Element>,
    /// The full JID once bound.
    pub jid: Option<String>,
    /// The `<text/>` of the last SASL `<failure/>`, if it had one.
    pub sasl_failure_text: Option<String>,
    read_buf: Vec<u8>,
    sync_counter: u64,
}

impl TestClient {
    /// A TCP connection with nothing sent yet.
    pub async fn connect_tcp(addr: SocketAddr, domain: &str) -> anyhow::Result<Self> {
        let tcp = tokio::time::timeout(PATIENCE, TcpStream::connect(addr)).await??;
        tcp.set_nodelay(true)?;
        Ok(Self {
            stream: Stream::Plain(tcp),
            parser: StreamParser::new(Limits::SERVER),
            domain: domain.to_owned(),
            features: None,
            jid: None,
            sasl_failure_text: None,
            read_buf: vec![0; 16 * 1024],
            sync_counter: 0,
        })
    }

    /// Connects with STARTTLS: stream, features, `<starttls/>`, handshake, new stream, features.
    pub async fn connect_starttls(
        addr: SocketAddr,
        domain: &str,
        tls: Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<Self> {
        let mut client = Self::connect_tcp(addr, domain).await?;
        client.open_stream().await?;
        let features = client.features.clone().context("no features")?;
        if !features.has_child("starttls", ns::TLS) {
            bail!("the server offers no STARTTLS: {features}");
        }
        client
            .send_raw(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await?;
        let proceed = client.next_element().await?;
        if !proceed.is("proceed", ns::TLS) {
            bail!("expected <proceed/>, got {proceed}");
        }
        client.upgrade_tls(tls).await?;
        client.open_stream().await?;
        Ok(client)
    }

    /// Connects with direct TLS (XEP-0368) and opens the stream.
    pub async fn connect_direct_tls(
        addr: SocketAddr,
        domain: &str,
        tls: Arc<rustls::ClientConfig>,
    ) -> anyhow::Result<Self> {
        let mut client = Self::connect_tcp(addr, domain).await?;
        client.upgrade_tls(tls).await?;
        client.open_stream().await?;
        Ok(client)
    }

    /// Runs the TLS handshake on the TCP connection.
    pub async fn upgrade_tls(&mut self, tls: Arc<rustls::ClientConfig>) -> anyhow::Result<()> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Taken) else {
            bail!("TLS is already on");
        };
        let name = ServerName::try_from(self.domain.clone())?;
        let tls =
            tokio::time::timeout(PATIENCE, TlsConnector::from(tls).connect(name, tcp)).await??;
        self.stream = Stream::Tls(Box::new(tls));
        self.parser.reset();
        Ok(())
    }

    /// The rustls client connection, once TLS is up.
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match &self.stream {
            Stream::Tls(s) => Some(s.get_ref().1),
            _ => None,
        }
    }

    /// Sends a stream header and reads the server's header and features.
    pub async fn open_stream(&mut self) -> anyhow::Result<()> {
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0' xml:lang='en'>",
            self.domain
        );
        self.send_raw(header.as_bytes()).await?;
        match self.next_event().await? {
            StreamEvent::Open(_) => {}
            other => bail!("expected a stream header, got {other:?}"),
        }
        let features = self.next_element().await?;
        if !features.is("features", ns::STREAMS) {
            bail!("expected stream features, got {features}");
        }
        self.features = Some(features);
        Ok(())
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        tokio::time::timeout(PATIENCE, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await??;
        Ok(())
    }

    /// Sends a stanza in the client namespace.
    pub async fn send(&mut self, el: &Element) -> anyhow::Result<()> {
        let mut out = Vec::new();
        el.write_to(&mut out, ns::CLIENT);
        self.send_raw(&out).await
    }

    /// The next stream event, reading as needed.
    pub async fn next_event(&mut self) -> anyhow::Result<StreamEvent> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(event);
            }
            let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut self.read_buf))
                .await
                .map_err(|_| anyhow!("the server sent nothing for {PATIENCE:?}"))??;
            if n == 0 {
                bail!("the server closed the connection");
            }
            self.parser.feed(&self.read_buf[..n]);
        }
    }

    /// The next top-level element.
    pub async fn next_element(&mut self) -> anyhow::Result<Element> {
        match self.next_event().await? {
            StreamEvent::Element(el) => Ok(el),
            other => bail!("expected an element, got {other:?}"),
        }
    }

    /// The next element for which `want` holds, skipping others (presence, pushes).
    pub async fn next_matching(
        &mut self,
        want: impl Fn(&Element) -> bool,
    ) -> anyhow::Result<Element> {
        loop {
            let el = self.next_element().await?;
            if want(&el) {
                return Ok(el);
            }
        }
    }

    /// Reads until the server ends the stream, and says how.
    pub async fn ending(&mut self) -> anyhow::Result<Ending> {
        let mut error = None;
        loop {
            let event = match self.next_event().await {
                Ok(e) => e,
                Err(err) if err.to_string().contains("closed the connection") => break,
                Err(err) if err.downcast_ref::<std::io::Error>().is_some() => break,
                Err(err) => return Err(err),
            };
            match event {
                StreamEvent::Element(el) if el.is("error", ns::STREAMS) => {
                    let condition = el
                        .children()
                        .find(|c| c.ns() == ns::STREAM_ERRORS && c.name() != "text")
                        .map(|c| c.name().to_owned())
                        .unwrap_or_default();
                    error = Some(condition);
                }
                StreamEvent::Close => break,
                _ => {}
            }
        }
        Ok(error.map_or(Ending::Closed, Ending::StreamError))
    }

    /// Logs in with a SCRAM mechanism or PLAIN, then restarts the stream. A -PLUS mechanism binds to
    /// `tls-exporter`; see [`login_with`](Self::login_with) for the other bindings. `Err` carries a
    /// [`SaslFailure`] with the condition when the server refused.
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
        mechanism: &str,
    ) -> anyhow::Result<()> {
        let binding = if mechanism.ends_with("-PLUS") {
            Binding::TlsExporter
        } else {
            Binding::None
        };
        self.login_with(user, password, mechanism, binding).await
    }

    /// Logs in with `mechanism` and `binding` exactly as asked, then restarts the stream. PLAIN takes only
    /// [`Binding::None`]. `Err` carries a [`SaslFailure`] with the condition when the server refused.
    pub async fn login_with(
        &mut self,
        user: &str,
        password: &str,
        mechanism: &str,
        binding: Binding,
    ) -> anyhow::Result<()> {
        let hash = match mechanism {
            "SCRAM-SHA-1" | "SCRAM-SHA-1-PLUS" => Some(ScramHash::Sha1),
            "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS" => Some(ScramHash::Sha256),
            "PLAIN" => None,
            other => bail!("the test client does not do {other}"),
        };
        let mut mech = match (hash, binding) {
            (None, Binding::None) => {
                let creds = sasl::common::Credentials::default()
                    .with_username(user)
                    .with_password(password);
                ClientMechanism::Sasl(Box::new(
                    sasl::client::mechanisms::Plain::from_credentials(creds)
                        .map_err(|e| anyhow!("{e:?}"))?,
                ))
            }
            (None, _) => bail!("PLAIN has no channel binding"),
            (Some(hash), Binding::TlsServerEndPoint) => {
                let data = self.tls_server_end_point()?;
                ClientMechanism::Scram(ScramClient::new(
                    hash,
                    user,
                    password,
                    "tls-server-end-point",
                    data,
                )?)
            }
            (Some(hash), Binding::None | Binding::TlsExporter) => {
                let cb = if binding == Binding::None {
                    // "y" would claim we think the server cannot bind; "n" says we do not support it.
                    sasl::common::ChannelBinding::None
                } else {
                    sasl::common::ChannelBinding::TlsExporter(self.tls_exporter()?)
                };
                let creds = sasl::common::Credentials::default()
                    .with_username(user)
                    .with_password(password)
                    .with_channel_binding(cb);
                ClientMechanism::Sasl(match hash {
                    ScramHash::Sha1 => Box::new(
                        sasl::client::mechanisms::Scram::<sasl::common::scram::Sha1>::from_credentials(
                            creds,
                        )
                        .map_err(|e| anyhow!("{e:?}"))?,
                    ),
                    ScramHash::Sha256 => Box::new(
                        sasl::client::mechanisms::Scram::<sasl::common::scram::Sha256>::from_credentials(
                            creds,
                        )
                        .map_err(|e| anyhow!("{e:?}"))?,
                    ),
                })
            }
        };
        let initial = mech.initial();
        let auth = Element::new("auth", ns::SASL)
            .with_attr("mechanism", mechanism)
            .with_text(if initial.is_empty() {
                "=".to_owned()
            } else {
                BASE64.encode(&initial)
            });
        self.send(&auth).await?;
        loop {
            let el = self.next_element().await?;
            if el.is("challenge", ns::SASL) {
                let challenge = BASE64.decode(el.text().trim())?;
                let response = mech.response(&challenge)?;
                let el = Element::new("response", ns::SASL).with_text(BASE64.encode(&response));
                self.send(&el).await?;
            } else if el.is("success", ns::SASL) {
                let text = el.text();
                let data = if text.trim().is_empty() || text.trim() == "=" {
                    Vec::new()
                } else {
                    BASE64.decode(text.trim())?
                };
                mech.success(&data)?;
                self.parser.reset();
                self.open_stream().await?;
                return Ok(());
            } else if el.is("failure", ns::SASL) {
                let condition = el
                    .first_child()
                    .map(|c| c.name().to_owned())
                    .unwrap_or_default();
                self.sasl_failure_text = el.get_child("text", ns::SASL).map(Element::text);
                return Err(SaslFailure(condition).into());
            } else {
                bail!("unexpected element during SASL: {el}");
            }
        }
    }

    /// RFC 9266 `tls-exporter` channel-binding data of this connection.
    pub fn tls_exporter(&self) -> anyhow::Result<Vec<u8>> {
        let tls = self.tls().context("channel binding needs TLS")?;
        let mut out = vec![0u8; 32];
        tls.export_keying_material(&mut out, b"EXPORTER-Channel-Binding", None)?;
        Ok(out)
    }

    /// RFC 5929 `tls-server-end-point` channel-binding data of this connection: the server's end-entity
    /// certificate, as this client received it, hashed as [`tls_server_end_point_for`] says.
    pub fn tls_server_end_point(&self) -> anyhow::Result<Vec<u8>> {
        let tls = self.tls().context("channel binding needs TLS")?;
        let certificate = tls
            .peer_certificates()
            .and_then(<[_]>::first)
            .context("the server sent no certificate")?;
        tls_server_end_point_for(certificate)
    }

    /// Reads whatever bytes arrive next, straight from the connection and without the XML parser, waiting at most
    /// `max_wait`; empty when nothing came in time. The bytes are fed to the parser too, so that the stream goes
    /// on as if [`next_event`](Self::next_event) had read them. Bytes the parser already holds (read earlier with
    /// an element) are not returned again.
    pub async fn read_raw(&mut self, max_wait: Duration) -> anyhow::Result<Vec<u8>> {
        let Ok(read) = tokio::time::timeout(max_wait, self.stream.read(&mut self.read_buf)).await
        else {
            return Ok(Vec::new());
        };
        let n = read?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        let bytes = self.read_buf[..n].to_vec();
        self.parser.feed(&bytes);
        Ok(bytes)
    }

    /// Binds a resource (the server picks one when None) and returns the full JID.
    pub async fn bind(&mut self, resource: Option<&str>) -> anyhow::Result<String> {
        let mut bind = Element::new("bind", ns::BIND);
        if let Some(r) = resource {
            bind.append_child(Element::new("resource", ns::BIND).with_text(r));
        }
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", "bind1")
            .with_child(bind);
        self.send(&iq).await?;
        let reply = self
            .next_matching(|e| e.attr("id") == Some("bind1"))
            .await?;
        if reply.attr("type") != Some("result") {
            bail!("bind failed: {reply}");
        }
        let jid = reply
            .get_child("bind", ns::BIND)
            .and_then(|b| b.get_child("jid", ns::BIND))
            .map(Element::text)
            .context("no JID in the bind result")?;
        self.jid = Some(jid.clone());
        Ok(jid)
    }

    /// The SASL mechanisms in the last features.
    pub fn mechanisms(&self) -> Vec<String> {
        self.features
            .as_ref()
            .and_then(|f| f.get_child("mechanisms", ns::SASL))
            .map(|m| m.children().map(Element::text).collect())
            .unwrap_or_default()
    }

    /// Sends an IQ and waits for its reply.
    pub async fn iq(&mut self, iq: &Element) -> anyhow::Result<Element> {
        let id = iq.attr("id").context("the IQ needs an id")?.to_owned();
        self.send(iq).await?;
        self.next_matching(|e| e.name() == "iq" && e.attr("id") == Some(id.as_str()))
            .await
    }

    /// Pings the server (XEP-0199) and returns its reply.
    pub async fn ping_server(&mut self) -> anyhow::Result<Element> {
        let ping = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("id", "ping-server")
            .with_attr("to", self.domain.as_str())
            .with_child(Element::new("ping", ns::PING));
        self.iq(&ping).await
    }

    /// Pings the server and returns everything that arrived before its answer. The server handles a client's
    /// stanzas in order and routes each before reading the next, so after another client's `sync()` this holds
    /// everything that client's earlier stanzas caused here: a test can assert that something did *not* arrive.
    pub async fn sync(&mut self) -> anyhow::Result<Vec<Element>> {
        self.sync_counter += 1;
        let id = format!("sync-{}", self.sync_counter);
        let ping = Element::new("iq", ns::CLIENT)
            .with_attr("type", "get")
            .with_attr("id", id.as_str())
            .with_attr("to", self.domain.as_str())
            .with_child(Element::new("ping", ns::PING));
        self.send(&ping).await?;
        let mut before = Vec::new();
        loop {
            let el = self.next_element().await?;
            if el.name() == "iq" && el.attr("id") == Some(id.as_str()) {
                return Ok(before);
            }
            before.push(el);
        }
    }

    /// Closes the stream politely.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.send_raw(b"</stream:stream>").await?;
        let _ = self.ending().await;
        Ok(())
    }
}

/// RFC 5929 `tls-server-end-point` channel-binding data for a server's end-entity certificate (DER): the
/// certificate hashed with the hash function of its signature algorithm, SHA-256 when that is MD5 or SHA-1.
/// Covers the RSA PKCS#1 v1.5 and ECDSA algorithms; for others (RSASSA-PSS, EdDSA) it fails rather than guess.
pub fn tls_server_end_point_for(certificate_der: &[u8]) -> anyhow::Result<Vec<u8>> {
    let (_, certificate) = X509Certificate::from_der(certificate_der)
        .map_err(|e| anyhow!("cannot read the server certificate: {e}"))?;
    let algorithm = &certificate.signature_algorithm.algorithm;
    let is = |candidates: &[x509_parser::der_parser::Oid<'static>]| candidates.contains(algorithm);
    if is(&[
        OID_PKCS1_MD5WITHRSAENC,
        OID_PKCS1_SHA1WITHRSA,
        OID_PKCS1_SHA256WITHRSA,
        OID_SIG_ECDSA_WITH_SHA256,
    ]) {
        Ok(sha2::Sha256::digest(certificate_der).to_vec())
    } else if is(&[OID_PKCS1_SHA384WITHRSA, OID_SIG_ECDSA_WITH_SHA384]) {
        Ok(sha2::Sha384::digest(certificate_der).to_vec())
    } else if is(&[OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA512]) {
        Ok(sha2::Sha512::digest(certificate_der).to_vec())
    } else {
        bail!("no tls-server-end-point hash for signature algorithm {algorithm}")
    }
}

/// The client side of one SASL exchange: the `sasl` crate's, or this module's own SCRAM client.
enum ClientMechanism {
    Sasl(Box<dyn sasl::client::Mechanism + Send>),
    Scram(ScramClient),
}

impl ClientMechanism {
    fn initial(&mut self) -> Vec<u8> {
        match self {
            Self::Sasl(mech) => mech.initial(),
            Self::Scram(scram) => scram.initial(),
        }
    }

    fn response(&mut self, challenge: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self {
            Self::Sasl(mech) => mech
                .response(challenge)
                .map_err(|e| anyhow!("client SASL error: {e:?}")),
            Self::Scram(scram) => scram.response(challenge),
        }
    }

    fn success(&mut self, data: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::Sasl(mech) => mech
                .success(data)
                .map_err(|e| anyhow!("the server's proof is wrong: {e:?}")),
            Self::Scram(scram) => scram.success(data),
        }
    }
}

/// The hash of a SCRAM mechanism, computed with the `sasl` crate's primitives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sasl::common::scram::Sha1::hash(data),
            Self::Sha256 => sasl::common::scram::Sha256::hash(data),
        }
    }

    fn hmac(self, data: &[u8], key: &[u8]) -> Vec<u8> {
        let mac = match self {
            Self::Sha1 => sasl::common::scram::Sha1::hmac(data, key),
            Self::Sha256 => sasl::common::scram::Sha256::hmac(data, key),
        };
        mac.expect("HMAC takes keys of any length")
    }

    /// Hi(password, salt, iterations) of RFC 5802.
    fn salted_password(
        self,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> anyhow::Result<Vec<u8>> {
        let password = sasl::common::Password::Plain(password.to_owned());
        match self {
            Self::Sha1 => sasl::common::scram::Sha1::derive(&password, salt, iterations),
            Self::Sha256 => sasl::common::scram::Sha256::derive(&password, salt, iterations),
        }
        .map_err(|e| anyhow!("cannot derive the salted password: {e}"))
    }
}

/// A SCRAM client (RFC 5802) that binds to a channel-binding type of its choice, for what the `sasl` crate's
/// client cannot do. The password is used as given: test passwords need no SASLprep.
struct ScramClient {
    hash: ScramHash,
    password: String,
    gs2_header: String,
    binding_data: Vec<u8>,
    client_nonce: String,
    client_first_bare: String,
    /// What the server's `v=` must carry, once the client-final-message is sent.
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    fn new(
        hash: ScramHash,
        user: &str,
        password: &str,
        binding_type: &str,
        binding_data: Vec<u8>,
    ) -> anyhow::Result<Self> {
        let client_nonce = sasl::common::scram::generate_nonce()
            .map_err(|e| anyhow!("cannot make a nonce: {e}"))?;
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Ok(Self {
            hash,
            password: password.to_owned(),
            gs2_header: format!("p={binding_type},,"),
            binding_data,
            client_first_bare: format!("n={user},r={client_nonce}"),
            client_nonce,
            server_signature: None,
        })
    }

    fn initial(&self) -> Vec<u8> {
        format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
    }

    /// The client-final-message for the server-first-message `challenge`.
    fn response(&mut self, challenge: &[u8]) -> anyhow::Result<Vec<u8>> {
        let server_first = std::str::from_utf8(challenge)?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => salt = Some(BASE64.decode(value)?),
                Some(("i", value)) => iterations = Some(value.parse::<u32>()?),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            bail!("incomplete server-first-message: {server_first}");
        };
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            bail!("the server's nonce does not extend ours: {server_first}");
        }
        let mut cbind_input = self.gs2_header.clone().into_bytes();
        cbind_input.extend_from_slice(&self.binding_data);
        let without_proof = format!("c={},r={nonce}", BASE64.encode(cbind_input));
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);

        let salted = self
            .hash
            .salted_password(&self.password, &salt, iterations)?;
        let client_key = self.hash.hmac(b"Client Key", &salted);
        let stored_key = self.hash.hash(&client_key);
        let client_signature = self.hash.hmac(auth_message.as_bytes(), &stored_key);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(key, signature)| key ^ signature)
            .collect();
        let server_key = self.hash.hmac(b"Server Key", &salted);
        self.server_signature = Some(self.hash.hmac(auth_message.as_bytes(), &server_key));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message that came with `<success/>`.
    fn success(&self, data: &[u8]) -> anyhow::Result<()> {
        let expected = self
            .server_signature
            .as_ref()
            .context("success before the client-final-message")?;
        let server_final = std::str::from_utf8(data)?;
        let signature = server_final
            .strip_prefix("v=")
            .with_context(|| format!("no server signature in {server_final:?}"))?;
        if BASE64.decode(signature)? != *expected {
            bail!("the server's proof is wrong");
        }
        Ok(())
    }
}

/// The server refused a login with this SASL condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslFailure(pub String);

impl std::fmt::Display for SaslFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SASL failure: {}", self.0)
    }
}

impl std::error::Error for SaslFailure {}

#[cfg(test)]
mod tests {
    use rookery_sasl::{ChannelBindings, Credentials, Lookup, Mechanism, ServerExchange, Step};
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::{IssueOptions, LeafKey, TestCa};

    const DOMAIN: &str = "client.test";
    const USER: &str = "juliet";
    const PASSWORD: &str = "pencil";

    /// A certificate for [`DOMAIN`] from a fresh CA, and what a client needs to trust it.
    struct Certificate {
        ca: TestCa,
        fullchain: String,
        key: String,
        leaf_der: Vec<u8>,
    }

    impl Certificate {
        fn issue(key: LeafKey) -> Self {
            let ca = TestCa::new();
            let options = IssueOptions {
                key,
                ..IssueOptions::default()
            };
            let (fullchain, key) = ca.issue_with(&[DOMAIN], &options);
            let leaf_der = CertificateDer::pem_slice_iter(fullchain.as_bytes())
                .next()
                .expect("a leaf certificate")
                .expect("the leaf parses")
                .to_vec();
            Self {
                ca,
                fullchain,
                key,
                leaf_der,
            }
        }

        fn acceptor(&self) -> TlsAcceptor {
            let chain = CertificateDer::pem_slice_iter(self.fullchain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("the chain parses");
            let key = PrivateKeyDer::from_pem_slice(self.key.as_bytes()).expect("the key parses");
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(rustls::DEFAULT_VERSIONS)
                .expect("TLS versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("server certificate");
            TlsAcceptor::from(Arc::new(config))
        }

        /// The tls-server-end-point data, hashed here without looking at the certificate: the test CA signs
        /// every leaf with its own P-256 key (ecdsa-with-SHA256), whatever the leaf's key.
        fn end_point(&self) -> Vec<u8> {
            sha2::Sha256::digest(&self.leaf_der).to_vec()
        }
    }

    /// What the fake server's channel bindings are.
    #[derive(Clone)]
    enum ServerBindings {
        /// tls-exporter of the connection, and this tls-server-end-point data.
        Both(Vec<u8>),
        /// Only tls-exporter.
        ExporterOnly,
    }

    /// The server side of one test connection: direct TLS, one login checked by rookery-sasl, a stream restart,
    /// then each of `after_login` sent raw once the client has sent an element asking for it.
    async fn fake_server(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        bindings: ServerBindings,
        after_login: Vec<&'static [u8]>,
    ) -> anyhow::Result<()> {
        let (tcp, _) = listener.accept().await?;
        let mut conn = FakeConn {
            tls: acceptor.accept(tcp).await?,
            parser: StreamParser::new(Limits::CLIENT),
        };
        let bindings = match bindings {
            ServerBindings::Both(end_point) => ChannelBindings {
                tls_exporter: Some(conn.exporter()?),
                tls_server_end_point: Some(end_point),
            },
            ServerBindings::ExporterOnly => ChannelBindings {
                tls_exporter: Some(conn.exporter()?),
                tls_server_end_point: None,
            },
        };
        conn.open_stream("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
            .await?;
        let credentials = Credentials::from_password_with_iterations(PASSWORD, 64)?;
        let auth = conn.next_element().await?;
        let mechanism = auth
            .attr("mechanism")
            .and_then(Mechanism::from_name)
            .context("unknown mechanism")?;
        let mut exchange = ServerExchange::new(mechanism, bindings);
        let mut step = exchange.step(Some(&BASE64.decode(auth.text())?));
        loop {
            step = match step {
                Step::NeedCredentials { .. } => {
                    exchange.provide(Lookup::Found(credentials.clone()))
                }
                Step::Challenge(data) => {
                    conn.send(&Element::new("challenge", ns::SASL).with_text(BASE64.encode(data)))
                        .await?;
                    let response = conn.next_element().await?;
                    exchange.step(Some(&BASE64.decode(response.text())?))
                }
                Step::Success {
                    additional_data, ..
                } => {
                    let data = BASE64.encode(additional_data.unwrap_or_default());
                    conn.send(&Element::new("success", ns::SASL).with_text(data))
                        .await?;
                    break;
                }
                Step::Failure(failure) => {
                    let condition = Element::new(failure.condition.name(), ns::SASL);
                    conn.send(&Element::new("failure", ns::SASL).with_child(condition))
                        .await?;
                    return Ok(());
                }
            };
        }
        conn.parser.reset();
        conn.open_stream("").await?;
        for bytes in after_login {
            conn.next_element().await?;
            conn.tls.write_all(bytes).await?;
            conn.tls.flush().await?;
        }
        // Until the client closes its stream.
        while !matches!(conn.next_event().await?, StreamEvent::Close) {}
        conn.tls.write_all(b"</stream:stream>").await?;
        Ok(conn.tls.shutdown().await?)
    }

    struct FakeConn {
        tls: tokio_rustls::server::TlsStream<TcpStream>,
        parser: StreamParser,
    }

    impl FakeConn {
        fn exporter(&self) -> anyhow::Result<Vec<u8>> {
            Ok(self.tls.get_ref().1.export_keying_material(
                vec![0; 32],
                b"EXPORTER-Channel-Binding",
                None,
            )?)
        }

        async fn next_event(&mut self) -> anyhow::Result<StreamEvent> {
            let mut buf = [0; 4096];
            loop {
                if let Some(event) = self.parser.next_event()? {
                    return Ok(event);
                }
                let n = self.tls.read(&mut buf).await?;
                if n == 0 {
                    bail!("closed");
                }
                self.parser.feed(&buf[..n]);
            }
        }

        async fn next_element(&mut self) -> anyhow::Result<Element> {
            match self.next_event().await? {
                StreamEvent::Element(el) => Ok(el),
                other => bail!("expected an element, got {other:?}"),
            }
        }

        async fn send(&mut self, el: &Element) -> anyhow::Result<()> {
            let mut out = Vec::new();
            el.write_to(&mut out, ns::CLIENT);
            self.tls.write_all(&out).await?;
            Ok(self.tls.flush().await?)
        }

        async fn open_stream(&mut self, features: &str) -> anyhow::Result<()> {
            let StreamEvent::Open(_) = self.next_event().await? else {
                bail!("expected a stream header");
            };
            let header = format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                 xmlns:stream='http://etherx.jabber.org/streams' from='{DOMAIN}' id='s1' version='1.0'>\
                 <stream:features>{features}</stream:features>"
            );
            self.tls.write_all(header.as_bytes()).await?;
            Ok(self.tls.flush().await?)
        }
    }

    /// A fake server for `certificate` and a client connected to it over direct TLS with `versions`.
    async fn connect(
        certificate: &Certificate,
        bindings: ServerBindings,
        after_login: Vec<&'static [u8]>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (TestClient, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(fake_server(
            listener,
            certificate.acceptor(),
            bindings,
            after_login,
        ));
        let tls = certificate.ca.client_config_with_versions(&[], versions);
        let client = TestClient::connect_direct_tls(addr, DOMAIN, tls)
            .await
            .expect("connect");
        (client, server)
    }

    fn sasl_condition(result: anyhow::Result<()>) -> String {
        let error = result.expect_err("the login should fail");
        match error.downcast_ref::<SaslFailure>() {
            Some(SaslFailure(condition)) => condition.clone(),
            None => panic!("not a SASL failure: {error:#}"),
        }
    }

    #[tokio::test]
    async fn tls_server_end_point_login_for_each_test_ca_key() {
        for key in [LeafKey::EcdsaP256, LeafKey::EcdsaP384, LeafKey::Rsa2048] {
            let certificate = Certificate::issue(key);
            for mechanism in ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"] {
                let bindings = ServerBindings::Both(certificate.end_point());
                let (mut client, server) =
                    connect(&certificate, bindings, vec![], rustls::DEFAULT_VERSIONS).await;
                client
                    .login_with(USER, PASSWORD, mechanism, Binding::TlsServerEndPoint)
                    .await
                    .unwrap_or_else(|e| panic!("{key:?} {mechanism}: {e:#}"));
                client.close().await.expect("close");
                server.await.expect("server task").expect("server");
            }
        }
    }

    #[tokio::test]
    async fn tls_server_end_point_login_over_tls_1_2() {
        let certificate = Certificate::issue(LeafKey::EcdsaP256);
        let bindings = ServerBindings::Both(certificate.end_point());
        let (mut client, server) =
            connect(&certificate, bindings, vec![], &[&rustls::version::TLS12]).await;
        assert_eq!(
            client.tls().and_then(|tls| tls.protocol_version()),
            Some(rustls::ProtocolVersion::TLSv1_2)
        );
        client
            .login_with(
                USER,
                PASSWORD,
                "SCRAM-SHA-256-PLUS",
                Binding::TlsServerEndPoint,
            )
            .await
            .expect("login");
        client.close().await.expect("close");
        server.await.expect("server task").expect("server");
    }

    #[tokio::test]
    async fn tls_server_end_point_login_fails_on_a_wrong_password_or_other_binding_data() {
        let certificate = Certificate::issue(LeafKey::EcdsaP256);
        let bindings = ServerBindings::Both(certificate.end_point());
        let (mut client, server) =
            connect(&certificate, bindings, vec![], rustls::DEFAULT_VERSIONS).await;
        let result = client
            .login_with(
                USER,
                "wrong",
                "SCRAM-SHA-256-PLUS",
                Binding::TlsServerEndPoint,
            )
            .await;
        assert_eq!(sasl_condition(result), "not-authorized");
        server.await.expect("server task").expect("server");

        // The server expects the hash of another certificate: the client's binding data must not match.
        let bindings = ServerBindings::Both(sha2::Sha256::digest(b"another certificate").to_vec());
        let (mut client, server) =
            connect(&certificate, bindings, vec![], rustls::DEFAULT_VERSIONS).await;
        let result = client
            .login_with(
                USER,
                PASSWORD,
                "SCRAM-SHA-1-PLUS",
                Binding::TlsServerEndPoint,
            )
            .await;
        assert_eq!(sasl_condition(result), "not-authorized");
        server.await.expect("server task").expect("server");
    }

    #[tokio::test]
    async fn login_binds_plus_mechanisms_to_tls_exporter() {
        let certificate = Certificate::issue(LeafKey::EcdsaP256);
        let (mut client, server) = connect(
            &certificate,
            ServerBindings::ExporterOnly,
            vec![],
            rustls::DEFAULT_VERSIONS,
        )
        .await;
        client
            .login(USER, PASSWORD, "SCRAM-SHA-256-PLUS")
            .await
            .expect("login");
        client.close().await.expect("close");
        server.await.expect("server task").expect("server");
    }

    #[tokio::test]
    async fn read_raw_returns_bytes_as_sent_and_keeps_the_parser_in_step() {
        let certificate = Certificate::issue(LeafKey::EcdsaP256);
        let (mut client, server) = connect(
            &certificate,
            ServerBindings::ExporterOnly,
            vec![b" ", b"<iq type='get' id='half", b"'/>"],
            rustls::DEFAULT_VERSIONS,
        )
        .await;
        client
            .login(USER, PASSWORD, "SCRAM-SHA-1")
            .await
            .expect("login");
        let next = b"<next xmlns='urn:test'/>";

        assert_eq!(
            client.read_raw(Duration::from_millis(200)).await.unwrap(),
            b""
        );
        client.send_raw(next).await.unwrap();
        assert_eq!(client.read_raw(PATIENCE).await.unwrap(), b" ");

        client.send_raw(next).await.unwrap();
        assert_eq!(
            client.read_raw(PATIENCE).await.unwrap(),
            b"<iq type='get' id='half"
        );
        // The parser has the first half and reads the rest itself.
        client.send_raw(next).await.unwrap();
        let iq = client.next_element().await.unwrap();
        assert!(iq.is("iq", ns::CLIENT));
        assert_eq!(iq.attr("id"), Some("half"));

        client.close().await.expect("close");
        server.await.expect("server task").expect("server");
    }

    #[test]
    fn end_point_hash_follows_the_signature_algorithm() {
        for key in [LeafKey::EcdsaP256, LeafKey::EcdsaP384, LeafKey::Rsa2048] {
            let certificate = Certificate::issue(key);
            let data = tls_server_end_point_for(&certificate.leaf_der).expect("known algorithm");
            assert_eq!(data, certificate.end_point(), "{key:?}");
        }

        let self_signed = |algorithm: &'static rcgen::SignatureAlgorithm| {
            let key = rcgen::KeyPair::generate_for(algorithm).expect("key");
            let params = rcgen::CertificateParams::new(vec![DOMAIN.to_owned()]).expect("params");
            params
                .self_signed(&key)
                .expect("certificate")
                .der()
                .to_vec()
        };
        let p384 = self_signed(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(
            tls_server_end_point_for(&p384).expect("ecdsa-with-SHA384"),
            sha2::Sha384::digest(&p384).to_vec()
        );
        // EdDSA hashes nothing itself, so RFC 5929 defines no binding for it.
        assert!(tls_server_end_point_for(&self_signed(&rcgen::PKCS_ED25519)).is_err());
        assert!(tls_server_end_point_for(b"not a certificate").is_err());
    }

    #[test]
    fn scram_client_binds_to_its_data_and_escapes_the_name() {
        // Our server-side exchange accepts the client's proof with the same binding data, and only with it.
        let data = b"end-point-data".to_vec();
        for (server_data, accepted) in [(data.clone(), true), (b"other".to_vec(), false)] {
            let mut client = ScramClient::new(
                ScramHash::Sha256,
                "us,er=",
                PASSWORD,
                "tls-server-end-point",
                data.clone(),
            )
            .expect("client");
            let initial = client.initial();
            assert!(initial.starts_with(b"p=tls-server-end-point,,n=us=2Cer=3D,r="));
            let bindings = ChannelBindings {
                tls_exporter: None,
                tls_server_end_point: Some(server_data),
            };
            let mut exchange = ServerExchange::new(Mechanism::ScramSha256Plus, bindings);
            let Step::NeedCredentials { username } = exchange.step(Some(&initial)) else {
                panic!("no lookup")
            };
            assert_eq!(username, "us,er=");
            let credentials = Credentials::from_password_with_iterations(PASSWORD, 16).unwrap();
            let Step::Challenge(server_first) = exchange.provide(Lookup::Found(credentials)) else {
                panic!("no challenge")
            };
            let client_final = client.response(&server_first).expect("client-final");
            match exchange.step(Some(&client_final)) {
                Step::Success {
                    additional_data: Some(server_final),
                    ..
                } if accepted => client.success(&server_final).expect("server proof"),
                Step::Failure(_) if !accepted => {}
                other => panic!("accepted={accepted}: {other:?}"),
            }
        }
    }
}
