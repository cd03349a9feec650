//! What carbons (XEP-0280) and client state indication (XEP-0352) add per message: deciding whether a message is
//! copied, building the copy, and offering a stanza to a connection's CSI queue while the client is active (every
//! stanza's path) and inactive.
//!
//! The cost carbons add to the W1 hot path while nobody has enabled them (one atomic load and a scan of the
//! message's children per hook) is measured end to end by W1 (docs/benchmarks.md).
//!
//! Run with `cargo bench -p rookery-benches --bench carbons_csi`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jid::{BareJid, Jid};
use rookery_modules::carbons::{Direction, verdict, wrap};
use rookery_net::csi::{CsiQueue, NS_CSI, is_important};
use rookery_xml::{Element, ns};

const ACCOUNT: &str = "alice@example.com";

/// A chat message as W1 sends it, with what a phone adds: a chat state, a receipt request and an origin-id.
fn chat() -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("from", "bob@example.com/phone")
        .with_attr("to", "alice@example.com/laptop")
        .with_attr("type", "chat")
        .with_attr("id", "8c5d0b2e-5a4c-4b55-9d43-0c3e3b1f7a10")
        .with_child(Element::new("body", ns::CLIENT).with_text("x".repeat(100)))
        .with_child(Element::new(
            "active",
            "http://jabber.org/protocol/chatstates",
        ))
        .with_child(Element::new("request", "urn:xmpp:receipts"))
        .with_child(Element::new("origin-id", "urn:xmpp:sid:0").with_attr("id", "8c5d0b2e"))
}

fn presence() -> Element {
    Element::new("presence", ns::CLIENT)
        .with_attr("from", "bob@example.com/phone")
        .with_child(
            Element::new("c", "http://jabber.org/protocol/caps")
                .with_attr("hash", "sha-1")
                .with_attr("node", "https://snikket.org")
                .with_attr("ver", "q07IKJEyjvHSyhy//CH0CxmKi8w="),
        )
}

fn bench(c: &mut Criterion) {
    let message = chat();
    let to = Jid::new("alice@example.com/laptop").unwrap();
    c.bench_function("carbons: verdict on a chat message", |b| {
        b.iter(|| verdict(black_box(&message), Direction::Received, ACCOUNT, &to));
    });
    c.bench_function("carbons: build the copy", |b| {
        b.iter(|| wrap(black_box(&message), Direction::Received, ACCOUNT));
    });
    c.bench_function("csi: classify a chat message", |b| {
        b.iter(|| is_important(black_box(&message), ACCOUNT));
    });

    let account = BareJid::new(ACCOUNT).unwrap();
    c.bench_function("csi: offer while active", |b| {
        let mut queue = CsiQueue::new(1 << 20);
        b.iter_batched(
            presence,
            |stanza| queue.offer(stanza, false, |s| drop(black_box(s))),
            criterion::BatchSize::SmallInput,
        );
    });
    c.bench_function("csi: hold a presence while inactive", |b| {
        let mut queue = CsiQueue::new(usize::MAX);
        queue.state_change(&Element::new("inactive", NS_CSI), &account, drop);
        let mut offered = 0;
        b.iter_batched(
            presence,
            |stanza| {
                queue.offer(stanza, false, |s| drop(black_box(s)));
                offered += 1;
                // Keep below the hold limit so that every offer is a hold, not a flush.
                if offered % 200 == 0 {
                    queue.take_held();
                }
            },
            criterion::BatchSize::SmallInput,
        );
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
