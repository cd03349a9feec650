//! Client management, as Prosody's mod_client_management: the clients that logged in to an account through SASL2
//! (XEP-0388 `<user-agent/>`, recorded by the connection at each login) are listed to their owner, who can revoke
//! one: its FAST token is deleted (XEP-0484) and its sessions are closed, so it must log in with the password
//! again. Two XEP-0050 commands for the user themself, and `rookery user clients` / `revoke-client` on the command
//! line (which change the database only: a client revoked there keeps a session it has open until it reconnects).

use std::sync::Arc;

use rookery_core::{BoxFuture, Module, Registry, Server};
use rookery_proto::{ErrorType, StanzaCondition, StanzaError, StreamCondition, StreamError};
use rookery_store::{ClientInfo, Role, StoreError};

use crate::adhoc::{Command, CommandContext, Commands, NoteKind, Response, bad_payload};
use crate::forms::{Field, FieldKind, Form, FormKind};
use crate::support::unix_now;

/// The command listing the requester's clients.
pub const LIST_NODE: &str = "urn:rookery:client-management#list";
/// The command revoking one of them.
pub const REVOKE_NODE: &str = "urn:rookery:client-management#revoke";

/// Forgets a client of `username` and its tokens, and closes its open sessions. `false` if there was no such
/// client.
pub async fn revoke_client(
    server: &Server,
    username: &str,
    client_id: &str,
) -> Result<bool, StoreError> {
    let revoked = server.store.clients().revoke(username, client_id).await?;
    for session in server.sessions.sessions_of(username) {
        let same_client = session.state().client_id.as_deref() == Some(client_id);
        if same_client {
            session.close(StreamError::with_text(
                StreamCondition::NotAuthorized,
                "client access revoked",
            ));
        }
    }
    Ok(revoked)
}

/// One line describing a client, for people.
pub fn describe(client: &ClientInfo) -> String {
    let what = match (&client.software, &client.device) {
        (Some(s), Some(d)) => format!("{s} on {d}"),
        (Some(s), None) => s.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => "unknown client".to_owned(),
    };
    let token = if client.has_token {
        "quick login"
    } else {
        "password login"
    };
    format!(
        "{what} ({token}; first seen {}, last seen {})",
        date(client.first_seen),
        date(client.last_seen)
    )
}

/// A UTC date-time for people.
fn date(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds).map_or_else(
        |_| unix_seconds.to_string(),
        |t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        },
    )
}

pub struct ClientManagement;

impl Module for ClientManagement {
    fn name(&self) -> &'static str {
        "client_management"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let commands = registry.extensions.get_or_default::<Commands>();
        commands.add(Arc::new(ListClients));
        commands.add(Arc::new(RevokeClient));
    }
}

fn requester_username(ctx: &CommandContext<'_>) -> Result<String, StanzaError> {
    ctx.requester
        .node()
        .map(|n| n.as_str().to_owned())
        .ok_or_else(|| StanzaError::new(StanzaCondition::Forbidden).with_type(ErrorType::Cancel))
}

fn storage_error(err: &StoreError) -> Response {
    tracing::warn!(%err, "client management: storage failed");
    Response::note(NoteKind::Error, "The list of clients is not available now.")
}

struct ListClients;

impl Command for ListClients {
    fn node(&self) -> &str {
        LIST_NODE
    }

    fn name(&self) -> &str {
        "List my clients"
    }

    fn allowed(&self, _server: &Server, _role: Role) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: CommandContext<'a>) -> BoxFuture<'a, Result<Response, StanzaError>> {
        Box::pin(async move {
            let username = requester_username(&ctx)?;
            let clients = match ctx.server.store.clients().list(&username, unix_now()).await {
                Ok(clients) => clients,
                Err(err) => return Ok(storage_error(&err)),
            };
            let mut field = Field::new("clients", FieldKind::TextMulti).with_label("Clients");
            for client in &clients {
                field = field.with_value(format!("{}: {}", client.client_id, describe(client)));
            }
            let form = Form::new(FormKind::Result)
                .with_title("Your clients")
                .with_field(field);
            Ok(Response::result(form))
        })
    }
}

struct RevokeClient;

impl Command for RevokeClient {
    fn node(&self) -> &str {
        REVOKE_NODE
    }

    fn name(&self) -> &str {
        "Revoke a client's access"
    }

    fn allowed(&self, _server: &Server, _role: Role) -> bool {
        true
    }

    fn run<'a>(&'a self, ctx: CommandContext<'a>) -> BoxFuture<'a, Result<Response, StanzaError>> {
        Box::pin(async move {
            let username = requester_username(&ctx)?;
            let Some(submitted) = ctx.submitted.last() else {
                let clients = match ctx.server.store.clients().list(&username, unix_now()).await {
                    Ok(clients) => clients,
                    Err(err) => return Ok(storage_error(&err)),
                };
                if clients.is_empty() {
                    return Ok(Response::note(
                        NoteKind::Info,
                        "There are no clients to revoke.",
                    ));
                }
                let mut field = Field::new("client", FieldKind::ListSingle)
                    .with_label("Client")
                    .required();
                for client in &clients {
                    field = field.with_option(Some(&describe(client)), &client.client_id);
                }
                let form = Form::new(FormKind::Form)
                    .with_title("Revoke a client's access")
                    .with_instructions(
                        "The client is logged out and must log in with the password again.",
                    )
                    .with_field(field);
                return Ok(Response::last_form(form));
            };
            let client_id = submitted.required("client").map_err(bad_payload)?;
            match revoke_client(ctx.server, &username, client_id).await {
                Ok(true) => Ok(Response::note(
                    NoteKind::Info,
                    "The client's access was revoked.",
                )),
                Ok(false) => Err(bad_payload("there is no such client")),
                Err(err) => Ok(storage_error(&err)),
            }
        })
    }
}
