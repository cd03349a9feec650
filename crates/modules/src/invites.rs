//! Making invites (`spec/snikket-compat.md` §5): the one place that creates them, for the `create-invite` command
//! line, the XEP-0401 ad-hoc commands ([`crate::invite_commands`]) and the web pages; and the two ways of handing
//! one out, its `xmpp:` URI (§5.3) and its landing page (§5.4).
//!
//! Rules kept here, as Prosody's mod_invites has them:
//! - an invite lives a week unless told otherwise ([`DEFAULT_TTL_SECS`]); a password reset a day ([`RESET_TTL_SECS`]);
//! - account invites are single use; a group invite made with an explicit lifetime is reusable until it expires
//!   (Prosody's `create_group`), so the portal can hand one link to a whole circle;
//! - a contact invite that lets its holder register puts the new account into the default circle, as Snikket's
//!   mod_invites_default_group does (without its bug, which drops the invite's `source`);
//! - circles named by an invite must exist when it is made, and a reset invite needs an existing account, so a
//!   typo is caught by whoever makes the invite rather than at registration.

use std::fmt;

use rookery_config::Config;
use rookery_store::{DEFAULT_CIRCLE, Invite, InviteKind, Role, Store, StoreError};

use crate::support::unix_now;

/// How long an invite lives unless told otherwise: one week (Prosody's `invite_expiry`).
pub const DEFAULT_TTL_SECS: i64 = 7 * 86_400;

/// How long a password reset invite lives unless told otherwise: one day (Prosody's `create_reset` default).
pub const RESET_TTL_SECS: i64 = 86_400;

/// The longest lifetime accepted: ten years. Anything longer is almost certainly a mistake (a forgotten unit), and
/// the bound keeps `created_at + ttl` far from overflowing.
pub const MAX_TTL_SECS: i64 = 10 * 365 * 86_400;

/// Why an invite was not made.
#[derive(Debug)]
pub enum InviteError {
    /// A reset or contact invite for an account that does not exist.
    NoSuchAccount(String),
    /// An invite into a circle that does not exist.
    NoSuchCircle(String),
    /// A lifetime of zero or less, or longer than [`MAX_TTL_SECS`].
    BadLifetime(i64),
    Store(StoreError),
}

impl fmt::Display for InviteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchAccount(name) => write!(f, "there is no account {name:?}"),
            Self::NoSuchCircle(id) => write!(f, "there is no circle {id:?}"),
            Self::BadLifetime(secs) => write!(
                f,
                "an invite must be valid for more than 0 seconds and at most {MAX_TTL_SECS} seconds (ten years), not {secs}"
            ),
            Self::Store(err) => write!(f, "storage failed: {err}"),
        }
    }
}

impl std::error::Error for InviteError {}

impl From<StoreError> for InviteError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// What an account invite gives its holder, and where it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountInvite {
    /// Roles applied at registration, the first as the account's role; repeated ones are dropped.
    pub roles: Vec<Role>,
    /// Circles (ids) joined at registration; each must exist.
    pub circles: Vec<String>,
    /// Seconds; `None` = [`DEFAULT_TTL_SECS`].
    pub ttl: Option<i64>,
    /// Who made it (`admin@DOMAIN/resource`, `cli`, ...), for the record.
    pub source: Option<String>,
    /// The admin's comment.
    pub note: Option<String>,
    /// Only this username may register with it.
    pub username: Option<String>,
}

/// A single-use invite to create an account (Prosody's `create_account`).
pub async fn create_account_invite(
    store: &Store,
    options: AccountInvite,
) -> Result<Invite, InviteError> {
    make_account_invite(store, options, false).await
}

/// An invite into `options.circles` (Prosody's `create_group`): reusable until it expires when made with an
/// explicit lifetime, single use otherwise.
pub async fn create_group_invite(
    store: &Store,
    options: AccountInvite,
) -> Result<Invite, InviteError> {
    let reusable = options.ttl.is_some();
    make_account_invite(store, options, reusable).await
}

async fn make_account_invite(
    store: &Store,
    options: AccountInvite,
    reusable: bool,
) -> Result<Invite, InviteError> {
    let ttl = lifetime(options.ttl, DEFAULT_TTL_SECS)?;
    let circles = dedup(options.circles);
    for circle in &circles {
        if store.circles().get(circle).await?.is_none() {
            return Err(InviteError::NoSuchCircle(circle.clone()));
        }
    }
    let now = unix_now();
    store_new(
        store,
        Invite {
            token: String::new(),
            kind: InviteKind::Account,
            username: options.username,
            allow_registration: true,
            reusable,
            roles: dedup(options.roles),
            circles,
            note: options.note,
            source: options.source,
            created_at: now,
            expires_at: now + ttl,
        },
    )
    .await
}

/// A single-use invite to set a new password for `username`, which must be an existing account (Prosody's
/// `create_account_reset`). `ttl` seconds, `None` = [`RESET_TTL_SECS`].
pub async fn create_reset_invite(
    store: &Store,
    username: &str,
    ttl: Option<i64>,
    source: Option<String>,
) -> Result<Invite, InviteError> {
    let ttl = lifetime(ttl, RESET_TTL_SECS)?;
    if store.accounts().get(username).await?.is_none() {
        return Err(InviteError::NoSuchAccount(username.to_owned()));
    }
    let now = unix_now();
    store_new(
        store,
        Invite {
            token: String::new(),
            kind: InviteKind::Reset,
            username: Some(username.to_owned()),
            allow_registration: true,
            reusable: false,
            roles: Vec::new(),
            circles: Vec::new(),
            note: None,
            source,
            created_at: now,
            expires_at: now + ttl,
        },
    )
    .await
}

/// A single-use invite to become a contact of `inviter` (an existing account), and, with `allow_registration`, to
/// create an account first (Prosody's `create_contact`). Such an account joins the default circle when it exists.
pub async fn create_contact_invite(
    store: &Store,
    inviter: &str,
    allow_registration: bool,
    ttl: Option<i64>,
    source: Option<String>,
) -> Result<Invite, InviteError> {
    let ttl = lifetime(ttl, DEFAULT_TTL_SECS)?;
    if store.accounts().get(inviter).await?.is_none() {
        return Err(InviteError::NoSuchAccount(inviter.to_owned()));
    }
    // Snikket's rule, so a person invited from the app is among the others of the server; only while the circle
    // exists (an admin may have deleted it), since joining a missing circle would fail at registration.
    let circles = if allow_registration && store.circles().get(DEFAULT_CIRCLE).await?.is_some() {
        vec![DEFAULT_CIRCLE.to_owned()]
    } else {
        Vec::new()
    };
    let now = unix_now();
    store_new(
        store,
        Invite {
            token: String::new(),
            kind: InviteKind::Contact,
            username: Some(inviter.to_owned()),
            allow_registration,
            reusable: false,
            roles: Vec::new(),
            circles,
            note: None,
            source,
            created_at: now,
            expires_at: now + ttl,
        },
    )
    .await
}

/// The invite's `xmpp:` URI (§5.3): `xmpp:JID?ACTION;preauth=TOKEN[;ibr=y]`.
pub fn invite_uri(domain: &str, invite: &Invite) -> String {
    let token = &invite.token;
    match (invite.kind, invite.username.as_deref()) {
        (InviteKind::Contact, Some(inviter)) => {
            let ibr = if invite.allow_registration {
                ";ibr=y"
            } else {
                ""
            };
            format!("xmpp:{inviter}@{domain}?roster;preauth={token}{ibr}")
        }
        (_, Some(user)) => format!("xmpp:{user}@{domain}?register;preauth={token}"),
        (_, None) => format!("xmpp:{domain}?register;preauth={token}"),
    }
}

/// The invite's web page (`SNIKKET_INVITE_URL`, by default `https://DOMAIN/invite/TOKEN/`), or `None` for a
/// contact invite that does not allow registration: the page has nothing to offer someone who already has an
/// account (Prosody's "contact-only" invites get no landing page either).
pub fn landing_url(config: &Config, invite: &Invite) -> Option<String> {
    if invite.kind == InviteKind::Contact && !invite.allow_registration {
        return None;
    }
    Some(config.invite_page(&invite.token))
}

/// When the invite expires, as a XEP-0082 date-time in UTC (`2026-05-01T12:00:00Z`).
pub fn expiry_stamp(invite: &Invite) -> String {
    rookery_proto::datetime::xep0082(invite.expires_at)
}

fn lifetime(ttl: Option<i64>, default: i64) -> Result<i64, InviteError> {
    match ttl.unwrap_or(default) {
        secs @ 1..=MAX_TTL_SECS => Ok(secs),
        secs => Err(InviteError::BadLifetime(secs)),
    }
}

/// Keeps the first of each (order matters for roles: the first is the account's role).
fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    kept
}

/// Stores `invite` under a new token. A clash of 144-bit random tokens does not happen in practice; a few tries
/// make it harmless if the random source is ever poor.
async fn store_new(store: &Store, mut invite: Invite) -> Result<Invite, InviteError> {
    const TRIES: usize = 3;
    for _ in 0..TRIES {
        invite.token = Invite::new_token();
        match store.invites().create(&invite).await {
            Ok(()) => return Ok(invite),
            Err(StoreError::AlreadyExists) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Err(StoreError::AlreadyExists.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rookery_store::Credentials;

    async fn store_with_alice() -> Store {
        let store = Store::open_in_memory().await.unwrap();
        let credentials = Credentials::from_password("a long password").unwrap();
        store
            .accounts()
            .create("alice", &credentials, Role::Normal)
            .await
            .unwrap();
        store
    }

    fn config() -> Config {
        Config::from_map(
            &[
                ("SNIKKET_DOMAIN", "chat.example.com"),
                ("SNIKKET_ADMIN_EMAIL", "admin@example.com"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        )
        .unwrap()
        .config
    }

    #[tokio::test]
    async fn account_invites_keep_roles_circles_and_lifetime() {
        let store = store_with_alice().await;
        store.circles().create("family", "Family").await.unwrap();
        let before = unix_now();
        let invite = create_account_invite(
            &store,
            AccountInvite {
                roles: vec![Role::Admin, Role::Normal, Role::Admin],
                circles: vec!["family".into(), "family".into()],
                source: Some("cli".into()),
                note: Some("for Bob".into()),
                ..AccountInvite::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(invite.token.len(), 24);
        assert_eq!(invite.kind, InviteKind::Account);
        assert_eq!(invite.roles, [Role::Admin, Role::Normal]);
        assert_eq!(invite.circles, ["family"]);
        assert!(invite.allow_registration && !invite.reusable);
        assert!(invite.expires_at >= before + DEFAULT_TTL_SECS);
        assert!(invite.expires_at <= unix_now() + DEFAULT_TTL_SECS);
        // Stored as returned.
        assert_eq!(
            store.invites().get(&invite.token).await.unwrap(),
            Some(invite)
        );
    }

    #[tokio::test]
    async fn unknown_circles_and_bad_lifetimes_are_refused_and_nothing_is_stored() {
        let store = store_with_alice().await;
        let err = create_account_invite(
            &store,
            AccountInvite {
                circles: vec!["nope".into()],
                ..AccountInvite::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, InviteError::NoSuchCircle(ref c) if c == "nope"));
        for ttl in [0, -5, MAX_TTL_SECS + 1] {
            let err = create_account_invite(
                &store,
                AccountInvite {
                    ttl: Some(ttl),
                    ..AccountInvite::default()
                },
            )
            .await
            .unwrap_err();
            assert!(matches!(err, InviteError::BadLifetime(t) if t == ttl));
        }
        assert!(
            store
                .invites()
                .list_valid(unix_now())
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn group_invites_are_reusable_only_with_an_explicit_lifetime() {
        let store = store_with_alice().await;
        store.circles().create("family", "Family").await.unwrap();
        let group = |ttl| AccountInvite {
            circles: vec!["family".into()],
            ttl,
            ..AccountInvite::default()
        };
        let with_ttl = create_group_invite(&store, group(Some(3600)))
            .await
            .unwrap();
        assert!(with_ttl.reusable);
        assert!(with_ttl.expires_at <= unix_now() + 3600);
        let without = create_group_invite(&store, group(None)).await.unwrap();
        assert!(!without.reusable);
    }

    #[tokio::test]
    async fn reset_invites_need_the_account_and_last_a_day() {
        let store = store_with_alice().await;
        let err = create_reset_invite(&store, "bob", None, None)
            .await
            .unwrap_err();
        assert!(matches!(err, InviteError::NoSuchAccount(ref n) if n == "bob"));
        let invite = create_reset_invite(&store, "alice", None, None)
            .await
            .unwrap();
        assert_eq!(invite.kind, InviteKind::Reset);
        assert_eq!(invite.username.as_deref(), Some("alice"));
        assert!(invite.expires_at <= unix_now() + RESET_TTL_SECS);
        assert!(invite.expires_at > unix_now() + RESET_TTL_SECS - 60);
    }

    #[tokio::test]
    async fn contact_invites_join_the_default_circle_when_it_exists_and_keep_their_source() {
        let store = store_with_alice().await;
        let source = Some("alice@chat.example.com/phone".to_owned());
        let before = create_contact_invite(&store, "alice", true, None, source.clone())
            .await
            .unwrap();
        assert!(before.circles.is_empty(), "no default circle yet");
        store
            .circles()
            .create(DEFAULT_CIRCLE, "Example")
            .await
            .unwrap();
        let invite = create_contact_invite(&store, "alice", true, None, source.clone())
            .await
            .unwrap();
        assert_eq!(invite.circles, [DEFAULT_CIRCLE]);
        assert_eq!(invite.source, source);
        let contact_only = create_contact_invite(&store, "alice", false, None, None)
            .await
            .unwrap();
        assert!(contact_only.circles.is_empty());
        assert!(matches!(
            create_contact_invite(&store, "nobody", true, None, None).await,
            Err(InviteError::NoSuchAccount(_))
        ));
    }

    fn invite(kind: InviteKind, username: Option<&str>, allow_registration: bool) -> Invite {
        Invite {
            token: "TOKEN".into(),
            kind,
            username: username.map(str::to_owned),
            allow_registration,
            reusable: false,
            roles: Vec::new(),
            circles: Vec::new(),
            note: None,
            source: None,
            created_at: 0,
            expires_at: 1_000_000_000,
        }
    }

    #[test]
    fn uris_have_the_reference_forms() {
        let d = "chat.example.com";
        let cases = [
            (
                invite(InviteKind::Account, None, true),
                "xmpp:chat.example.com?register;preauth=TOKEN",
            ),
            (
                invite(InviteKind::Account, Some("alice"), true),
                "xmpp:alice@chat.example.com?register;preauth=TOKEN",
            ),
            (
                invite(InviteKind::Reset, Some("alice"), true),
                "xmpp:alice@chat.example.com?register;preauth=TOKEN",
            ),
            (
                invite(InviteKind::Contact, Some("alice"), false),
                "xmpp:alice@chat.example.com?roster;preauth=TOKEN",
            ),
            (
                invite(InviteKind::Contact, Some("alice"), true),
                "xmpp:alice@chat.example.com?roster;preauth=TOKEN;ibr=y",
            ),
        ];
        for (invite, uri) in cases {
            assert_eq!(invite_uri(d, &invite), uri);
        }
    }

    #[test]
    fn landing_pages_except_for_contact_only_invites() {
        let config = config();
        assert_eq!(
            landing_url(&config, &invite(InviteKind::Account, None, true)).as_deref(),
            Some("https://chat.example.com/invite/TOKEN/")
        );
        assert!(landing_url(&config, &invite(InviteKind::Reset, Some("alice"), true)).is_some());
        assert!(landing_url(&config, &invite(InviteKind::Contact, Some("alice"), true)).is_some());
        assert_eq!(
            landing_url(&config, &invite(InviteKind::Contact, Some("alice"), false)),
            None
        );
    }

    #[test]
    fn expiry_is_a_xep0082_stamp() {
        assert_eq!(
            expiry_stamp(&invite(InviteKind::Account, None, true)),
            "2001-09-09T01:46:40Z"
        );
    }
}
