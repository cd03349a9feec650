//! Turns the merged variables into a `Config`, collecting every error and warning.

use crate::domain;
use crate::names;
use crate::reader::{Reader, check_uri, number};
use crate::{
    Config, ConfigErrors, GeneralMuc, Limits, Loaded, LogLevel, Origin, Secret, StorageBackend,
    TlsProfile, TlsVersion, WebProxyProtocols,
};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_SMTP_URL: &str = "smtp://localhost:1025/;no-tls";
const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";
const DEFAULT_BOOTSTRAP_TTL: Duration = Duration::from_secs(28 * 86_400);

pub(crate) fn build(merged: &HashMap<String, (String, Origin)>) -> Result<Loaded, ConfigErrors> {
    let values: HashMap<String, String> = merged
        .iter()
        .map(|(k, (v, _))| (k.clone(), v.clone()))
        .collect();
    let mut r = Reader::new(&values);
    let config = read_all(&mut r);
    check_names(&mut r, merged);
    match config {
        Some(config) if r.errors.is_empty() => Ok(Loaded {
            config,
            warnings: r.warnings,
        }),
        _ => Err(ConfigErrors(r.errors)),
    }
}

/// Reads every variable. Returns `None` only when a required value is missing or unusable; all other errors are
/// recorded in `r` and replaced by defaults so that the later checks still run.
fn read_all(r: &mut Reader<'_>) -> Option<Config> {
    let domain = required_domain(r);
    let admin_email = match r.raw("SNIKKET_ADMIN_EMAIL") {
        None => {
            r.errors.push(
                "SNIKKET_ADMIN_EMAIL is required: the e-mail address given to the certificate authority".to_owned(),
            );
            None
        }
        Some(_) => r.email("SNIKKET_ADMIN_EMAIL"),
    };
    if let (Some(given), Some(d)) = (r.raw("SNIKKET_DOMAIN_ASCII"), &domain)
        && given.trim() != d.ascii
    {
        r.warn(format!(
            "SNIKKET_DOMAIN_ASCII={given:?} is ignored: Rookery derives {:?} from SNIKKET_DOMAIN",
            d.ascii
        ));
    }
    // With no domain, defaults that mention it use a placeholder; the error above stops the load anyway.
    let domain_unicode = domain
        .as_ref()
        .map_or("", |d| d.unicode.as_str())
        .to_owned();

    let site_name = r
        .raw("SNIKKET_SITE_NAME")
        .map_or_else(|| domain_unicode.clone(), |v| v.trim().to_owned());
    let log_level = r.parsed("SNIKKET_LOGLEVEL", LogLevel::Info, |v| {
        match v.trim().to_ascii_lowercase().as_str() {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err("not a log level (error, warn, info, debug or trace)".to_owned()),
        }
    });
    let retention_days = r.unsigned("SNIKKET_RETENTION_DAYS", 7u32, "a whole number of days");
    if retention_days == 0 && r.raw("SNIKKET_RETENTION_DAYS").is_some() {
        r.warn("SNIKKET_RETENTION_DAYS=0: messages and uploads are deleted at the next clean-up");
    }
    let upload_storage_gb = r.gigabytes("SNIKKET_UPLOAD_STORAGE_GB");
    let daily_upload_limit_per_user_gb = r.gigabytes("SNIKKET_DAILY_UPLOAD_LIMIT_PER_USER_GB");
    let update_check = r.on_unless_zero("SNIKKET_UPDATE_CHECK");
    let abuse_email = r.email("SNIKKET_ABUSE_EMAIL");
    let security_email = r.email("SNIKKET_SECURITY_EMAIL");
    let tls_profile = tls_profile(r);
    let max_user_clients = r.parsed("SNIKKET_MAX_USER_CLIENTS", 10, |v| match number::<u32>(v) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("not a number of clients (1 or more)".to_owned()),
    });
    let web_avatar_cache_ttl = r.seconds("SNIKKET_WEB_AVATAR_CACHE_TTL", Duration::from_secs(1800));
    let smtp_url = r.parsed("SNIKKET_SMTP_URL", Secret::new(DEFAULT_SMTP_URL), |v| {
        let v = v.trim();
        let lower = v.to_ascii_lowercase();
        match ["smtp://", "smtps://"]
            .iter()
            .find(|s| lower.starts_with(**s))
        {
            Some(scheme) if v.len() > scheme.len() => Ok(Secret::new(v)),
            _ => Err("not an SMTP URL (smtp://host[:port]/ or smtps://...)".to_owned()),
        }
    });
    let tos_uri = r.uri("SNIKKET_TOS_URI");
    let privacy_uri = r.uri("SNIKKET_PRIVACY_URI");
    let default_invite_url = format!("https://{domain_unicode}/invite/{{invite.token}}/");
    let invite_url = r.uri("SNIKKET_INVITE_URL").unwrap_or(default_invite_url);
    if !invite_url.contains("{invite.token}") {
        r.warn(format!(
            "SNIKKET_INVITE_URL={invite_url:?} has no {{invite.token}}: every invite link will be the same page"
        ));
    }
    let certbot_options = r.string("SNIKKET_CERTBOT_OPTIONS");
    if let Some(v) = &certbot_options {
        r.warn(format!(
            "SNIKKET_CERTBOT_OPTIONS={v:?} has no effect: Rookery's built-in ACME client does not run certbot"
        ));
    }
    let acme_reuse_key = certbot_key_options(r);

    // ---- data and listeners ----
    let data_dir = r.parsed("SNIKKET_TWEAK_DATA_DIR", PathBuf::from("/snikket"), |v| {
        let path = PathBuf::from(v);
        if path.is_absolute() {
            Ok(path)
        } else {
            // A relative path would name a different directory for the server and for a CLI run from elsewhere.
            Err("not an absolute path".to_owned())
        }
    });
    let ipv6 = r.on_unless_zero("SNIKKET_TWEAK_IPV6");
    let mut all_addresses = vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
    if ipv6 {
        all_addresses.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }
    let interfaces = r.ip_list("SNIKKET_TWEAK_INTERFACES", all_addresses);
    let c2s_port = r.port("SNIKKET_TWEAK_C2S_PORT", 5222);
    let c2s_direct_tls_port = r.port("SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT", 5223);
    let s2s_port = r.port("SNIKKET_TWEAK_S2S_PORT", 5269);
    let proxy65_port = r.port("SNIKKET_PROXY65_PORT", 5000);
    let http_port = r.port("SNIKKET_TWEAK_HTTP_PORT", 80);
    let https_port = r.port("SNIKKET_TWEAK_HTTPS_PORT", 443);
    let internal_http_port = r.port("SNIKKET_TWEAK_INTERNAL_HTTP_PORT", 5280);
    let internal_http_interfaces = r.ip_list(
        "SNIKKET_TWEAK_INTERNAL_HTTP_INTERFACE",
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
    );
    let internal_http_host = r
        .string("SNIKKET_TWEAK_INTERNAL_HTTP_HOST")
        .unwrap_or_else(|| "localhost".to_owned());
    let portal_internal_http_host = r
        .string("SNIKKET_TWEAK_PORTAL_INTERNAL_HTTP_HOST")
        .unwrap_or_else(|| "localhost".to_owned());
    let portal_internal_http_interface = r.parsed(
        "SNIKKET_TWEAK_PORTAL_INTERNAL_HTTP_INTERFACE",
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        |v| {
            v.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| "not an IP address".to_owned())
        },
    );
    let portal_internal_http_port = r.port("SNIKKET_TWEAK_PORTAL_INTERNAL_HTTP_PORT", 5765);
    let http_tls_versions = http_tls_versions(r);
    let http_tls_ciphers = r.string("SNIKKET_TWEAK_HTTP_TLS_CIPHERS");
    if let Some(v) = &http_tls_ciphers {
        r.warn(format!(
            "SNIKKET_TWEAK_HTTP_TLS_CIPHERS={v:?} has no effect: Rookery uses rustls's cipher suites"
        ));
    }
    let web_proxy_protocols = web_proxy_protocols(r);
    let web_proxy_reload_interval = r.parsed(
        "SNIKKET_TWEAK_WEB_PROXY_RELOAD_INTERVAL",
        Some(Duration::from_secs(86_400)),
        |v| match v.trim() {
            "inf" => Ok(None),
            s => number::<u64>(s)
                .map(|n| Some(Duration::from_secs(n)))
                .map_err(|_| "not a whole number of seconds or inf".to_owned()),
        },
    );
    let web_proxy = r.on_unless_zero("SNIKKET_TWEAK_WEB_PROXY");

    // ---- TURN ----
    let turnserver = r.on_unless_zero("SNIKKET_TWEAK_TURNSERVER");
    let turnserver_domain = r.optional("SNIKKET_TWEAK_TURNSERVER_DOMAIN", |v| {
        domain::normalise_host(v).map_err(|reason| format!("the host {reason}"))
    });
    let turnserver_port = r.port("SNIKKET_TWEAK_TURNSERVER_PORT", 3478);
    let turnserver_tls_port = r.port("SNIKKET_TWEAK_TURNSERVER_TLS_PORT", 5349);
    let turnserver_min_port = r.nonzero_port("SNIKKET_TWEAK_TURNSERVER_MIN_PORT", 49152);
    let turnserver_max_port = r.nonzero_port("SNIKKET_TWEAK_TURNSERVER_MAX_PORT", 65535);
    if turnserver_min_port > turnserver_max_port {
        r.errors.push(format!(
            "SNIKKET_TWEAK_TURNSERVER_MIN_PORT={turnserver_min_port} is above SNIKKET_TWEAK_TURNSERVER_MAX_PORT={turnserver_max_port}"
        ));
    }
    let turnserver_secret = r.string("SNIKKET_TWEAK_TURNSERVER_SECRET").map(Secret::new);
    let turnserver_internal_ip = r.optional("SNIKKET_TWEAK_TURNSERVER_INTERNAL_IP", |v| {
        v.trim()
            .parse::<IpAddr>()
            .map_err(|_| "not an IP address".to_owned())
    });
    let turnserver_allow_loopback_peers =
        r.off_unless_one("SNIKKET_TWEAK_TURNSERVER_ALLOW_LOOPBACK_PEERS");
    if turnserver_allow_loopback_peers {
        r.warn("SNIKKET_TWEAK_TURNSERVER_ALLOW_LOOPBACK_PEERS=1: the TURN relay may reach this machine's loopback services; use this in tests only");
    }

    // ---- invites ----
    let allow_user_invites = r.off_unless_one("SNIKKET_TWEAK_ALLOW_USER_INVITES");
    let allow_contact_invites = r.off_unless_one("SNIKKET_TWEAK_ALLOW_CONTACT_INVITES");

    // ---- federation, DNS, certificates ----
    let dnssec = r.off_unless_one("SNIKKET_TWEAK_DNSSEC");
    let dns_server = r.optional("SNIKKET_TWEAK_DNS_SERVER", parse_dns_server);
    let s2s_ca_file = r.existing_file("SNIKKET_TWEAK_S2S_CA_FILE");
    let s2s_status = r.off_unless_one("SNIKKET_TWEAK_S2S_STATUS");
    let cert_manager = r.on_unless_zero("SNIKKET_TWEAK_CERT_MANAGER");
    let acme_directory = r.parsed(
        "SNIKKET_TWEAK_ACME_DIRECTORY",
        LETS_ENCRYPT_DIRECTORY.to_owned(),
        |v| {
            let v = v.trim();
            let lower = v.to_ascii_lowercase();
            if (lower.starts_with("https://") || lower.starts_with("http://"))
                && check_uri(v).is_ok()
            {
                Ok(v.to_owned())
            } else {
                Err("not an http(s) URL".to_owned())
            }
        },
    );
    let acme_ca_file = r.existing_file("SNIKKET_TWEAK_ACME_CA_FILE");

    let storage = storage(r);

    // ---- features ----
    let prometheus = r.off_unless_one("SNIKKET_TWEAK_PROMETHEUS");
    let extra_config = r.string("SNIKKET_TWEAK_EXTRA_CONFIG");
    if let Some(v) = &extra_config {
        r.warn(format!(
            "SNIKKET_TWEAK_EXTRA_CONFIG={v:?} has no effect: Rookery does not read Prosody configuration files"
        ));
    }
    let share_on_main_domain = r.off_unless_one("SNIKKET_TWEAK_SHARE_DOMAIN");
    let share_proxy = r.off_unless_one("SNIKKET_TWEAK_SHARE_PROXY");
    let general_muc = r.parsed(
        "SNIKKET_TWEAK_GENERAL_MUC",
        GeneralMuc::Hidden,
        |v| match v.trim() {
            "hidden" => Ok(GeneralMuc::Hidden),
            "destroyed" => Ok(GeneralMuc::Destroyed),
            _ => Err("not hidden or destroyed".to_owned()),
        },
    );
    let gc3 = r.off_unless_one("SNIKKET_TWEAK_GC3");
    let require_sasl2 = r.off_unless_one("SNIKKET_TWEAK_REQUIRE_SASL2");
    let restricted_users_v2 = r.off_unless_one("SNIKKET_TWEAK_RESTRICTED_USERS_V2");

    let bootstrap_secret = r.string("TWEAK_SNIKKET_BOOTSTRAP_SECRET").map(Secret::new);
    let bootstrap_index = r.optional("TWEAK_SNIKKET_BOOTSTRAP_INDEX", |v| {
        number::<u64>(v).map_err(|_| "not a non-negative whole number".to_owned())
    });
    let bootstrap_ttl = r.seconds("TWEAK_SNIKKET_BOOTSTRAP_TTL", DEFAULT_BOOTSTRAP_TTL);

    let config = Config {
        domain: domain_unicode,
        domain_ascii: domain.as_ref().map(|d| d.ascii.clone()).unwrap_or_default(),
        admin_email: admin_email.clone().unwrap_or_default(),
        site_name,
        log_level,
        retention_days,
        upload_storage_gb,
        daily_upload_limit_per_user_gb,
        update_check,
        abuse_email,
        security_email,
        tls_profile,
        max_user_clients,
        web_avatar_cache_ttl,
        smtp_url,
        tos_uri,
        privacy_uri,
        invite_url,
        certbot_options,
        acme_reuse_key,
        allow_user_invites,
        allow_contact_invites,
        data_dir,
        interfaces,
        c2s_port,
        c2s_direct_tls_port,
        s2s_port,
        proxy65_port,
        http_port,
        https_port,
        internal_http_port,
        internal_http_interfaces,
        internal_http_host,
        portal_internal_http_host,
        portal_internal_http_interface,
        portal_internal_http_port,
        http_tls_versions,
        http_tls_ciphers,
        web_proxy_protocols,
        web_proxy_reload_interval,
        web_proxy,
        turnserver,
        turnserver_domain,
        turnserver_port,
        turnserver_tls_port,
        turnserver_min_port,
        turnserver_max_port,
        turnserver_secret,
        turnserver_internal_ip,
        turnserver_allow_loopback_peers,
        ipv6,
        dnssec,
        dns_server,
        s2s_ca_file,
        s2s_status,
        cert_manager,
        acme_directory,
        acme_ca_file,
        storage,
        prometheus,
        extra_config,
        share_on_main_domain,
        share_proxy,
        general_muc,
        gc3,
        require_sasl2,
        restricted_users_v2,
        bootstrap_secret,
        bootstrap_index,
        bootstrap_ttl,
        limits: Limits::default(),
    };
    check_combinations(r, &config);
    (domain.is_some() && admin_email.is_some()).then_some(config)
}

fn required_domain(r: &mut Reader<'_>) -> Option<domain::Domain> {
    let Some(value) = r.raw("SNIKKET_DOMAIN") else {
        r.errors.push(
            "SNIKKET_DOMAIN is required: the XMPP domain and web host of this server, such as chat.example.com"
                .to_owned(),
        );
        return None;
    };
    match domain::normalise(value) {
        Ok(d) => {
            if value.trim().ends_with('.') {
                r.warn(format!(
                    "SNIKKET_DOMAIN={value:?}: the trailing dot is dropped; the domain is {:?}",
                    d.unicode
                ));
            }
            Some(d)
        }
        Err(reason) => {
            r.error("SNIKKET_DOMAIN", value, reason);
            None
        }
    }
}

fn tls_profile(r: &mut Reader<'_>) -> TlsProfile {
    let Some(value) = r.raw("SNIKKET_TLS_PROFILE") else {
        return TlsProfile::Modern;
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "modern" => TlsProfile::Modern,
        "intermediate" => TlsProfile::Intermediate,
        "old" => {
            r.warn(
                "SNIKKET_TLS_PROFILE=\"old\" is read as intermediate: rustls has no TLS 1.0 or 1.1",
            );
            TlsProfile::Intermediate
        }
        _ => {
            r.error(
                "SNIKKET_TLS_PROFILE",
                value,
                "not a TLS profile (modern, intermediate or old)",
            );
            TlsProfile::Modern
        }
    }
}

/// Snikket passes this to certbot verbatim; only the key-reuse choice means anything without certbot.
fn certbot_key_options(r: &mut Reader<'_>) -> bool {
    let Some(value) = r.raw("SNIKKET_CERTBOT_KEY_OPTIONS") else {
        return true;
    };
    let mut reuse = true;
    let mut ignored = Vec::new();
    for option in value.split_whitespace() {
        match option {
            "--reuse-key" => reuse = true,
            "--no-reuse-key" => reuse = false,
            other => ignored.push(other),
        }
    }
    if !ignored.is_empty() {
        r.warn(format!(
            "SNIKKET_CERTBOT_KEY_OPTIONS: {} ignored; Rookery understands only --reuse-key and --no-reuse-key",
            ignored.join(" ")
        ));
    }
    reuse
}

fn http_tls_versions(r: &mut Reader<'_>) -> Vec<TlsVersion> {
    let default = vec![TlsVersion::Tls12, TlsVersion::Tls13];
    let Some(value) = r.raw("SNIKKET_TWEAK_HTTP_TLS_VERSIONS") else {
        return default;
    };
    let mut versions = Vec::new();
    let mut unsupported = Vec::new();
    for token in value.split_whitespace() {
        match token {
            "TLSv1.2" => versions.push(TlsVersion::Tls12),
            "TLSv1.3" => versions.push(TlsVersion::Tls13),
            "TLSv1" | "TLSv1.1" | "SSLv2" | "SSLv3" => unsupported.push(token),
            _ => {
                r.error(
                    "SNIKKET_TWEAK_HTTP_TLS_VERSIONS",
                    value,
                    format!("{token:?} is not a TLS version (TLSv1.2, TLSv1.3)"),
                );
                return default;
            }
        }
    }
    if !unsupported.is_empty() {
        r.warn(format!(
            "SNIKKET_TWEAK_HTTP_TLS_VERSIONS: {} dropped, rustls does not implement them",
            unsupported.join(" ")
        ));
    }
    versions.sort_unstable();
    versions.dedup();
    if versions.is_empty() {
        r.error(
            "SNIKKET_TWEAK_HTTP_TLS_VERSIONS",
            value,
            "names no supported TLS version (TLSv1.2, TLSv1.3)",
        );
        return default;
    }
    versions
}

fn web_proxy_protocols(r: &mut Reader<'_>) -> WebProxyProtocols {
    let both = WebProxyProtocols {
        http: true,
        https: true,
    };
    r.parsed("SNIKKET_TWEAK_WEB_PROXY_PROTOS", both, |v| {
        let mut protocols = WebProxyProtocols {
            http: false,
            https: false,
        };
        for token in v.split_whitespace() {
            match token {
                "http" => protocols.http = true,
                "https" => protocols.https = true,
                _ => return Err(format!("{token:?} is not http or https")),
            }
        }
        Ok(protocols)
    })
}

/// `ip`, `ip:port` or `[ipv6]:port`. A host name is refused: it would need a resolver to find the resolver.
fn parse_dns_server(v: &str) -> Result<SocketAddr, String> {
    let v = v.trim();
    if let Ok(address) = v.parse::<SocketAddr>() {
        return Ok(address);
    }
    v.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| "not an IP address with an optional port (such as 192.0.2.53:53)".to_owned())
}

fn storage(r: &mut Reader<'_>) -> StorageBackend {
    let url = r.raw("SNIKKET_TWEAK_DATABASE_URL");
    let kind = r.raw("SNIKKET_TWEAK_STORAGE").map(str::trim);
    match kind.map(str::to_ascii_lowercase).as_deref() {
        None | Some("sqlite") => {}
        Some("files") => r.warn(
            "SNIKKET_TWEAK_STORAGE=\"files\" is read as sqlite: Rookery keeps its data in SQLite and imports Prosody's files",
        ),
        Some("postgres" | "postgresql") => {
            return match url {
                None => {
                    r.errors.push(format!(
                        "SNIKKET_TWEAK_STORAGE={:?} needs SNIKKET_TWEAK_DATABASE_URL (postgres://user:password@host/database)",
                        kind.unwrap_or_default()
                    ));
                    StorageBackend::Sqlite
                }
                Some(url) => {
                    let lower = url.trim().to_ascii_lowercase();
                    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
                        StorageBackend::Postgres {
                            url: Secret::new(url.trim()),
                        }
                    } else {
                        // The URL may hold a password, so it is not echoed.
                        r.errors.push(
                            "SNIKKET_TWEAK_DATABASE_URL: not a PostgreSQL URL (postgres://user:password@host/database)"
                                .to_owned(),
                        );
                        StorageBackend::Sqlite
                    }
                }
            };
        }
        Some(_) => {
            let value = kind.unwrap_or_default();
            r.error("SNIKKET_TWEAK_STORAGE", value, "not a storage backend (sqlite or postgres)");
        }
    }
    if url.is_some() {
        r.warn("SNIKKET_TWEAK_DATABASE_URL is ignored: SNIKKET_TWEAK_STORAGE is not postgres");
    }
    StorageBackend::Sqlite
}

/// Checks that involve more than one variable.
fn check_combinations(r: &mut Reader<'_>, c: &Config) {
    // Listeners that would fight over one TCP port on the same machine.
    let mut tcp: Vec<(&str, u16)> = vec![
        ("SNIKKET_TWEAK_C2S_PORT", c.c2s_port),
        ("SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT", c.c2s_direct_tls_port),
        ("SNIKKET_TWEAK_S2S_PORT", c.s2s_port),
        ("SNIKKET_PROXY65_PORT", c.proxy65_port),
        ("SNIKKET_TWEAK_INTERNAL_HTTP_PORT", c.internal_http_port),
    ];
    if c.web_proxy {
        if c.web_proxy_protocols.http {
            tcp.push(("SNIKKET_TWEAK_HTTP_PORT", c.http_port));
        }
        if c.web_proxy_protocols.https {
            tcp.push(("SNIKKET_TWEAK_HTTPS_PORT", c.https_port));
        }
    }
    if c.turnserver {
        tcp.push(("SNIKKET_TWEAK_TURNSERVER_PORT", c.turnserver_port));
        tcp.push(("SNIKKET_TWEAK_TURNSERVER_TLS_PORT", c.turnserver_tls_port));
    }
    for (i, (name, port)) in tcp.iter().enumerate() {
        if *port == 0 {
            continue;
        }
        if let Some((first, _)) = tcp[..i].iter().find(|(_, p)| p == port) {
            r.errors
                .push(format!("{name}={port} is the same port as {first}"));
        }
    }
    if c.turnserver
        && c.turnserver_port != 0
        && (c.turnserver_min_port..=c.turnserver_max_port).contains(&c.turnserver_port)
    {
        r.warn(format!(
            "SNIKKET_TWEAK_TURNSERVER_PORT={} lies inside the relay range {}-{}; that port is not used for relaying",
            c.turnserver_port, c.turnserver_min_port, c.turnserver_max_port
        ));
    }
    if c.cert_manager && !c.web_proxy {
        // As in Snikket's combined container: the ACME HTTP-01 challenge is answered by the built-in web server.
        r.errors.push(
            "SNIKKET_TWEAK_WEB_PROXY=0 needs SNIKKET_TWEAK_CERT_MANAGER=0: the built-in ACME client answers its challenges on the built-in web server"
                .to_owned(),
        );
    }
    if c.cert_manager && c.web_proxy && (c.http_port == 0 || !c.web_proxy_protocols.http) {
        r.warn(
            "the HTTP listener is off while SNIKKET_TWEAK_CERT_MANAGER is on: ACME HTTP-01 challenges cannot be answered here",
        );
    }
}

/// One warning per variable in our namespace that nothing read, and per historical name.
fn check_names(r: &mut Reader<'_>, merged: &HashMap<String, (String, Origin)>) {
    let mut names: Vec<(&String, Origin)> = merged.iter().map(|(k, (_, o))| (k, *o)).collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (name, origin) in names {
        let name = name.as_str();
        if names::is_historical_pg(name) {
            if origin == Origin::File {
                r.warn(format!(
                    "{name} is ignored: old Snikket releases read PG* variables for PostgreSQL; Rookery uses SNIKKET_TWEAK_STORAGE=postgres and SNIKKET_TWEAK_DATABASE_URL"
                ));
            }
            continue;
        }
        if !names::is_ours(name) || r.read.contains(name) || names::SILENT.contains(&name) {
            continue;
        }
        if names::HISTORICAL.contains(&name) {
            r.warn(format!("{name} is ignored: Snikket no longer uses it"));
        } else if let Some((_, why)) = names::NO_EFFECT.iter().find(|(n, _)| *n == name) {
            r.warn(format!("{name} is ignored: {why}"));
        } else if name.starts_with(names::PORTAL_PREFIX) {
            r.warn(format!(
                "{name} is ignored: it configures Snikket's separate web portal; Rookery's portal reads the SNIKKET_* settings"
            ));
        } else {
            let suggestion = r
                .read
                .iter()
                .map(|known| (names::edit_distance(name, known), *known))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, known)| format!(" (did you mean {known}?)"))
                .unwrap_or_default();
            r.warn(format!(
                "{name} is not a known variable and is ignored{suggestion}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_server_forms() {
        assert_eq!(
            parse_dns_server("192.0.2.53").unwrap(),
            "192.0.2.53:53".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("::1").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert!(parse_dns_server("dns.example:53").is_err());
    }
}
