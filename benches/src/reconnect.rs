//! The reconnect benchmark (issue 5): what it costs the server when a phone comes back after losing its
//! connection, and how many round trips the phone waits for.
//!
//! Each phone is one account; `phones` of them reconnect at the same time, each one after the other. The modes:
//!
//! - [`Mode::Full`]: a full login: STARTTLS, SASL1 (SCRAM), stream restart, bind, `<enable resume='true'/>`;
//!   then the stream is closed.
//! - [`Mode::Fast`]: SASL2 (XEP-0388) with a FAST token (XEP-0484, `HT-SHA-256-NONE`) and Bind2 (XEP-0386), then
//!   `<enable resume='true'/>` (inside Bind2 when the server offers that); then the stream is closed. The token
//!   comes from a first password login with `<request-token/>`.
//! - [`Mode::Resume`]: XEP-0198 resumption: STARTTLS, SASL1, stream restart, `<resume previd h/>` of the session
//!   whose connection was cut; then the connection is cut again (dropped without `</stream>`, as a phone losing
//!   its network does), so that the next reconnect resumes it again.
//! - [`Mode::FastResume`]: FAST with `<resume/>` inside SASL2's `<authenticate/>`: one round trip after the
//!   features. Only when the server offers it (`<sm xmlns='urn:xmpp:sm:3'/>` in SASL2's `<inline/>`); otherwise
//!   the run fails with [`Unsupported`].
//!
//! A reconnect's latency runs from the TCP connect to the session being usable again (`<enabled/>`, `<resumed/>`).
//! Its round trips are the times the phone sent something and then waited for the server, counted separately
//! before and after the TLS handshake. The phones send no presence and get no stanzas, so that what is measured is
//! the reconnection itself (the client's XEP-0198 count stays 0).

use std::fmt;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rookery_sasl::ht;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::client::escape;
use crate::conn::{self, Auth, Negotiation, Target};
use crate::procstat::Proc;
use crate::scan::{self, TagKind};
use crate::scram::ScramClient;

const NS_SASL2: &str = "urn:xmpp:sasl:2";
const NS_BIND2: &str = "urn:xmpp:bind:0";
const NS_FAST: &str = "urn:xmpp:fast:0";
const NS_SM: &str = "urn:xmpp:sm:3";
/// The FAST mechanism: the one without channel binding, which every server offering FAST has.
const FAST_MECHANISM: &str = "HT-SHA-256-NONE";
/// The resource of SASL1 logins and the tag of Bind2 ones.
const RESOURCE: &str = "reconnectbench";

/// What a reconnect does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Full,
    Fast,
    Resume,
    FastResume,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Fast => "fast",
            Self::Resume => "resume",
            Self::FastResume => "fast-resume",
        }
    }

    /// Whether a reconnect ends by cutting the connection (so that the next one resumes the session) rather than
    /// by closing the stream.
    fn cuts(self) -> bool {
        matches!(self, Self::Resume | Self::FastResume)
    }
}

/// The server does not offer what a mode needs (SASL2, FAST, inline resumption): the run cannot measure it.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsupported {}

fn unsupported(what: &str) -> anyhow::Error {
    Unsupported(what.to_owned()).into()
}

/// A stream management session the phone can resume.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SmSession {
    id: String,
    /// Stanzas the phone handled (XEP-0198 `h`).
    handled: u32,
}

/// A FAST token and the last `count` used with it.
#[derive(Debug, Clone)]
struct FastToken {
    secret: String,
    count: u64,
}

/// One account that reconnects, with what it keeps between reconnects.
pub struct Phone {
    auth: Auth,
    /// The SASL2 `<user-agent id/>`: stable for the phone, as an app's installation id is.
    client_id: String,
    fast: Option<FastToken>,
    sm: Option<SmSession>,
}

/// One timed reconnect.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    /// From the TCP connect to the session being usable.
    pub latency: Duration,
    pub round_trips_before_tls: u32,
    pub round_trips_after_tls: u32,
}

/// SASL2's `<authentication/>` stream feature, as far as the phone cares.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sasl2Offer {
    /// Password mechanisms (SCRAM-…).
    mechanisms: Vec<String>,
    /// FAST mechanisms (HT-…).
    fast: Vec<String>,
    /// Bind2 inline feature namespaces (`<feature var/>`).
    bind2_features: Vec<String>,
    /// XEP-0198 `<resume/>` (and `<enable/>`) accepted inside `<authenticate/>`.
    inline_sm: bool,
}

impl Sasl2Offer {
    /// The offer in `features`, or [`Unsupported`] if SASL2 is not offered.
    fn parse(features: &[u8]) -> anyhow::Result<Self> {
        let auth = scan::find_element(features, "authentication")
            .filter(|a| has_ns(a, "authentication", NS_SASL2))
            .ok_or_else(|| unsupported("the server does not offer SASL2 (XEP-0388)"))?;
        // SASL2's <inline/>; Bind2's own <inline/> is inside it.
        let inline = scan::find_element(auth, "inline").unwrap_or_default();
        let fast = scan::find_element(inline, "fast")
            .map(|f| scan::texts(f, "mechanism"))
            .unwrap_or_default();
        let mechanisms = scan::texts(auth, "mechanism")
            .into_iter()
            .filter(|m| !fast.contains(m))
            .collect();
        let bind2_features = scan::find_element(inline, "bind")
            .map(|b| {
                scan::tags(b)
                    .filter(|t| t.kind != TagKind::End && t.local_name() == b"feature")
                    .filter_map(|t| scan::attr(t.raw, "var"))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            mechanisms,
            fast,
            bind2_features,
            inline_sm: has_ns(inline, "sm", NS_SM),
        })
    }

    fn bind2_sm(&self) -> bool {
        self.bind2_features.iter().any(|f| f == NS_SM)
    }
}

/// Whether `elem` has an element (itself or a descendant) named `name` with `xmlns='{ns}'`.
fn has_ns(elem: &[u8], name: &str, ns: &str) -> bool {
    scan::tags(elem).any(|t| {
        t.kind != TagKind::End
            && t.local_name() == name.as_bytes()
            && scan::attr(t.raw, "xmlns").as_deref() == Some(ns)
    })
}

/// The session `<enabled/>` (XEP-0198) makes resumable.
fn enabled_session(answer: &[u8]) -> anyhow::Result<SmSession> {
    ensure!(
        scan::element_name(answer) == b"enabled",
        "stream management was refused: {}",
        scan::excerpt(answer)
    );
    let resume = scan::attr(answer, "resume");
    ensure!(
        matches!(resume.as_deref(), Some("true" | "1")),
        "the server does not allow resumption: {}",
        scan::excerpt(answer)
    );
    let id = scan::attr(answer, "id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| anyhow!("no id in <enabled/>: {}", scan::excerpt(answer)))?;
    Ok(SmSession { id, handled: 0 })
}

/// Checks that `answer` is `<resumed/>` for session `id`.
fn check_resumed(answer: &[u8], id: &str) -> anyhow::Result<()> {
    ensure!(
        scan::element_name(answer) == b"resumed",
        "resumption failed: {}",
        scan::excerpt(answer)
    );
    let previd = scan::attr(answer, "previd");
    ensure!(
        previd.as_deref() == Some(id),
        "<resumed/> names session {previd:?}, not {id:?}"
    );
    Ok(())
}

/// The base64-decoded `<additional-data/>` of a SASL2 `<success/>`, if any.
fn additional_data(success: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    scan::find_element(success, "additional-data")
        .map(conn::sasl_payload)
        .transpose()
}

/// Fails unless `answer` is SASL2's `<success/>`.
fn sasl2_success(answer: Vec<u8>, what: &str) -> anyhow::Result<Vec<u8>> {
    ensure!(
        scan::element_name(&answer) == b"success",
        "{what} failed: {}",
        scan::excerpt(&answer)
    );
    Ok(answer)
}

const SASL2_OUTCOMES: [&str; 4] = ["success", "failure", "challenge", "continue"];

impl Phone {
    /// A phone for `auth`'s account (which must use SCRAM for the SASL2 modes).
    pub fn new(auth: Auth) -> Self {
        let id: [u8; 16] = rand::random();
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            auth,
            client_id: format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            ),
            fast: None,
            sm: None,
        }
    }

    /// What `mode` needs before the first reconnect: a FAST token, a session to resume.
    async fn prepare(&mut self, target: &Target, mode: Mode) -> anyhow::Result<()> {
        match mode {
            Mode::Full => {}
            Mode::Fast => self.password_login_sasl2(target).await?.close().await,
            Mode::Resume => drop(self.full_login(target).await?),
            Mode::FastResume => drop(self.password_login_sasl2(target).await?),
        }
        Ok(())
    }

    /// One reconnect, ended as `mode` ends it.
    async fn reconnect(&mut self, target: &Target, mode: Mode) -> anyhow::Result<Reconnect> {
        let started = Instant::now();
        let n = match mode {
            Mode::Full => self.full_login(target).await?,
            Mode::Fast => self.fast_login(target).await?,
            Mode::Resume => self.resume(target).await?,
            Mode::FastResume => self.fast_resume(target).await?,
        };
        let done = Reconnect {
            latency: started.elapsed(),
            round_trips_before_tls: n.round_trips_before_tls,
            round_trips_after_tls: n.round_trips,
        };
        if mode.cuts() {
            // Dropped without </stream:stream> or TLS close_notify: the server sees the connection die.
            drop(n);
        } else {
            n.close().await;
        }
        Ok(done)
    }

    fn username(&self) -> &str {
        self.auth.who()
    }

    fn user_agent(&self) -> String {
        format!(
            "<user-agent id='{}'><software>rookery-benches</software><device>{RESOURCE}</device></user-agent>",
            self.client_id
        )
    }

    /// Bind2's `<bind/>`, with XEP-0198's `<enable/>` inside when the server takes it there.
    fn bind2(offer: &Sasl2Offer) -> String {
        let enable = if offer.bind2_sm() {
            format!("<enable xmlns='{NS_SM}' resume='true'/>")
        } else {
            String::new()
        };
        format!("<bind xmlns='{NS_BIND2}'><tag>{RESOURCE}</tag>{enable}</bind>")
    }

    /// Sends `<enable resume='true'/>` and keeps the session it enables.
    async fn enable(&mut self, n: &mut Negotiation) -> anyhow::Result<()> {
        n.send(
            format!("<enable xmlns='{NS_SM}' resume='true'/>").as_bytes(),
            "<enable/>",
        )
        .await?;
        let answer = n
            .expect(&["enabled", "failed"], "the answer to <enable/>")
            .await?;
        self.sm = Some(enabled_session(&answer)?);
        Ok(())
    }

    /// After a SASL2 `<success/>` with Bind2: the stream management session, enabled inside Bind2 or now.
    async fn enable_after_bind2(
        &mut self,
        n: &mut Negotiation,
        offer: &Sasl2Offer,
        success: &[u8],
    ) -> anyhow::Result<()> {
        ensure!(
            scan::has(success, "bound"),
            "the SASL2 success has no Bind2 <bound/>: {}",
            scan::excerpt(success)
        );
        if offer.bind2_sm() {
            let answer = scan::find_element(success, "enabled")
                .or_else(|| scan::find_element(success, "failed"))
                .ok_or_else(|| {
                    anyhow!(
                        "<enable/> was sent inside Bind2, but <bound/> does not answer it: {}",
                        scan::excerpt(success)
                    )
                })?;
            self.sm = Some(enabled_session(answer)?);
            Ok(())
        } else {
            self.enable(n).await
        }
    }

    /// Mode `full`: SASL1, restart, bind, enable.
    async fn full_login(&mut self, target: &Target) -> anyhow::Result<Negotiation> {
        let (mut n, features) = conn::connect_secured(target).await?;
        conn::sasl(&mut n, &features, &self.auth).await?;
        let features = n.features("the stream features after SASL").await?;
        conn::bind(&mut n, &features, RESOURCE).await?;
        ensure!(
            has_ns(&features, "sm", NS_SM),
            "the server does not offer stream management (XEP-0198): {}",
            scan::excerpt(&features)
        );
        self.enable(&mut n).await?;
        Ok(n)
    }

    /// Mode `resume`: SASL1, restart, `<resume/>`.
    async fn resume(&mut self, target: &Target) -> anyhow::Result<Negotiation> {
        let sm = self.sm.clone().context("there is no session to resume")?;
        let (mut n, features) = conn::connect_secured(target).await?;
        conn::sasl(&mut n, &features, &self.auth).await?;
        let features = n.features("the stream features after SASL").await?;
        ensure!(
            has_ns(&features, "sm", NS_SM),
            "the server does not offer stream management (XEP-0198): {}",
            scan::excerpt(&features)
        );
        let resume = format!(
            "<resume xmlns='{NS_SM}' previd='{}' h='{}'/>",
            escape(&sm.id),
            sm.handled
        );
        n.send(resume.as_bytes(), "<resume/>").await?;
        let answer = n
            .expect(&["resumed", "failed"], "the answer to <resume/>")
            .await?;
        check_resumed(&answer, &sm.id)?;
        Ok(n)
    }

    /// The SASL2 offer, which must include FAST.
    fn fast_offer(features: &[u8]) -> anyhow::Result<Sasl2Offer> {
        let offer = Sasl2Offer::parse(features)?;
        if !offer.fast.iter().any(|m| m == FAST_MECHANISM) {
            return Err(unsupported(&format!(
                "the server does not offer FAST (XEP-0484) with {FAST_MECHANISM}; it offers {:?}",
                offer.fast
            )));
        }
        Ok(offer)
    }

    /// The setup of the FAST modes: a SASL2 password login that binds, asks for a FAST token and enables stream
    /// management.
    async fn password_login_sasl2(&mut self, target: &Target) -> anyhow::Result<Negotiation> {
        let Auth::Scram {
            hash,
            username,
            password,
        } = &self.auth
        else {
            bail!("the SASL2 password login uses SCRAM: use --auth scram-sha-1 or scram-sha-256");
        };
        let (mut n, features) = conn::connect_secured(target).await?;
        let offer = Self::fast_offer(&features)?;
        let mechanism = hash.mechanism();
        ensure!(
            offer.mechanisms.iter().any(|m| m == mechanism),
            "the server does not offer {mechanism} over SASL2; it offers {:?}",
            offer.mechanisms
        );
        let mut scram = ScramClient::new(*hash, username, password);
        let extra = format!(
            "{}<request-token xmlns='{NS_FAST}' mechanism='{FAST_MECHANISM}'/>{}",
            self.user_agent(),
            Self::bind2(&offer)
        );
        let auth = authenticate(mechanism, scram.client_first().as_bytes(), &extra);
        n.send(auth.as_bytes(), "SASL2 <authenticate/>").await?;
        let challenge = n.expect(&SASL2_OUTCOMES, "the SCRAM challenge").await?;
        ensure!(
            scan::element_name(&challenge) == b"challenge",
            "SASL2 {mechanism} refused: {}",
            scan::excerpt(&challenge)
        );
        let client_final = scram.client_final(&conn::sasl_payload(&challenge)?)?;
        let response = format!(
            "<response xmlns='{NS_SASL2}'>{}</response>",
            BASE64.encode(client_final)
        );
        n.send(response.as_bytes(), "the SASL2 response").await?;
        let answer = n.expect(&SASL2_OUTCOMES, "the SASL2 result").await?;
        let success = sasl2_success(answer, "the SASL2 password login")?;
        let server_final = additional_data(&success)?.context(
            "the SASL2 success has no <additional-data/> (SCRAM's server-final-message)",
        )?;
        scram.verify_server_final(&server_final)?;
        let secret = scan::find_element(&success, "token")
            .and_then(|t| scan::attr(t, "token"))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "the server gave no FAST token for <request-token/>: {}",
                    scan::excerpt(&success)
                )
            })?;
        self.fast = Some(FastToken { secret, count: 0 });
        self.enable_after_bind2(&mut n, &offer, &success).await?;
        Ok(n)
    }

    /// `<authenticate/>` with the FAST token and `extra`; returns the checked `<success/>`.
    async fn fast_authenticate(
        &mut self,
        n: &mut Negotiation,
        extra: &str,
    ) -> anyhow::Result<Vec<u8>> {
        let user_agent = self.user_agent();
        let username = self.username().to_owned();
        let token = self
            .fast
            .as_mut()
            .context("no FAST token (the setup login got none)")?;
        // The count only has to grow (XEP-0484 replay protection); it keeps growing across token rotations.
        token.count += 1;
        let mut initial = username.into_bytes();
        initial.push(0);
        initial.extend_from_slice(&ht::client_proof(&token.secret, b""));
        let fast = format!(
            "{user_agent}<fast xmlns='{NS_FAST}' count='{}'/>{extra}",
            token.count
        );
        n.send(
            authenticate(FAST_MECHANISM, &initial, &fast).as_bytes(),
            "the FAST <authenticate/>",
        )
        .await?;
        let answer = n.expect(&SASL2_OUTCOMES, "the FAST result").await?;
        let success = sasl2_success(answer, "the FAST login")?;
        let proof = additional_data(&success)?
            .context("the server did not prove that it knows the token (no <additional-data/>)")?;
        ensure!(
            proof == ht::server_proof(&token.secret, b""),
            "the server's FAST proof does not match the token"
        );
        // A rotated token replaces the old one.
        if let Some(new) =
            scan::find_element(&success, "token").and_then(|t| scan::attr(t, "token"))
        {
            token.secret = new;
        }
        Ok(success)
    }

    /// Mode `fast`: FAST + Bind2, then stream management.
    async fn fast_login(&mut self, target: &Target) -> anyhow::Result<Negotiation> {
        let (mut n, features) = conn::connect_secured(target).await?;
        let offer = Self::fast_offer(&features)?;
        let success = self.fast_authenticate(&mut n, &Self::bind2(&offer)).await?;
        self.enable_after_bind2(&mut n, &offer, &success).await?;
        Ok(n)
    }

    /// Mode `fast-resume`: FAST with `<resume/>` inside `<authenticate/>`.
    async fn fast_resume(&mut self, target: &Target) -> anyhow::Result<Negotiation> {
        let sm = self.sm.clone().context("there is no session to resume")?;
        let (mut n, features) = conn::connect_secured(target).await?;
        let offer = Self::fast_offer(&features)?;
        if !offer.inline_sm {
            return Err(unsupported(
                "the server does not offer XEP-0198 resumption inside SASL2 (no <sm xmlns='urn:xmpp:sm:3'/> in \
                 SASL2's <inline/>)",
            ));
        }
        let resume = format!(
            "<resume xmlns='{NS_SM}' previd='{}' h='{}'/>",
            escape(&sm.id),
            sm.handled
        );
        let success = self.fast_authenticate(&mut n, &resume).await?;
        let answer = scan::find_element(&success, "resumed")
            .or_else(|| scan::find_element(&success, "failed"))
            .ok_or_else(|| {
                anyhow!(
                    "the SASL2 success does not answer <resume/>: {}",
                    scan::excerpt(&success)
                )
            })?;
        check_resumed(answer, &sm.id)?;
        Ok(n)
    }
}

/// SASL2's `<authenticate/>`: `mechanism`, its initial response, then `extra` (inline requests).
fn authenticate(mechanism: &str, initial_response: &[u8], extra: &str) -> String {
    format!(
        "<authenticate xmlns='{NS_SASL2}' mechanism='{mechanism}'><initial-response>{}</initial-response>{extra}\
         </authenticate>",
        BASE64.encode(initial_response)
    )
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Run {
    /// The timed reconnects, by latency.
    pub reconnects: Vec<Reconnect>,
    pub wall: Duration,
    /// Server CPU from schedstat (threads alive at the end).
    pub server_cpu: Option<Duration>,
    /// Server CPU from clock ticks (every thread).
    pub server_cpu_ticks: Option<Duration>,
}

impl Run {
    /// Reconnects per second.
    pub fn rate(&self) -> f64 {
        self.reconnects.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0..=1).
    pub fn latency(&self, q: f64) -> Duration {
        if self.reconnects.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.reconnects.len() - 1) as f64 * q).round() as usize;
        self.reconnects[i.min(self.reconnects.len() - 1)].latency
    }

    pub fn mean_latency(&self) -> Duration {
        let total: Duration = self.reconnects.iter().map(|r| r.latency).sum();
        total / self.reconnects.len().max(1) as u32
    }

    /// The fewest and the most round trips (after TLS) a reconnect took.
    pub fn round_trips_after_tls(&self) -> (u32, u32) {
        min_max(self.reconnects.iter().map(|r| r.round_trips_after_tls))
    }

    /// The same before TLS.
    pub fn round_trips_before_tls(&self) -> (u32, u32) {
        min_max(self.reconnects.iter().map(|r| r.round_trips_before_tls))
    }
}

fn min_max(values: impl Iterator<Item = u32>) -> (u32, u32) {
    values.fold((u32::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// Runs `count(i)` reconnects (or, with `None`, the preparation) of every phone at the same time.
async fn all_phones(
    target: &Target,
    mode: Mode,
    phones: Vec<Phone>,
    count: Option<&dyn Fn(usize) -> usize>,
) -> anyhow::Result<(Vec<Phone>, Vec<Reconnect>)> {
    let mut set = JoinSet::new();
    for (i, mut phone) in phones.into_iter().enumerate() {
        let target = target.clone();
        let reconnects = count.map(|c| c(i));
        set.spawn(async move {
            let mut done = Vec::new();
            let result = match reconnects {
                None => phone.prepare(&target, mode).await,
                Some(k) => {
                    async {
                        for _ in 0..k {
                            done.push(phone.reconnect(&target, mode).await?);
                        }
                        anyhow::Ok(())
                    }
                    .await
                }
            };
            result.with_context(|| {
                format!(
                    "{} of {} failed",
                    if reconnects.is_none() {
                        "the setup login"
                    } else {
                        "a reconnect"
                    },
                    phone.username()
                )
            })?;
            anyhow::Ok((phone, done))
        });
    }
    let mut phones = Vec::new();
    let mut reconnects = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (phone, done) = joined.context("a phone's task panicked")??;
        phones.push(phone);
        reconnects.extend(done);
    }
    Ok((phones, reconnects))
}

/// The share of `total` reconnects of phone `i` of `phones`.
fn share(total: usize, phones: usize, i: usize) -> usize {
    total / phones + usize::from(i < total % phones)
}

/// Prepares every phone, lets each reconnect `warmup` times, then measures `total` reconnects shared among them,
/// all phones at the same time.
pub async fn run(
    target: &Target,
    mode: Mode,
    phones: Vec<Phone>,
    total: usize,
    warmup: usize,
    server: Option<Proc>,
) -> anyhow::Result<Run> {
    let k = phones.len();
    ensure!(k > 0, "no phones");
    let (phones, _) = all_phones(target, mode, phones, None).await?;
    let (phones, _) = all_phones(target, mode, phones, Some(&|_| warmup)).await?;

    let cpu_before = server.map(Proc::cpu_time_precise).transpose()?;
    let ticks_before = server.map(Proc::cpu_time).transpose()?;
    let started = Instant::now();
    let (_, mut reconnects) =
        all_phones(target, mode, phones, Some(&|i| share(total, k, i))).await?;
    let wall = started.elapsed();
    let cpu_after = server.map(Proc::cpu_time_precise).transpose()?;
    let ticks_after = server.map(Proc::cpu_time).transpose()?;
    reconnects.sort_by_key(|r| r.latency);
    Ok(Run {
        reconnects,
        wall,
        server_cpu: cpu_after.zip(cpu_before).map(|(a, b)| a.saturating_sub(b)),
        server_cpu_ticks: ticks_after
            .zip(ticks_before)
            .map(|(a, b)| a.saturating_sub(b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Security;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='x' version='1.0'>";

    /// SASL1 and SASL2 features as Rookery offers them before login; `sasl2_inline` is added to SASL2's
    /// `<inline/>` and `bind2_features` to Bind2's.
    fn features(sasl2_inline: &str, bind2_features: &str) -> String {
        format!(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>\
             <mechanism>SCRAM-SHA-1</mechanism></mechanisms><authentication xmlns='urn:xmpp:sasl:2'>\
             <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism><inline><bind xmlns='urn:xmpp:bind:0'>\
             <inline><feature var='urn:xmpp:carbons:2'/>{bind2_features}</inline></bind><fast xmlns='urn:xmpp:fast:0'>\
             <mechanism>HT-SHA-256-ENDP</mechanism><mechanism>HT-SHA-256-NONE</mechanism></fast>{sasl2_inline}\
             </inline></authentication></stream:features>"
        )
    }

    #[test]
    fn reads_the_sasl2_offer() {
        let offer = Sasl2Offer::parse(features("", "").as_bytes()).unwrap();
        assert_eq!(offer.mechanisms, ["SCRAM-SHA-1", "PLAIN"]);
        assert_eq!(offer.fast, ["HT-SHA-256-ENDP", "HT-SHA-256-NONE"]);
        assert_eq!(offer.bind2_features, ["urn:xmpp:carbons:2"]);
        assert!(!offer.inline_sm && !offer.bind2_sm());

        let sm = "<sm xmlns='urn:xmpp:sm:3'/>";
        let feature = "<feature var='urn:xmpp:sm:3'/>";
        let offer = Sasl2Offer::parse(features(sm, feature).as_bytes()).unwrap();
        assert!(offer.inline_sm && offer.bind2_sm());
        assert!(
            Phone::bind2(&offer).contains("<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>")
        );

        // Prosody 0.12: SASL1 only.
        let err = Sasl2Offer::parse(
            b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1\
              </mechanism></mechanisms></stream:features>",
        )
        .unwrap_err();
        assert!(err.downcast_ref::<Unsupported>().is_some(), "{err}");
    }

    #[test]
    fn reads_enabled_and_resumed() {
        let enabled =
            enabled_session(b"<enabled xmlns='urn:xmpp:sm:3' id='a&amp;b' resume='1' max='600'/>");
        assert_eq!(
            enabled.unwrap(),
            SmSession {
                id: "a&b".to_owned(),
                handled: 0
            }
        );
        assert!(enabled_session(b"<enabled xmlns='urn:xmpp:sm:3' id='x'/>").is_err());
        assert!(enabled_session(b"<enabled xmlns='urn:xmpp:sm:3' resume='true'/>").is_err());
        assert!(enabled_session(b"<failed xmlns='urn:xmpp:sm:3'/>").is_err());

        check_resumed(b"<resumed xmlns='urn:xmpp:sm:3' previd='x' h='0'/>", "x").unwrap();
        assert!(check_resumed(b"<resumed xmlns='urn:xmpp:sm:3' previd='y' h='0'/>", "x").is_err());
        let err = check_resumed(
            b"<failed xmlns='urn:xmpp:sm:3' h='0'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().contains("item-not-found"), "{err}");
    }

    #[test]
    fn shares_add_up() {
        for (total, phones) in [(1000, 4), (10, 3), (2, 5), (7, 1)] {
            let shares: Vec<usize> = (0..phones).map(|i| share(total, phones, i)).collect();
            assert_eq!(shares.iter().sum::<usize>(), total);
            assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
        }
    }

    /// A server that plays `script` on one connection: for each step it waits until the client has sent `trigger`
    /// (after what the previous step matched), then writes the reply. Returns everything the client sent.
    async fn scripted(listener: TcpListener, script: Vec<(&'static str, String)>) -> String {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut seen = String::new();
        let mut matched = 0;
        let mut buf = [0u8; 4096];
        for (trigger, reply) in script {
            loop {
                if let Some(at) = seen[matched..].find(trigger) {
                    matched += at + trigger.len();
                    break;
                }
                let n = sock.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client left before sending {trigger:?}: {seen}");
                seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
            }
            sock.write_all(reply.as_bytes()).await.unwrap();
            if reply == "</stream:stream>" {
                sock.shutdown().await.unwrap();
            }
        }
        // Whatever the client sends until it closes or cuts the connection.
        while let Ok(n) = sock.read(&mut buf).await {
            if n == 0 {
                break;
            }
            seen.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        seen
    }

    async fn plain_target() -> (TcpListener, Target) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target {
            addr: listener.local_addr().unwrap(),
            domain: "x".to_owned(),
            security: Security::Plain,
            step_timeout: Duration::from_secs(5),
        };
        (listener, target)
    }

    fn phone(auth: Auth) -> Phone {
        Phone::new(auth)
    }

    /// One reconnect of `phone` in `mode` against `script`: its result and what the phone sent.
    async fn reconnect_against(
        phone: &mut Phone,
        mode: Mode,
        script: Vec<(&'static str, String)>,
    ) -> (anyhow::Result<Reconnect>, String) {
        let (listener, target) = plain_target().await;
        let server = tokio::spawn(scripted(listener, script));
        let result = phone.reconnect(&target, mode).await;
        drop(target);
        (result, server.await.unwrap())
    }

    #[tokio::test]
    async fn full_login_then_resumption() {
        let mut phone = phone(Auth::Plain {
            username: "bench1".to_owned(),
            password: "pw".to_owned(),
        });
        let bound = "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
                     <sm xmlns='urn:xmpp:sm:3'/></stream:features>";
        let success = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>".to_owned();
        let script = vec![
            ("<stream:stream", format!("{HEADER}{}", features("", ""))),
            ("</auth>", success.clone()),
            ("<stream:stream", format!("{HEADER}{bound}")),
            (
                "</iq>",
                "<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
                 <jid>bench1@x/reconnectbench</jid></bind></iq>"
                    .to_owned(),
            ),
            (
                "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
                "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>".to_owned(),
            ),
            ("</stream:stream>", "</stream:stream>".to_owned()),
        ];
        let (result, sent) = reconnect_against(&mut phone, Mode::Full, script).await;
        let done = result.unwrap();
        // Without TLS every round trip counts as "after TLS": header, auth, restart, bind, enable.
        assert_eq!(
            (done.round_trips_before_tls, done.round_trips_after_tls),
            (0, 5)
        );
        assert_eq!(phone.sm.as_ref().unwrap().id, "sm-1");
        assert!(sent.ends_with("</stream:stream>"), "{sent}");

        let script = vec![
            ("<stream:stream", format!("{HEADER}{}", features("", ""))),
            ("</auth>", success),
            ("<stream:stream", format!("{HEADER}{bound}")),
            (
                "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='0'/>",
                "<resumed xmlns='urn:xmpp:sm:3' previd='sm-1' h='0'/>".to_owned(),
            ),
        ];
        let (result, sent) = reconnect_against(&mut phone, Mode::Resume, script).await;
        assert_eq!(result.unwrap().round_trips_after_tls, 4);
        // Cut, not closed: the session must stay resumable.
        assert!(!sent.contains("</stream:stream>"), "{sent}");
        assert!(!sent.contains("<bind"), "{sent}");
    }

    fn fast_phone() -> Phone {
        let mut phone = phone(Auth::Plain {
            username: "bench1".to_owned(),
            password: "pw".to_owned(),
        });
        phone.fast = Some(FastToken {
            secret: "tok".to_owned(),
            count: 6,
        });
        phone.sm = Some(SmSession {
            id: "sm-1".to_owned(),
            handled: 0,
        });
        phone
    }

    fn fast_success(proof_of: &str, inner: &str) -> String {
        format!(
            "<success xmlns='urn:xmpp:sasl:2'><additional-data>{}</additional-data>\
             <authorization-identifier>bench1@x/reconnectbench.a</authorization-identifier>{inner}</success>",
            BASE64.encode(ht::server_proof(proof_of, b""))
        )
    }

    #[tokio::test]
    async fn fast_with_inline_resumption_is_one_round_trip_after_the_features() {
        let mut phone = fast_phone();
        let script = vec![
            (
                "<stream:stream",
                format!("{HEADER}{}", features("<sm xmlns='urn:xmpp:sm:3'/>", "")),
            ),
            (
                "</authenticate>",
                fast_success(
                    "tok",
                    "<resumed xmlns='urn:xmpp:sm:3' previd='sm-1' h='0'/>",
                ),
            ),
        ];
        let (result, sent) = reconnect_against(&mut phone, Mode::FastResume, script).await;
        assert_eq!(result.unwrap().round_trips_after_tls, 2);
        let mut initial = b"bench1\0".to_vec();
        initial.extend_from_slice(&ht::client_proof("tok", b""));
        let expected = format!(
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>{}\
             </initial-response>",
            BASE64.encode(initial)
        );
        assert!(sent.contains(&expected), "{sent}");
        assert!(
            sent.contains(&format!("<user-agent id='{}'>", phone.client_id)),
            "{sent}"
        );
        assert!(
            sent.contains("<fast xmlns='urn:xmpp:fast:0' count='7'/>"),
            "{sent}"
        );
        assert!(
            sent.contains("<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='0'/></authenticate>"),
            "{sent}"
        );
        assert!(!sent.contains("</stream:stream>"), "{sent}");
    }

    #[tokio::test]
    async fn fast_fails_when_the_server_cannot_prove_it_knows_the_token() {
        let mut phone = fast_phone();
        let script = vec![
            ("<stream:stream", format!("{HEADER}{}", features("", ""))),
            (
                "</authenticate>",
                fast_success("another token", "<bound xmlns='urn:xmpp:bind:0'/>"),
            ),
        ];
        let (result, _) = reconnect_against(&mut phone, Mode::Fast, script).await;
        let err = result.unwrap_err();
        assert!(
            err.to_string().contains("does not match the token"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn fast_then_enable_and_a_rotated_token() {
        let mut phone = fast_phone();
        let script = vec![
            ("<stream:stream", format!("{HEADER}{}", features("", ""))),
            (
                "</authenticate>",
                fast_success(
                    "tok",
                    "<bound xmlns='urn:xmpp:bind:0'/><token xmlns='urn:xmpp:fast:0' token='tok2' \
                     expiry='2030-01-01T00:00:00Z'/>",
                ),
            ),
            (
                "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
                "<enabled xmlns='urn:xmpp:sm:3' id='sm-2' resume='true'/>".to_owned(),
            ),
            ("</stream:stream>", "</stream:stream>".to_owned()),
        ];
        let (result, sent) = reconnect_against(&mut phone, Mode::Fast, script).await;
        // Features, FAST, enable (not inside Bind2: the server does not offer it there).
        assert_eq!(result.unwrap().round_trips_after_tls, 3);
        assert!(
            sent.contains(
                "<bind xmlns='urn:xmpp:bind:0'><tag>reconnectbench</tag></bind></authenticate>"
            ),
            "{sent}"
        );
        assert_eq!(phone.fast.as_ref().unwrap().secret, "tok2");
        assert_eq!(phone.sm.as_ref().unwrap().id, "sm-2");
    }

    #[tokio::test]
    async fn inline_resumption_not_offered_is_unsupported() {
        let mut phone = fast_phone();
        let script = vec![("<stream:stream", format!("{HEADER}{}", features("", "")))];
        let (result, _) = reconnect_against(&mut phone, Mode::FastResume, script).await;
        let err = result.unwrap_err();
        assert!(err.downcast_ref::<Unsupported>().is_some(), "{err}");
    }
}
