//! XEP-0050 Ad-Hoc Commands: the framework that modules add commands to.
//!
//! A module adds its commands at start-up to the [`Commands`] registry
//! (`registry.extensions.get_or_default::<Commands>().add(...)`); this module lists them in disco (the items of
//! node `http://jabber.org/protocol/commands`, only those the requester's role allows) and runs them.
//!
//! A command is a function of the forms submitted so far ([`CommandContext::submitted`]): it answers with a form
//! to fill in ([`Response::Form`]) or with its result ([`Response::Completed`]). The framework keeps the session
//! between stages: a random 128-bit `sessionid`, bound to the requester's full JID and to the command, forgotten
//! after `Limits::adhoc_session_timeout` without use; an account has at most
//! `Limits::adhoc_sessions_per_account` sessions, and starting one more ends its oldest. `prev`
//! goes back a stage by forgetting the last submitted form; `cancel` ends the session; `execute` is the action the
//! last stage offered as default.
//!
//! Errors (XEP-0050 §4.6): an unknown node is `item-not-found`; a role the command does not allow is `forbidden`;
//! an unknown `action` is `bad-request` + `<malformed-action/>`, one the stage does not offer `<bad-action/>`; a
//! `sessionid` never given out, or another requester's or command's, is `bad-request` + `<bad-sessionid/>`; one
//! that ended (completed, canceled, timed out or replaced) is `not-allowed` + `<session-expired/>`, as long as the
//! server remembers it (the last [`REMEMBERED_ENDED_SESSIONS`]). A form the command cannot use is `bad-request` +
//! `<bad-payload/>` ([`bad_payload`]); the session stays as it was, so the form can be sent again corrected.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use jid::Jid;
use rookery_core::{BoxFuture, IqHandler, IqOutcome, IqRequest, Module, Registry, Server, Target};
use rookery_proto::{ErrorType, IqType, StanzaCondition, StanzaError};
use rookery_store::{Role, StoreError};
use rookery_xml::{Element, ns};

use crate::forms::{self, Form, FormKind};
use crate::support::{AsyncIq, storage_failed};

/// `http://jabber.org/protocol/commands`: the namespace, and the disco node that lists the commands.
pub const NS: &str = "http://jabber.org/protocol/commands";

/// How many ended session ids are remembered, to answer `<session-expired/>` rather than `<bad-sessionid/>`.
pub const REMEMBERED_ENDED_SESSIONS: usize = 1024;

/// One ad-hoc command.
pub trait Command: Send + Sync + 'static {
    /// The node naming the command; unique on the server.
    fn node(&self) -> &str;

    /// Its name in the command list.
    fn name(&self) -> &str;

    /// Whether an account with this role may see and run it (the server's settings may have a say).
    fn allowed(&self, server: &Server, role: Role) -> bool;

    /// Runs one stage. `Err` answers the request with that error and leaves the session as it was; use
    /// [`bad_payload`] for a submitted form that cannot be used. A command that runs but fails completes with an
    /// error note (XEP-0050 §3.4: "MUST include at least one `<note type='error'/>`").
    fn run<'a>(&'a self, ctx: CommandContext<'a>) -> BoxFuture<'a, Result<Response, StanzaError>>;
}

/// What a stage of a command sees.
pub struct CommandContext<'a> {
    pub server: &'a Arc<Server>,
    /// The requester's full JID; a local account's, since only those may run commands.
    pub requester: &'a Jid,
    pub role: Role,
    /// The forms submitted so far in this session, oldest first: empty when the command starts, one after the
    /// first form was filled in, and so on. The command tells its stage from their number.
    pub submitted: &'a [Form],
}

/// What a stage of a command answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Input is needed: this form is shown and the session waits for it. `last` says whether submitting it
    /// finishes the command (the stage offers `complete`) or leads to another form (`next`).
    Form {
        form: Form,
        notes: Vec<Note>,
        last: bool,
    },
    /// Done; the session ends.
    Completed {
        result: Option<Form>,
        notes: Vec<Note>,
    },
}

impl Response {
    /// The last form of the command.
    pub fn last_form(form: Form) -> Self {
        Self::Form {
            form,
            notes: Vec::new(),
            last: true,
        }
    }

    /// Completed with a result form.
    pub fn result(form: Form) -> Self {
        Self::Completed {
            result: Some(form),
            notes: Vec::new(),
        }
    }

    /// Completed with one note.
    pub fn note(kind: NoteKind, text: impl Into<String>) -> Self {
        Self::Completed {
            result: None,
            notes: vec![Note {
                kind,
                text: text.into(),
            }],
        }
    }
}

/// A `<note/>` shown with a stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    Info,
    Warn,
    Error,
}

impl NoteKind {
    fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// `bad-request` with `<bad-payload/>`: the submitted form cannot be used, and `why` says what to correct.
pub fn bad_payload(why: impl fmt::Display) -> StanzaError {
    command_error(StanzaCondition::BadRequest, "bad-payload", why.to_string())
}

fn command_error(
    condition: StanzaCondition,
    specific: &str,
    text: impl Into<String>,
) -> StanzaError {
    StanzaError::with_text(condition, text).with_app_condition(Element::new(specific, NS))
}

fn bad_sessionid() -> StanzaError {
    command_error(
        StanzaCondition::BadRequest,
        "bad-sessionid",
        "no such session",
    )
}

fn session_expired() -> StanzaError {
    command_error(
        StanzaCondition::NotAllowed,
        "session-expired",
        "this session has ended",
    )
}

fn bad_action(text: &str) -> StanzaError {
    command_error(StanzaCondition::BadRequest, "bad-action", text)
}

fn forbidden() -> StanzaError {
    // XEP-0050 §4.6 gives `forbidden` the type `cancel`, not RFC 6120's usual `auth`.
    StanzaError::with_text(StanzaCondition::Forbidden, "you may not run this command")
        .with_type(ErrorType::Cancel)
}

/// The commands of the server, filled by modules at start-up and read-only afterwards.
#[derive(Default)]
pub struct Commands {
    by_node: BTreeMap<String, Arc<dyn Command>>,
}

impl Commands {
    /// Adds a command. Two commands with one node is a programming error, found at start-up.
    pub fn add(&mut self, command: Arc<dyn Command>) {
        let node = command.node().to_owned();
        let earlier = self.by_node.insert(node.clone(), command);
        assert!(
            earlier.is_none(),
            "two ad-hoc commands have the node {node}"
        );
    }

    pub fn get(&self, node: &str) -> Option<&Arc<dyn Command>> {
        self.by_node.get(node)
    }

    /// Every command, by node.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Command>> {
        self.by_node.values()
    }
}

/// The role of a requester that is a local account, `None` for anyone else.
async fn requester_role(server: &Server, requester: &Jid) -> Result<Option<Role>, StoreError> {
    let Some(node) = requester.node() else {
        return Ok(None);
    };
    if requester.domain().as_str() != server.domain {
        return Ok(None);
    }
    let account = server.store.accounts().get(node.as_str()).await?;
    Ok(account.filter(|a| !a.disabled).map(|a| a.role))
}

fn commands_of(server: &Server) -> Option<&Commands> {
    server.extensions.get::<Commands>()
}

/// What the requester may do next in a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Offered {
    prev: bool,
    next: bool,
    complete: bool,
}

impl Offered {
    fn for_stage(last: bool, stage: usize) -> Self {
        Self {
            prev: stage > 0,
            next: !last,
            complete: last,
        }
    }

    /// What `execute` stands for: the `execute` attribute of the `<actions/>` we sent.
    fn default_action(self) -> Action {
        if self.next {
            Action::Next
        } else {
            Action::Complete
        }
    }

    fn allows(self, action: Action) -> bool {
        match action {
            Action::Prev => self.prev,
            Action::Next => self.next,
            Action::Complete => self.complete,
            Action::Execute | Action::Cancel => true,
        }
    }

    fn to_element(self) -> Element {
        let mut actions =
            Element::new("actions", NS).with_attr("execute", self.default_action().name());
        for (offered, name) in [
            (self.prev, "prev"),
            (self.next, "next"),
            (self.complete, "complete"),
        ] {
            if offered {
                actions.append_child(Element::new(name, NS));
            }
        }
        actions
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Execute,
    Cancel,
    Prev,
    Next,
    Complete,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "execute" => Some(Self::Execute),
            "cancel" => Some(Self::Cancel),
            "prev" => Some(Self::Prev),
            "next" => Some(Self::Next),
            "complete" => Some(Self::Complete),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Execute => "execute",
            Self::Cancel => "cancel",
            Self::Prev => "prev",
            Self::Next => "next",
            Self::Complete => "complete",
        }
    }
}

/// A command waiting for the requester's next stage.
struct CommandSession {
    /// The full JID that started it: no one else may continue it.
    requester: Jid,
    account: String,
    node: String,
    submitted: Vec<Form>,
    offered: Offered,
    touched: Instant,
}

#[derive(Default)]
struct Sessions {
    active: HashMap<String, CommandSession>,
    /// Ids of sessions that ended, oldest first, bounded by [`REMEMBERED_ENDED_SESSIONS`].
    ended: VecDeque<String>,
    ended_set: HashSet<String>,
}

impl Sessions {
    fn remember_ended(&mut self, id: String) {
        if self.ended_set.insert(id.clone()) {
            self.ended.push_back(id);
        }
        while self.ended.len() > REMEMBERED_ENDED_SESSIONS {
            if let Some(old) = self.ended.pop_front() {
                self.ended_set.remove(&old);
            }
        }
    }

    /// Ends every session unused for longer than `timeout`.
    fn expire(&mut self, timeout: std::time::Duration) {
        let expired: Vec<String> = self
            .active
            .iter()
            .filter(|(_, s)| s.touched.elapsed() > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.active.remove(&id);
            self.remember_ended(id);
        }
    }

    /// Makes room for one more session of `account`: ends its oldest while it has `limit` or more.
    fn make_room(&mut self, account: &str, limit: usize) {
        loop {
            let mine = self.active.iter().filter(|(_, s)| s.account == account);
            if mine.clone().count() < limit.max(1) {
                return;
            }
            let oldest = mine
                .min_by_key(|(_, s)| s.touched)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else { return };
            self.active.remove(&oldest);
            self.remember_ended(oldest);
        }
    }
}

/// A fresh session id: 128 random bits.
fn new_session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Lists and runs the registered commands.
#[derive(Default)]
pub struct Adhoc {
    sessions: Mutex<Sessions>,
}

impl Module for Adhoc {
    fn name(&self) -> &'static str {
        "adhoc"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.disco.add_feature(NS);
        // Created here too, so that the list exists (empty) even if no module adds a command.
        registry.extensions.get_or_default::<Commands>();
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            ns::DISCO_ITEMS,
            "query",
            0,
            Arc::new(AsyncIq(|req| Box::pin(disco_items(req)))),
        );
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            ns::DISCO_INFO,
            "query",
            0,
            Arc::new(AsyncIq(|req| Box::pin(disco_info(req)))),
        );
        registry
            .hooks
            .on_iq(IqType::Set, Target::Host, NS, "command", 0, self);
    }
}

fn requested_node<'a>(req: &'a IqRequest<'_>) -> Option<&'a str> {
    req.payload().and_then(|q| q.attr("node"))
}

/// disco#items of the commands node: the commands the requester may run.
async fn disco_items(req: IqRequest<'_>) -> IqOutcome {
    if requested_node(&req) != Some(NS) {
        return IqOutcome::Pass;
    }
    let role = match requester_role(req.server, req.from).await {
        Ok(role) => role,
        Err(error) => return storage_failed("looking up a role", &error),
    };
    let mut query = Element::new("query", ns::DISCO_ITEMS).with_attr("node", NS);
    if let (Some(role), Some(commands)) = (role, commands_of(req.server)) {
        for command in commands.iter().filter(|c| c.allowed(req.server, role)) {
            query.append_child(
                Element::new("item", ns::DISCO_ITEMS)
                    .with_attr("jid", req.server.domain.as_str())
                    .with_attr("node", command.node())
                    .with_attr("name", command.name()),
            );
        }
    }
    IqOutcome::Result(Some(query))
}

/// disco#info of the commands node, and of each command node (XEP-0050 §2.2).
async fn disco_info(req: IqRequest<'_>) -> IqOutcome {
    let Some(node) = requested_node(&req) else {
        return IqOutcome::Pass;
    };
    let identity = |kind: &str, name: &str| {
        Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", "automation")
            .with_attr("type", kind)
            .with_attr("name", name)
    };
    let feature = |var: &str| Element::new("feature", ns::DISCO_INFO).with_attr("var", var);
    if node == NS {
        return IqOutcome::Result(Some(
            Element::new("query", ns::DISCO_INFO)
                .with_attr("node", NS)
                .with_child(identity("command-list", "Ad-Hoc Commands")),
        ));
    }
    let Some(command) = commands_of(req.server).and_then(|c| c.get(node)) else {
        return IqOutcome::Pass;
    };
    match requester_role(req.server, req.from).await {
        Ok(Some(role)) if command.allowed(req.server, role) => IqOutcome::Result(Some(
            Element::new("query", ns::DISCO_INFO)
                .with_attr("node", node)
                .with_child(identity("command-node", command.name()))
                .with_child(feature(NS))
                .with_child(feature(forms::NS)),
        )),
        Ok(_) => IqOutcome::Error(forbidden()),
        Err(error) => storage_failed("looking up a role", &error),
    }
}

/// The `<command/>` of a reply.
fn command_reply(
    node: &str,
    sessionid: &str,
    status: &str,
    offered: Option<Offered>,
    notes: &[Note],
    form: Option<&Form>,
) -> Element {
    let mut command = Element::new("command", NS)
        .with_attr("node", node)
        .with_attr("sessionid", sessionid)
        .with_attr("status", status);
    if let Some(offered) = offered {
        command.append_child(offered.to_element());
    }
    for note in notes {
        command.append_child(
            Element::new("note", NS)
                .with_attr("type", note.kind.name())
                .with_text(note.text.as_str()),
        );
    }
    if let Some(form) = form {
        command.append_child(form.to_element());
    }
    command
}

impl Adhoc {
    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn handle_command(&self, req: IqRequest<'_>) -> Result<Element, StanzaError> {
        let server = req.server;
        let payload = req
            .payload()
            .ok_or_else(|| StanzaError::new(StanzaCondition::BadRequest))?;
        let node = payload.attr("node").ok_or_else(|| {
            StanzaError::with_text(StanzaCondition::BadRequest, "a command needs a node")
        })?;
        let action = match payload.attr("action") {
            None => Action::Execute,
            Some(name) => Action::parse(name).ok_or_else(|| {
                command_error(
                    StanzaCondition::BadRequest,
                    "malformed-action",
                    format!("there is no action {name:?}"),
                )
            })?,
        };
        let command = commands_of(server)
            .and_then(|c| c.get(node))
            .ok_or_else(|| {
                StanzaError::with_text(StanzaCondition::ItemNotFound, "no such command")
            })?;
        let role = match requester_role(server, req.from).await {
            Ok(Some(role)) => role,
            Ok(None) => return Err(forbidden()),
            Err(error) => {
                tracing::warn!(%error, "looking up a role failed");
                return Err(StanzaError::new(StanzaCondition::InternalServerError)
                    .with_type(ErrorType::Wait));
            }
        };
        if !command.allowed(server, role) {
            return Err(forbidden());
        }
        // XEP-0050 §4.4: a form of type 'cancel' is taken as submitted, like any other.
        let form = payload
            .get_child("x", forms::NS)
            .map(Form::parse)
            .transpose()
            .map_err(bad_payload)?;
        let ctx = Stage {
            server,
            requester: req.from,
            role,
            command: command.as_ref(),
            account: req.from.node().map_or("", |n| n.as_str()),
        };
        match payload.attr("sessionid") {
            None => self.start(&ctx, action).await,
            Some(id) => self.resume(&ctx, id, action, form).await,
        }
    }

    async fn start(&self, ctx: &Stage<'_>, action: Action) -> Result<Element, StanzaError> {
        match action {
            Action::Execute => {}
            Action::Cancel => return Err(bad_sessionid()),
            _ => return Err(bad_action("a command starts with 'execute'")),
        }
        let response = ctx.run(&[]).await?;
        let id = new_session_id();
        let mut sessions = self.sessions();
        match response {
            Response::Completed { result, notes } => {
                sessions.remember_ended(id.clone());
                Ok(command_reply(
                    ctx.command.node(),
                    &id,
                    "completed",
                    None,
                    &notes,
                    result.as_ref(),
                ))
            }
            Response::Form { form, notes, last } => {
                let limits = &ctx.server.config.limits;
                sessions.expire(limits.adhoc_session_timeout);
                sessions.make_room(ctx.account, limits.adhoc_sessions_per_account);
                let offered = Offered::for_stage(last, 0);
                sessions.active.insert(
                    id.clone(),
                    CommandSession {
                        requester: ctx.requester.clone(),
                        account: ctx.account.to_owned(),
                        node: ctx.command.node().to_owned(),
                        submitted: Vec::new(),
                        offered,
                        touched: Instant::now(),
                    },
                );
                Ok(command_reply(
                    ctx.command.node(),
                    &id,
                    "executing",
                    Some(offered),
                    &notes,
                    Some(&form),
                ))
            }
        }
    }

    /// Takes the session out while its stage runs (the lock is never held across the command), and puts it back
    /// if it goes on.
    fn take_session(&self, ctx: &Stage<'_>, id: &str) -> Result<CommandSession, StanzaError> {
        let mut sessions = self.sessions();
        let Some(session) = sessions.active.get(id) else {
            return Err(if sessions.ended_set.contains(id) {
                session_expired()
            } else {
                bad_sessionid()
            });
        };
        // Someone else's session, or another command's: as if it did not exist.
        if session.requester != *ctx.requester || session.node != ctx.command.node() {
            return Err(bad_sessionid());
        }
        let expired = session.touched.elapsed() > ctx.server.config.limits.adhoc_session_timeout;
        let session = sessions.active.remove(id).expect("found above");
        if expired {
            sessions.remember_ended(id.to_owned());
            return Err(session_expired());
        }
        Ok(session)
    }

    async fn resume(
        &self,
        ctx: &Stage<'_>,
        id: &str,
        action: Action,
        form: Option<Form>,
    ) -> Result<Element, StanzaError> {
        let mut session = self.take_session(ctx, id)?;
        let put_back = |mut session: CommandSession| {
            session.touched = Instant::now();
            self.sessions().active.insert(id.to_owned(), session);
        };
        let submitted = match next_step(session.offered, &session.submitted, action, form) {
            Ok(Step::Run(submitted)) => submitted,
            Ok(Step::Cancel) => {
                self.sessions().remember_ended(id.to_owned());
                return Ok(command_reply(
                    ctx.command.node(),
                    id,
                    "canceled",
                    None,
                    &[],
                    None,
                ));
            }
            Err(error) => {
                put_back(session);
                return Err(error);
            }
        };
        let response = match ctx.run(&submitted).await {
            Ok(response) => response,
            Err(error) => {
                put_back(session);
                return Err(error);
            }
        };
        match response {
            Response::Completed { result, notes } => {
                self.sessions().remember_ended(id.to_owned());
                Ok(command_reply(
                    ctx.command.node(),
                    id,
                    "completed",
                    None,
                    &notes,
                    result.as_ref(),
                ))
            }
            Response::Form { form, notes, last } => {
                let offered = Offered::for_stage(last, submitted.len());
                session.submitted = submitted;
                session.offered = offered;
                put_back(session);
                Ok(command_reply(
                    ctx.command.node(),
                    id,
                    "executing",
                    Some(offered),
                    &notes,
                    Some(&form),
                ))
            }
        }
    }
}

/// What a request in a session asks for.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Cancel,
    /// Run the command with these forms submitted.
    Run(Vec<Form>),
}

/// Where `action` takes a session that offered `offered` and has these forms submitted: `prev` forgets the last
/// form, `next` and `complete` add the one just sent (an empty one if none was), `execute` is the default offered.
fn next_step(
    offered: Offered,
    submitted: &[Form],
    action: Action,
    form: Option<Form>,
) -> Result<Step, StanzaError> {
    let action = match action {
        Action::Execute => offered.default_action(),
        other => other,
    };
    if !offered.allows(action) {
        return Err(bad_action(&format!(
            "this stage offers {}",
            offered_names(offered)
        )));
    }
    let mut forms = submitted.to_vec();
    match action {
        Action::Cancel => return Ok(Step::Cancel),
        Action::Prev => {
            forms.pop();
        }
        Action::Next | Action::Complete | Action::Execute => {
            forms.push(form.unwrap_or_else(|| Form::new(FormKind::Submit)));
        }
    }
    Ok(Step::Run(forms))
}

fn offered_names(offered: Offered) -> String {
    let mut names = vec!["cancel"];
    for (yes, name) in [
        (offered.prev, "prev"),
        (offered.next, "next"),
        (offered.complete, "complete"),
    ] {
        if yes {
            names.push(name);
        }
    }
    names.join(", ")
}

/// One request's command, requester and role.
struct Stage<'a> {
    server: &'a Arc<Server>,
    requester: &'a Jid,
    role: Role,
    command: &'a dyn Command,
    account: &'a str,
}

impl Stage<'_> {
    async fn run(&self, submitted: &[Form]) -> Result<Response, StanzaError> {
        self.command
            .run(CommandContext {
                server: self.server,
                requester: self.requester,
                role: self.role,
                submitted,
            })
            .await
    }
}

impl IqHandler for Adhoc {
    fn handle<'a>(&'a self, request: IqRequest<'a>) -> BoxFuture<'a, IqOutcome> {
        Box::pin(async move {
            match self.handle_command(request).await {
                Ok(command) => IqOutcome::Result(Some(command)),
                Err(error) => IqOutcome::Error(error),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::{Field, FieldKind};

    fn answer(n: &str) -> Form {
        Form::new(FormKind::Submit).with_field(Field::new("n", FieldKind::TextSingle).with_value(n))
    }

    fn error_app_condition(result: Result<Step, StanzaError>) -> String {
        result
            .unwrap_err()
            .app_condition
            .map(|c| c.name().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn actions_move_between_stages() {
        let middle = Offered::for_stage(false, 1);
        assert_eq!(
            middle,
            Offered {
                prev: true,
                next: true,
                complete: false
            }
        );
        let one = [answer("1")];
        // execute is next here; the form sent is added.
        assert_eq!(
            next_step(middle, &one, Action::Execute, Some(answer("2"))),
            Ok(Step::Run(vec![answer("1"), answer("2")]))
        );
        // prev forgets the last form.
        assert_eq!(
            next_step(middle, &one, Action::Prev, None),
            Ok(Step::Run(vec![]))
        );
        // complete is not offered before the last stage.
        assert_eq!(
            error_app_condition(next_step(middle, &one, Action::Complete, None)),
            "bad-action"
        );
        assert_eq!(
            next_step(middle, &one, Action::Cancel, None),
            Ok(Step::Cancel)
        );

        let last_first = Offered::for_stage(true, 0);
        // execute is complete; with no form sent, an empty one stands in.
        assert_eq!(
            next_step(last_first, &[], Action::Execute, None),
            Ok(Step::Run(vec![Form::new(FormKind::Submit)]))
        );
        for action in [Action::Prev, Action::Next] {
            assert_eq!(
                error_app_condition(next_step(last_first, &[], action, None)),
                "bad-action"
            );
        }
    }

    #[test]
    fn the_actions_element_names_the_default() {
        let el = Offered::for_stage(true, 2).to_element();
        assert_eq!(el.attr("execute"), Some("complete"));
        let names: Vec<&str> = el.children().map(Element::name).collect();
        assert_eq!(names, ["prev", "complete"]);
        let el = Offered::for_stage(false, 0).to_element();
        assert_eq!(el.attr("execute"), Some("next"));
        let names: Vec<&str> = el.children().map(Element::name).collect();
        assert_eq!(names, ["next"]);
    }

    fn session(account: &str) -> CommandSession {
        CommandSession {
            requester: Jid::new(&format!("{account}@example.com/r")).unwrap(),
            account: account.to_owned(),
            node: "n".to_owned(),
            submitted: Vec::new(),
            offered: Offered::default(),
            touched: Instant::now(),
        }
    }

    #[test]
    fn room_is_made_per_account_and_ended_ids_are_bounded() {
        let mut sessions = Sessions::default();
        sessions.active.insert("a1".into(), session("alice"));
        sessions.active.insert("a2".into(), session("alice"));
        sessions.active.insert("b1".into(), session("bob"));
        sessions.make_room("alice", 2);
        assert!(!sessions.active.contains_key("a1"), "the oldest goes");
        assert!(sessions.active.contains_key("a2") && sessions.active.contains_key("b1"));
        assert!(sessions.ended_set.contains("a1"));
        sessions.make_room("bob", 2);
        assert!(sessions.active.contains_key("b1"), "bob had room");

        for i in 0..REMEMBERED_ENDED_SESSIONS + 10 {
            sessions.remember_ended(format!("x{i}"));
        }
        assert_eq!(sessions.ended.len(), REMEMBERED_ENDED_SESSIONS);
        assert_eq!(sessions.ended_set.len(), REMEMBERED_ENDED_SESSIONS);
        assert!(!sessions.ended_set.contains("x0"));
        assert!(
            sessions
                .ended_set
                .contains(&format!("x{}", REMEMBERED_ENDED_SESSIONS + 9))
        );

        sessions.expire(std::time::Duration::ZERO);
        assert!(sessions.active.is_empty());
    }
}
