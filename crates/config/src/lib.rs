//! Rookery's configuration: the `SNIKKET_*` environment variables (and a `snikket.conf`-style env file) read once
//! into one validated, typed [`Config`]. No other crate reads the environment.
//!
//! Conventions, for every field below:
//! - Names, defaults and meanings are Snikket's (`spec/snikket-compat.md` §2); Rookery's own additions are marked.
//! - An empty value (`SNIKKET_X=`) means the same as an unset variable: the default.
//! - Switches accept only `0` and `1`. Their *default* follows Snikket's rule for that variable ("on unless `0`" or
//!   "off unless `1`"); any other value is an error, because Snikket would silently have used the default.
//! - Ports are `u16` and **`0` means the listener is off**; [`enabled_port`] turns that into an `Option`.
//! - "All addresses" for [`Config::interfaces`] is the explicit list `[0.0.0.0, ::]` (Prosody's `{"*", "::"}`); a
//!   listener binding `::` must set `IPV6_V6ONLY` so that both sockets can coexist, as Prosody does.
//! - Every error is collected; [`Config::load`] fails with all of them at once.
#![forbid(unsafe_code)]

mod build;
mod domain;
mod env_file;
mod names;
mod reader;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The validated configuration. Build it with [`Config::load`] (the binary) or [`Config::from_map`] (tests).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    // ---- identity -------------------------------------------------------------------------------------------
    /// `SNIKKET_DOMAIN` (required), normalised (UTS #46: lower case, NFC) and in Unicode form.
    pub domain: String,
    /// The ASCII (punycode) form of `domain`, what `idn2` gives Snikket as `SNIKKET_DOMAIN_ASCII`: used for DNS,
    /// certificates, SNI and the certificate directory.
    pub domain_ascii: String,
    /// `SNIKKET_ADMIN_EMAIL` (required): the ACME account contact.
    pub admin_email: String,
    /// `SNIKKET_SITE_NAME`, default `domain`: server vCard, portal title, name of the default circle.
    pub site_name: String,

    // ---- logging and policy ---------------------------------------------------------------------------------
    /// `SNIKKET_LOGLEVEL`: `error`, `warn`, `info` (default), `debug`; Rookery also takes `trace`.
    pub log_level: LogLevel,
    /// `SNIKKET_RETENTION_DAYS` (7): message archive, upload expiry and account-deletion grace period.
    pub retention_days: u32,
    /// `SNIKKET_UPLOAD_STORAGE_GB`: global upload quota; `None` = unlimited. See [`Config::upload_global_quota`].
    pub upload_storage_gb: Option<f64>,
    /// `SNIKKET_DAILY_UPLOAD_LIMIT_PER_USER_GB`: rolling 24 h quota per uploader; `None` = 10 × the file size limit.
    /// See [`Config::upload_daily_quota`].
    pub daily_upload_limit_per_user_gb: Option<f64>,
    /// `SNIKKET_UPDATE_CHECK` (on unless `0`): DNS update check and admin notifications.
    pub update_check: bool,
    /// `SNIKKET_ABUSE_EMAIL`: XEP-0157 abuse address (without `mailto:`).
    pub abuse_email: Option<String>,
    /// `SNIKKET_SECURITY_EMAIL`: XEP-0157 security address, portal security.txt.
    pub security_email: Option<String>,
    /// `SNIKKET_TLS_PROFILE` (`modern`): TLS versions for XMPP. `old` is read as `intermediate` with a warning.
    pub tls_profile: TlsProfile,
    /// `SNIKKET_MAX_USER_CLIENTS` (10): concurrently bound resources per account.
    pub max_user_clients: u32,
    /// `SNIKKET_WEB_AVATAR_CACHE_TTL` (1800 s): cache lifetime of portal avatar responses.
    pub web_avatar_cache_ttl: Duration,
    /// `SNIKKET_SMTP_URL` (`smtp://localhost:1025/;no-tls`): outgoing mail, `smtp[s]://[user:password@]host[:port]/`
    /// with optional `;no-tls` / `;insecure`. Secret because it may hold a password.
    pub smtp_url: Secret,
    /// `SNIKKET_TOS_URI`: terms of service.
    pub tos_uri: Option<String>,
    /// `SNIKKET_PRIVACY_URI`: privacy policy.
    pub privacy_uri: Option<String>,
    /// `SNIKKET_INVITE_URL` (`https://<domain>/invite/{invite.token}/`): invite landing page template.
    pub invite_url: String,
    /// `SNIKKET_CERTBOT_OPTIONS`: certbot's extra options. Rookery has no certbot; kept only to warn that it is unused.
    pub certbot_options: Option<String>,
    /// `SNIKKET_CERTBOT_KEY_OPTIONS` (`--reuse-key`): `--no-reuse-key` makes ACME renewals use a new key.
    pub acme_reuse_key: bool,

    /// `SNIKKET_TWEAK_ALLOW_USER_INVITES` (Rookery, off unless `1`): Prosody's `allow_user_invites`. Normal users
    /// may invite new people to create accounts: their contact invites (XEP-0401 `urn:xmpp:invite#invite`) then
    /// allow registration. Limited users never may.
    pub allow_user_invites: bool,
    /// `SNIKKET_TWEAK_ALLOW_CONTACT_INVITES` (Rookery, off unless `1`): Prosody's `allow_contact_invites`. Normal
    /// users may run the contact invite command; off, it is for administrators only, as in Snikket.
    pub allow_contact_invites: bool,

    // ---- data and listeners ---------------------------------------------------------------------------------
    /// `SNIKKET_TWEAK_DATA_DIR` (Rookery, `/snikket`): the one directory holding all state. Must be absolute.
    pub data_dir: PathBuf,
    /// `SNIKKET_TWEAK_INTERFACES` (Rookery, all addresses): where every public listener binds. Default
    /// `[0.0.0.0, ::]`, or `[0.0.0.0]` when `ipv6` is off (Prosody's rule).
    pub interfaces: Vec<IpAddr>,
    /// `SNIKKET_TWEAK_C2S_PORT` (Rookery, 5222): client connections with STARTTLS.
    pub c2s_port: u16,
    /// `SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT` (Rookery, 5223): client connections with direct TLS (XEP-0368).
    pub c2s_direct_tls_port: u16,
    /// `SNIKKET_TWEAK_S2S_PORT` (Rookery, 5269): federation.
    pub s2s_port: u16,
    /// `SNIKKET_PROXY65_PORT` (5000): XEP-0065 bytestream proxy.
    pub proxy65_port: u16,
    /// `SNIKKET_TWEAK_HTTP_PORT` (80): plain HTTP (ACME challenges, redirect to HTTPS).
    pub http_port: u16,
    /// `SNIKKET_TWEAK_HTTPS_PORT` (443): the web (portal, upload, WebSocket, BOSH); also used in redirects.
    pub https_port: u16,
    /// `SNIKKET_TWEAK_INTERNAL_HTTP_PORT` (5280): loopback HTTP (Prosody's internal APIs, metrics).
    pub internal_http_port: u16,
    /// `SNIKKET_TWEAK_INTERNAL_HTTP_INTERFACE` (`127.0.0.1,::1`): where the internal HTTP port binds.
    pub internal_http_interfaces: Vec<IpAddr>,
    /// `SNIKKET_TWEAK_INTERNAL_HTTP_HOST` (`localhost`): nginx's upstream host for Prosody in Snikket.
    pub internal_http_host: String,
    /// `SNIKKET_TWEAK_PORTAL_INTERNAL_HTTP_HOST` (`localhost`): nginx's upstream host for the portal in Snikket.
    pub portal_internal_http_host: String,
    /// `SNIKKET_TWEAK_PORTAL_INTERNAL_HTTP_INTERFACE` (`127.0.0.1`): the separate portal's bind address in Snikket.
    pub portal_internal_http_interface: IpAddr,
    /// `SNIKKET_TWEAK_PORTAL_INTERNAL_HTTP_PORT` (5765): the separate portal's port in Snikket.
    pub portal_internal_http_port: u16,
    /// `SNIKKET_TWEAK_HTTP_TLS_VERSIONS` (`TLSv1.2 TLSv1.3`): TLS versions on the HTTPS port. Versions rustls does
    /// not implement (`TLSv1`, `TLSv1.1`) are dropped with a warning. Sorted, never empty.
    pub http_tls_versions: Vec<TlsVersion>,
    /// `SNIKKET_TWEAK_HTTP_TLS_CIPHERS`: an OpenSSL cipher string for nginx. rustls's suites are used instead;
    /// kept only to warn that it is unused.
    pub http_tls_ciphers: Option<String>,
    /// `SNIKKET_TWEAK_WEB_PROXY_PROTOS` (`http https`): which of the HTTP and HTTPS servers run.
    pub web_proxy_protocols: WebProxyProtocols,
    /// `SNIKKET_TWEAK_WEB_PROXY_RELOAD_INTERVAL` (86400 s; `inf` = never): how often nginx re-read certificates.
    /// `None` = never. Rookery watches its certificate files instead (see [`Limits::cert_reload_interval`]).
    pub web_proxy_reload_interval: Option<Duration>,
    /// `SNIKKET_TWEAK_WEB_PROXY` (on unless `0`, from Snikket's combined-container prototype): `0` means an external
    /// reverse proxy serves the public web, so Rookery does not listen on the HTTP/HTTPS ports.
    pub web_proxy: bool,

    // ---- TURN -----------------------------------------------------------------------------------------------
    /// `SNIKKET_TWEAK_TURNSERVER` (on unless `0`): run the built-in STUN/TURN relay.
    pub turnserver: bool,
    /// `SNIKKET_TWEAK_TURNSERVER_DOMAIN`: host advertised to clients (XEP-0215) instead of the domain, in ASCII form;
    /// setting it advertises TURN even when `turnserver` is off. See [`Config::turn_host`].
    pub turnserver_domain: Option<String>,
    /// `SNIKKET_TWEAK_TURNSERVER_PORT` (3478): STUN/TURN over UDP and TCP; also the advertised port.
    pub turnserver_port: u16,
    /// `SNIKKET_TWEAK_TURNSERVER_TLS_PORT` (Rookery, 5349): TURN over TLS.
    pub turnserver_tls_port: u16,
    /// `SNIKKET_TWEAK_TURNSERVER_MIN_PORT` (49152): lowest relay port. Never 0; never above the max.
    pub turnserver_min_port: u16,
    /// `SNIKKET_TWEAK_TURNSERVER_MAX_PORT` (65535): highest relay port.
    pub turnserver_max_port: u16,
    /// `SNIKKET_TWEAK_TURNSERVER_SECRET`: TURN REST shared secret. `None` = the contents of
    /// [`Config::turn_secret_path`], created at first start by the server.
    pub turnserver_secret: Option<Secret>,
    /// `SNIKKET_TWEAK_TURNSERVER_INTERNAL_IP`: the relay's local address behind NAT. `None` = the first local address.
    pub turnserver_internal_ip: Option<IpAddr>,
    /// `SNIKKET_TWEAK_TURNSERVER_ALLOW_LOOPBACK_PEERS` (Rookery, off unless `1`): let the relay reach loopback
    /// peers. For tests only.
    pub turnserver_allow_loopback_peers: bool,

    // ---- federation, DNS and certificates --------------------------------------------------------------------
    /// `SNIKKET_TWEAK_IPV6` (on unless `0`): use IPv6 for outgoing connections and listen on `::` by default.
    pub ipv6: bool,
    /// `SNIKKET_TWEAK_DNSSEC` (off unless `1`): validate DNSSEC and use DANE.
    pub dnssec: bool,
    /// `SNIKKET_TWEAK_DNS_SERVER` (Rookery): resolver for federation look-ups, `ip` or `ip:port` (port 53 by
    /// default). `None` = the system resolver.
    pub dns_server: Option<SocketAddr>,
    /// `SNIKKET_TWEAK_S2S_CA_FILE` (Rookery): extra PEM roots for federation peers. Checked to exist.
    pub s2s_ca_file: Option<PathBuf>,
    /// `SNIKKET_TWEAK_S2S_STATUS` (off unless `1`): record and expose federation link status.
    pub s2s_status: bool,
    /// `SNIKKET_TWEAK_CERT_MANAGER` (Rookery, on unless `0`): run the built-in ACME client.
    pub cert_manager: bool,
    /// `SNIKKET_TWEAK_ACME_DIRECTORY` (Rookery, Let's Encrypt production): ACME directory URL.
    pub acme_directory: String,
    /// `SNIKKET_TWEAK_ACME_CA_FILE` (Rookery): extra PEM roots for the ACME directory's TLS. Checked to exist.
    pub acme_ca_file: Option<PathBuf>,

    // ---- storage --------------------------------------------------------------------------------------------
    /// `SNIKKET_TWEAK_STORAGE` (`sqlite`) and `SNIKKET_TWEAK_DATABASE_URL` (Rookery's meaning; Snikket's `files` is
    /// read as `sqlite`, with a warning).
    pub storage: StorageBackend,

    // ---- features -------------------------------------------------------------------------------------------
    /// `SNIKKET_TWEAK_PROMETHEUS` (off unless `1`): `/metrics` on the internal HTTP port.
    pub prometheus: bool,
    /// `SNIKKET_TWEAK_EXTRA_CONFIG`: a glob of extra Prosody Lua config. Rookery reads no Lua; kept only to warn.
    pub extra_config: Option<String>,
    /// `SNIKKET_TWEAK_SHARE_DOMAIN` (off unless `1`): serve uploads under `domain` instead of `share.<domain>`.
    /// See [`Config::share_domain`].
    pub share_on_main_domain: bool,
    /// `SNIKKET_TWEAK_SHARE_PROXY` (off unless `1`): HTTP CONNECT proxy (mod_http_connect) keyed by the TURN secret.
    pub share_proxy: bool,
    /// `SNIKKET_TWEAK_GENERAL_MUC` (`hidden`): what to do with a legacy `general@groups.<domain>` room.
    pub general_muc: GeneralMuc,
    /// `SNIKKET_TWEAK_GC3` (off unless `1`): experimental group-chat 3 features in MUC.
    pub gc3: bool,
    /// `SNIKKET_TWEAK_REQUIRE_SASL2` (off unless `1`): refuse legacy SASL; clients must identify themselves.
    pub require_sasl2: bool,
    /// `SNIKKET_TWEAK_RESTRICTED_USERS_V2` (off unless `1`): limited users may talk only to their contacts, instead
    /// of not federating at all.
    pub restricted_users_v2: bool,

    // ---- bootstrap invite (note the odd `TWEAK_SNIKKET_` prefix, as in Snikket) -------------------------------
    /// `TWEAK_SNIKKET_BOOTSTRAP_SECRET`: enables `/invites_bootstrap?token=`. `None` = off.
    pub bootstrap_secret: Option<Secret>,
    /// `TWEAK_SNIKKET_BOOTSTRAP_INDEX`: event index; a bootstrap invite is made once per index.
    pub bootstrap_index: Option<u64>,
    /// `TWEAK_SNIKKET_BOOTSTRAP_TTL` (2419200 s = 28 days): lifetime of the bootstrap invite.
    pub bootstrap_ttl: Duration,

    /// Internal knobs that are not environment variables; tests and later code set them directly.
    pub limits: Limits,
}

/// Internal limits. Defaults are Prosody's where Prosody has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest stanza a client may send once logged in (Prosody's `c2s_stanza_size_limit`, 256 KiB).
    pub c2s_stanza_size: usize,
    /// Largest stanza before login. Negotiation needs little, and thousands of half-open connections must not each
    /// hold a quarter of a megabyte.
    pub c2s_unauthenticated_stanza_size: usize,
    /// Largest stanza a federated server may send (Prosody's `s2s_stanza_size_limit`, 512 KiB).
    pub s2s_stanza_size: usize,
    /// Time a client connection may take to authenticate (Prosody's `c2s_timeout`, 300 s). Prosody's value is kept
    /// rather than something shorter because slow mobile links on first login do take minutes.
    pub c2s_unauthenticated_timeout: Duration,
    /// After this long with nothing read the server sends a whitespace keep-alive, so that the TCP stack notices a
    /// dead peer (Prosody's `network_settings.read_timeout`, 840 s, to which mod_c2s answers the same way). A quiet
    /// but healthy client stays connected.
    pub c2s_idle_timeout: Duration,
    /// How often certificate files on disk are checked for a renewal.
    pub cert_reload_interval: Duration,
    /// Bytes of outgoing stanzas queued for one session (by an estimate of their size) before senders wait.
    pub session_queue_bytes: usize,
    /// How long a sender waits for room in a full session queue before that session is taken as stalled and closed.
    pub slow_reader_timeout: Duration,
    /// Open client connections from one IP address (a family behind one NAT has a few dozen devices at most).
    /// Loopback is exempt, for local reverse proxies.
    pub max_connections_per_ip: usize,
    /// Open client connections in all.
    pub max_connections: usize,
    /// Largest upload (Snikket's `http_file_share_size_limit`: 100 MiB plus a 16-byte XEP-0454 GCM tag).
    pub upload_file_size_limit: u64,
    /// Contacts in one roster. Prosody sets none; a family server's rosters hold dozens, a circle of a few hundred
    /// people a few hundred, so this only stops a runaway client.
    pub roster_max_items: usize,
    /// Subscription requests waiting for one account's answer: enough for any real use, small enough that a flood
    /// of requests cannot grow the database without end.
    pub pending_subscriptions_max: usize,
    /// Largest vCard (XEP-0054) an account may store, as written out. 128 KiB holds a base64 avatar of about
    /// 90 KiB (base64 adds a third), far above the 8 KiB XEP-0153 recommends and what clients send after scaling
    /// avatars down, and is half the stanza limit, so a vCard always fits in the stanza that carries it back.
    pub vcard_max_bytes: usize,
    /// Private XML storage (XEP-0049) per account, all elements together, as written out. Legacy bookmarks of a
    /// few hundred rooms take well under 100 KiB; 1 MiB bounds what one account can make the server keep.
    pub private_storage_max_bytes: usize,
    /// An ad-hoc command session (XEP-0050) not continued for this long is forgotten: long enough for a person to
    /// fill in a form, short enough that abandoned sessions do not pile up.
    pub adhoc_session_timeout: Duration,
    /// Ad-hoc command sessions one account may have open at once; starting one more ends its oldest.
    pub adhoc_sessions_per_account: usize,
    /// JIDs one account may block (XEP-0191; Prosody has no limit). Far beyond what a person blocks by hand, even
    /// through years of spam waves, while bounding what an account keeps in memory and in its blocklist reply.
    pub max_blocklist_items: usize,
    /// How often accounts whose deletion grace period is over are deleted (Prosody checks daily; hourly keeps a
    /// deletion at most an hour late for the cost of one indexed query).
    pub account_cleanup_interval: Duration,
    /// Messages kept for one account while it is offline (XEP-0160); when full, senders get `service-unavailable`
    /// (RFC 6121 §8.5.2.1.1). Prosody sets none. 10,000 holds weeks of a busy family chat and is what the offline
    /// benchmark queues; each message is also bounded by [`Limits::c2s_stanza_size`].
    pub offline_messages_per_user: usize,
    /// How long a session whose connection was lost waits for its client to resume it (XEP-0198; Snikket's
    /// `smacks_hibernation_time`, 600 s).
    pub sm_hibernation: Duration,
    /// Stanzas sent to a stream-managed client and not yet acknowledged, plus those queued while it hibernates
    /// (Prosody's `smacks_max_queue_size`, 500). A live connection at the limit waits for an acknowledgement before
    /// writing more; a hibernating session over it ends, and what it held goes to the account's other resources or
    /// the offline store.
    pub sm_max_unacked: usize,
    /// The same bound in bytes (estimated size), so that 500 large stanzas cannot hold 128 MiB: four times
    /// [`Limits::session_queue_bytes`].
    pub sm_max_unacked_bytes: usize,
    /// Items one PEP node may keep, the most `pubsub#max_items` may ask for and what `max` means (Prosody's
    /// `pep_max_items`, 256).
    pub pep_max_items: usize,
    /// Largest PEP item payload, as written out. 128 KiB holds a base64 avatar of about 90 KiB (XEP-0084 data),
    /// far above what clients publish after scaling, and half the stanza limit, so an item always fits in the
    /// notification that carries it. Prosody has no limit but the stanza size.
    pub pep_item_max_bytes: usize,
    /// PEP nodes one account may have. Legacy OMEMO makes one bundle node per device ever used, so this is
    /// generous; Prosody has no limit.
    pub pep_nodes_per_account: usize,
    /// Bytes of PEP items one account may keep, all nodes together: a few avatars, OMEMO bundles for dozens of
    /// devices and thousands of bookmarks take well under this. Bounds what one account can make the server store.
    pub pep_storage_max_bytes: usize,
    /// How often messages older than the retention (`SNIKKET_RETENTION_DAYS`) are deleted from the archives
    /// (XEP-0313). Prosody checks daily; hourly keeps an expired message at most an hour past its time, for a few
    /// indexed deletes per account.
    pub archive_cleanup_interval: Duration,
    /// Most messages one archive query returns (Prosody's `max_archive_query_results`, 50, which Snikket keeps); a
    /// larger RSM `max` is clamped to it.
    pub max_archive_query_results: usize,
    /// JIDs in one account's archiving preferences (XEP-0313 `always` and `never` lists together). Prosody has no
    /// limit; a person lists a few contacts by hand, so 1000 only stops a runaway client.
    pub archive_prefs_max_jids: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            c2s_stanza_size: 256 * 1024,
            c2s_unauthenticated_stanza_size: 16 * 1024,
            s2s_stanza_size: 512 * 1024,
            c2s_unauthenticated_timeout: Duration::from_secs(300),
            c2s_idle_timeout: Duration::from_secs(840),
            cert_reload_interval: Duration::from_secs(60),
            session_queue_bytes: 1024 * 1024,
            slow_reader_timeout: Duration::from_secs(10),
            max_connections_per_ip: 64,
            max_connections: 10_000,
            upload_file_size_limit: 100 * 1024 * 1024 + 16,
            roster_max_items: 5000,
            pending_subscriptions_max: 500,
            vcard_max_bytes: 128 * 1024,
            private_storage_max_bytes: 1024 * 1024,
            adhoc_session_timeout: Duration::from_secs(600),
            adhoc_sessions_per_account: 8,
            max_blocklist_items: 1000,
            account_cleanup_interval: Duration::from_secs(3600),
            offline_messages_per_user: 10_000,
            sm_hibernation: Duration::from_secs(600),
            sm_max_unacked: 500,
            sm_max_unacked_bytes: 4 * 1024 * 1024,
            pep_max_items: 256,
            pep_item_max_bytes: 128 * 1024,
            pep_nodes_per_account: 1000,
            pep_storage_max_bytes: 8 * 1024 * 1024,
            archive_cleanup_interval: Duration::from_secs(3600),
            max_archive_query_results: 50,
            archive_prefs_max_jids: 1000,
        }
    }
}

/// `SNIKKET_LOGLEVEL`. Ordered from least to most verbose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The lower-case name, which is also what `tracing`'s filters accept.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `SNIKKET_TLS_PROFILE` for XMPP TLS (c2s, s2s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsProfile {
    /// TLS 1.3 only.
    Modern,
    /// TLS 1.2 and 1.3 (with rustls's suites, which are a subset of Mozilla's intermediate list).
    Intermediate,
}

/// A TLS protocol version, as in `SNIKKET_TWEAK_HTTP_TLS_VERSIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// `SNIKKET_TWEAK_WEB_PROXY_PROTOS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WebProxyProtocols {
    pub http: bool,
    pub https: bool,
}

/// `SNIKKET_TWEAK_GENERAL_MUC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GeneralMuc {
    /// Make the legacy room non-public (the default).
    Hidden,
    /// Destroy it.
    Destroyed,
}

/// Where state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    /// SQLite at [`Config::database_path`].
    Sqlite,
    /// PostgreSQL at `url` (`postgres://` or `postgresql://`).
    Postgres { url: Secret },
}

/// A value that must not appear in logs: `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A successful load: the configuration and the warnings to log (one line each: unknown, historical or unused
/// variables, values read in a compatible but different way).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Every problem found, one message per entry, each naming the variable (or the env file and line) and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(error)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// `Some(port)` when a listener is on, `None` when its port is `0` (off).
pub fn enabled_port(port: u16) -> Option<u16> {
    (port != 0).then_some(port)
}

/// Where a variable came from; only the env file's `PG*` names are treated as leftovers of old Snikket releases,
/// because in a process environment they usually belong to something else on the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Environment,
    File,
}

impl Config {
    /// Reads variables from `vars` (the process environment, in the binary) and, when given, a `snikket.conf`-style
    /// env file; the environment wins over the file. When `env_file` is `None`, `SNIKKET_ENV_FILE` in `vars` names
    /// the file instead (an explicit `--env-file` wins over it).
    pub fn load(
        vars: impl IntoIterator<Item = (String, String)>,
        env_file: Option<&Path>,
    ) -> Result<Loaded, ConfigErrors> {
        let environment: HashMap<String, String> = vars.into_iter().collect();
        let file = env_file.map(Path::to_path_buf).or_else(|| {
            environment
                .get("SNIKKET_ENV_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let mut merged: HashMap<String, (String, Origin)> = HashMap::new();
        if let Some(path) = file {
            for (key, value) in env_file::read(&path).map_err(ConfigErrors)? {
                merged.insert(key, (value, Origin::File));
            }
        }
        for (key, value) in environment {
            merged.insert(key, (value, Origin::Environment));
        }
        build::build(&merged)
    }

    /// For tests: from a map only, as if it were the process environment. No file is read, even if the map has
    /// `SNIKKET_ENV_FILE`.
    pub fn from_map(map: &HashMap<String, String>) -> Result<Loaded, ConfigErrors> {
        let merged = map
            .iter()
            .map(|(k, v)| (k.clone(), (v.clone(), Origin::Environment)))
            .collect();
        build::build(&merged)
    }

    /// The MUC service, `groups.<domain>` (Unicode form).
    pub fn groups_domain(&self) -> String {
        format!("groups.{}", self.domain)
    }

    /// `groups.<domain_ascii>`, for DNS, certificates and SNI.
    pub fn groups_domain_ascii(&self) -> String {
        format!("groups.{}", self.domain_ascii)
    }

    /// The upload host: `share.<domain>`, or `domain` itself with `SNIKKET_TWEAK_SHARE_DOMAIN=1`.
    pub fn share_domain(&self) -> String {
        if self.share_on_main_domain {
            self.domain.clone()
        } else {
            format!("share.{}", self.domain)
        }
    }

    /// [`Config::share_domain`] in ASCII form.
    pub fn share_domain_ascii(&self) -> String {
        if self.share_on_main_domain {
            self.domain_ascii.clone()
        } else {
            format!("share.{}", self.domain_ascii)
        }
    }

    /// `<data>/rookery`: Rookery's own state (database, uploads).
    pub fn rookery_dir(&self) -> PathBuf {
        self.data_dir.join("rookery")
    }

    /// `<data>/rookery/rookery.sqlite`.
    pub fn database_path(&self) -> PathBuf {
        self.rookery_dir().join("rookery.sqlite")
    }

    /// `<data>/letsencrypt/live/<domain_ascii>`: certbot's layout, so an existing Snikket volume keeps its certificate.
    pub fn cert_dir(&self) -> PathBuf {
        self.data_dir
            .join("letsencrypt")
            .join("live")
            .join(&self.domain_ascii)
    }

    /// `<data>/prosody`: Snikket's Prosody data, read for import and for the secrets Snikket keeps there.
    pub fn prosody_dir(&self) -> PathBuf {
        self.data_dir.join("prosody")
    }

    /// `<data>/prosody/turn-auth-secret-v2`: Snikket's TURN secret file, used when `turnserver_secret` is unset.
    pub fn turn_secret_path(&self) -> PathBuf {
        self.prosody_dir().join("turn-auth-secret-v2")
    }

    /// The TURN host to advertise (XEP-0215), or `None` when TURN is not offered. As in Snikket: offered when the
    /// built-in relay runs or `SNIKKET_TWEAK_TURNSERVER_DOMAIN` names an external one. The ASCII form is returned
    /// because clients resolve it in DNS.
    pub fn turn_host(&self) -> Option<&str> {
        match &self.turnserver_domain {
            Some(host) => Some(host),
            None if self.turnserver => Some(&self.domain_ascii),
            None => None,
        }
    }

    /// Message archive and upload lifetime: `retention_days` days.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }

    /// Global upload quota in bytes, `None` = unlimited.
    pub fn upload_global_quota(&self) -> Option<u64> {
        self.upload_storage_gb.map(gigabytes_to_bytes)
    }

    /// Per-user rolling 24 h upload quota in bytes (Prosody's default: ten times the file size limit).
    pub fn upload_daily_quota(&self) -> u64 {
        self.daily_upload_limit_per_user_gb.map_or(
            self.limits.upload_file_size_limit.saturating_mul(10),
            gigabytes_to_bytes,
        )
    }

    /// The invite landing page for `token` (`{invite.token}` in `invite_url` replaced).
    pub fn invite_page(&self, token: &str) -> String {
        self.invite_url.replace("{invite.token}", token)
    }
}

/// Snikket multiplies by 1024³; fractions are allowed, so round to whole bytes.
fn gigabytes_to_bytes(gb: f64) -> u64 {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    // `as` saturates for values beyond u64, which is the right reading of an absurdly large quota.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (gb * GIB).round() as u64;
    bytes
}
