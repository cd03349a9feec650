//! Registration by invite (spec §5.5): accounts created in-band before login with a XEP-0401 token (Snikket's
//! invite-only registration, Prosody's mod_invites_register with mod_register_ibr), and XEP-0379 contact
//! pre-approval is in `presence.rs`.
//!
//! The connection checks the `<preauth/>` token and nodepreps the username; [`InviteRegistrar`] does the rest, in
//! the reference's order: password policy, an invite at all, the invite's fixed username, password reset, a taken
//! username, then the account. After the account exists: the invite is consumed (a single-use invite used at the
//! same moment by another stream makes this registration fail and the account is deleted again, so nothing is left
//! half-made), then its roles, circles, the record of which invite was used and, for a contact invite, the mutual
//! subscription with the inviter. A failure in those last steps is logged and leaves a working account with the
//! rest of them missing (an admin can fix roles and circles; the user can add the contact): refusing a registration
//! whose account already works would be worse.

use std::sync::Arc;

use rookery_core::{
    AccountRegistrar, BoxFuture, Module, NewAccount, Registration, Registry, Server,
};
use rookery_proto::{StanzaCondition, StanzaError, StreamCondition, StreamError};
use rookery_store::{Credentials, Invite, InviteKind, Role, RosterItem, StoreError, Subscription};
use tracing::{info, warn};

use crate::register::check_password_policy;
use crate::support::unix_now;

/// XEP-0379's pre-authentication token namespace.
pub const NS_PARS: &str = rookery_proto::c2s::NS_PARS;
use crate::roster::{lock_roster, save_item};

/// Provides in-band registration by invite.
pub struct InviteRegistration;

impl Module for InviteRegistration {
    fn name(&self) -> &'static str {
        "invites_register"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry
            .extensions
            .get_or_default::<Registration>()
            .registrar = Some(Arc::new(InviteRegistrar));
    }
}

/// The [`AccountRegistrar`] of invite-only registration.
pub struct InviteRegistrar;

impl AccountRegistrar for InviteRegistrar {
    fn register<'a>(
        &'a self,
        server: &'a Arc<Server>,
        request: NewAccount,
    ) -> BoxFuture<'a, Result<(), StanzaError>> {
        Box::pin(register(server, request))
    }
}

fn not_acceptable(text: &str) -> StanzaError {
    StanzaError::with_text(StanzaCondition::NotAcceptable, text)
}

fn invalid_invite() -> StanzaError {
    StanzaError::with_text(
        StanzaCondition::ItemNotFound,
        "The invite token is invalid or expired",
    )
}

fn internal(err: StoreError) -> StanzaError {
    warn!(%err, "registration storage failed");
    StanzaError::new(StanzaCondition::InternalServerError)
}

async fn register(server: &Arc<Server>, request: NewAccount) -> Result<(), StanzaError> {
    let NewAccount {
        username,
        password,
        invite_token,
    } = request;
    check_password_policy(&password, &username).map_err(not_acceptable)?;
    let Some(token) = invite_token else {
        return Err(not_acceptable(
            "Registration on this server is through invitation only",
        ));
    };
    // Looked up again: the invite may have expired or been used since the stream presented it.
    let invite = server
        .store
        .invites()
        .get(&token)
        .await
        .map_err(internal)?
        .filter(|invite| invite.is_valid_at(unix_now()) && invite.allow_registration)
        .ok_or_else(invalid_invite)?;
    match invite.kind {
        InviteKind::Account => {
            // The reference never enforces this (spec §5.5 A, BUG); we do.
            if invite
                .username
                .as_ref()
                .is_some_and(|fixed| *fixed != username)
            {
                return Err(not_acceptable(
                    "The chosen username is not valid with this invitation",
                ));
            }
        }
        InviteKind::Reset => return reset_password(server, &invite, &username, password).await,
        InviteKind::Contact => {}
    }
    if server
        .store
        .accounts()
        .exists(&username)
        .await
        .map_err(internal)?
    {
        return Err(conflict());
    }
    let credentials = derive(password).await?;
    let role = invite.roles.first().copied().unwrap_or(Role::Normal);
    match server
        .store
        .accounts()
        .create(&username, &credentials, role)
        .await
    {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => return Err(conflict()),
        Err(err) => return Err(internal(err)),
    }
    match server.store.invites().consume(&invite.token).await {
        Ok(true) => {}
        Ok(false) => {
            // Used by someone else meanwhile: this registration did not happen.
            undo_account(server, &username).await;
            return Err(invalid_invite());
        }
        Err(err) => {
            undo_account(server, &username).await;
            return Err(internal(err));
        }
    }
    info!(account = %username, kind = invite.kind.as_str(), "account registered with an invite");
    after_registration(server, &invite, &username).await;
    Ok(())
}

fn conflict() -> StanzaError {
    StanzaError::with_text(
        StanzaCondition::Conflict,
        "The requested username already exists.",
    )
}

/// Key derivation is deliberately slow (PBKDF2): off the async workers.
async fn derive(password: String) -> Result<Credentials, StanzaError> {
    match tokio::task::spawn_blocking(move || Credentials::from_password(&password)).await {
        Ok(Ok(credentials)) => Ok(credentials),
        Ok(Err(err)) => Err(not_acceptable(&err.to_string())),
        Err(err) => {
            warn!(%err, "password derivation failed");
            Err(StanzaError::new(StanzaCondition::InternalServerError))
        }
    }
}

async fn undo_account(server: &Server, username: &str) {
    if let Err(err) = server.store.accounts().delete(username).await {
        warn!(%err, account = username, "cannot delete the account of a failed registration");
    }
}

/// A reset invite sets the password of its own account, and nothing else.
async fn reset_password(
    server: &Arc<Server>,
    invite: &Invite,
    username: &str,
    password: String,
) -> Result<(), StanzaError> {
    if invite.username.as_deref() != Some(username) {
        return Err(not_acceptable("Incorrect username for password reset"));
    }
    if !server
        .store
        .accounts()
        .exists(username)
        .await
        .map_err(internal)?
    {
        return Err(invalid_invite());
    }
    let credentials = derive(password).await?;
    // Consumed first: two streams racing with one reset invite must not both set a password.
    if !server
        .store
        .invites()
        .consume(&invite.token)
        .await
        .map_err(internal)?
    {
        return Err(invalid_invite());
    }
    match server
        .store
        .accounts()
        .set_credentials(username, &credentials)
        .await
    {
        Ok(true) => {}
        // Deleted in between: the invite is spent either way.
        Ok(false) => return Err(invalid_invite()),
        Err(err) => return Err(internal(err)),
    }
    info!(account = username, "password reset with an invite");
    // As after a password change: sessions that logged in with the old password are closed.
    for session in server.sessions.sessions_of(username) {
        session.close(StreamError::with_text(
            StreamCondition::Reset,
            "Password changed",
        ));
    }
    Ok(())
}

/// Roles, circles, tracking and the inviter's contact (spec §5.5 A step 5).
async fn after_registration(server: &Arc<Server>, invite: &Invite, username: &str) {
    // Only one role per account is stored: the first is the account's role; Snikket's secondary roles have no
    // effect of their own here.
    for circle in &invite.circles {
        // Joined through the circles module, so the new member and the others are contacts at once.
        if let Err(err) = crate::circles::add_member(server, circle, username).await {
            warn!(%err, circle = %circle, "cannot join the invite's circle");
        }
    }
    if let Err(err) = server
        .store
        .invites()
        .record_use(username, &invite.token, invite.source.as_deref())
        .await
    {
        warn!(%err, account = username, "cannot record which invite was used");
    }
    if invite.kind == InviteKind::Contact
        && let Some(inviter) = &invite.username
    {
        make_mutual_contacts(server, inviter, username).await;
    }
}

/// Both accounts get each other with subscription `both` (pushed to their resources), one roster at a time.
pub(crate) async fn make_mutual_contacts(server: &Arc<Server>, a: &str, b: &str) {
    match server.store.accounts().exists(a).await {
        Ok(true) => {}
        Ok(false) => {
            warn!(
                inviter = a,
                "the inviter's account is gone; no contact added"
            );
            return;
        }
        Err(err) => {
            warn!(%err, "cannot look the inviter up");
            return;
        }
    }
    for (owner, contact) in [(a, b), (b, a)] {
        let contact_jid = format!("{contact}@{}", server.domain);
        let _lock = lock_roster(owner).await;
        let existing = match server.store.roster().item(owner, &contact_jid).await {
            Ok(item) => item,
            Err(err) => {
                warn!(%err, account = owner, "cannot read the roster");
                continue;
            }
        };
        let mut item = existing.unwrap_or_else(|| RosterItem::new(contact_jid.clone()));
        item.subscription = Subscription::Both;
        item.ask = false;
        if let Err(err) = save_item(server, owner, &item).await {
            warn!(
                condition = err.condition.name(),
                account = owner,
                "cannot add the invite's contact"
            );
        }
    }
}
