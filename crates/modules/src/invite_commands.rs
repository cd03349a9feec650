//! XEP-0401 invites from the apps, as ad-hoc commands ([`crate::adhoc`]) (`spec/snikket-compat.md` §5.2):
//!
//! - `urn:xmpp:invite#invite`: a contact invite from the requester. Snikket's Android app looks for this node in
//!   the command list ("Invite to app") and reads the result's `uri` and `landing-url`. The invite also creates an
//!   account when the requester may invite new users.
//! - `urn:xmpp:invite#create-account`: an account invite (administrators).
//! - `xmpp:prosody.im/mod_invites_adhoc#password-reset`: a form asking for the account, then a password reset
//!   invite for it (administrators).
//!
//! Who may run them follows Snikket's defaults, all three for administrators only. Two settings open the contact
//! invite to normal users, as Prosody's options of the same names: `allow_contact_invites` lets them run it,
//! `allow_user_invites` lets their invites create accounts. Limited users never invite.
//!
//! Every command completes in one stage with a result form titled "Your invite has been created": `landing-url`
//! (when the invite has a web page), `uri` and `expire` (XEP-0082). The invites are made by [`crate::invites`].

use std::sync::Arc;

use rookery_core::{BoxFuture, Module, Registry, Server};
use rookery_proto::{ErrorType, StanzaCondition, StanzaError};
use rookery_store::{Invite, Role};

use crate::adhoc::{Command, CommandContext, Commands, NoteKind, Response, bad_payload};
use crate::forms::{Field, FieldKind, Form, FormKind};
use crate::invites::{self, InviteError};

/// The contact invite command's node (XEP-0401 §4).
pub const INVITE_NODE: &str = "urn:xmpp:invite#invite";
/// The account invite command's node (XEP-0401 §5).
pub const CREATE_ACCOUNT_NODE: &str = "urn:xmpp:invite#create-account";
/// The password reset invite command's node, Prosody's.
pub const PASSWORD_RESET_NODE: &str = "xmpp:prosody.im/mod_invites_adhoc#password-reset";

/// Registers the commands.
pub struct InviteCommands;

impl Module for InviteCommands {
    fn name(&self) -> &'static str {
        "invite_commands"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let commands = registry.extensions.get_or_default::<Commands>();
        commands.add(Arc::new(ContactInvite));
        commands.add(Arc::new(AccountInvite));
        commands.add(Arc::new(PasswordResetInvite));
    }
}

/// Whether an account with `role` may invite people to create accounts (Prosody's `:invite-users` permission).
pub fn may_invite_users(server: &Server, role: Role) -> bool {
    match role {
        Role::Admin => true,
        Role::Normal => server.config.allow_user_invites,
        Role::Limited => false,
    }
}

/// The result form of every invite command.
fn invite_created(server: &Server, invite: &Invite) -> Response {
    let mut form = Form::new(FormKind::Result).with_title("Your invite has been created");
    if let Some(url) = invites::landing_url(&server.config, invite) {
        form = form.with_field(
            Field::new("landing-url", FieldKind::TextSingle)
                .with_label("Invite link")
                .with_desc("Send this link to the person you invite")
                .with_value(url),
        );
    }
    form = form
        .with_field(
            Field::new("uri", FieldKind::TextSingle)
                .with_label("Invite URI")
                .with_desc("The same invite for XMPP apps that open xmpp: links")
                .with_value(invites::invite_uri(&server.domain, invite)),
        )
        .with_field(
            Field::new("expire", FieldKind::TextSingle)
                .with_label("Valid until")
                .with_value(invites::expiry_stamp(invite)),
        );
    Response::result(form)
}

/// A storage failure is the server's problem, to try again later; the other reasons are the requester's and
/// complete the command with an error note (XEP-0050 §3.4).
fn not_created(error: InviteError) -> Result<Response, StanzaError> {
    match error {
        InviteError::Store(error) => {
            tracing::warn!(%error, "creating an invite failed");
            Err(StanzaError::new(StanzaCondition::InternalServerError).with_type(ErrorType::Wait))
        }
        other => Ok(Response::note(
            NoteKind::Error,
            format!("The invite could not be created: {other}"),
        )),
    }
}

/// The requester's username; commands run only for local accounts, so there always is one.
fn requester_username(ctx: &CommandContext<'_>) -> Result<String, StanzaError> {
    ctx.requester
        .node()
        .map(|n| n.as_str().to_owned())
        .ok_or_else(|| StanzaError::new(StanzaCondition::Forbidden).with_type(ErrorType::Cancel))
}

pub struct ContactInvite;

impl Command for ContactInvite {
    fn node(&self) -> &str {
        INVITE_NODE
    }

    fn name(&self) -> &str {
        "Create new contact invite"
    }

    fn allowed(&self, server: &Server, role: Role) -> bool {
        match role {
            Role::Admin => true,
            Role::Normal => server.config.allow_contact_invites,
            Role::Limited => false,
        }
    }

    fn run<'a>(&'a self, ctx: CommandContext<'a>) -> BoxFuture<'a, Result<Response, StanzaError>> {
        Box::pin(async move {
            let inviter = requester_username(&ctx)?;
            let allow_registration = may_invite_users(ctx.server, ctx.role);
            match invites::create_contact_invite(
                &ctx.server.store,
                &inviter,
                allow_registration,
                None,
                Some(ctx.requester.to_string()),
            )
            .await
            {
                Ok(invite) => Ok(invite_created(ctx.server, &invite)),
                Err(error) => not_created(error),
            }
        })
    }
}

pub struct AccountInvite;

impl Command for AccountInvite {
    fn node(&self) -> &str {
        CREATE_ACCOUNT_NODE
    }

    fn name(&self) -> &str {
        "Create new account invite"
    }

    fn allowed(&self, _server: &Server, role: Role) -> bool {
        role == Role::Admin
    }

    fn run<'a>(&'a self, ctx: CommandContext<'a>) -> BoxFuture<'a, Result<Response, StanzaError>> {
        Box::pin(async move {
            let options = invites::AccountInvite {
                source: Some(ctx.requester.to_string()),
                ..invites::AccountInvite::default()
            };
            match invites::create_account_invite(&ctx.server.store, options).await {
                Ok(invite) => Ok(invite_created(ctx.server, &invite)),
                Err(error) => not_created(error),
            }
        })
    }
}

pub struct PasswordResetInvite;

impl PasswordResetInvite {
    fn form() -> Form {
        Form::new(FormKind::Form)
            .with_title("Password reset invite")
            .with_instructions("Which account is the password reset invite for?")
            .with_field(
                Field::new("accountjid", FieldKind::JidSingle)
                    .with_label("The account's address")
                    .required(),
            )
    }

    async fn create(ctx: &CommandContext<'_>, answer: &Form) -> Result<Response, StanzaError> {
        let jid = answer.required_jid("accountjid").map_err(bad_payload)?;
        let username = match jid.node() {
            Some(node) if jid.domain().as_str() == ctx.server.domain => node.as_str().to_owned(),
            _ => {
                return Err(bad_payload(format!(
                    "{jid} is not an account of {}",
                    ctx.server.domain
                )));
            }
        };
        match invites::create_reset_invite(
            &ctx.server.store,
            &username,
            None,
            Some(ctx.requester.to_string()),
        )
        .await
        {
            Ok(invite) => Ok(invite_created(ctx.server, &invite)),
            Err(error) => not_created(error),
        }
    }
}

impl Command for PasswordResetInvite {
    fn node(&self) -> &str {
        PASSWORD_RESET_NODE
    }

    fn name(&self) -> &str {
        "Create password reset invite"
    }

    fn allowed(&self, _server: &Server, role: Role) -> bool {
        role == Role::Admin
    }

    fn run<'a>(&'a self, ctx: CommandContext<'a>) -> BoxFuture<'a, Result<Response, StanzaError>> {
        Box::pin(async move {
            match ctx.submitted {
                [] => Ok(Response::last_form(Self::form())),
                [answer, ..] => Self::create(&ctx, answer).await,
            }
        })
    }
}
