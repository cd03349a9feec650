//! XEP-0077 In-Band Registration for a logged-in account, as Snikket's Prosody does it (mod_user_account_management
//! with mod_password_policy): the registration form, password change, and account removal with a grace period.
//! Registering new accounts (with an invite) is not here.
//!
//! - `get` answers `<registered/>` with the username.
//! - A password change needs the account's own username and a password of at least ten characters that does not
//!   contain the username (Snikket's policy); it stores new SCRAM-SHA-1 and SCRAM-SHA-256 keys and, like Prosody,
//!   closes the account's other sessions, which logged in with the old password.
//! - `<remove/>` disables the account at once, closes all its sessions, and records its deletion for
//!   `SNIKKET_RETENTION_DAYS` later; a login meanwhile fails with `account-disabled` and "Account deleted". An admin
//!   can restore it (`rookery user enable`). [`run_account_cleanup`] deletes the accounts whose time has come.

use std::sync::Arc;

use crate::support::unix_now;
use jid::NodePart;
use rookery_core::{
    BoxFuture, IqHandler, IqOutcome, IqRequest, Module, Origin, Registry, Server, Session, Target,
};
use rookery_proto::stanza::iq_result;
use rookery_proto::{IqType, StanzaCondition, StanzaError, StreamCondition, StreamError};
use rookery_store::{Credentials, StoreError};
use rookery_xml::Element;
use tracing::{info, warn};

/// The protocol's namespace.
pub const NS: &str = "jabber:iq:register";

/// Snikket's password policy: `password_policy = { length = 10 }`.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The account-management part of XEP-0077.
pub struct AccountManagement;

impl Module for AccountManagement {
    fn name(&self) -> &'static str {
        "register"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        // Conversations offers "change password" only when the server announces this.
        registry.disco.add_feature(NS);
        // Addressed to the account itself or, as most clients do, to the server (Prosody's registration_compat).
        for target in [Target::Own, Target::Host] {
            for iq_type in [IqType::Get, IqType::Set] {
                registry
                    .hooks
                    .on_iq(iq_type, target, NS, "query", 0, Arc::new(Handler));
            }
        }
    }
}

struct Handler;

impl IqHandler for Handler {
    fn handle<'a>(&'a self, request: IqRequest<'a>) -> BoxFuture<'a, IqOutcome> {
        Box::pin(async move {
            let Origin::Client(session) = request.origin else {
                return IqOutcome::Pass;
            };
            let Some(query) = request.payload() else {
                return IqOutcome::Pass;
            };
            match IqType::of(request.stanza) {
                Some(IqType::Get) => registration_form(session),
                Some(IqType::Set) if query.has_child("remove", NS) => {
                    remove_account(request.server, session, request.stanza).await
                }
                Some(IqType::Set) => change_password(request.server, session, query).await,
                _ => IqOutcome::Pass,
            }
        })
    }
}

/// A registered account's form: `<registered/>`, its username, and an empty password to change.
fn registration_form(session: &Session) -> IqOutcome {
    let query = Element::new("query", NS)
        .with_child(Element::new("registered", NS))
        .with_child(Element::new("username", NS).with_text(session.username()))
        .with_child(Element::new("password", NS));
    IqOutcome::Result(Some(query))
}

/// Snikket's password policy, as mod_password_policy words its refusals. The length counts characters, not bytes
/// as Prosody does, so that "10 characters" means ten characters in every script (and matches the web portal).
pub fn check_password_policy(password: &str, username: &str) -> Result<(), &'static str> {
    if password.is_empty() {
        return Err("No password provided");
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err("Password is too short (minimum 10 characters)");
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        return Err("Password must not include your username");
    }
    Ok(())
}

async fn change_password(server: &Server, session: &Arc<Session>, query: &Element) -> IqOutcome {
    let username = session.username();
    let password = query.get_child("password", NS).map(Element::text);
    // The policy comes first, as in Prosody, where it runs before the password change itself.
    if let Some(password) = &password
        && let Err(reason) = check_password_policy(password, username)
    {
        return IqOutcome::Error(StanzaError::with_text(
            StanzaCondition::NotAcceptable,
            reason,
        ));
    }
    let given_username = query.get_child("username", NS).map(Element::text);
    let (Some(given_username), Some(password)) = (given_username, password) else {
        return IqOutcome::Error(StanzaError::with_text(
            StanzaCondition::BadRequest,
            "a password change needs <username/> and <password/>",
        ));
    };
    let own = NodePart::new(&given_username).is_ok_and(|n| n.as_str() == username);
    if !own {
        return IqOutcome::Error(StanzaError::with_text(
            StanzaCondition::BadRequest,
            "that is not your username",
        ));
    }
    // Key derivation is deliberately slow (PBKDF2): off the async workers.
    let derived = tokio::task::spawn_blocking(move || Credentials::from_password(&password)).await;
    let credentials = match derived {
        Ok(Ok(credentials)) => credentials,
        Ok(Err(err)) => {
            return IqOutcome::Error(StanzaError::with_text(
                StanzaCondition::NotAcceptable,
                err.to_string(),
            ));
        }
        Err(err) => {
            warn!(%err, "password derivation failed");
            return IqOutcome::Error(StanzaError::new(StanzaCondition::InternalServerError));
        }
    };
    match server
        .store
        .accounts()
        .set_credentials(username, &credentials)
        .await
    {
        Ok(true) => {}
        Ok(false) => return IqOutcome::Error(StanzaError::new(StanzaCondition::ItemNotFound)),
        Err(err) => {
            warn!(%err, "cannot store the new password");
            return IqOutcome::Error(StanzaError::new(StanzaCondition::InternalServerError));
        }
    }
    info!(account = username, "password changed");
    // Prosody's mod_c2s: the other sessions logged in with the old password, and are closed.
    for other in server.sessions.sessions_of(username) {
        if other.id != session.id {
            other.close(StreamError::with_text(
                StreamCondition::Reset,
                "Password changed",
            ));
        }
    }
    IqOutcome::Result(None)
}

/// `<remove/>`: the account is disabled and its deletion recorded, the request answered, then every session of the
/// account closed as Prosody closes them when an account is disabled.
async fn remove_account(server: &Server, session: &Arc<Session>, stanza: &Element) -> IqOutcome {
    let username = session.username();
    let now = unix_now();
    let grace = i64::from(server.config.retention_days) * 86_400;
    match server
        .store
        .account_deletions()
        .request(username, now, now.saturating_add(grace))
        .await
    {
        Ok(true) => {}
        Ok(false) => return IqOutcome::Error(StanzaError::new(StanzaCondition::ItemNotFound)),
        // Snikket's mod_protect_last_admin: the server must keep an administrator.
        Err(err @ StoreError::OnlyAdmin) => {
            return IqOutcome::Error(StanzaError::with_text(
                StanzaCondition::NotAllowed,
                err.to_string(),
            ));
        }
        Err(err) => {
            warn!(%err, "cannot record the account deletion");
            return IqOutcome::Error(StanzaError::new(StanzaCondition::ServiceUnavailable));
        }
    }
    info!(
        account = username,
        days = server.config.retention_days,
        "account removed by its owner: disabled, deleted after the grace period"
    );
    // Queued before the close: a closing session's queue is written out before its stream error.
    server
        .send_local(iq_result(stanza), &Origin::Client(Arc::clone(session)))
        .await;
    for each in server.sessions.sessions_of(username) {
        each.close(StreamError::with_text(
            StreamCondition::NotAuthorized,
            "Account disabled",
        ));
    }
    IqOutcome::Answered
}

/// Deletes, with all their data, the accounts whose deletion grace period ended by `now` (unix seconds). Returns
/// how many were deleted.
pub async fn delete_expired_accounts(server: &Server, now: i64) -> usize {
    match server.store.account_deletions().delete_expired(now).await {
        Ok(deleted) => {
            for username in &deleted {
                info!(account = %username, "account deleted at the end of its grace period");
            }
            deleted.len()
        }
        Err(err) => {
            warn!(%err, "cannot delete the accounts whose grace period is over");
            0
        }
    }
}

/// The background job: one pass now, then one every `account_cleanup_interval`, until the server stops.
pub async fn run_account_cleanup(server: Arc<Server>) {
    let interval = server.config.limits.account_cleanup_interval;
    loop {
        delete_expired_accounts(&server, unix_now()).await;
        tokio::select! {
            () = server.shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy() {
        assert_eq!(
            check_password_policy("", "alice"),
            Err("No password provided")
        );
        assert_eq!(
            check_password_policy("123456789", "alice"),
            Err("Password is too short (minimum 10 characters)")
        );
        assert_eq!(check_password_policy("1234567890", "alice"), Ok(()));
        // Characters, not bytes: ten Cyrillic letters are enough, five (ten bytes) are not.
        assert_eq!(check_password_policy("пароль-оке", "alice"), Ok(()));
        assert!(check_password_policy("парол", "alice").is_err());
        for containing in ["my alice password", "xxALICExxxx", "AlIcE-1234567"] {
            assert_eq!(
                check_password_policy(containing, "alice"),
                Err("Password must not include your username"),
                "{containing}"
            );
        }
        assert_eq!(check_password_policy("al1ce is not here", "alice"), Ok(()));
    }
}
