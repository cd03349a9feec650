//! One client connection: TCP, optional STARTTLS, SASL, resource binding. Every wait has a timeout, and every
//! failure says which account and which step failed.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::scan::{self, Top};
use crate::scram::{ScramClient, ScramHash};

/// A plaintext or TLS client stream.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How to secure the stream.
#[derive(Clone)]
pub enum Security {
    /// No TLS at all (for servers that allow it, e.g. Prosody with `c2s_require_encryption = false`).
    Plain,
    /// STARTTLS, which must be offered.
    StartTls(Arc<ClientConfig>),
}

/// How to authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    Scram {
        hash: ScramHash,
        username: String,
        password: String,
    },
    Plain {
        username: String,
        password: String,
    },
    Anonymous,
}

impl Auth {
    pub(crate) fn mechanism(&self) -> &'static str {
        match self {
            Self::Scram { hash, .. } => hash.mechanism(),
            Self::Plain { .. } => "PLAIN",
            Self::Anonymous => "ANONYMOUS",
        }
    }

    /// Who logs in, for error messages.
    pub fn who(&self) -> &str {
        match self {
            Self::Scram { username, .. } | Self::Plain { username, .. } => username,
            Self::Anonymous => "(anonymous)",
        }
    }
}

/// Where and how to log in.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub domain: String,
    pub security: Security,
    /// The longest wait for any single step (connect, each server reply, the TLS handshake).
    pub step_timeout: Duration,
}

/// A logged-in, bound session.
pub struct Session {
    pub conn: Conn,
    /// The full JID the server bound.
    pub jid: String,
    /// Bytes already read from the server but not consumed by the login.
    pub leftover: Vec<u8>,
}

/// The XML stream being negotiated.
pub(crate) struct Negotiation {
    pub(crate) conn: Conn,
    pub(crate) buf: Vec<u8>,
    in_stream: bool,
    step_timeout: Duration,
    domain: String,
    /// Round trips since the TLS handshake (since the TCP connection without TLS): each time the client sent
    /// something and then had to wait for the network, as the reconnect benchmark reports them.
    pub(crate) round_trips: u32,
    /// Round trips before the TLS handshake (the first stream header and `<starttls/>`).
    pub(crate) round_trips_before_tls: u32,
    /// Something was sent since the client last waited for the network.
    sent_since_wait: bool,
}

impl Negotiation {
    pub(crate) async fn send(&mut self, data: &[u8], step: &str) -> anyhow::Result<()> {
        self.sent_since_wait = true;
        let write = async {
            self.conn.write_all(data).await?;
            self.conn.flush().await
        };
        timeout(self.step_timeout, write)
            .await
            .map_err(|_| anyhow!("timed out sending {step}"))?
            .with_context(|| format!("cannot send {step}"))
    }

    /// Closes the stream and waits (at most one step timeout) for the server to close its side.
    pub(crate) async fn close(mut self) {
        let _ = timeout(self.step_timeout, async {
            self.conn.write_all(b"</stream:stream>").await?;
            self.conn.flush().await?;
            let mut sink = [0u8; 4096];
            while self.conn.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        })
        .await;
    }

    async fn open_stream(&mut self) -> anyhow::Result<()> {
        self.buf.clear();
        self.in_stream = false;
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='{}' version='1.0' xml:lang='en' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams'>",
            self.domain
        );
        self.send(header.as_bytes(), "the stream header").await
    }

    /// Waits for the next top-level element whose local name is one of `want` (others, e.g. presence, are
    /// skipped), and returns it. A stream error or the end of the stream is an error.
    pub(crate) async fn expect(&mut self, want: &[&str], step: &str) -> anyhow::Result<Vec<u8>> {
        loop {
            if let Some((top, used)) = scan::next_top(&self.buf, &mut self.in_stream) {
                let found = match top {
                    Top::StreamOpen => None,
                    Top::StreamClose => {
                        bail!("the server closed the stream while waiting for {step}")
                    }
                    Top::Element(elem) => {
                        let name = scan::element_name(elem);
                        if name == b"error" && elem.starts_with(b"<stream:") {
                            bail!(
                                "stream error while waiting for {step}: {}",
                                scan::excerpt(elem)
                            );
                        }
                        want.iter()
                            .any(|w| w.as_bytes() == name)
                            .then(|| elem.to_vec())
                    }
                };
                self.buf.drain(..used);
                if let Some(elem) = found {
                    return Ok(elem);
                }
                continue;
            }
            if self.sent_since_wait {
                self.sent_since_wait = false;
                self.round_trips += 1;
            }
            let mut chunk = [0u8; 8192];
            let n = timeout(self.step_timeout, self.conn.read(&mut chunk))
                .await
                .map_err(|_| {
                    anyhow!(
                        "timed out after {:?} waiting for {step}; received so far: {:?}",
                        self.step_timeout,
                        scan::excerpt(&self.buf)
                    )
                })?
                .with_context(|| format!("read error while waiting for {step}"))?;
            if n == 0 {
                bail!(
                    "the server closed the connection while waiting for {step}: {:?}",
                    scan::excerpt(&self.buf)
                );
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub(crate) async fn features(&mut self, step: &str) -> anyhow::Result<Vec<u8>> {
        self.open_stream().await?;
        self.expect(&["features"], step).await
    }
}

/// Connects and logs in: stream, STARTTLS, SASL, stream restart, bind (with `resource`).
pub async fn login(target: &Target, auth: &Auth, resource: &str) -> anyhow::Result<Session> {
    login_steps(target, auth, resource)
        .await
        .with_context(|| format!("login of {} failed", auth.who()))
}

/// TCP, then STARTTLS if `target` wants it: the negotiation and the stream features offered after it.
pub(crate) async fn connect_secured(target: &Target) -> anyhow::Result<(Negotiation, Vec<u8>)> {
    let tcp = timeout(target.step_timeout, TcpStream::connect(target.addr))
        .await
        .map_err(|_| anyhow!("timed out connecting to {}", target.addr))?
        .with_context(|| format!("cannot connect to {}", target.addr))?;
    tcp.set_nodelay(true)?;
    let mut n = Negotiation {
        conn: Conn::Plain(tcp),
        buf: Vec::with_capacity(8192),
        in_stream: false,
        step_timeout: target.step_timeout,
        domain: target.domain.clone(),
        round_trips: 0,
        round_trips_before_tls: 0,
        sent_since_wait: false,
    };
    let mut features = n.features("the stream features").await?;

    if let Security::StartTls(tls) = &target.security {
        if !scan::has(&features, "starttls") {
            bail!(
                "the server does not offer STARTTLS: {}",
                scan::excerpt(&features)
            );
        }
        n.send(
            b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "<starttls/>",
        )
        .await?;
        let reply = n
            .expect(&["proceed", "failure"], "the STARTTLS reply")
            .await?;
        if scan::element_name(&reply) != b"proceed" {
            bail!("the server refused STARTTLS: {}", scan::excerpt(&reply));
        }
        let Conn::Plain(tcp) = n.conn else {
            unreachable!("TLS is only started once")
        };
        let name = ServerName::try_from(target.domain.clone())
            .context("the domain is not a valid TLS name")?;
        let tls_stream = timeout(
            target.step_timeout,
            TlsConnector::from(Arc::clone(tls)).connect(name, tcp),
        )
        .await
        .map_err(|_| anyhow!("timed out in the TLS handshake"))?
        .context("TLS handshake failed")?;
        n.conn = Conn::Tls(Box::new(tls_stream));
        n.round_trips_before_tls = n.round_trips;
        n.round_trips = 0;
        features = n.features("the stream features after TLS").await?;
    }
    Ok((n, features))
}

/// A secured stream before authentication, for what clients do there (in-band registration by invite).
pub struct Unauthenticated {
    n: Negotiation,
    /// The stream features offered (after STARTTLS, if any).
    pub features: Vec<u8>,
}

impl Unauthenticated {
    /// Connects and secures the stream as [`login`] does, and stops before SASL.
    pub async fn connect(target: &Target) -> anyhow::Result<Self> {
        let (n, features) = connect_secured(target).await?;
        Ok(Self { n, features })
    }

    /// Sends `<iq type='{kind}' id='{id}'>{payload}</iq>` and returns the reply with that id (result or error).
    pub async fn iq(&mut self, kind: &str, id: &str, payload: &str) -> anyhow::Result<Vec<u8>> {
        let step = format!("the reply to IQ {id}");
        self.n
            .send(
                format!("<iq type='{kind}' id='{id}'>{payload}</iq>").as_bytes(),
                &step,
            )
            .await?;
        loop {
            let iq = self.n.expect(&["iq"], &step).await?;
            if scan::attr(&iq, "id").as_deref() == Some(id) {
                return Ok(iq);
            }
        }
    }

    /// Closes the stream and waits (briefly) for the server to close its side.
    pub async fn close(self) {
        self.n.close().await;
    }
}

async fn login_steps(target: &Target, auth: &Auth, resource: &str) -> anyhow::Result<Session> {
    let (mut n, features) = connect_secured(target).await?;
    sasl(&mut n, &features, auth).await?;

    let features = n.features("the stream features after SASL").await?;
    let jid = bind(&mut n, &features, resource).await?;
    Ok(Session {
        conn: n.conn,
        jid,
        leftover: n.buf,
    })
}

/// Binds `resource` on a stream authenticated with SASL1 and restarted (offering `features`); returns the full JID.
pub(crate) async fn bind(
    n: &mut Negotiation,
    features: &[u8],
    resource: &str,
) -> anyhow::Result<String> {
    if !scan::has(features, "bind") {
        bail!(
            "the server does not offer resource binding: {}",
            scan::excerpt(features)
        );
    }
    let bind = format!(
        "<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
    );
    n.send(bind.as_bytes(), "the bind request").await?;
    let reply = loop {
        let iq = n.expect(&["iq"], "the bind result").await?;
        if scan::attr(&iq, "id").as_deref() == Some("bind-1") {
            break iq;
        }
    };
    if scan::attr(&reply, "type").as_deref() != Some("result") {
        bail!("resource binding failed: {}", scan::excerpt(&reply));
    }
    let jid = scan::texts(&reply, "jid")
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no JID in the bind result: {}", scan::excerpt(&reply)))?;

    // RFC 3921 sessions, only if a server still insists on them.
    if scan::has(features, "session") && !scan::has(features, "optional") {
        n.send(b"<iq type='set' id='sess-1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>", "session")
            .await?;
        let reply = n.expect(&["iq"], "the session result").await?;
        if scan::attr(&reply, "type").as_deref() != Some("result") {
            bail!("session establishment failed: {}", scan::excerpt(&reply));
        }
    }
    Ok(jid)
}

/// SASL1 with `auth`'s mechanism, which `features` must offer.
pub(crate) async fn sasl(n: &mut Negotiation, features: &[u8], auth: &Auth) -> anyhow::Result<()> {
    const NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
    let mechanism = auth.mechanism();
    // SASL1's <mechanisms/>: SASL2's <authentication/> lists mechanisms too.
    let offered = scan::find_element(features, "mechanisms")
        .map(|m| scan::texts(m, "mechanism"))
        .unwrap_or_default();
    if offered.is_empty() && scan::has(features, "starttls") {
        bail!("the server offers no SASL mechanism before STARTTLS (use --tls starttls)");
    }
    if !offered.iter().any(|m| m == mechanism) {
        bail!("the server does not offer SASL {mechanism}; it offers {offered:?}");
    }
    let outcome = ["success", "failure", "challenge"];
    match auth {
        Auth::Anonymous => {
            n.send(
                format!("<auth xmlns='{NS}' mechanism='ANONYMOUS'/>").as_bytes(),
                "SASL auth",
            )
            .await?;
            let reply = n.expect(&outcome, "the SASL result").await?;
            sasl_done(&reply)?;
        }
        Auth::Plain { username, password } => {
            let msg = BASE64.encode(format!("\0{username}\0{password}"));
            n.send(
                format!("<auth xmlns='{NS}' mechanism='PLAIN'>{msg}</auth>").as_bytes(),
                "SASL auth",
            )
            .await?;
            let reply = n.expect(&outcome, "the SASL result").await?;
            sasl_done(&reply)?;
        }
        Auth::Scram {
            hash,
            username,
            password,
        } => {
            let mut client = ScramClient::new(*hash, username, password);
            let first = BASE64.encode(client.client_first());
            let auth = format!(
                "<auth xmlns='{NS}' mechanism='{}'>{first}</auth>",
                hash.mechanism()
            );
            n.send(auth.as_bytes(), "SASL auth").await?;
            let challenge = n.expect(&outcome, "the SCRAM challenge").await?;
            if scan::element_name(&challenge) != b"challenge" {
                bail!(
                    "SASL {} refused: {}",
                    hash.mechanism(),
                    scan::excerpt(&challenge)
                );
            }
            let server_first = sasl_payload(&challenge)?;
            let fin = BASE64.encode(client.client_final(&server_first)?);
            n.send(
                format!("<response xmlns='{NS}'>{fin}</response>").as_bytes(),
                "SASL response",
            )
            .await?;
            let mut reply = n.expect(&outcome, "the SCRAM result").await?;
            if scan::element_name(&reply) == b"challenge" {
                // Servers that send the server-final-message as a challenge want an empty response.
                client.verify_server_final(&sasl_payload(&reply)?)?;
                n.send(
                    format!("<response xmlns='{NS}'/>").as_bytes(),
                    "SASL response",
                )
                .await?;
                reply = n.expect(&outcome, "the SASL result").await?;
                sasl_done(&reply)?;
            } else {
                sasl_done(&reply)?;
                client.verify_server_final(&sasl_payload(&reply)?)?;
            }
        }
    }
    Ok(())
}

fn sasl_done(reply: &[u8]) -> anyhow::Result<()> {
    if scan::element_name(reply) != b"success" {
        bail!("authentication failed: {}", scan::excerpt(reply));
    }
    Ok(())
}

/// The base64-decoded text of a SASL element (empty for `=` or no text).
pub(crate) fn sasl_payload(elem: &[u8]) -> anyhow::Result<Vec<u8>> {
    let name = std::str::from_utf8(scan::element_name(elem))
        .unwrap_or("?")
        .to_owned();
    let text = scan::texts(elem, &name)
        .into_iter()
        .next()
        .unwrap_or_default();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    BASE64
        .decode(text)
        .with_context(|| format!("bad base64 in <{name}>"))
}
