//! XEP-0133 Service Administration commands, for admins, on the ad-hoc command framework ([`crate::adhoc`]).
//!
//! - `get-online-users-num`: one stage, the number of accounts with at least one session.
//! - `change-user-password`: a form (account, new password), then the change. The password must meet Snikket's
//!   policy ([`MIN_PASSWORD_CHARS`]); a form that does not is `bad-payload` and can be sent again. An account that
//!   does not exist completes the command with an error note, as Prosody's mod_admin_adhoc does.

use std::sync::Arc;

use rookery_core::{BoxFuture, Module, Registry, Server};
use rookery_proto::{ErrorType, StanzaCondition, StanzaError};
use rookery_store::{Credentials, MIN_PASSWORD_CHARS, Role};

use crate::adhoc::{Command, CommandContext, Commands, NoteKind, Response, bad_payload};
use crate::forms::{Field, FieldKind, Form, FormKind};

/// The form type of XEP-0133 forms.
pub const FORM_TYPE: &str = "http://jabber.org/protocol/admin";

/// Registers the commands.
pub struct AdminCommands;

impl Module for AdminCommands {
    fn name(&self) -> &'static str {
        "admin_commands"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let commands = registry.extensions.get_or_default::<Commands>();
        commands.add(Arc::new(OnlineUsersNum));
        commands.add(Arc::new(ChangeUserPassword));
    }
}

fn admins_only(role: Role) -> bool {
    role == Role::Admin
}

pub struct OnlineUsersNum;

impl Command for OnlineUsersNum {
    fn node(&self) -> &str {
        "http://jabber.org/protocol/admin#get-online-users-num"
    }

    fn name(&self) -> &str {
        "Get Number of Online Users"
    }

    fn allowed(&self, _server: &Server, role: Role) -> bool {
        admins_only(role)
    }

    fn run<'a>(&'a self, ctx: CommandContext<'a>) -> BoxFuture<'a, Result<Response, StanzaError>> {
        let online = ctx.server.sessions.accounts_online();
        let result = Form::with_form_type(FormKind::Result, FORM_TYPE).with_field(
            Field::new("onlineusersnum", FieldKind::TextSingle)
                .with_label("The number of online users")
                .with_value(online.to_string()),
        );
        Box::pin(std::future::ready(Ok(Response::result(result))))
    }
}

pub struct ChangeUserPassword;

impl ChangeUserPassword {
    fn form() -> Form {
        Form::with_form_type(FormKind::Form, FORM_TYPE)
            .with_title("Changing a User Password")
            .with_instructions("Fill out this form to change a user's password.")
            .with_field(
                Field::new("accountjid", FieldKind::JidSingle)
                    .with_label("The Jabber ID for this account")
                    .required(),
            )
            .with_field(
                Field::new("password", FieldKind::TextPrivate)
                    .with_label("The password for this account")
                    .required(),
            )
    }

    async fn change(ctx: &CommandContext<'_>, answer: &Form) -> Result<Response, StanzaError> {
        answer.check_form_type(FORM_TYPE).map_err(bad_payload)?;
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
        let password = answer.required("password").map_err(bad_payload)?.to_owned();
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(bad_payload(format!(
                "a password needs at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        // Deriving the keys is deliberately slow: off the async threads.
        let credentials =
            tokio::task::spawn_blocking(move || Credentials::from_password(&password))
                .await
                .map_err(|_| StanzaError::new(StanzaCondition::InternalServerError))?
                .map_err(|e| bad_payload(format!("this password cannot be used: {e}")))?;
        match ctx
            .server
            .store
            .accounts()
            .set_credentials(&username, &credentials)
            .await
        {
            Ok(true) => {
                tracing::info!(account = %username, admin = %ctx.requester, "password changed by an administrator");
                Ok(Response::note(
                    NoteKind::Info,
                    "Password successfully changed",
                ))
            }
            Ok(false) => Ok(Response::note(
                NoteKind::Error,
                format!("There is no account {username}@{}", ctx.server.domain),
            )),
            Err(error) => {
                tracing::warn!(%error, "changing a password failed");
                Err(StanzaError::new(StanzaCondition::InternalServerError)
                    .with_type(ErrorType::Wait))
            }
        }
    }
}

impl Command for ChangeUserPassword {
    fn node(&self) -> &str {
        "http://jabber.org/protocol/admin#change-user-password"
    }

    fn name(&self) -> &str {
        "Change User Password"
    }

    fn allowed(&self, _server: &Server, role: Role) -> bool {
        admins_only(role)
    }

    fn run<'a>(&'a self, ctx: CommandContext<'a>) -> BoxFuture<'a, Result<Response, StanzaError>> {
        Box::pin(async move {
            match ctx.submitted {
                [] => Ok(Response::last_form(Self::form())),
                [answer, ..] => Self::change(&ctx, answer).await,
            }
        })
    }
}
