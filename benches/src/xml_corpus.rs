//! The XMPP-like client stream every parser is measured on (the `xml_parse` bench, and Prosody's parser through
//! `benches/xml/prosody_parse.lua`).

use std::fmt::Write as _;

/// A client stream of `rounds` rounds: a chat message (body with escapes, chat state, origin-id, receipt request),
/// a presence with caps, a PEP avatar-metadata publish, and a stream-management request/ack pair. 25 000 rounds
/// make 26 MB with 125 000 top-level and 450 000 start elements.
pub fn corpus(rounds: usize) -> String {
    let mut doc = String::with_capacity(rounds * 270 + 300);
    doc.push_str(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
         to='example.org' from='user0@example.org' version='1.0' xml:lang='en'>",
    );
    // A fixed LCG gives ids that vary like real ones without depending on a random source.
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next_id = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed
    };
    for round in 0..rounds {
        let user = round % 1000;
        let peer = (round * 7 + 3) % 1000;
        let _ = write!(
            doc,
            "<message to='user{peer}@example.org/res' from='user{user}@example.org/phone' type='chat' \
             id='msg-{round:08x}' xml:lang='en'><body>Hello &amp; welcome, this is message number {round} with \
             some &lt;text&gt; in it.</body><active xmlns='http://jabber.org/protocol/chatstates'/>\
             <origin-id xmlns='urn:xmpp:sid:0' id='{:016x}'/><request xmlns='urn:xmpp:receipts'/></message>",
            next_id()
        );
        let _ = write!(
            doc,
            "<presence from='user{user}@example.org/laptop' id='p{round}'><show>away</show>\
             <status>In a meeting until 15:00</status><priority>5</priority>\
             <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' \
             ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>"
        );
        let _ = write!(
            doc,
            "<iq type='set' id='iq{round}' to='example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <publish node='urn:xmpp:avatar:metadata'><item id='{:016x}{:016x}{:08x}'>\
             <metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='12345' id='abc' height='64' width='64' \
             type='image/png'/></metadata></item></publish></pubsub></iq>",
            next_id(),
            next_id(),
            next_id() >> 32
        );
        let _ = write!(
            doc,
            "<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='{round}'/>"
        );
    }
    doc.push_str("</stream:stream>");
    doc
}
