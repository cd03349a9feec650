//! Client connections: the listener and the one task that owns each client socket.
//!
//! The task reads bytes into the XML parser, feeds the negotiation state machine until a resource is bound, then
//! hands stanzas to the router and writes out what the session's queue receives. Writes of queued stanzas are
//! batched: everything waiting is serialised into one buffer and written with one call.
//!
//! XEP-0198 stream management lives here too, since it is about the connection: the task counts what it handles
//! and writes, keeps what the client has not acknowledged, and when the connection is lost keeps the session
//! (hibernating, still bound) until the client resumes it on a new connection or the hibernation time is over. Only
//! then does the session end, and what the client never acknowledged goes back to the router, to the account's
//! other resources or the offline store: nothing is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jid::BareJid;
use rookery_core::{
    AccountRegistrar, Bind2Features, NewAccount, Queued, Registration, Server, Session, SessionHook,
};
use rookery_proto::c2s::{
    Action, C2sNegotiator, C2sSettings, FAST_TOKEN_TTL_SECS, FastAccount, FastLookup, Input,
    InviteStatus, LoginCompletion, LoginResult, ResumedSession,
};
use rookery_proto::datetime::xep0082;
use rookery_proto::sasl2::IssuedToken;
use rookery_proto::sm::{self, SmRequest, StreamManagement};
use rookery_proto::{STREAM_CLOSE, StanzaKind, StreamCondition, StreamError, write_top_level};
use rookery_sasl::{ChannelBindings, Lookup, Mechanism};
use rookery_tls::CertStore;
use rookery_xml::{Element, Limits, StreamEvent, StreamParser, ns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::csi::{CsiQueue, Held};
use crate::limiter::ConnectionLimiter;
use crate::resumption::{Found, ResumableSessions, TakeoverRequest};
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
    /// Sessions that can be resumed (XEP-0198), shared by every client listener.
    pub resumable: Arc<ResumableSessions>,
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
/// How long a resumption waits for the connection that holds the session to hand it over. That connection's task
/// gives it up even in the middle of a write, so this is only a guard.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// XEP-0203's namespace, for the delay stamp on stanzas sent again after a resumption.
const NS_DELAY: &str = "urn:xmpp:delay";
/// Clients (XEP-0388 user agents) remembered per account; past this the least recently seen are forgotten with
/// their FAST tokens. A person has a handful of devices and reinstalls; fifty covers years of that, while a client
/// inventing a new id at each login cannot grow the table without bound.
pub const MAX_CLIENTS_PER_ACCOUNT: u32 = 50;

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
            session_features: {
                let mut features = self.server.stream_features.clone();
                features.push(sm::feature());
                features.push(crate::csi::stream_feature());
                features
            },
            registration: registrar(&self.server).is_some(),
            // The modules' inline features, and stream management's `<enable/>` (XEP-0198 §Bind2).
            bind2_features: self
                .server
                .extensions
                .get::<Bind2Features>()
                .map(|f| f.namespaces().map(str::to_owned).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .chain([sm::NS_SM.to_owned()])
                .collect(),
            // `<resume/>` inside `<authenticate/>`.
            sasl2_inline: vec![sm::feature()],
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
            resumable: Arc::clone(&self.resumable),
            client_id: None,
            csi: CsiQueue::new(limits.session_queue_bytes),
            unauthenticated_deadline: deadline,
            done: false,
            connection_lost: false,
            pending_takeover: None,
            resend: VecDeque::new(),
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
    let now = SystemTime::now()
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

/// A bound session and its queue: what a connection serves, and what it hands to another connection that resumes
/// the session.
pub(crate) struct BoundSession {
    session: Arc<Session>,
    queue: mpsc::UnboundedReceiver<Queued>,
    /// Set once the client enabled stream management.
    sm: Option<SmSession>,
}

impl BoundSession {
    fn resumable(&self) -> bool {
        self.sm.as_ref().is_some_and(|sm| sm.resumption.is_some())
    }
}

/// A stanza written to a stream-managed client and not acknowledged yet, or queued for it while it hibernated.
#[derive(Debug)]
struct Unacked {
    stanza: Element,
    /// See [`Queued::rerouted`].
    rerouted: bool,
    /// When it was first written or held, for the delay stamp if it is sent again.
    since: SystemTime,
    /// Its estimated size, counted against [`rookery_config::Limits::sm_max_unacked_bytes`].
    size: usize,
}

impl Unacked {
    /// A stanza taken from the session's queue.
    fn new(queued: Queued) -> Self {
        let Queued {
            stanza, rerouted, ..
        } = queued;
        Self::held(Held { stanza, rerouted })
    }

    /// A stanza on its way out (past CSI).
    fn held(held: Held) -> Self {
        Self {
            size: rookery_core::estimated_size(&held.stanza),
            stanza: held.stanza,
            rerouted: held.rerouted,
            since: SystemTime::now(),
        }
    }
}

/// The stream-management state of a session.
struct SmSession {
    counters: StreamManagement<Unacked>,
    /// Estimated bytes of the unacknowledged and held stanzas.
    bytes: usize,
    /// Stanzas taken from the queue while the session hibernated; written after the unacknowledged ones on
    /// resumption.
    held: VecDeque<Unacked>,
    /// Set when the client asked for resumption.
    resumption: Option<Resumption>,
}

struct Resumption {
    id: String,
    /// Where a connection that resumes the session asks for it.
    takeovers: mpsc::Receiver<TakeoverRequest>,
}

impl SmSession {
    fn new(resumption: Option<Resumption>) -> Self {
        Self {
            counters: StreamManagement::default(),
            bytes: 0,
            held: VecDeque::new(),
            resumption,
        }
    }

    /// Whether another stanza may be written or held within the limits. At least one always may, however big.
    fn has_room(&self, limits: &rookery_config::Limits) -> bool {
        let count = self.counters.unacked().len() + self.held.len();
        count == 0 || (count < limits.sm_max_unacked && self.bytes < limits.sm_max_unacked_bytes)
    }

    /// Writes a stanza and keeps it until the client acknowledges it.
    fn write(&mut self, item: Unacked, out: &mut Vec<u8>) {
        write_top_level(&item.stanza, out, ns::CLIENT);
        self.bytes += item.size;
        self.counters.sent(item);
    }

    /// Appends an `<r/>` when stanzas wait for an acknowledgement and none is asked for yet: one request per batch
    /// of writes at most, never a round-trip per stanza.
    fn request_ack_if_needed(&mut self, out: &mut Vec<u8>) {
        if self.counters.should_request_ack() {
            write_top_level(&sm::ack_request(), out, ns::CLIENT);
            self.counters.ack_request_sent();
        }
    }

    /// Keeps stanzas that were not written (held back by CSI when the connection ended) for the next connection.
    fn hold(&mut self, items: Vec<Unacked>) {
        for item in items {
            self.bytes += item.size;
            self.held.push_back(item);
        }
    }
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
    resumable: Arc<ResumableSessions>,
    /// The client id the stream logged in with through SASL2, recorded on the session it binds.
    client_id: Option<String>,
    /// XEP-0352: what is held back while the client says it is inactive.
    csi: CsiQueue,
    unauthenticated_deadline: Instant,
    /// Set once the stream is closed; the task then ends.
    done: bool,
    /// Set when the connection ended without a stream close from either side: a resumable session then
    /// hibernates instead of ending.
    connection_lost: bool,
    /// A takeover that arrived while a write was blocked: the session is handed over as soon as the loop stops.
    pending_takeover: Option<TakeoverRequest>,
    /// After a resumption: the stanzas to write again, once `<resumed/>` is out.
    resend: VecDeque<Unacked>,
}

/// What woke the connection's loop.
enum Wake {
    Shutdown,
    SessionClosed,
    Queued(Option<Queued>),
    Takeover(Option<TakeoverRequest>),
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
            let limits = &self.server.config.limits;
            let (session, queue, takeovers) = match self.session.as_mut() {
                Some(bound) => {
                    // A stream-managed client with as many unacknowledged stanzas as it may have gets nothing more
                    // until it acknowledges some: its queue fills and slows its senders, as for any slow reader.
                    let room = bound.sm.as_ref().is_none_or(|sm| sm.has_room(limits));
                    let takeovers = bound
                        .sm
                        .as_mut()
                        .and_then(|sm| sm.resumption.as_mut())
                        .map(|r| &mut r.takeovers);
                    (
                        Some(&bound.session),
                        room.then_some(&mut bound.queue),
                        takeovers,
                    )
                }
                None => (None, None, None),
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
                takeover = async {
                    match takeovers {
                        Some(takeovers) => takeovers.recv().await,
                        None => std::future::pending().await,
                    }
                } => Wake::Takeover(takeover),
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
                Wake::Takeover(Some(request)) => self.hand_over(request),
                Wake::Takeover(None) => {
                    // The registry forgot the session (it cannot while the session lives); stop listening.
                    if let Some(sm) = self.session.as_mut().and_then(|b| b.sm.as_mut()) {
                        sm.resumption = None;
                    }
                }
                Wake::Read(Ok(0)) => {
                    debug!("peer closed the connection");
                    self.connection_lost = true;
                    self.done = true;
                }
                Wake::Read(Ok(n)) => {
                    idle_deadline = Instant::now() + idle;
                    self.parser.feed(&read_buf[..n]);
                    self.process_input().await;
                }
                Wake::Read(Err(err)) => {
                    debug!(%err, "read failed");
                    self.connection_lost = true;
                    self.done = true;
                }
                Wake::Timeout if self.session.is_none() => {
                    self.close(StreamError::with_text(
                        StreamCondition::ConnectionTimeout,
                        "took too long to log in",
                    ));
                }
                Wake::Timeout => {
                    idle_deadline = Instant::now() + idle;
                    match self.session.as_mut().and_then(|b| b.sm.as_mut()) {
                        // A stream-managed client that did not answer the last request in all this time is gone.
                        Some(sm) if sm.counters.ack_requested() => {
                            debug!("no acknowledgement; taking the connection as lost");
                            self.connection_lost = true;
                            self.done = true;
                        }
                        Some(sm) => {
                            write_top_level(&sm::ack_request(), &mut self.out, ns::CLIENT);
                            sm.counters.ack_request_sent();
                        }
                        // A whitespace keep-alive, as Prosody sends: if the peer is gone, TCP now finds out and the
                        // next read fails; a quiet but healthy client stays connected.
                        None => self.out.push(b' '),
                    }
                }
            }
        }
        let _ = self.flush().await;
        let csi_held: Vec<Unacked> = self
            .csi
            .take_held()
            .into_iter()
            .map(Unacked::held)
            .collect();
        if let Some(request) = self.pending_takeover.take() {
            self.hand_over(request);
            let _ = self.flush().await;
        }
        if let Some(mut bound) = self.session.take() {
            let hibernate = self.connection_lost
                && bound.resumable()
                && !bound.session.is_closing()
                && !self.server.shutdown.is_cancelled();
            if hibernate {
                // Lost, not closed: nothing to say goodbye to. What CSI held back waits with the session.
                self.transport = None;
                if let Some(sm) = bound.sm.as_mut() {
                    sm.hold(csi_held);
                }
                if let Some(bound) = self.hibernate(bound).await {
                    self.end_session(bound, Vec::new()).await;
                }
            } else {
                self.end_session(bound, csi_held).await;
            }
        }
        if let Some(mut transport) = self.transport.take() {
            let _ = timeout(Duration::from_secs(5), transport.shutdown()).await;
        }
    }

    /// Ends a session for good: it is unbound, can no longer be resumed, and whatever did not reach the client (not
    /// acknowledged, held, or still queued) is undeliverable: messages are routed again or kept offline, requests
    /// answered; nothing is silently dropped.
    /// `not_written` are stanzas CSI held back, which come after the unacknowledged ones and before the queue.
    async fn end_session(&self, mut bound: BoundSession, not_written: Vec<Unacked>) {
        self.server.sessions.unbind(&bound.session);
        bound.queue.close();
        // Oldest first: written but not acknowledged, then held back by CSI, then held while hibernating.
        let mut leftovers = Vec::new();
        if let Some(sm) = bound.sm.as_mut() {
            if let Some(resumption) = sm.resumption.take() {
                self.resumable
                    .ended(&resumption.id, sm.counters.handled_count());
            }
            leftovers.extend(sm.counters.take_unacked());
        }
        leftovers.extend(not_written);
        if let Some(sm) = bound.sm.as_mut() {
            leftovers.extend(sm.held.drain(..));
        }
        for item in leftovers {
            self.server.undeliverable(item.stanza, item.rerouted).await;
        }
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

    /// Keeps a session whose connection was lost until its client resumes it on another connection (then `None`:
    /// the session went there) or until it must end: the hibernation time is over, the session was closed or
    /// replaced, the server shuts down, or more arrived for it than it may hold.
    async fn hibernate(&self, mut bound: BoundSession) -> Option<BoundSession> {
        let limits = &self.server.config.limits;
        let deadline = Instant::now() + limits.sm_hibernation;
        info!(jid = %bound.session.jid, "connection lost; session hibernating");
        loop {
            let BoundSession { session, queue, sm } = &mut bound;
            // Only resumable sessions hibernate; anything else ends here rather than linger unowned.
            let Some(sm) = sm.as_mut() else {
                return Some(bound);
            };
            let Some(resumption) = sm.resumption.as_mut() else {
                return Some(bound);
            };
            let takeovers = &mut resumption.takeovers;
            tokio::select! {
                () = self.server.shutdown.cancelled() => return Some(bound),
                () = session.closed() => return Some(bound),
                () = sleep_until(deadline) => {
                    info!(jid = %session.jid, "hibernation over");
                    return Some(bound);
                }
                request = takeovers.recv() => {
                    // The registry forgot the session (it cannot while the session lives): end it.
                    let Some(request) = request else { return Some(bound) };
                    match request.reply.send(Box::new(bound)) {
                        Ok(()) => return None,
                        // The new connection gave up waiting: keep hibernating.
                        Err(returned) => bound = *returned,
                    }
                }
                queued = queue.recv() => {
                    // Taken from the queue so that senders never wait on a session nobody reads, and kept within
                    // the same bound as unacknowledged stanzas.
                    let Some(queued) = queued else { return Some(bound) };
                    let item = Unacked::new(queued);
                    sm.bytes += item.size;
                    sm.held.push_back(item);
                    if !sm.has_room(limits) {
                        info!(jid = %session.jid, "too much for a hibernating session; ending it");
                        return Some(bound);
                    }
                }
            }
        }
    }

    /// Another connection resumes this session: hand it over whole, and close this connection.
    fn hand_over(&mut self, request: TakeoverRequest) {
        let Some(mut bound) = self.session.take() else {
            return;
        };
        // What CSI held back goes with the session (the new connection's client starts active).
        if let Some(sm) = bound.sm.as_mut() {
            sm.hold(
                self.csi
                    .take_held()
                    .into_iter()
                    .map(Unacked::held)
                    .collect(),
            );
        }
        // What was serialised and not written yet is in the unacknowledged queue: the new connection sends it.
        self.out.clear();
        match request.reply.send(Box::new(bound)) {
            Ok(()) => {
                info!("session resumed on another connection");
                self.write_action(Action::Close(StreamError::with_text(
                    StreamCondition::Conflict,
                    "the session was resumed on another connection",
                )));
            }
            // The new connection gave up waiting: carry on.
            Err(returned) => self.session = Some(*returned),
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
        let write = timeout(limit, async {
            transport.write_all(&self.out).await?;
            transport.flush().await
        });
        // A client whose connection died usually resumes on a new one before this write gives up: a takeover
        // stops the write, and the session goes to the new connection with everything unacknowledged.
        let takeovers = self
            .session
            .as_mut()
            .and_then(|b| b.sm.as_mut())
            .and_then(|sm| sm.resumption.as_mut())
            .map(|r| &mut r.takeovers);
        let result = match takeovers {
            Some(takeovers) => tokio::select! {
                result = write => Some(result),
                request = takeovers.recv() => {
                    self.pending_takeover = request;
                    None
                }
            },
            None => Some(write.await),
        };
        self.out.clear();
        match result {
            Some(Ok(Ok(()))) => true,
            Some(Ok(Err(err))) => {
                debug!(%err, "write failed");
                self.connection_lost = true;
                self.done = true;
                false
            }
            Some(Err(_)) => {
                debug!("write timed out");
                self.connection_lost = true;
                self.done = true;
                false
            }
            None => {
                self.done = true;
                false
            }
        }
    }

    /// Serialises a queued stanza and whatever else is waiting, up to one write batch. Each stanza's share of the
    /// queue budget is released as it is serialised. A stream-managed client gets one `<r/>` after the batch.
    fn write_queued(&mut self, first: Queued) {
        let Some(bound) = self.session.as_mut() else {
            return;
        };
        write_stanza(&mut self.csi, &mut bound.sm, &mut self.out, first);
        self.drain_queue(WRITE_BATCH);
        if let Some(sm) = self.session.as_mut().and_then(|b| b.sm.as_mut()) {
            sm.request_ack_if_needed(&mut self.out);
        }
    }

    /// Serialises queued stanzas until `out` holds `up_to` bytes, the queue is empty, or a stream-managed client
    /// has as many unacknowledged stanzas as it may.
    fn drain_queue(&mut self, up_to: usize) {
        let Some(bound) = self.session.as_mut() else {
            return;
        };
        let limits = &self.server.config.limits;
        while self.out.len() < up_to {
            if bound.sm.as_ref().is_some_and(|sm| !sm.has_room(limits)) {
                break;
            }
            match bound.queue.try_recv() {
                Ok(queued) => write_stanza(&mut self.csi, &mut bound.sm, &mut self.out, queued),
                Err(_) => break,
            }
        }
    }

    /// After `<resumed/>`: writes again what the client did not acknowledge, stamped with when it was first sent,
    /// then what was held for it while it hibernated.
    fn write_resent(&mut self) {
        let Some(sm) = self.session.as_mut().and_then(|b| b.sm.as_mut()) else {
            return;
        };
        let domain = self.server.domain.as_str();
        for mut item in std::mem::take(&mut self.resend) {
            stamp_delay(&mut item, domain);
            sm.write(item, &mut self.out);
        }
        sm.request_ack_if_needed(&mut self.out);
    }

    /// A stream-management element on an established stream.
    fn on_sm(&mut self, request: Result<SmRequest, sm::SmParseError>) {
        let Some(bound) = self.session.as_mut() else {
            return;
        };
        match request {
            Ok(SmRequest::Enable { resume }) => {
                let answer = self.enable_sm(resume);
                write_top_level(&answer, &mut self.out, ns::CLIENT);
            }
            Ok(SmRequest::Resume { .. }) => {
                write_top_level(
                    &sm::failed("unexpected-request", None),
                    &mut self.out,
                    ns::CLIENT,
                );
            }
            Ok(SmRequest::AckRequest) => {
                // Without stream management there is no count to give (Prosody ignores it too).
                if let Some(sm) = bound.sm.as_mut() {
                    write_top_level(
                        &sm::ack(sm.counters.handled_count()),
                        &mut self.out,
                        ns::CLIENT,
                    );
                    sm.request_ack_if_needed(&mut self.out);
                }
            }
            Ok(SmRequest::Ack { h }) => {
                let Some(sm) = bound.sm.as_mut() else {
                    return;
                };
                sm.counters.ack_received();
                let acked = sm
                    .counters
                    .ack(h)
                    .map(|acked| acked.map(|item| item.size).sum::<usize>());
                match acked {
                    Ok(freed) => {
                        sm.bytes -= freed;
                        sm.request_ack_if_needed(&mut self.out);
                    }
                    Err(too_high) => {
                        info!(
                            h,
                            sent = too_high.sent,
                            "acknowledgement of stanzas never sent"
                        );
                        self.close(
                            StreamError::with_text(
                                StreamCondition::UndefinedCondition,
                                "acknowledged more stanzas than were sent",
                            )
                            .with_app_condition(sm::handled_count_too_high(too_high)),
                        );
                    }
                }
            }
            Err(err) => {
                self.close(StreamError::with_text(
                    StreamCondition::InvalidXml,
                    format!("malformed stream management element: {err:?}"),
                ));
            }
        }
    }

    /// Enables stream management on the bound session (with resumption when asked): `<enabled/>`, or `<failed/>`
    /// when it is on already.
    fn enable_sm(&mut self, resume: bool) -> Element {
        let Some(bound) = self.session.as_mut() else {
            return sm::failed("unexpected-request", None);
        };
        if bound.sm.is_some() {
            return sm::failed("unexpected-request", None);
        }
        let resumption = resume.then(|| {
            let (id, takeovers) = self.resumable.register(bound.session.username());
            Resumption { id, takeovers }
        });
        let max = self.server.config.limits.sm_hibernation.as_secs().max(1);
        let enabled = sm::enabled(resumption.as_ref().map(|r| (r.id.as_str(), max)));
        bound.sm = Some(SmSession::new(resumption));
        enabled
    }

    /// Takes over the session `previd` for a resumption, from the connection that holds it: the session is this
    /// connection's when it returns `Ok`; `Err` is the `<failed/>` to send.
    async fn take_over(
        &mut self,
        username: &str,
        previd: &str,
        h: u32,
    ) -> Result<ResumedSession, Element> {
        let takeovers = match self.resumable.find(username, previd) {
            Found::Session(takeovers) => takeovers,
            Found::Ended { handled } => return Err(crate::resumption::not_found(Some(handled))),
            Found::Unknown => return Err(crate::resumption::not_found(None)),
        };
        let (reply, handed_over) = oneshot::channel();
        let taken = timeout(TAKEOVER_TIMEOUT, async {
            takeovers.send(TakeoverRequest { reply }).await.ok()?;
            handed_over.await.ok()
        })
        .await;
        let Ok(Some(bound)) = taken else {
            // It ended meanwhile, or its connection did not answer.
            return Err(crate::resumption::not_found(None));
        };
        let mut bound = *bound;
        let Some(sm) = bound.sm.as_mut() else {
            return Err(crate::resumption::not_found(None));
        };
        let handled = sm.counters.handled_count();
        match sm.counters.resume(h) {
            Ok(resend) => {
                sm.bytes = resend.iter().chain(&sm.held).map(|i| i.size).sum();
                self.resend = resend;
                self.resend.extend(std::mem::take(&mut sm.held));
                let jid = bound.session.jid.clone();
                self.session = Some(bound);
                Ok(ResumedSession {
                    jid,
                    previd: previd.to_owned(),
                    handled,
                })
            }
            Err(too_high) => {
                // The client counts stanzas that were never sent: the session cannot go on consistently. It ends
                // (what it holds goes to other resources or offline) and the client starts a new one.
                info!(
                    h,
                    sent = too_high.sent,
                    "resumption with a count beyond what was sent"
                );
                self.end_session(bound, Vec::new()).await;
                Err(sm::failed("undefined-condition", Some(handled))
                    .with_child(sm::handled_count_too_high(too_high)))
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
                (Some(_), StreamEvent::Element(el)) if el.ns() == sm::NS_SM => {
                    if let Some(request) = SmRequest::parse(&el) {
                        self.on_sm(request);
                    }
                }
                (Some(bound), StreamEvent::Element(nonza))
                    if crate::csi::is_state_change(&nonza) =>
                {
                    let account = bound.session.bare_jid();
                    let bound = self.session.as_mut().expect("matched above");
                    let out = &mut self.out;
                    let sm = &mut bound.sm;
                    self.csi
                        .state_change(&nonza, &account, |held| write_out(sm, out, held));
                }
                (Some(bound), StreamEvent::Element(stanza)) => {
                    let session = Arc::clone(&bound.session);
                    let is_stanza = StanzaKind::of(&stanza, ns::CLIENT).is_some();
                    let handled = session
                        .serving(self.server.handle_from_client(&session, stanza))
                        .await;
                    if let Err(err) = handled {
                        info!(condition = err.condition.name(), "closing stream");
                        self.close(err);
                    } else if is_stanza
                        && let Some(sm) = self.session.as_mut().and_then(|b| b.sm.as_mut())
                    {
                        sm.counters.handled();
                    }
                }
                (Some(bound), StreamEvent::Close) => {
                    // The last count, so that the client knows what was handled (XEP-0198 §5).
                    if let Some(sm) = &bound.sm {
                        let last = sm::ack(sm.counters.handled_count());
                        write_top_level(&last, &mut self.out, ns::CLIENT);
                    }
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
                self.raise_limits();
            }
            Action::LookupFastTokens {
                username,
                client_id,
            } => {
                return match self.fast_lookup(&username, &client_id).await {
                    Ok(lookup) => Some(Input::FastTokens(lookup)),
                    Err(err) => {
                        warn!(%err, "FAST token look-up failed");
                        self.close(StreamError::new(StreamCondition::InternalServerError));
                        None
                    }
                };
            }
            Action::RemoveFastToken {
                username,
                client_id,
                slot,
            } => {
                let removed = self
                    .server
                    .store
                    .clients()
                    .remove_token(&username, &client_id, slot)
                    .await;
                if let Err(err) = removed {
                    warn!(%err, "cannot remove an expired FAST token");
                }
            }
            Action::CompleteLogin(completion) => return self.complete_login(*completion).await,
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
                        session.state().client_id.clone_from(&self.client_id);
                        self.session = Some(BoundSession {
                            session,
                            queue,
                            sm: None,
                        });
                        jid
                    });
                if result.is_err() {
                    info!(account = %bare, "resource refused");
                }
                return Some(Input::Bound(result));
            }
            Action::Resume {
                username,
                previd,
                h,
            } => return Some(Input::Resumed(self.take_over(&username, &previd, h).await)),
            Action::ResumedSession(jid) => {
                info!(%jid, "session resumed");
                self.write_resent();
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

    /// Logged in: the client gets the full stanza size.
    fn raise_limits(&mut self) {
        self.parser.set_limits(Limits {
            max_stanza_bytes: self.server.config.limits.c2s_stanza_size,
            ..Limits::CLIENT
        });
    }

    /// The account's state and the client's tokens, for a FAST authentication.
    async fn fast_lookup(
        &self,
        username: &str,
        client_id: &str,
    ) -> Result<FastLookup, rookery_store::StoreError> {
        let account = match self.server.store.accounts().get(username).await? {
            None => FastAccount::Missing,
            Some(account) if account.disabled => {
                FastAccount::Disabled(self.disabled_text(username).await)
            }
            Some(_) => FastAccount::Active,
        };
        let tokens = match account {
            FastAccount::Missing => Vec::new(),
            _ => {
                self.server
                    .store
                    .clients()
                    .tokens(username, client_id)
                    .await?
            }
        };
        Ok(FastLookup {
            account,
            tokens,
            now: unix_now(),
        })
    }

    /// After a SASL2 success: records the client and its tokens (one transaction), binds the Bind2 resource and
    /// runs the inline features, then feeds the result back so that the success can be sent. There is no stream
    /// restart, so the logged-in limits apply from here.
    async fn complete_login(&mut self, login: LoginCompletion) -> Option<Input> {
        self.raise_limits();
        let now = unix_now();
        let issued = login.issue_token.map(|mechanism| rookery_store::NewToken {
            mechanism: mechanism.name().to_owned(),
            secret: rookery_sasl::ht::generate_token(),
            expires_at: now.saturating_add(FAST_TOKEN_TTL_SECS),
        });
        if let Some(agent) = &login.user_agent {
            let record = rookery_store::ClientLogin {
                username: login.username.clone(),
                client_id: agent.id.clone(),
                software: agent.software.clone(),
                device: agent.device.clone(),
                now,
                used: login
                    .used_token
                    .map(|(slot, fast)| rookery_store::TokenUse {
                        slot,
                        count: fast.count,
                        invalidate: fast.invalidate,
                    }),
                issue: issued.clone(),
                max_clients: MAX_CLIENTS_PER_ACCOUNT,
            };
            if let Err(err) = self.server.store.clients().record_login(&record).await {
                warn!(%err, "cannot record the client's login");
                self.close(StreamError::new(StreamCondition::InternalServerError));
                return None;
            }
            self.client_id = Some(agent.id.clone());
        }
        let token = issued.map(|t| IssuedToken {
            secret: t.secret,
            expiry: xep0082(t.expires_at),
        });
        // XEP-0198 `<resume/>` inside `<authenticate/>`: a resumed session takes the place of binding (XEP-0388
        // §6.1); when it fails, `<failed/>` goes in the success and binding goes on as asked.
        let mut sm_failed = None;
        if let Some(request) = login.sm_resume.as_ref().and_then(SmRequest::parse) {
            match request {
                Ok(SmRequest::Resume { previd, h }) => {
                    match self.take_over(&login.username, &previd, h).await {
                        Ok(resumed) => {
                            return Some(Input::LoginCompleted(Ok(LoginResult {
                                token,
                                bound: None,
                                resumed: Some(resumed),
                                sm_failed: None,
                            })));
                        }
                        Err(failed) => sm_failed = Some(failed),
                    }
                }
                _ => sm_failed = Some(sm::failed("bad-request", None)),
            }
        }
        let Some(mut bind) = login.bind else {
            return Some(Input::LoginCompleted(Ok(LoginResult {
                token,
                bound: None,
                resumed: None,
                sm_failed,
            })));
        };
        let Ok(bare) = BareJid::new(&format!("{}@{}", login.username, self.server.domain)) else {
            self.close(StreamError::new(StreamCondition::InternalServerError));
            return None;
        };
        let max = self.server.config.max_user_clients as usize;
        let (session, queue) = match self.server.sessions.bind(&bare, Some(&bind.resource), max) {
            Ok(bound) => bound,
            Err(refusal) => {
                info!(account = %bare, "resource refused");
                return Some(Input::LoginCompleted(Err(refusal)));
            }
        };
        session.state().client_id.clone_from(&self.client_id);
        let jid = session.jid.clone();
        self.session = Some(BoundSession {
            session: Arc::clone(&session),
            queue,
            sm: None,
        });
        // XEP-0198's inline `<enable/>` is the connection's (stream management lives here); the rest are the
        // modules' inline features (carbons, ...).
        let sm_enable = bind
            .inline
            .iter()
            .position(|el| el.is("enable", sm::NS_SM))
            .map(|i| bind.inline.remove(i));
        let mut results = match self.server.extensions.get::<Bind2Features>() {
            Some(features) => {
                session
                    .serving(features.enable_all(&self.server, &session, bind.inline))
                    .await
            }
            None => Vec::new(),
        };
        if let Some(Some(Ok(SmRequest::Enable { resume }))) =
            sm_enable.as_ref().map(SmRequest::parse)
        {
            results.push(self.enable_sm(resume));
        }
        Some(Input::LoginCompleted(Ok(LoginResult {
            token,
            bound: Some((jid, results)),
            resumed: None,
            sm_failed,
        })))
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
            let sm = &mut self.session.as_mut().expect("checked above").sm;
            self.csi.flush(|held| write_out(sm, out, held));
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

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Writes a stanza from the session's queue, unless its client is inactive and the stanza can wait (XEP-0352).
/// Its share of the queue budget is released either way: held stanzas are bounded by the CSI queue's own limits.
fn write_stanza(csi: &mut CsiQueue, sm: &mut Option<SmSession>, out: &mut Vec<u8>, queued: Queued) {
    csi.offer(queued.stanza, queued.rerouted, |held| {
        write_out(sm, out, held)
    });
}

/// Writes a stanza to the client, counted and kept until acknowledged when stream management is on.
fn write_out(sm: &mut Option<SmSession>, out: &mut Vec<u8>, held: Held) {
    match sm {
        Some(sm) => sm.write(Unacked::held(held), out),
        None => write_top_level(&held.stanza, out, ns::CLIENT),
    }
}

/// Authentication results go to the log (never credentials).
fn log_auth_outcome(el: &Element, user: Option<&str>) {
    let sasl2 = rookery_proto::sasl2::NS_SASL2;
    if el.is("success", ns::SASL) || el.is("success", sasl2) {
        info!(user = user.unwrap_or(""), "authenticated");
    } else if el.is("failure", ns::SASL) || el.is("failure", sasl2) {
        let condition = el.first_child().map_or("", Element::name);
        info!(condition, "authentication failed");
    }
}

/// Stamps a message or presence sent again after a resumption with when it was first sent (XEP-0203), unless it
/// already carries a stamp from this server, as Prosody does: the client may show it late.
fn stamp_delay(item: &mut Unacked, domain: &str) {
    let stanza = &mut item.stanza;
    if stanza.name() == "iq"
        || stanza
            .children()
            .any(|c| c.is("delay", NS_DELAY) && c.attr("from") == Some(domain))
    {
        return;
    }
    let seconds = item
        .since
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let stamp = xep0082(seconds);
    let delay = Element::new("delay", NS_DELAY)
        .with_attr("from", domain)
        .with_attr("stamp", stamp);
    item.size += rookery_core::estimated_size(&delay);
    stanza.append_child(delay);
}
