//! A small raw XMPP client for tests: it speaks exactly what a test asks for, including things a well-behaved
//! client never would (bad XML, huge stanzas, plaintext after STARTTLS).
//!
//! SASL runs through the `sasl` crate of the xmpp-rs project, an implementation independent of ours.

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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

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

/// Which channel binding a -PLUS login uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    None,
    TlsExporter,
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
    read_buf: Vec<u8>,
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
            read_buf: vec![0; 16 * 1024],
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

    /// Logs in with a SCRAM mechanism through the `sasl` crate's client, then restarts the stream.
    /// `Err` carries the SASL failure condition when the server refused.
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
        let cb = match binding {
            Binding::None => {
                // "y" would claim we think the server cannot bind; "n" says we do not support it.
                sasl::common::ChannelBinding::None
            }
            Binding::TlsExporter => {
                let tls = self.tls().context("-PLUS needs TLS")?;
                let mut out = vec![0u8; 32];
                tls.export_keying_material(&mut out, b"EXPORTER-Channel-Binding", None)?;
                sasl::common::ChannelBinding::TlsExporter(out)
            }
        };
        let creds = sasl::common::Credentials::default()
            .with_username(user)
            .with_password(password)
            .with_channel_binding(cb);
        let mut mech: Box<dyn sasl::client::Mechanism + Send> = match mechanism {
            "SCRAM-SHA-1" | "SCRAM-SHA-1-PLUS" => Box::new(
                sasl::client::mechanisms::Scram::<sasl::common::scram::Sha1>::from_credentials(
                    creds,
                )
                .map_err(|e| anyhow!("{e:?}"))?,
            ),
            "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS" => Box::new(
                sasl::client::mechanisms::Scram::<sasl::common::scram::Sha256>::from_credentials(
                    creds,
                )
                .map_err(|e| anyhow!("{e:?}"))?,
            ),
            "PLAIN" => Box::new(
                sasl::client::mechanisms::Plain::from_credentials(creds)
                    .map_err(|e| anyhow!("{e:?}"))?,
            ),
            other => bail!("the test client does not do {other}"),
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
                let response = mech
                    .response(&challenge)
                    .map_err(|e| anyhow!("client SASL error: {e:?}"))?;
                let el = Element::new("response", ns::SASL).with_text(BASE64.encode(&response));
                self.send(&el).await?;
            } else if el.is("success", ns::SASL) {
                let text = el.text();
                let data = if text.trim().is_empty() || text.trim() == "=" {
                    Vec::new()
                } else {
                    BASE64.decode(text.trim())?
                };
                mech.success(&data)
                    .map_err(|e| anyhow!("the server's proof is wrong: {e:?}"))?;
                self.parser.reset();
                self.open_stream().await?;
                return Ok(());
            } else if el.is("failure", ns::SASL) {
                let condition = el
                    .first_child()
                    .map(|c| c.name().to_owned())
                    .unwrap_or_default();
                return Err(SaslFailure(condition).into());
            } else {
                bail!("unexpected element during SASL: {el}");
            }
        }
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

    /// Closes the stream politely.
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.send_raw(b"</stream:stream>").await?;
        let _ = self.ending().await;
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
