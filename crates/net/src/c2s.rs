//! Client connections: the listener and the one task that owns each client socket.
//!
//! The task reads bytes into the XML parser, feeds the negotiation state machine until a resource is bound, then
//! hands stanzas to the router and writes out what the session's queue receives. Writes of queued stanzas are
//! batched: everything waiting is serialised into one buffer and written with one call.

use std::sync::Arc;
use std::time::Duration;

use jid::BareJid;
use rookery_core::{
    AccountRegistrar, NewAccount, Queued, Registration, Server, Session, SessionHook,
};
use rookery_proto::c2s::{Action, C2sNegotiator, C2sSettings, Input, InviteStatus};
use rookery_proto::{STREAM_CLOSE, StreamCondition, StreamError, write_top_level};
use rookery_sasl::{ChannelBindings, Lookup, Mechanism};
use rookery_tls::CertStore;
use rookery_xml::{Element, Limits, StreamEvent, StreamParser, ns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::csi::CsiQueue;
use crate::limiter::ConnectionLimiter;
use crate::transport::Transport;

/// How a listener starts its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum C2sMode {
    /// Plain TCP, upgraded with STARTTLS (port 5222).
    StartTls,
    /// TLS from the first byte, XEP-0368 (port 5223).
    DirectTls,
}

/// Everything a client listener needs.
#[derive(Clone)]
pub struct C2sListener {
    pub server: Arc<Server>,
    pub certs: Arc<CertStore>,
    pub tls: Arc<rustls::ServerConfig>,
    pub mode: C2sMode,
    /// Bounds open client connections, in all and per address, across listeners.
    pub limiter: Arc<ConnectionLimiter>,
    pub tracker: TaskTracker,
}

/// The read size per socket read. Large enough for a burst of stanzas, small enough to keep idle memory low.
const READ_CHUNK: usize = 16 * 1024;
/// Above this many bytes of queued output, stop serialising more queued stanzas and write.
const WRITE_BATCH: usize = 64 * 1024;
/// A client that takes longer than this to accept a write is gone or hostile.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this much of a closing session's queue is written before its stream error; the rest is answered as
/// undeliverable.
const CLOSING_DRAIN: usize = 256 * 1024;
/// The last write of a closing connection gets this long.
const CLOSING_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Failed SASL attempts allowed on one stream.
const MAX_AUTH_FAILURES: u32 = 3;

impl C2sListener {
    /// Accepts connections until the server shuts down.
    pub async fn run(self, listener: TcpListener) {
        let local = listener.local_addr().ok();
        if let Some(addr) = local {
            info!(%addr, mode = ?self.mode, "listening for clients");
        }
        loop {
            let accepted = tokio::select! {
                () = self.server.shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(err) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(slot) = self.limiter.admit(peer.ip()) else {
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let this = self.clone();
            let span = info_span!("c2s", %peer);
            self.tracker.spawn(
                async move {
                    this.serve(tcp).await;
                    drop(slot);
                }
                .instrument(span),
            );
        }
    }

    async fn serve(self, tcp: TcpStream) {
        debug!("connected");
        let limits = &self.server.config.limits;
        let deadline = Instant::now() + limits.c2s_unauthenticated_timeout;
        let acceptor = TlsAcceptor::from(Arc::clone(&self.tls));
        let (transport, bindings) = match self.mode {
            C2sMode::StartTls => (Transport::Plain(tcp), None),
            C2sMode::DirectTls => {
                let handshake = tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await;
                match handshake {
                    Ok(Ok(tls)) => {
                        let transport = Transport::Tls(Box::new(tls));
                        let bindings = channel_bindings(&transport, &self.certs);
                        (transport, Some(bindings))
                    }
                    Ok(Err(err)) => {
                        debug!(%err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!("TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        let settings = C2sSettings {
            domain: self.server.domain.clone(),
            // Decided once TLS is up (see `sasl_mechanisms`).
            mechanisms: match self.mode {
                C2sMode::DirectTls => sasl_mechanisms(&self.server).await,
                C2sMode::StartTls => Vec::new(),
            },
            max_stanza_bytes: limits.c2s_stanza_size,
            max_unauthenticated_stanza_bytes: limits.c2s_unauthenticated_stanza_size,
            max_auth_failures: MAX_AUTH_FAILURES,
            session_features: [
                &self.server.stream_features[..],
                &[crate::csi::stream_feature()],
            ]
            .concat(),
            registration: registrar(&self.server).is_some(),
        };
        let conn = Connection {
            server: Arc::clone(&self.server),
            certs: Arc::clone(&self.certs),
            acceptor,
            transport: Some(transport),
            // Small limits until login: negotiation needs little, and half-open connections must stay cheap.
            parser: StreamParser::new(Limits {
                max_stanza_bytes: limits.c2s_unauthenticated_stanza_size,
                ..Limits::CLIENT
            }),
            negotiator: C2sNegotiator::new(settings, bindings),
            out: Vec::with_capacity(4096),
            session: None,
            csi: CsiQueue::new(limits.session_queue_bytes),
            unauthenticated_deadline: deadline,
            done: false,
        };
        conn.run().await;
    }
}

/// The SASL mechanisms to offer. SCRAM-SHA-256 only when every account has SHA-256 keys: a client that picks it
/// could not log in to an account imported from Prosody, which has only SHA-1 keys, and clients pick the strongest
/// mechanism offered before they say who they are. Asked once per connection, after TLS (accounts change from the
/// command line too, so the answer is not kept).
async fn sasl_mechanisms(server: &Server) -> Vec<Mechanism> {
    match server.store.accounts().count_without_sha256().await {
        Ok(0) => vec![Mechanism::ScramSha256, Mechanism::ScramSha1],
        Ok(_) => vec![Mechanism::ScramSha1],
        Err(err) => {
            warn!(%err, "could not count legacy accounts; offering SCRAM-SHA-1 only");
            vec![Mechanism::ScramSha1]
        }
    }
}

/// The module that registers accounts, if the server has one.
fn registrar(server: &Server) -> Option<Arc<dyn AccountRegistrar>> {
    server.extensions.get::<Registration>()?.registrar.clone()
}

/// Whether a `<preauth/>` token names an invite usable for registration now.
async fn check_invite(
    server: &Server,
    token: &str,
) -> Result<InviteStatus, rookery_store::StoreError> {
    let invite = server.store.invites().get(token).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Ok(match invite {
        Some(invite) if invite.is_valid_at(now) && invite.allow_registration => InviteStatus::Valid,
        Some(invite) if invite.is_valid_at(now) => InviteStatus::NoRegistration,
        _ => InviteStatus::Invalid,
    })
}

/// Channel-binding data of a finished handshake (tls-exporter only over TLS 1.3; see `rookery_tls::tls_exporter`).
fn channel_bindings(transport: &Transport, certs: &CertStore) -> ChannelBindings {
    let Some(tls) = transport.tls() else {
        return ChannelBindings::default();
    };
    ChannelBindings {
        tls_exporter: rookery_tls::tls_exporter(tls),
        tls_server_end_point: Some(certs.tls_server_end_point()),
    }
}

/// A bound session and its queue.
struct BoundSession {
    session: Arc<Session>,
    queue: mpsc::UnboundedReceiver<Queued>,
}

/// One client connection.
struct Connection {
    server: Arc<Server>,
    certs: Arc<CertStore>,
    acceptor: TlsAcceptor,
    /// None only while the TLS handshake holds the socket.
    transport: Option<Transport>,
    parser: StreamParser,
    negotiator: C2sNegotiator,
    /// Serialised output not yet written.
    out: Vec<u8>,
    session: Option<BoundSession>,
    /// XEP-0352: what is held back while the client says it is inactive.
    csi: CsiQueue,
    unauthenticated_deadline: Instant,
    /// Set once the stream is closed; the task then ends.
    done: bool,
}

/// What woke the connection's loop.
enum Wake {
    Shutdown,
    SessionClosed,
    Queued(Option<Queued>),
    Read(std::io::Result<usize>),
    Timeout,
}

impl Connection {
    async fn run(mut self) {
        let idle = self.server.config.limits.c2s_idle_timeout;
        let mut read_buf = vec![0u8; READ_CHUNK];
        let mut idle_deadline = Instant::now() + idle;
        while !self.done {
            if !self.flush().await {
                break;
            }
            let deadline = if self.session.is_some() {
                idle_deadline
            } else {
                self.unauthenticated_deadline
            };
            let Some(transport) = self.transport.as_mut() else {
                break;
            };
            let (session, queue) = match self.session.as_mut() {
                Some(bound) => (Some(&bound.session), Some(&mut bound.queue)),
                None => (None, None),
            };
            // Not biased: a session flooded with incoming stanzas must still read its own client, and a client that
            // sends without pause must still get what is queued for it.
            let wake = tokio::select! {
                () = self.server.shutdown.cancelled() => Wake::Shutdown,
                () = async {
                    match session {
                        Some(session) => session.closed().await,
                        None => std::future::pending().await,
                    }
                } => Wake::SessionClosed,
                queued = async {
                    match queue {
                        Some(queue) => queue.recv().await,
                        None => std::future::pending().await,
                    }
                } => Wake::Queued(queued),
                read = transport.read(&mut read_buf) => Wake::Read(read),
                () = sleep_until(deadline) => Wake::Timeout,
            };
            match wake {
                Wake::Shutdown => {
                    self.close(StreamError::new(StreamCondition::SystemShutdown));
                }
                Wake::SessionClosed => {
                    let reason = self.session.as_ref().and_then(|b| b.session.close_reason());
                    self.close(reason.unwrap_or_else(|| StreamError::new(StreamCondition::Reset)));
                }
                Wake::Queued(Some(queued)) => self.write_queued(queued),
                Wake::Queued(None) => self.done = true,
                Wake::Read(Ok(0)) => {
                    debug!("peer closed the connection");
                    self.done = true;
                }
                Wake::Read(Ok(n)) => {
                    idle_deadline = Instant::now() + idle;
                    self.parser.feed(&read_buf[..n]);
                    self.process_input().await;
                }
                Wake::Read(Err(err)) => {
                    debug!(%err, "read failed");
                    self.done = true;
                }
                Wake::Timeout if self.session.is_none() => {
                    self.close(StreamError::with_text(
                        StreamCondition::ConnectionTimeout,
                        "took too long to log in",
                    ));
                }
                Wake::Timeout => {
                    // A whitespace keep-alive, as Prosody sends: if the peer is gone, TCP now finds out and the
                    // next read fails; a quiet but healthy client stays connected.
                    self.out.push(b' ');
                    idle_deadline = Instant::now() + idle;
                }
            }
        }
        let _ = self.flush().await;
        if let Some(mut bound) = self.session.take() {
            self.server.sessions.unbind(&bound.session);
            for held in self.csi.take_held() {
                self.server.undeliverable(held.stanza, held.rerouted).await;
            }
            // Whatever is still queued did not reach the client: it is undeliverable (messages are routed again or
            // kept offline, requests answered), never silently dropped.
            bound.queue.close();
            while let Ok(queued) = bound.queue.try_recv() {
                self.server
                    .undeliverable(queued.stanza, queued.rerouted)
                    .await;
            }
            self.server
                .hooks
                .run_session(&self.server, SessionHook::Ended, &bound.session)
                .await;
            info!(jid = %bound.session.jid, "session ended");
        }
        if let Some(mut transport) = self.transport.take() {
            let _ = timeout(Duration::from_secs(5), transport.shutdown()).await;
        }
    }

    /// Writes pending output. False when the peer cannot be written to any more.
    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let Some(transport) = self.transport.as_mut() else {
            return false;
        };
        let limit = if self.done {
            CLOSING_WRITE_TIMEOUT
        } else {
            WRITE_TIMEOUT
        };
        let result = timeout(limit, async {
            transport.write_all(&self.out).await?;
            transport.flush().await
        })
        .await;
        self.out.clear();
        match result {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                debug!(%err, "write failed");
                self.done = true;
                false
            }
            Err(_) => {
                debug!("write timed out");
                self.done = true;
                false
            }
        }
    }

    /// Serialises a queued stanza and whatever else is waiting, up to one write batch. Each stanza's share of the
    /// queue budget is released as it is serialised.
    fn write_queued(&mut self, first: Queued) {
        write_stanza(&mut self.csi, &mut self.out, first);
        self.drain_queue(WRITE_BATCH);
    }

    /// Serialises queued stanzas until `out` holds `up_to` bytes or the queue is empty.
    fn drain_queue(&mut self, up_to: usize) {
        let Some(bound) = self.session.as_mut() else {
            return;
        };
        while self.out.len() < up_to {
            match bound.queue.try_recv() {
                Ok(queued) => write_stanza(&mut self.csi, &mut self.out, queued),
                Err(_) => break,
            }
        }
    }

    /// Handles every complete event the parser has.
    async fn process_input(&mut self) {
        while !self.done {
            let event = match self.parser.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(err) => {
                    info!(%err, "closing stream on bad XML");
                    self.close(StreamError::from(&err));
                    return;
                }
            };
            match (&self.session, event) {
                (Some(bound), StreamEvent::Element(_)) if bound.session.is_closing() => {
                    // Replaced or being closed: its JID may already belong to a new session, which must not get
                    // the answers to this one's requests.
                    return;
                }
                (Some(bound), StreamEvent::Element(nonza))
                    if crate::csi::is_state_change(&nonza) =>
                {
                    let out = &mut self.out;
                    self.csi
                        .state_change(&nonza, &bound.session.bare_jid(), |s| {
                            write_top_level(&s, out, ns::CLIENT);
                        });
                }
                (Some(bound), StreamEvent::Element(stanza)) => {
                    let session = Arc::clone(&bound.session);
                    let handled = session
                        .serving(self.server.handle_from_client(&session, stanza))
                        .await;
                    if let Err(err) = handled {
                        info!(condition = err.condition.name(), "closing stream");
                        self.close(err);
                    }
                }
                (Some(_), StreamEvent::Close) => {
                    self.out.extend_from_slice(STREAM_CLOSE);
                    self.done = true;
                }
                (Some(_), StreamEvent::Open(_)) => {
                    self.close(StreamError::with_text(
                        StreamCondition::InvalidXml,
                        "unexpected stream header",
                    ));
                }
                (None, event) => self.negotiate(Input::Stream(event)).await,
            }
        }
    }

    /// Feeds the negotiation and carries out its actions, which may feed it again.
    async fn negotiate(&mut self, first: Input) {
        let mut pending = vec![first];
        while let Some(input) = pending.pop() {
            let actions = self.negotiator.handle(input);
            for action in actions {
                if let Some(next) = self.perform(action).await {
                    pending.push(next);
                }
                if self.done {
                    return;
                }
            }
        }
    }

    /// Carries out one negotiation action; returns the input it produced, if any.
    async fn perform(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::SendRaw(_) | Action::Send(_) | Action::Close(_) | Action::CloseStream => {
                self.write_action(action);
            }
            Action::StartTls => return self.start_tls().await,
            Action::ResetParser => {
                // SASL success: a new stream starts, and may already be in the buffer. Logged in now, the
                // client gets the full stanza size.
                self.parser.restart();
                self.parser.set_limits(Limits {
                    max_stanza_bytes: self.server.config.limits.c2s_stanza_size,
                    ..Limits::CLIENT
                });
            }
            Action::LookupCredentials { username } => {
                return match self.server.store.accounts().get(&username).await {
                    // A disabled account is told so only after a valid proof (see `Lookup::Disabled`).
                    Ok(Some(account)) if account.disabled => {
                        let text = self.disabled_text(&username).await;
                        Some(Input::Credentials(Lookup::Disabled {
                            credentials: account.credentials,
                            text,
                        }))
                    }
                    Ok(Some(account)) => {
                        Some(Input::Credentials(Lookup::Found(account.credentials)))
                    }
                    Ok(None) => Some(Input::Credentials(Lookup::NotFound)),
                    Err(err) => {
                        warn!(%err, "account look-up failed");
                        self.close(StreamError::new(StreamCondition::InternalServerError));
                        None
                    }
                };
            }
            Action::CheckInvite { token } => {
                return match check_invite(&self.server, &token).await {
                    Ok(status) => Some(Input::InviteChecked(status)),
                    Err(err) => {
                        warn!(%err, "invite look-up failed");
                        self.close(StreamError::new(StreamCondition::InternalServerError));
                        None
                    }
                };
            }
            Action::Register {
                username,
                password,
                invite_token,
            } => {
                let Some(registrar) = registrar(&self.server) else {
                    self.close(StreamError::new(StreamCondition::InternalServerError));
                    return None;
                };
                let request = NewAccount {
                    username,
                    password,
                    invite_token,
                };
                let result = registrar.register(&self.server, request).await;
                return Some(Input::Registered(result));
            }
            Action::Bind { username, resource } => {
                let Ok(bare) = BareJid::new(&format!("{username}@{}", self.server.domain)) else {
                    self.close(StreamError::new(StreamCondition::InternalServerError));
                    return None;
                };
                let max = self.server.config.max_user_clients as usize;
                let result = self
                    .server
                    .sessions
                    .bind(&bare, resource.as_deref(), max)
                    .map(|(session, queue)| {
                        let jid = session.jid.clone();
                        self.session = Some(BoundSession { session, queue });
                        jid
                    });
                if result.is_err() {
                    info!(account = %bare, "resource refused");
                }
                return Some(Input::Bound(result));
            }
            Action::Established(jid) => {
                info!(%jid, "session started");
                if let Some(bound) = &self.session {
                    let session = Arc::clone(&bound.session);
                    session
                        .serving(self.server.hooks.run_session(
                            &self.server,
                            SessionHook::Started,
                            &session,
                        ))
                        .await;
                }
            }
        }
        None
    }

    /// Why a disabled account may not log in, when there is more to say than `account-disabled`: an account
    /// waiting out its deletion grace period says so, as Prosody's mod_user_account_management does.
    async fn disabled_text(&self, username: &str) -> Option<String> {
        match self.server.store.account_deletions().get(username).await {
            Ok(Some(_)) => Some("Account deleted".to_owned()),
            Ok(None) => None,
            Err(err) => {
                warn!(%err, "cannot read the account's deletion request");
                None
            }
        }
    }

    /// `<proceed/>` is queued: write it, make sure nothing was sent after `<starttls/>`, and run the handshake.
    async fn start_tls(&mut self) -> Option<Input> {
        if self.parser.has_pending_input() {
            // Bytes sent in plaintext after <starttls/> would be read as if they came over TLS: the STARTTLS
            // command-injection class of attack. Refuse the connection.
            info!("data after <starttls/>; closing");
            self.out.clear();
            self.done = true;
            return None;
        }
        if !self.flush().await {
            return None;
        }
        let Some(Transport::Plain(tcp)) = self.transport.take() else {
            self.done = true;
            return None;
        };
        match tokio::time::timeout_at(self.unauthenticated_deadline, self.acceptor.accept(tcp))
            .await
        {
            Ok(Ok(tls)) => {
                let transport = Transport::Tls(Box::new(tls));
                let bindings = channel_bindings(&transport, &self.certs);
                if let Some(tls) = transport.tls() {
                    debug!(version = ?tls.protocol_version(), "TLS established");
                }
                self.transport = Some(transport);
                self.parser.reset();
                self.negotiator
                    .set_mechanisms(sasl_mechanisms(&self.server).await);
                Some(Input::TlsEstablished { bindings })
            }
            Ok(Err(err)) => {
                debug!(%err, "TLS handshake failed");
                self.done = true;
                None
            }
            Err(_) => {
                debug!("TLS handshake timed out");
                self.done = true;
                None
            }
        }
    }

    /// Ends the stream with an error (after a header, if none was sent yet). What is queued for the session is
    /// written first: a replaced or shut-down session still gets what was sent to it.
    fn close(&mut self, err: StreamError) {
        let mut actions = Vec::new();
        if self.session.is_some() {
            // The client is still there to read what was held back for it, before the rest of its queue.
            let out = &mut self.out;
            self.csi.flush(|s| write_top_level(&s, out, ns::CLIENT));
            // Bounded: a session closed for not reading must not have its whole queue written out now.
            self.drain_queue(CLOSING_DRAIN);
            actions.push(Action::Close(err));
        } else {
            self.negotiator.close(&mut actions, err);
        }
        for action in actions {
            self.write_action(action);
        }
        self.done = true;
    }

    /// Writes what an output action asks to be written (other actions are not for writing and are ignored).
    fn write_action(&mut self, action: Action) {
        match action {
            Action::SendRaw(raw) => self.out.extend_from_slice(raw.as_bytes()),
            Action::Send(el) => {
                log_auth_outcome(&el, self.negotiator.authenticated_user());
                write_top_level(&el, &mut self.out, ns::CLIENT);
            }
            Action::Close(err) => {
                write_top_level(&err.to_element(), &mut self.out, ns::CLIENT);
                self.out.extend_from_slice(STREAM_CLOSE);
                self.done = true;
            }
            Action::CloseStream => {
                self.out.extend_from_slice(STREAM_CLOSE);
                self.done = true;
            }
            _ => {}
        }
    }
}

/// Writes a stanza from the session's queue, unless its client is inactive and the stanza can wait (XEP-0352).
/// Its share of the queue budget is released either way: held stanzas are bounded by the CSI queue's own limits.
fn write_stanza(csi: &mut CsiQueue, out: &mut Vec<u8>, queued: Queued) {
    csi.offer(queued.stanza, queued.rerouted, |s| {
        write_top_level(&s, out, ns::CLIENT);
    });
}

/// Authentication results go to the log (never credentials).
fn log_auth_outcome(el: &Element, user: Option<&str>) {
    if el.is("success", ns::SASL) {
        info!(user = user.unwrap_or(""), "authenticated");
    } else if el.is("failure", ns::SASL) {
        let condition = el.first_child().map_or("", Element::name);
        info!(condition, "authentication failed");
    }
}
