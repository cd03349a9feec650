//! Modules plug into the router through hooks with priorities; the router itself never changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jid::BareJid;
use rookery_config::Config;
use rookery_core::{
    BoxFuture, Handled, IqOutcome, IqRequest, Module, Registry, Server, StanzaEvent, StanzaHandler,
    StanzaHook, SyncIq, Target,
};
use rookery_proto::{IqType, StanzaCondition, StanzaError, StanzaKind};
use rookery_store::Store;
use rookery_xml::{Element, ns};

const TEST_NS: &str = "urn:example:test";

/// Two IQ handlers for one payload (the higher priority passes, the lower answers), and a message filter.
struct TestModule {
    filtered: AtomicUsize,
}

struct DropSecrets(Arc<TestModule>);

impl StanzaHandler for DropSecrets {
    fn handle<'a>(
        &'a self,
        _server: &'a Arc<Server>,
        event: &'a mut StanzaEvent,
    ) -> BoxFuture<'a, Handled> {
        Box::pin(async move {
            let body = event
                .stanza
                .get_child("body", ns::CLIENT)
                .map(Element::text);
            if body.as_deref() == Some("secret") {
                self.0.filtered.fetch_add(1, Ordering::Relaxed);
                return Handled::Yes;
            }
            Handled::Pass
        })
    }
}

impl Module for TestModule {
    fn name(&self) -> &'static str {
        "test"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        let first = |req: &IqRequest<'_>| {
            if req.payload().and_then(|p| p.attr("answer")) == Some("high") {
                IqOutcome::Result(Some(Element::new("answer", TEST_NS).with_text("high")))
            } else {
                IqOutcome::Pass
            }
        };
        let second =
            |_: &IqRequest<'_>| IqOutcome::Error(StanzaError::new(StanzaCondition::NotAllowed));
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            TEST_NS,
            "query",
            10,
            Arc::new(SyncIq(first)),
        );
        registry.hooks.on_iq(
            IqType::Get,
            Target::Host,
            TEST_NS,
            "query",
            -10,
            Arc::new(SyncIq(second)),
        );
        registry.hooks.on_stanza(
            StanzaHook::Pre(StanzaKind::Message),
            0,
            Arc::new(DropSecrets(Arc::clone(&self))),
        );
        registry.disco.add_feature(TEST_NS);
    }
}

async fn server(module: Arc<TestModule>) -> Arc<Server> {
    let vars: HashMap<String, String> = [
        ("SNIKKET_DOMAIN", "example.com"),
        ("SNIKKET_ADMIN_EMAIL", "a@example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Config::from_map(&vars).unwrap().config;
    let store = Store::open_in_memory().await.unwrap();
    Server::new(Arc::new(config), store, vec![module])
}

fn query(id: &str, answer: &str) -> Element {
    Element::new("iq", ns::CLIENT)
        .with_attr("type", "get")
        .with_attr("id", id)
        .with_attr("to", "example.com")
        .with_child(Element::new("query", TEST_NS).with_attr("answer", answer))
}

#[tokio::test]
async fn iq_handlers_run_by_priority_until_one_answers() {
    let server = server(Arc::new(TestModule {
        filtered: AtomicUsize::new(0),
    }))
    .await;
    assert!(server.disco.features.contains(TEST_NS));
    let (alice, mut queue) = server
        .sessions
        .bind(&BareJid::new("alice@example.com").unwrap(), Some("r"), 10)
        .unwrap();

    server
        .handle_from_client(&alice, query("1", "high"))
        .await
        .unwrap();
    let reply = queue.recv().await.unwrap().stanza;
    assert_eq!(reply.attr("type"), Some("result"));
    assert_eq!(reply.attr("to"), Some("alice@example.com/r"));
    assert_eq!(reply.get_child("answer", TEST_NS).unwrap().text(), "high");

    server
        .handle_from_client(&alice, query("2", "low"))
        .await
        .unwrap();
    let reply = queue.recv().await.unwrap().stanza;
    assert_eq!(reply.attr("type"), Some("error"));
    assert!(
        reply
            .get_child("error", ns::CLIENT)
            .unwrap()
            .has_child("not-allowed", ns::STANZA_ERRORS)
    );
}

#[tokio::test]
async fn a_pre_hook_can_take_a_stanza() {
    let module = Arc::new(TestModule {
        filtered: AtomicUsize::new(0),
    });
    let server = server(Arc::clone(&module)).await;
    let (alice, _alice_queue) = server
        .sessions
        .bind(&BareJid::new("alice@example.com").unwrap(), Some("r"), 10)
        .unwrap();
    let (_bob, mut bob_queue) = server
        .sessions
        .bind(&BareJid::new("bob@example.com").unwrap(), Some("r"), 10)
        .unwrap();
    let msg = |body: &str| {
        Element::new("message", ns::CLIENT)
            .with_attr("to", "bob@example.com/r")
            .with_child(Element::new("body", ns::CLIENT).with_text(body))
    };
    server
        .handle_from_client(&alice, msg("secret"))
        .await
        .unwrap();
    server
        .handle_from_client(&alice, msg("hello"))
        .await
        .unwrap();
    let got = bob_queue.recv().await.unwrap().stanza;
    assert_eq!(got.get_child("body", ns::CLIENT).unwrap().text(), "hello");
    assert_eq!(got.attr("from"), Some("alice@example.com/r"));
    assert_eq!(module.filtered.load(Ordering::Relaxed), 1);
    assert!(bob_queue.try_recv().is_err());
}
