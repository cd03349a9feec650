//! The IQ delivery hook (`Deliver(Iq, Bare|Full)`, Prosody's `iq/bare` and `iq/full`): it sees IQs to another
//! account or one of its clients before the IQ handlers and the delivery, whatever their payload; and an IQ handler
//! that answered by itself (`IqOutcome::Answered`) gets no second reply.

use std::collections::HashMap;
use std::sync::Arc;

use jid::BareJid;
use rookery_config::Config;
use rookery_core::{
    BoxFuture, Handled, IqOutcome, IqRequest, Module, Origin, Registry, Server, StanzaEvent,
    StanzaHandler, StanzaHook, SyncIq, Target,
};
use rookery_proto::{IqType, StanzaKind};
use rookery_xml::{Element, ns};

const TEST_NS: &str = "urn:example:test";

struct TestModule;

/// Takes every IQ whose payload says `take='yes'`, as blocking takes those from a blocked JID.
struct TakeMarked;

impl StanzaHandler for TakeMarked {
    fn handle<'a>(
        &'a self,
        _server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            assert_eq!(event.kind, StanzaKind::Iq);
            let take = event.stanza.first_child().and_then(|p| p.attr("take")) == Some("yes");
            if take { Handled::Yes } else { Handled::Pass }
        })
    }
}

impl Module for TestModule {
    fn name(&self) -> &'static str {
        "test"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        for target in [Target::Bare, Target::Full] {
            registry.hooks.on_stanza(
                StanzaHook::Deliver(StanzaKind::Iq, target),
                0,
                Arc::new(TakeMarked),
            );
        }
        registry.hooks.on_iq(
            IqType::Get,
            Target::Bare,
            TEST_NS,
            "query",
            0,
            Arc::new(SyncIq(|_: &IqRequest<'_>| IqOutcome::Result(None))),
        );
        // Answers by itself, then says so.
        struct AnswerFirst;
        impl rookery_core::IqHandler for AnswerFirst {
            fn handle<'a>(&'a self, request: IqRequest<'a>) -> BoxFuture<'a, IqOutcome> {
                Box::pin(async move {
                    let reply = rookery_proto::stanza::iq_result(request.stanza);
                    request.server.send_local(reply, request.origin).await;
                    let note = Element::new("message", ns::CLIENT)
                        .with_attr("to", request.from.as_str())
                        .with_attr("id", "after");
                    request.server.send_local(note, &Origin::Local).await;
                    IqOutcome::Answered
                })
            }
        }
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            TEST_NS,
            "query",
            0,
            Arc::new(AnswerFirst),
        );
    }
}

async fn server() -> Arc<Server> {
    let vars: HashMap<String, String> = [
        ("SNIKKET_DOMAIN", "example.com"),
        ("SNIKKET_ADMIN_EMAIL", "a@example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::from_map(&vars).unwrap().config;
    let store = rookery_store::Store::open_in_memory().await.unwrap();
    Server::new(Arc::new(config), store, vec![Arc::new(TestModule)])
}

fn query(id: &str, to: &str, take: bool) -> Element {
    let mut payload = Element::new("query", TEST_NS);
    if take {
        payload.set_attr("take", "yes");
    }
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", id)
        .with_attr("to", to)
        .with_child(payload)
}

#[tokio::test]
async fn the_hook_sees_iqs_to_accounts_and_their_clients() {
    let server = server().await;
    let (alice, mut alice_queue) = server
        .sessions
        .bind(&BareJid::new("alice@example.com").unwrap(), Some("r"), 10)
        .unwrap();
    let (_bob, mut bob_queue) = server
        .sessions
        .bind(&BareJid::new("bob@example.com").unwrap(), Some("r"), 10)
        .unwrap();

    // To a full JID: delivered unless the hook takes it.
    for (id, take) in [("1", true), ("2", false)] {
        server
            .handle_from_client(&alice, query(id, "bob@example.com/r", take))
            .await
            .unwrap();
    }
    assert_eq!(bob_queue.recv().await.unwrap().stanza.attr("id"), Some("2"));
    assert!(bob_queue.try_recv().is_err());

    // To a bare JID: answered by the IQ handler unless the hook takes it.
    for (id, take) in [("3", true), ("4", false)] {
        server
            .handle_from_client(&alice, query(id, "bob@example.com", take))
            .await
            .unwrap();
    }
    let reply = alice_queue.recv().await.unwrap().stanza;
    assert_eq!(
        (reply.attr("id"), reply.attr("type")),
        (Some("4"), Some("result"))
    );
    assert!(alice_queue.try_recv().is_err());
}

#[tokio::test]
async fn a_handler_that_answered_gets_no_second_reply() {
    let server = server().await;
    let (alice, mut queue) = server
        .sessions
        .bind(&BareJid::new("alice@example.com").unwrap(), Some("r"), 10)
        .unwrap();
    server
        .handle_from_client(&alice, query("q", "example.com", false))
        .await
        .unwrap();
    let reply = queue.recv().await.unwrap().stanza;
    assert_eq!(
        (reply.attr("id"), reply.attr("type")),
        (Some("q"), Some("result"))
    );
    let after = queue.recv().await.unwrap().stanza;
    assert_eq!(after.attr("id"), Some("after"));
    assert!(queue.try_recv().is_err());
}
