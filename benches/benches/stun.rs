//! What the TURN relay spends per datagram in the codec: telling the packet's kind, decoding it and checking it.
//! The relay's budget is 2 µs of CPU per relayed datagram (issue 6), socket calls included, so the codec's share
//! should stay a small fraction of that.
//!
//! - A Send indication (XOR-PEER-ADDRESS, DATA, FINGERPRINT) as clients without channels relay with: decode, which
//!   checks the FINGERPRINT.
//! - The same carrying MESSAGE-INTEGRITY, as every authenticated request does: decode and check the HMAC-SHA1 with
//!   the long-term key.
//! - A ChannelData frame, the common case once a channel is bound: classify and decode (no copy).
//!
//! Payloads of 160 bytes (an audio frame) and 1200 bytes (a video packet).
//!
//! Run with `cargo bench -p rookery-benches --bench stun`.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use rookery_stun::credentials::long_term_key;
use rookery_stun::integrity::{
    append_fingerprint, append_message_integrity, verify_message_integrity,
};
use rookery_stun::{
    Attribute, ChannelData, Class, Message, Method, PacketKind, TransactionId, classify,
};

fn send_indication(payload: usize) -> Message {
    let peer: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    Message::new(Method::SEND, Class::Indication, TransactionId([9; 12]))
        .with(Attribute::XorPeerAddress(peer))
        .with(Attribute::Data(vec![0x5a; payload]))
}

fn bench(c: &mut Criterion) {
    let key = long_term_key("1735689600:alice", "example.org", "c2VjcmV0IHBhc3N3b3Jk").unwrap();
    for payload in [160, 1200] {
        let mut plain = send_indication(payload).encode().unwrap();
        append_fingerprint(&mut plain).unwrap();
        c.bench_function(&format!("send_indication_{payload}/decode"), |b| {
            b.iter(|| {
                assert_eq!(classify(black_box(&plain)), PacketKind::Stun);
                black_box(Message::decode(black_box(&plain)).unwrap())
            })
        });

        let mut signed = send_indication(payload).encode().unwrap();
        append_message_integrity(&mut signed, &key).unwrap();
        append_fingerprint(&mut signed).unwrap();
        c.bench_function(
            &format!("send_indication_{payload}/decode_and_integrity"),
            |b| {
                b.iter(|| {
                    let message = Message::decode(black_box(&signed)).unwrap();
                    verify_message_integrity(black_box(&signed), &key).unwrap();
                    black_box(message)
                })
            },
        );

        let mut frame = Vec::new();
        ChannelData {
            channel: 0x4001,
            data: &vec![0x5a; payload],
        }
        .encode(false, &mut frame)
        .unwrap();
        c.bench_function(&format!("channel_data_{payload}/decode"), |b| {
            b.iter(|| {
                assert_eq!(classify(black_box(&frame)), PacketKind::ChannelData);
                black_box(ChannelData::decode(black_box(&frame)).unwrap())
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
