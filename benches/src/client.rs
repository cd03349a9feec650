//! A logged-in session that reads whole stanzas: for the instant-messaging benchmarks, which wait for particular
//! stanzas (a presence from someone, the reply to an IQ) rather than counting a flood of messages.
//!
//! Stanzas are found with [`scan::next_top`] (a forgiving scanner, not a validating parser). Pings from the server
//! are answered on the spot; stream errors and the end of the stream fail. Stanzas read while waiting for
//! something else are kept, in order, for later calls.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::{Instant, timeout, timeout_at};

use crate::conn::{self, Auth, Conn, Target};
use crate::scan::{self, Top};

/// One stanza, as received.
pub type Stanza = Vec<u8>;

/// A bound session.
pub struct Client {
    pub conn: Conn,
    /// The full JID the server bound.
    pub jid: String,
    /// The bare JID.
    pub bare: String,
    buf: Vec<u8>,
    in_stream: bool,
    kept: VecDeque<Stanza>,
    step_timeout: Duration,
    next_id: u64,
}

/// The bare part of a JID.
pub fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

/// Escapes text for an attribute value in single quotes or for character data.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
}

impl Client {
    /// Logs in (see [`conn::login`]) and binds `resource`.
    pub async fn login(target: &Target, auth: &Auth, resource: &str) -> anyhow::Result<Self> {
        let session = conn::login(target, auth, resource).await?;
        Ok(Self::from_session(session, target.step_timeout))
    }

    fn from_session(session: conn::Session, step_timeout: Duration) -> Self {
        let bare = bare(&session.jid).to_owned();
        Self {
            conn: session.conn,
            jid: session.jid,
            bare,
            buf: session.leftover,
            in_stream: true,
            kept: VecDeque::new(),
            step_timeout,
            next_id: 0,
        }
    }

    /// The longest wait for one step.
    pub fn step_timeout(&self) -> Duration {
        self.step_timeout
    }

    pub async fn send(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let write = async {
            self.conn.write_all(data).await?;
            self.conn.flush().await
        };
        timeout(self.step_timeout, write)
            .await
            .map_err(|_| {
                anyhow!(
                    "{}: the server accepted no data for {:?}",
                    self.jid,
                    self.step_timeout
                )
            })?
            .with_context(|| format!("{}: cannot send", self.jid))
    }

    /// A fresh IQ id.
    pub fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    /// The next stanza: one kept earlier, else one read within the step timeout.
    pub async fn next(&mut self, what: &str) -> anyhow::Result<Stanza> {
        let deadline = Instant::now() + self.step_timeout;
        self.next_before(deadline, what).await
    }

    /// The next stanza, read before `deadline`.
    pub async fn next_before(&mut self, deadline: Instant, what: &str) -> anyhow::Result<Stanza> {
        if let Some(kept) = self.kept.pop_front() {
            return Ok(kept);
        }
        loop {
            if let Some(stanza) = self.parse_one().await? {
                return Ok(stanza);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = timeout_at(deadline, self.conn.read(&mut chunk))
                .await
                .map_err(|_| {
                    anyhow!(
                        "{}: timed out waiting for {what}; unparsed input: {:?}",
                        self.jid,
                        scan::excerpt(&self.buf)
                    )
                })?
                .with_context(|| format!("{}: read error waiting for {what}", self.jid))?;
            if n == 0 {
                bail!(
                    "{}: the server closed the connection while we waited for {what}",
                    self.jid
                );
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Takes one complete stanza from the buffer, answering pings. `None` when more input is needed.
    async fn parse_one(&mut self) -> anyhow::Result<Option<Stanza>> {
        while let Some((top, used)) = scan::next_top(&self.buf, &mut self.in_stream) {
            let stanza = match top {
                Top::StreamOpen => None,
                Top::StreamClose => bail!("{}: the server closed the stream", self.jid),
                Top::Element(el) => Some(el.to_vec()),
            };
            self.buf.drain(..used);
            let Some(stanza) = stanza else { continue };
            let name = scan::element_name(&stanza);
            if name == b"error" && stanza.starts_with(b"<stream:") {
                bail!("{}: stream error: {}", self.jid, scan::excerpt(&stanza));
            }
            if name == b"iq"
                && scan::attr(&stanza, "type").as_deref() == Some("get")
                && scan::has(&stanza, "ping")
            {
                let id = scan::attr(&stanza, "id").unwrap_or_default();
                let to = scan::attr(&stanza, "from")
                    .map(|f| format!(" to='{}'", escape(&f)))
                    .unwrap_or_default();
                self.send(format!("<iq type='result' id='{}'{to}/>", escape(&id)).as_bytes())
                    .await?;
                continue;
            }
            return Ok(Some(stanza));
        }
        Ok(None)
    }

    /// Waits for the first stanza `want` accepts; the others read meanwhile are kept for later.
    pub async fn wait_for(
        &mut self,
        what: &str,
        deadline: Instant,
        mut want: impl FnMut(&[u8]) -> bool,
    ) -> anyhow::Result<Stanza> {
        if let Some(i) = self.kept.iter().position(|s| want(s)) {
            return Ok(self.kept.remove(i).expect("the index was just found"));
        }
        let mut skipped = VecDeque::new();
        let mut earlier = std::mem::take(&mut self.kept);
        let result = loop {
            let stanza = match self.next_before(deadline, what).await {
                Ok(s) => s,
                Err(e) => break Err(e),
            };
            if want(&stanza) {
                break Ok(stanza);
            }
            skipped.push_back(stanza);
        };
        earlier.append(&mut skipped);
        self.kept = earlier;
        result
    }

    /// Sends an IQ (`payload` is its child) and returns the reply; an error reply fails.
    pub async fn iq(
        &mut self,
        kind: &str,
        to: Option<&str>,
        payload: &str,
    ) -> anyhow::Result<Stanza> {
        let id = self.id("iq");
        let to = to
            .map(|t| format!(" to='{}'", escape(t)))
            .unwrap_or_default();
        self.send(format!("<iq type='{kind}' id='{id}'{to}>{payload}</iq>").as_bytes())
            .await?;
        let deadline = Instant::now() + self.step_timeout;
        let reply = self
            .wait_for(&format!("the reply to IQ {id}"), deadline, |s| {
                is_reply_to(s, &id)
            })
            .await?;
        if scan::attr(&reply, "type").as_deref() != Some("result") {
            bail!(
                "{}: IQ {kind} {payload:.80} failed: {}",
                self.jid,
                scan::excerpt(&reply)
            );
        }
        Ok(reply)
    }

    /// A ping round trip with the server: everything sent before it has been handled when it returns.
    pub async fn barrier(&mut self) -> anyhow::Result<()> {
        let domain = self.bare.rsplit('@').next().unwrap_or_default().to_owned();
        self.iq("get", Some(&domain), "<ping xmlns='urn:xmpp:ping'/>")
            .await?;
        Ok(())
    }

    /// Stanzas read but not yet taken.
    pub fn kept(&self) -> impl Iterator<Item = &Stanza> {
        self.kept.iter()
    }

    /// Drops every kept stanza `drop` accepts.
    pub fn discard(&mut self, mut drop: impl FnMut(&[u8]) -> bool) {
        self.kept.retain(|s| !drop(s));
    }

    /// Bytes read but not yet parsed, and the kept stanzas, for handing the stream to a byte counter.
    pub fn into_parts(self) -> (Conn, Vec<u8>) {
        let mut pending: Vec<u8> = self.kept.into_iter().flatten().collect();
        pending.extend_from_slice(&self.buf);
        (self.conn, pending)
    }

    /// Closes the stream politely (the server's answer is not awaited for long).
    pub async fn close(mut self) {
        let _ = timeout(Duration::from_secs(2), async {
            self.conn.write_all(b"</stream:stream>").await?;
            self.conn.flush().await?;
            let mut sink = [0u8; 4096];
            // Read until the server closes, so that it has handled everything before we go.
            while self.conn.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        })
        .await;
    }
}

/// Whether `stanza` is the result or error for IQ `id`.
pub fn is_reply_to(stanza: &[u8], id: &str) -> bool {
    scan::element_name(stanza) == b"iq"
        && scan::attr(stanza, "id").as_deref() == Some(id)
        && matches!(
            scan::attr(stanza, "type").as_deref(),
            Some("result" | "error")
        )
}

/// The type of a presence stanza (`None` = available), if `stanza` is one.
pub fn presence_type(stanza: &[u8]) -> Option<Option<String>> {
    (scan::element_name(stanza) == b"presence").then(|| scan::attr(stanza, "type"))
}

/// The `from` of a stanza.
pub fn from(stanza: &[u8]) -> Option<String> {
    scan::attr(stanza, "from")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A client on one end of a loopback connection; the other end plays the server.
    async fn pair() -> (Client, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let session = conn::Session {
            conn: Conn::Plain(client.unwrap()),
            jid: "a@x/r".to_owned(),
            leftover: b"<message from='b@x/s' id='early'><body>1</body></message>".to_vec(),
        };
        (
            Client::from_session(session, Duration::from_secs(5)),
            server.unwrap().0,
        )
    }

    #[tokio::test]
    async fn keeps_what_it_skips_and_answers_pings() {
        let (mut c, mut server) = pair().await;
        assert_eq!(c.bare, "a@x");
        server
            .write_all(
                b"<presence from='b@x/s'/><iq type='get' id='p1' from='x'><ping xmlns='urn:xmpp:ping'/></iq>\
                  <iq type='result' id='want'/><message from='b@x/s' id='late'/>",
            )
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = c
            .wait_for("the result", deadline, |s| is_reply_to(s, "want"))
            .await
            .unwrap();
        assert_eq!(scan::attr(&got, "id").as_deref(), Some("want"));
        // The ping was answered, not kept.
        let mut answer = vec![0u8; 256];
        let n = server.read(&mut answer).await.unwrap();
        assert_eq!(&answer[..n], b"<iq type='result' id='p1' to='x'/>");
        // What came before the result is kept in order; what came after is still to be read.
        let kept: Vec<_> = c.kept().map(|s| scan::element_name(s).to_vec()).collect();
        assert_eq!(kept, [b"message".to_vec(), b"presence".to_vec()]);
        assert_eq!(presence_type(&c.next("x").await.unwrap()), None);
        assert_eq!(presence_type(&c.next("x").await.unwrap()), Some(None));
        let late = c.next("the late message").await.unwrap();
        assert_eq!(from(&late).as_deref(), Some("b@x/s"));
        // A stream error fails the wait.
        server
            .write_all(b"<stream:error><conflict/></stream:error>")
            .await
            .unwrap();
        let err = c.next("anything").await.unwrap_err();
        assert!(err.to_string().contains("stream error"), "{err}");
    }

    #[tokio::test]
    async fn times_out_with_what_it_waited_for() {
        let (mut c, _server) = pair().await;
        c.discard(|_| true);
        let deadline = Instant::now() + Duration::from_millis(50);
        let err = c
            .wait_for("something that never comes", deadline, |_| false)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("something that never comes"),
            "{err}"
        );
    }
}
