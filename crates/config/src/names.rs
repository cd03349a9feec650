//! Variable names that are not parsed into `Config` but are still recognised, so that they get the right message
//! (or none) instead of "unknown".

/// Names in a Snikket deployment that need no warning even though Rookery does not read them.
pub(crate) const SILENT: &[&str] = &[
    // Names the env file for Rookery itself; read by `Config::load`.
    "SNIKKET_ENV_FILE",
    // Written into every snikket.conf by Snikket's init.sh; no Snikket container reads it either.
    "SNIKKET_LETSENCRYPT_TOS_AGREE",
    // Documented, but has had no effect since push2 became the default in Snikket (2025-06).
    "SNIKKET_TWEAK_PUSH2",
    // Derived from SNIKKET_DOMAIN by Snikket's entrypoint; checked against our own derivation below.
    "SNIKKET_DOMAIN_ASCII",
];

/// Settings of Snikket's separate web portal container. Rookery's built-in portal takes the `SNIKKET_*` equivalents.
pub(crate) const PORTAL_PREFIX: &str = "SNIKKET_WEB_";

/// Recognised, but meaningless for one binary; the text says why.
pub(crate) const NO_EFFECT: &[(&str, &str)] = &[
    (
        "SNIKKET_CERTS_WAIT",
        "Rookery's built-in ACME client starts after its own HTTP listener is up",
    ),
    (
        "SNIKKET_TWEAK_WEB_PROXY_PROTOCOLS",
        "the web proxy reads SNIKKET_TWEAK_WEB_PROXY_PROTOS (the documentation's name is wrong)",
    ),
    (
        "SNIKKET_TWEAK_TURN_INTERNAL_IP",
        "did you mean SNIKKET_TWEAK_TURNSERVER_INTERNAL_IP?",
    ),
];

/// Names Snikket used once and dropped (`snikket-compat.md` §2.3). Old snikket.conf files still have them.
pub(crate) const HISTORICAL: &[&str] = &[
    "SNIKKET_TWEAK_XMPP_DOMAIN",
    "SNIKKET_TWEAK_MAX_FILE_SIZE_MB",
    "SNIKKET_UPLOAD_FILE_SIZE_LIMIT_MB",
    "SNIKKET_BILLING_API",
    "SNIKKET_DASHBOARD",
    "SNIKKET_UNRESTRICTED_REMOTE_DOMAINS",
];

/// Whether `name` is one of the `PG*` variables old Snikket releases read for PostgreSQL storage.
/// `PGID` is excluded: it is the current group-id remapping variable, next to `PUID`.
pub(crate) fn is_historical_pg(name: &str) -> bool {
    name.len() > 2
        && name.starts_with("PG")
        && name != "PGID"
        && name[2..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// Whether `name` is in the namespace Rookery owns: unknown names there get a warning.
pub(crate) fn is_ours(name: &str) -> bool {
    name.starts_with("SNIKKET_") || name.starts_with("TWEAK_SNIKKET_")
}

/// Levenshtein distance, to suggest the variable someone probably meant.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_names() {
        assert!(is_historical_pg("PGHOST"));
        assert!(is_historical_pg("PGPASSWORD"));
        assert!(!is_historical_pg("PGID"));
        assert!(!is_historical_pg("PG"));
        assert!(!is_historical_pg("PGadmin"));
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("SNIKKET_DOMIAN", "SNIKKET_DOMAIN"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
