//! The configuration contract, through the public API only.

use rookery_config::{
    Config, ConfigErrors, GeneralMuc, Loaded, LogLevel, Secret, StorageBackend, TlsProfile,
    TlsVersion, WebProxyProtocols, enabled_port,
};
use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const REQUIRED: [(&str, &str); 2] = [
    ("SNIKKET_DOMAIN", "chat.example.com"),
    ("SNIKKET_ADMIN_EMAIL", "admin@example.com"),
];

fn map(extra: &[(&str, &str)]) -> HashMap<String, String> {
    REQUIRED
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(extra: &[(&str, &str)]) -> Loaded {
    Config::from_map(&map(extra)).unwrap_or_else(|e| panic!("config rejected:\n{e}"))
}

fn errors(extra: &[(&str, &str)]) -> Vec<String> {
    match Config::from_map(&map(extra)) {
        Ok(_) => panic!("config accepted: {extra:?}"),
        Err(ConfigErrors(errors)) => errors,
    }
}

/// Exactly one error, which names the variable and the value.
fn single_error(name: &str, value: &str) -> String {
    let errors = errors(&[(name, value)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains(name) && errors[0].contains(value),
        "{name}={value:?} gave {:?}",
        errors[0]
    );
    errors[0].clone()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn defaults_are_snikkets() {
    let Loaded {
        config: c,
        warnings,
    } = load(&[]);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.domain, "chat.example.com");
    assert_eq!(c.domain_ascii, "chat.example.com");
    assert_eq!(c.admin_email, "admin@example.com");
    assert_eq!(c.site_name, "chat.example.com");
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.retention_days, 7);
    assert_eq!(c.retention(), Duration::from_secs(7 * 86_400));
    assert_eq!(c.upload_storage_gb, None);
    assert_eq!(c.upload_global_quota(), None);
    assert_eq!(c.daily_upload_limit_per_user_gb, None);
    assert_eq!(c.upload_daily_quota(), 1_048_576_160);
    assert!(c.update_check);
    assert_eq!(c.abuse_email, None);
    assert_eq!(c.security_email, None);
    assert_eq!(c.tls_profile, TlsProfile::Modern);
    assert_eq!(c.max_user_clients, 10);
    assert_eq!(c.web_avatar_cache_ttl, Duration::from_secs(1800));
    assert_eq!(c.smtp_url.expose(), "smtp://localhost:1025/;no-tls");
    assert_eq!(c.tos_uri, None);
    assert_eq!(c.privacy_uri, None);
    assert_eq!(
        c.invite_url,
        "https://chat.example.com/invite/{invite.token}/"
    );
    assert_eq!(c.invite_page("abc"), "https://chat.example.com/invite/abc/");
    assert_eq!(c.certbot_options, None);
    assert!(c.acme_reuse_key);
    assert_eq!(c.data_dir, PathBuf::from("/snikket"));
    assert_eq!(c.interfaces, vec![ip("0.0.0.0"), ip("::")]);
    assert_eq!(
        (
            c.c2s_port,
            c.c2s_direct_tls_port,
            c.s2s_port,
            c.proxy65_port
        ),
        (5222, 5223, 5269, 5000)
    );
    assert_eq!((c.http_port, c.https_port), (80, 443));
    assert_eq!(c.internal_http_port, 5280);
    assert_eq!(c.internal_http_interfaces, vec![ip("127.0.0.1"), ip("::1")]);
    assert_eq!(c.internal_http_host, "localhost");
    assert_eq!(c.portal_internal_http_host, "localhost");
    assert_eq!(c.portal_internal_http_interface, ip("127.0.0.1"));
    assert_eq!(c.portal_internal_http_port, 5765);
    assert_eq!(
        c.http_tls_versions,
        vec![TlsVersion::Tls12, TlsVersion::Tls13]
    );
    assert_eq!(c.http_tls_ciphers, None);
    assert_eq!(
        c.web_proxy_protocols,
        WebProxyProtocols {
            http: true,
            https: true
        }
    );
    assert_eq!(
        c.web_proxy_reload_interval,
        Some(Duration::from_secs(86_400))
    );
    assert!(c.web_proxy);
    assert!(c.turnserver);
    assert_eq!(c.turnserver_domain, None);
    assert_eq!(c.turn_host(), Some("chat.example.com"));
    assert_eq!((c.turnserver_port, c.turnserver_tls_port), (3478, 5349));
    assert_eq!(
        (c.turnserver_min_port, c.turnserver_max_port),
        (49152, 65535)
    );
    assert_eq!(c.turnserver_secret, None);
    assert_eq!(c.turnserver_internal_ip, None);
    assert!(!c.turnserver_allow_loopback_peers);
    assert!(c.ipv6);
    assert!(!c.dnssec);
    assert_eq!(c.dns_server, None);
    assert_eq!(c.s2s_ca_file, None);
    assert!(!c.s2s_status);
    assert!(!c.allow_user_invites && !c.allow_contact_invites);
    assert!(c.cert_manager);
    assert_eq!(
        c.acme_directory,
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(c.acme_ca_file, None);
    assert_eq!(c.storage, StorageBackend::Sqlite);
    assert!(!c.prometheus);
    assert_eq!(c.extra_config, None);
    assert!(!c.share_on_main_domain);
    assert!(!c.share_proxy);
    assert_eq!(c.general_muc, GeneralMuc::Hidden);
    assert!(!c.gc3);
    assert!(!c.require_sasl2);
    assert!(!c.restricted_users_v2);
    assert_eq!(c.bootstrap_secret, None);
    assert_eq!(c.bootstrap_index, None);
    assert_eq!(c.bootstrap_ttl, Duration::from_secs(2_419_200));

    let l = &c.limits;
    assert_eq!(l.c2s_stanza_size, 256 * 1024);
    assert_eq!(l.s2s_stanza_size, 512 * 1024);
    assert_eq!(l.c2s_unauthenticated_timeout, Duration::from_secs(300));
    assert_eq!(l.c2s_idle_timeout, Duration::from_secs(840));
    assert_eq!(l.cert_reload_interval, Duration::from_secs(60));
    assert_eq!(l.session_queue_bytes, 1024 * 1024);
    assert_eq!(l.max_connections_per_ip, 64);
    assert_eq!(l.upload_file_size_limit, 104_857_616);
}

#[test]
fn derived_names_and_paths() {
    let c = load(&[("SNIKKET_TWEAK_DATA_DIR", "/srv/rookery")]).config;
    assert_eq!(c.groups_domain(), "groups.chat.example.com");
    assert_eq!(c.share_domain(), "share.chat.example.com");
    assert_eq!(
        c.database_path(),
        Path::new("/srv/rookery/rookery/rookery.sqlite")
    );
    assert_eq!(
        c.cert_dir(),
        Path::new("/srv/rookery/letsencrypt/live/chat.example.com")
    );
    assert_eq!(
        c.turn_secret_path(),
        Path::new("/srv/rookery/prosody/turn-auth-secret-v2")
    );

    let c = load(&[("SNIKKET_TWEAK_SHARE_DOMAIN", "1")]).config;
    assert_eq!(c.share_domain(), "chat.example.com");
    assert_eq!(c.share_domain_ascii(), "chat.example.com");
}

#[test]
fn idn_domain_is_normalised_and_has_an_ascii_form() {
    let c = load(&[("SNIKKET_DOMAIN", "Bücher.Example")]).config;
    assert_eq!(c.domain, "bücher.example");
    assert_eq!(c.domain_ascii, "xn--bcher-kva.example");
    assert_eq!(c.site_name, "bücher.example");
    assert_eq!(c.groups_domain(), "groups.bücher.example");
    assert_eq!(c.groups_domain_ascii(), "groups.xn--bcher-kva.example");
    assert_eq!(c.share_domain_ascii(), "share.xn--bcher-kva.example");
    assert_eq!(
        c.cert_dir(),
        Path::new("/snikket/letsencrypt/live/xn--bcher-kva.example")
    );
    assert_eq!(c.turn_host(), Some("xn--bcher-kva.example"));
    // Snikket's own default uses the domain as given.
    assert_eq!(
        c.invite_url,
        "https://bücher.example/invite/{invite.token}/"
    );
}

#[test]
fn trailing_dot_warns() {
    let loaded = load(&[("SNIKKET_DOMAIN", "chat.example.com.")]);
    assert_eq!(loaded.config.domain, "chat.example.com");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
}

#[test]
fn required_variables_are_both_reported() {
    let Err(ConfigErrors(errors)) = Config::from_map(&HashMap::new()) else {
        panic!("accepted an empty environment")
    };
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("SNIKKET_DOMAIN is required"));
    assert!(errors[1].contains("SNIKKET_ADMIN_EMAIL is required"));

    // Empty counts as unset.
    let errors = errors_with(&[("SNIKKET_DOMAIN", ""), ("SNIKKET_ADMIN_EMAIL", "")]);
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

fn errors_with(vars: &[(&str, &str)]) -> Vec<String> {
    let map = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match Config::from_map(&map) {
        Err(ConfigErrors(e)) => e,
        Ok(_) => panic!("accepted {vars:?}"),
    }
}

#[test]
fn bad_domains_and_emails() {
    for bad in [
        "exa mple.com",
        "127.0.0.1",
        "a..b",
        "-x.example",
        "x.example:5222",
    ] {
        single_error("SNIKKET_DOMAIN", bad);
    }
    for (name, bad) in [
        ("SNIKKET_ADMIN_EMAIL", "not-an-address"),
        ("SNIKKET_ABUSE_EMAIL", "abuse"),
        ("SNIKKET_SECURITY_EMAIL", "a b@example.com"),
    ] {
        single_error(name, bad);
    }
}

#[test]
fn bad_ports_and_ranges() {
    for name in [
        "SNIKKET_TWEAK_C2S_PORT",
        "SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT",
        "SNIKKET_TWEAK_S2S_PORT",
        "SNIKKET_PROXY65_PORT",
        "SNIKKET_TWEAK_HTTP_PORT",
        "SNIKKET_TWEAK_HTTPS_PORT",
        "SNIKKET_TWEAK_INTERNAL_HTTP_PORT",
        "SNIKKET_TWEAK_PORTAL_INTERNAL_HTTP_PORT",
        "SNIKKET_TWEAK_TURNSERVER_PORT",
        "SNIKKET_TWEAK_TURNSERVER_TLS_PORT",
        "SNIKKET_TWEAK_TURNSERVER_MIN_PORT",
        "SNIKKET_TWEAK_TURNSERVER_MAX_PORT",
    ] {
        single_error(name, "abc");
        single_error(name, "65536");
        single_error(name, "-1");
    }
    // The relay range has no "off".
    single_error("SNIKKET_TWEAK_TURNSERVER_MIN_PORT", "0");
    let errors = errors(&[
        ("SNIKKET_TWEAK_TURNSERVER_MIN_PORT", "60000"),
        ("SNIKKET_TWEAK_TURNSERVER_MAX_PORT", "50000"),
    ]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("60000") && errors[0].contains("50000"),
        "{errors:?}"
    );
}

#[test]
fn port_zero_turns_a_listener_off() {
    let c = load(&[
        ("SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT", "0"),
        ("SNIKKET_PROXY65_PORT", " 0 "),
    ])
    .config;
    assert_eq!(c.c2s_direct_tls_port, 0);
    assert_eq!(enabled_port(c.c2s_direct_tls_port), None);
    assert_eq!(enabled_port(c.proxy65_port), None);
    assert_eq!(enabled_port(c.c2s_port), Some(5222));
}

#[test]
fn ports_in_use_twice_are_an_error() {
    let e = single_error("SNIKKET_TWEAK_S2S_PORT", "5222");
    assert!(e.contains("SNIKKET_TWEAK_C2S_PORT"), "{e}");
    // Two listeners that are both off do not conflict.
    load(&[
        ("SNIKKET_TWEAK_C2S_DIRECT_TLS_PORT", "0"),
        ("SNIKKET_PROXY65_PORT", "0"),
    ]);
    // TURN ports matter only when the relay runs.
    load(&[
        ("SNIKKET_TWEAK_TURNSERVER", "0"),
        ("SNIKKET_TWEAK_TURNSERVER_PORT", "5222"),
    ]);
}

#[test]
fn switches_follow_snikkets_defaults_and_reject_other_values() {
    let on_unless_zero = [
        "SNIKKET_UPDATE_CHECK",
        "SNIKKET_TWEAK_TURNSERVER",
        "SNIKKET_TWEAK_IPV6",
        "SNIKKET_TWEAK_CERT_MANAGER",
        "SNIKKET_TWEAK_WEB_PROXY",
    ];
    let off_unless_one = [
        "SNIKKET_TWEAK_PROMETHEUS",
        "SNIKKET_TWEAK_DNSSEC",
        "SNIKKET_TWEAK_SHARE_DOMAIN",
        "SNIKKET_TWEAK_SHARE_PROXY",
        "SNIKKET_TWEAK_GC3",
        "SNIKKET_TWEAK_REQUIRE_SASL2",
        "SNIKKET_TWEAK_RESTRICTED_USERS_V2",
        "SNIKKET_TWEAK_S2S_STATUS",
        "SNIKKET_TWEAK_TURNSERVER_ALLOW_LOOPBACK_PEERS",
    ];
    for name in on_unless_zero.iter().chain(&off_unless_one) {
        for bad in ["yes", "true", "2", "on"] {
            let e = single_error(name, bad);
            assert!(e.contains("1 (on) or 0 (off)"), "{e}");
        }
    }
    let c = load(&[
        ("SNIKKET_UPDATE_CHECK", "0"),
        ("SNIKKET_TWEAK_IPV6", "0"),
        ("SNIKKET_TWEAK_PROMETHEUS", "1"),
        ("SNIKKET_TWEAK_GC3", "1"),
        ("SNIKKET_TWEAK_REQUIRE_SASL2", "1"),
        ("SNIKKET_TWEAK_DNSSEC", "1"),
        ("SNIKKET_TWEAK_S2S_STATUS", "1"),
        ("SNIKKET_TWEAK_RESTRICTED_USERS_V2", "1"),
        ("SNIKKET_TWEAK_SHARE_PROXY", "1"),
        ("SNIKKET_TWEAK_ALLOW_USER_INVITES", "1"),
        ("SNIKKET_TWEAK_ALLOW_CONTACT_INVITES", "1"),
    ])
    .config;
    assert!(c.allow_user_invites && c.allow_contact_invites);
    assert!(!c.update_check && !c.ipv6);
    assert!(c.prometheus && c.gc3 && c.require_sasl2 && c.dnssec && c.s2s_status);
    assert!(c.restricted_users_v2 && c.share_proxy);
    // Without IPv6, "all addresses" is IPv4 only, as in Prosody.
    assert_eq!(c.interfaces, vec![ip("0.0.0.0")]);
}

#[test]
fn other_bad_values() {
    let cases = [
        ("SNIKKET_LOGLEVEL", "verbose"),
        ("SNIKKET_TLS_PROFILE", "ancient"),
        ("SNIKKET_RETENTION_DAYS", "7.5"),
        ("SNIKKET_RETENTION_DAYS", "-1"),
        ("SNIKKET_UPLOAD_STORAGE_GB", "lots"),
        ("SNIKKET_UPLOAD_STORAGE_GB", "-1"),
        ("SNIKKET_DAILY_UPLOAD_LIMIT_PER_USER_GB", "inf"),
        ("SNIKKET_MAX_USER_CLIENTS", "0"),
        ("SNIKKET_MAX_USER_CLIENTS", "ten"),
        ("SNIKKET_WEB_AVATAR_CACHE_TTL", "1h"),
        ("SNIKKET_SMTP_URL", "mail.example.com"),
        ("SNIKKET_TOS_URI", "example.com/tos"),
        ("SNIKKET_PRIVACY_URI", "https://exa mple.com"),
        ("SNIKKET_INVITE_URL", "/invite/{invite.token}"),
        ("SNIKKET_TWEAK_DATA_DIR", "relative/dir"),
        ("SNIKKET_TWEAK_INTERFACES", "localhost"),
        ("SNIKKET_TWEAK_INTERFACES", ","),
        ("SNIKKET_TWEAK_INTERNAL_HTTP_INTERFACE", "127.0.0.1,nope"),
        ("SNIKKET_TWEAK_PORTAL_INTERNAL_HTTP_INTERFACE", "localhost"),
        ("SNIKKET_TWEAK_HTTP_TLS_VERSIONS", "TLSv1.4"),
        ("SNIKKET_TWEAK_HTTP_TLS_VERSIONS", "TLSv1 TLSv1.1"),
        ("SNIKKET_TWEAK_WEB_PROXY_PROTOS", "http gopher"),
        ("SNIKKET_TWEAK_WEB_PROXY_RELOAD_INTERVAL", "daily"),
        ("SNIKKET_TWEAK_TURNSERVER_DOMAIN", "bad host"),
        ("SNIKKET_TWEAK_TURNSERVER_INTERNAL_IP", "10.0.0"),
        ("SNIKKET_TWEAK_DNS_SERVER", "dns.example:53"),
        ("SNIKKET_TWEAK_S2S_CA_FILE", "/nonexistent/roots.pem"),
        ("SNIKKET_TWEAK_ACME_CA_FILE", "/nonexistent/pebble.pem"),
        ("SNIKKET_TWEAK_ACME_DIRECTORY", "ftp://acme.example/dir"),
        ("SNIKKET_TWEAK_STORAGE", "mysql"),
        ("SNIKKET_TWEAK_GENERAL_MUC", "archived"),
        ("TWEAK_SNIKKET_BOOTSTRAP_INDEX", "-3"),
        ("TWEAK_SNIKKET_BOOTSTRAP_TTL", "forever"),
    ];
    for (name, value) in cases {
        single_error(name, value);
    }
}

#[test]
fn postgres_needs_a_url_and_hides_it() {
    let e = errors(&[("SNIKKET_TWEAK_STORAGE", "postgres")]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("SNIKKET_TWEAK_DATABASE_URL"), "{e:?}");

    let e = errors(&[
        ("SNIKKET_TWEAK_STORAGE", "postgres"),
        ("SNIKKET_TWEAK_DATABASE_URL", "mysql://root:hunter2@db/x"),
    ]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(!e[0].contains("hunter2"), "password echoed: {e:?}");

    let url = "postgres://rookery:hunter2@127.0.0.1/rookery";
    let c = load(&[
        ("SNIKKET_TWEAK_STORAGE", "postgres"),
        ("SNIKKET_TWEAK_DATABASE_URL", url),
    ])
    .config;
    assert_eq!(
        c.storage,
        StorageBackend::Postgres {
            url: Secret::new(url)
        }
    );
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn snikkets_storage_names() {
    let loaded = load(&[("SNIKKET_TWEAK_STORAGE", "files")]);
    assert_eq!(loaded.config.storage, StorageBackend::Sqlite);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    let loaded = load(&[("SNIKKET_TWEAK_STORAGE", "sqlite")]);
    assert!(loaded.warnings.is_empty());
    let loaded = load(&[("SNIKKET_TWEAK_DATABASE_URL", "postgres://x/y")]);
    assert_eq!(loaded.config.storage, StorageBackend::Sqlite);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
}

#[test]
fn many_errors_are_reported_together() {
    let e = errors_with(&[
        ("SNIKKET_DOMAIN", "not a domain"),
        ("SNIKKET_TWEAK_C2S_PORT", "five"),
        ("SNIKKET_TWEAK_TURNSERVER_MIN_PORT", "60000"),
        ("SNIKKET_TWEAK_TURNSERVER_MAX_PORT", "50000"),
        ("SNIKKET_TWEAK_IPV6", "yes"),
        ("SNIKKET_TWEAK_STORAGE", "postgres"),
        ("SNIKKET_LOGLEVEL", "loud"),
    ]);
    // Domain, missing e-mail, port, range, switch, postgres, log level.
    assert_eq!(e.len(), 7, "{e:#?}");
    let display = ConfigErrors(e.clone()).to_string();
    assert_eq!(display.lines().count(), 7);
    for (line, error) in display.lines().zip(&e) {
        assert_eq!(line, error);
    }
    let boxed: Box<dyn std::error::Error> = Box::new(ConfigErrors(e));
    assert!(
        boxed
            .to_string()
            .contains("SNIKKET_TWEAK_C2S_PORT=\"five\"")
    );
}

#[test]
fn values_that_are_read_specially() {
    let loaded = load(&[
        ("SNIKKET_TLS_PROFILE", "old"),
        ("SNIKKET_LOGLEVEL", "TRACE"),
        ("SNIKKET_ABUSE_EMAIL", "mailto:abuse@example.com"),
        ("SNIKKET_UPLOAD_STORAGE_GB", "1.5"),
        ("SNIKKET_DAILY_UPLOAD_LIMIT_PER_USER_GB", "0.5"),
        ("SNIKKET_CERTBOT_KEY_OPTIONS", "--no-reuse-key"),
        ("SNIKKET_TWEAK_HTTP_TLS_VERSIONS", "TLSv1.3 TLSv1.1"),
        ("SNIKKET_TWEAK_WEB_PROXY_PROTOS", "https"),
        ("SNIKKET_TWEAK_WEB_PROXY_RELOAD_INTERVAL", "inf"),
        ("SNIKKET_TWEAK_INTERFACES", "127.0.0.1, [::1]"),
        ("SNIKKET_TWEAK_DNS_SERVER", "127.0.0.1:5353"),
        ("SNIKKET_TWEAK_GENERAL_MUC", "destroyed"),
        ("SNIKKET_SITE_NAME", " My Family "),
        ("TWEAK_SNIKKET_BOOTSTRAP_SECRET", "s3cret"),
        ("TWEAK_SNIKKET_BOOTSTRAP_INDEX", "4"),
        ("TWEAK_SNIKKET_BOOTSTRAP_TTL", "3600"),
        ("SNIKKET_TWEAK_CERT_MANAGER", "0"),
    ]);
    let c = &loaded.config;
    assert_eq!(c.tls_profile, TlsProfile::Intermediate);
    assert_eq!(c.log_level, LogLevel::Trace);
    assert_eq!(c.abuse_email.as_deref(), Some("abuse@example.com"));
    assert_eq!(c.upload_global_quota(), Some(1_610_612_736));
    assert_eq!(c.upload_daily_quota(), 536_870_912);
    assert!(!c.acme_reuse_key);
    assert_eq!(c.http_tls_versions, vec![TlsVersion::Tls13]);
    assert_eq!(
        c.web_proxy_protocols,
        WebProxyProtocols {
            http: false,
            https: true
        }
    );
    assert_eq!(c.web_proxy_reload_interval, None);
    assert_eq!(c.interfaces, vec![ip("127.0.0.1"), ip("::1")]);
    assert_eq!(c.dns_server, Some("127.0.0.1:5353".parse().unwrap()));
    assert_eq!(c.general_muc, GeneralMuc::Destroyed);
    assert_eq!(c.site_name, "My Family");
    assert_eq!(
        c.bootstrap_secret.as_ref().map(Secret::expose),
        Some("s3cret")
    );
    assert_eq!(c.bootstrap_index, Some(4));
    assert_eq!(c.bootstrap_ttl, Duration::from_secs(3600));
    // "old" profile, dropped TLS version.
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn turn_advertisement_follows_snikket() {
    let c = load(&[("SNIKKET_TWEAK_TURNSERVER", "0")]).config;
    assert_eq!(c.turn_host(), None);
    let c = load(&[
        ("SNIKKET_TWEAK_TURNSERVER", "0"),
        ("SNIKKET_TWEAK_TURNSERVER_DOMAIN", "Turn.Example.net"),
    ])
    .config;
    assert_eq!(c.turn_host(), Some("turn.example.net"));
    let c = load(&[
        ("SNIKKET_TWEAK_TURNSERVER_SECRET", "abc"),
        ("SNIKKET_TWEAK_TURNSERVER_INTERNAL_IP", "10.0.0.2"),
    ])
    .config;
    assert_eq!(c.turnserver_secret, Some(Secret::new("abc")));
    assert_eq!(c.turnserver_internal_ip, Some(ip("10.0.0.2")));
}

#[test]
fn web_proxy_off_needs_cert_manager_off() {
    let e = single_error("SNIKKET_TWEAK_WEB_PROXY", "0");
    assert!(e.contains("SNIKKET_TWEAK_CERT_MANAGER"), "{e}");
    let c = load(&[
        ("SNIKKET_TWEAK_WEB_PROXY", "0"),
        ("SNIKKET_TWEAK_CERT_MANAGER", "0"),
    ])
    .config;
    assert!(!c.web_proxy && !c.cert_manager);
}

#[test]
fn ca_files_that_exist_are_accepted() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap();
    let c = load(&[
        ("SNIKKET_TWEAK_ACME_CA_FILE", path),
        ("SNIKKET_TWEAK_S2S_CA_FILE", path),
        (
            "SNIKKET_TWEAK_ACME_DIRECTORY",
            "https://127.0.0.1:14000/dir",
        ),
    ])
    .config;
    assert_eq!(c.acme_ca_file.as_deref(), Some(file.path()));
    assert_eq!(c.s2s_ca_file.as_deref(), Some(file.path()));
    assert_eq!(c.acme_directory, "https://127.0.0.1:14000/dir");
}

#[test]
fn unknown_historical_and_unused_names_warn_once_each() {
    let loaded = load(&[
        ("SNIKKET_DOMIAN", "typo.example"),
        ("SNIKKET_SOMETHING_NEW", "1"),
        ("TWEAK_SNIKKET_BOOTSTRAP_FOO", "1"),
        ("SNIKKET_TWEAK_XMPP_DOMAIN", "x.example"),
        ("SNIKKET_UPLOAD_FILE_SIZE_LIMIT_MB", "100"),
        ("SNIKKET_WEB_PROSODY_ENDPOINT", "http://127.0.0.1:5280/"),
        ("SNIKKET_TWEAK_TURN_INTERNAL_IP", "10.0.0.1"),
        ("SNIKKET_TWEAK_WEB_PROXY_PROTOCOLS", "http"),
        ("SNIKKET_CERTS_WAIT", "1"),
        ("SNIKKET_CERTBOT_OPTIONS", "--staging"),
        ("SNIKKET_TWEAK_HTTP_TLS_CIPHERS", "HIGH"),
        ("SNIKKET_TWEAK_EXTRA_CONFIG", "/snikket/prosody/*.cfg.lua"),
        // Silently accepted: known and meaningless, or not ours.
        ("SNIKKET_LETSENCRYPT_TOS_AGREE", "y"),
        ("SNIKKET_TWEAK_PUSH2", "1"),
        ("SNIKKET_DOMAIN_ASCII", "chat.example.com"),
        ("HOME", "/root"),
        ("PGHOST", "db"),
        ("PUID", "1000"),
        ("PGID", "1000"),
    ]);
    let w = &loaded.warnings;
    assert_eq!(w.len(), 12, "{w:#?}");
    let find = |name: &str| {
        w.iter()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no warning for {name}: {w:#?}"))
    };
    assert!(find("SNIKKET_DOMIAN ").contains("did you mean SNIKKET_DOMAIN?"));
    assert!(find("SNIKKET_SOMETHING_NEW").contains("not a known variable"));
    assert!(find("TWEAK_SNIKKET_BOOTSTRAP_FOO").contains("not a known variable"));
    assert!(find("SNIKKET_TWEAK_XMPP_DOMAIN").contains("no longer"));
    assert!(find("SNIKKET_UPLOAD_FILE_SIZE_LIMIT_MB").contains("no longer"));
    assert!(find("SNIKKET_WEB_PROSODY_ENDPOINT").contains("portal"));
    assert!(find("SNIKKET_TWEAK_TURN_INTERNAL_IP").contains("TURNSERVER_INTERNAL_IP"));
    assert!(find("SNIKKET_TWEAK_WEB_PROXY_PROTOCOLS").contains("PROTOS"));
    find("SNIKKET_CERTS_WAIT");
    find("SNIKKET_CERTBOT_OPTIONS");
    find("SNIKKET_TWEAK_HTTP_TLS_CIPHERS");
    find("SNIKKET_TWEAK_EXTRA_CONFIG");

    let loaded = load(&[("SNIKKET_DOMAIN_ASCII", "other.example")]);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
}

#[test]
fn empty_values_mean_default() {
    let c = load(&[
        ("SNIKKET_TWEAK_C2S_PORT", ""),
        ("SNIKKET_TWEAK_IPV6", ""),
        ("SNIKKET_SITE_NAME", ""),
        ("SNIKKET_TWEAK_STORAGE", ""),
    ])
    .config;
    assert_eq!(c.c2s_port, 5222);
    assert!(c.ipv6);
    assert_eq!(c.site_name, "chat.example.com");
}

// ---- env files ------------------------------------------------------------------------------------------------

fn env_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const SNIKKET_CONF: &str = r#"# Snikket configuration, as written by init.sh
SNIKKET_DOMAIN=chat.example.com
SNIKKET_ADMIN_EMAIL="admin@example.com"

# Optional
export SNIKKET_SITE_NAME='Our "Family" Chat'
SNIKKET_RETENTION_DAYS=14 # two weeks
SNIKKET_LETSENCRYPT_TOS_AGREE=y
SNIKKET_TWEAK_C2S_PORT=15222
PGHOST=db.example
"#;

#[test]
fn env_file_is_read_and_environment_wins() {
    let file = env_file(SNIKKET_CONF);
    let loaded = Config::load(
        vars(&[("SNIKKET_TWEAK_C2S_PORT", "25222"), ("PATH", "/usr/bin")]),
        Some(file.path()),
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.domain, "chat.example.com");
    assert_eq!(c.admin_email, "admin@example.com");
    assert_eq!(c.site_name, "Our \"Family\" Chat");
    assert_eq!(c.retention_days, 14);
    assert_eq!(c.c2s_port, 25222, "the environment wins over the file");
    // PGHOST in a snikket.conf is a leftover of old Snikket releases.
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].starts_with("PGHOST"));
}

#[test]
fn env_file_named_by_snikket_env_file() {
    let file = env_file(SNIKKET_CONF);
    let path = file.path().to_str().unwrap();
    let c = Config::load(vars(&[("SNIKKET_ENV_FILE", path)]), None)
        .unwrap()
        .config;
    assert_eq!(c.c2s_port, 15222);

    // An explicit path (--env-file) wins over SNIKKET_ENV_FILE.
    let other = env_file("SNIKKET_DOMAIN=other.example\nSNIKKET_ADMIN_EMAIL=a@other.example\n");
    let c = Config::load(vars(&[("SNIKKET_ENV_FILE", path)]), Some(other.path()))
        .unwrap()
        .config;
    assert_eq!(c.domain, "other.example");
}

#[test]
fn env_file_errors_name_file_and_line() {
    let file = env_file(
        "SNIKKET_DOMAIN=chat.example.com\nthis line is wrong\nSNIKKET_SITE_NAME=\"unterminated\n",
    );
    let e = Config::load(Vec::new(), Some(file.path())).unwrap_err();
    assert_eq!(e.0.len(), 2, "{e}");
    let path = file.path().display().to_string();
    assert!(e.0[0].starts_with(&format!("{path}:2:")), "{e}");
    assert!(e.0[1].starts_with(&format!("{path}:3:")), "{e}");

    let missing = Path::new("/nonexistent/snikket.conf");
    let e = Config::load(Vec::new(), Some(missing)).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert!(e.0[0].contains("/nonexistent/snikket.conf"), "{e}");
}

#[test]
fn from_map_never_reads_a_file() {
    let map = map(&[("SNIKKET_ENV_FILE", "/nonexistent/snikket.conf")]);
    assert!(Config::from_map(&map).unwrap().warnings.is_empty());
}

#[test]
fn limits_can_be_changed_by_tests() {
    let mut c = load(&[]).config;
    c.limits.c2s_stanza_size = 1024;
    c.limits.c2s_idle_timeout = Duration::from_millis(50);
    assert_eq!(c.limits.c2s_stanza_size, 1024);
    assert_ne!(c, load(&[]).config);
}
