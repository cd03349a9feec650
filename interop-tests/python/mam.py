#!/usr/bin/env python3
"""Message archive (XEP-0313) with slixmpp's own xep_0313 plugin against Rookery.

alice's phone and her contacts exchange messages; then alice's tablet, a second device that saw none of them,
checks that her account advertises urn:xmpp:mam:2, pages through the whole history forwards and backwards five
messages at a time (slixmpp's RSM iteration), and filters it by contact. Prints one line per step and exits 0 only
if every step worked.
"""
import argparse
import asyncio
import logging
import sys
from pathlib import Path

import slixmpp

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--ca", required=True)
p.add_argument("--domain", required=True)
p.add_argument("--password", required=True, help="every account's password")
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid):
        super().__init__(jid, args.password)
        for plugin in ("xep_0030", "xep_0059", "xep_0199", "xep_0313", "xep_0359"):
            self.register_plugin(plugin)
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda _: self.started.done() or self.started.set_exception(RuntimeError("auth")))

    def on_start(self, _event):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(None)


async def login(user, resource):
    c = Client(f"{user}@{args.domain}/{resource}")
    c.connect(args.host, args.port)
    await asyncio.wait_for(c.started, TIMEOUT)
    return c


def body_of(result):
    return result["mam_result"]["forwarded"]["stanza"]["body"]


async def main():
    alice = await login("alice", "phone")
    bob = await login("bob", "laptop")
    carol = await login("carol", "laptop")
    me = f"alice@{args.domain}"
    sent = []
    # Interleaved so that paging crosses conversations: alice to bob, bob to alice, carol to alice.
    for i in range(12):
        alice.send_message(mto=f"bob@{args.domain}", mbody=f"a{i}", mtype="chat")
        sent.append(f"a{i}")
        if i % 4 == 1:
            bob.send_message(mto=me, mbody=f"b{i}", mtype="chat")
            sent.append(f"b{i}")
        if i % 6 == 2:
            carol.send_message(mto=me, mbody=f"c{i}", mtype="chat")
            sent.append(f"c{i}")
        # Each round is routed before the next (a ping round trip per sender), so the archive's order is `sent`.
        for client in (alice, bob, carol):
            await client.plugin["xep_0199"].ping(jid=args.domain, timeout=TIMEOUT)
    print("SENT", len(sent))

    tablet = await login("alice", "tablet")
    info = await tablet.plugin["xep_0030"].get_info(jid=me, timeout=TIMEOUT)
    features = set(info["disco_info"]["features"])
    for needed in ("urn:xmpp:mam:2", "urn:xmpp:sid:0"):
        if needed not in features:
            fail(f"{needed} not on the account: {sorted(features)}")
    print("DISCO_OK")

    mam = tablet.plugin["xep_0313"]
    forwards = [body_of(m) async for m in mam.iterate(rsm={"max": 5})]
    if forwards != sent:
        fail(f"forwards: {forwards} != {sent}")
    print("FORWARDS_OK", len(forwards))

    backwards = [body_of(m) async for m in mam.iterate(reverse=True, rsm={"max": 5})]
    if backwards != list(reversed(sent)):
        fail(f"backwards: {backwards} != {list(reversed(sent))}")
    print("BACKWARDS_OK", len(backwards))

    with_carol = await mam.retrieve(with_jid=slixmpp.JID(f"carol@{args.domain}"), timeout=TIMEOUT)
    bodies = [body_of(m) for m in with_carol["mam"]["results"]]
    expected = [b for b in sent if b.startswith("c")]
    if bodies != expected:
        fail(f"with carol: {bodies} != {expected}")
    if with_carol["mam_fin"]["complete"] not in (True, "true"):
        fail(f"with carol: not complete: {with_carol}")
    print("WITH_OK", len(bodies))

    for c in (alice, bob, carol, tablet):
        c.disconnect()
    print("PASS")


asyncio.run(main())
