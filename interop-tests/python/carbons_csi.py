#!/usr/bin/env python3
"""Message carbons (XEP-0280) and client state indication (XEP-0352) with slixmpp's own plugins against Rookery.

Carbons: alice is online twice (phone and laptop), both with carbons enabled through xep_0280. What the phone sends
to bob reaches the laptop as a sent carbon, what bob sends to the phone reaches it as a received carbon.

CSI: bob's client finds the csi stream feature and says it is inactive through xep_0352; alice's directed presence
to him is held back (nothing arrives while alice's ping proves it was routed, and a little longer), and comes out
just before alice's next message with a body, in that order.

Prints one line per step and exits 0 only if every step worked.
"""
import argparse
import asyncio
import logging
import sys
import uuid
from pathlib import Path

import slixmpp

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--ca", required=True)
p.add_argument("--alice", required=True, help="alice's bare JID")
p.add_argument("--bob", required=True, help="bob's bare JID")
p.add_argument("--password", required=True, help="both accounts' password")
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30
# How long a held presence must stay away: if it were not held it would be there long before.
HOLD_CHECK = 0.5


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        for plugin in ("xep_0030", "xep_0199", "xep_0280", "xep_0352"):
            self.register_plugin(plugin)
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.sent_carbons = asyncio.Queue()
        self.received_carbons = asyncio.Queue()
        # What arrived, in order: ("presence", from) and ("message", body).
        self.arrivals = []
        self.arrived = asyncio.Event()
        self.add_event_handler("session_start", lambda _: self.started.done() or self.started.set_result(None))
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("carbon_sent", self.sent_carbons.put_nowait)
        self.add_event_handler("carbon_received", self.received_carbons.put_nowait)
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("message", self.on_message)

    def on_failed_auth(self, _failure):
        if not self.started.done():
            self.started.set_exception(AuthFailed())

    def on_presence(self, presence):
        self.arrivals.append(("presence", str(presence["from"])))
        self.arrived.set()

    def on_message(self, msg):
        if msg["body"]:
            self.arrivals.append(("message", msg["body"]))
            self.arrived.set()


class AuthFailed(Exception):
    pass


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


async def login(jid):
    c = Client(jid, args.password)
    c.connect(args.host, args.port)
    try:
        await asyncio.wait_for(c.started, TIMEOUT)
    except AuthFailed:
        fail(f"login refused for {jid}")
    return c


async def next_of(queue, what):
    try:
        return await asyncio.wait_for(queue.get(), TIMEOUT)
    except asyncio.TimeoutError:
        fail(f"no {what} within {TIMEOUT} s")


async def barrier(client):
    """Whatever `client` sent before this has been routed once the ping is answered."""
    await client.plugin["xep_0199"].ping(jid=client.boundjid.domain, timeout=TIMEOUT)


def forwarded(carbon, kind):
    """The message inside a carbon, as slixmpp's xep_0280 reads it."""
    return carbon[kind]


async def carbons():
    phone = await login(args.alice + "/phone")
    laptop = await login(args.alice + "/laptop")
    bob = await login(args.bob + "/slix")
    info = await phone.plugin["xep_0030"].get_info(jid=phone.boundjid.domain, timeout=TIMEOUT)
    if "urn:xmpp:carbons:2" not in info["disco_info"]["features"]:
        fail("the server does not advertise carbons")
    for c in (phone, laptop):
        await c.plugin["xep_0280"].enable(timeout=TIMEOUT)
    print("CARBONS_ENABLED")

    body = "sent " + uuid.uuid4().hex
    phone.send_message(mto=bob.boundjid.full, mbody=body, mtype="chat")
    carbon = await next_of(laptop.sent_carbons, "sent carbon")
    inner = forwarded(carbon, "carbon_sent")
    if inner["body"] != body or str(inner["to"]) != bob.boundjid.full:
        fail(f"unexpected sent carbon {carbon}")
    if str(carbon["from"]) != args.alice:
        fail(f"sent carbon from {carbon['from']}")
    print("SENT_CARBON", inner["from"], "->", inner["to"])

    body = "received " + uuid.uuid4().hex
    bob.send_message(mto=phone.boundjid.full, mbody=body, mtype="chat")
    carbon = await next_of(laptop.received_carbons, "received carbon")
    inner = forwarded(carbon, "carbon_received")
    if inner["body"] != body or str(inner["from"]) != bob.boundjid.full:
        fail(f"unexpected received carbon {carbon}")
    print("RECEIVED_CARBON", inner["from"], "->", inner["to"])
    # The phone, which got both messages itself, got no carbon of either.
    await barrier(phone)
    if not phone.sent_carbons.empty() or not phone.received_carbons.empty():
        fail("the phone got a carbon of its own conversation")
    for c in (phone, laptop, bob):
        c.disconnect()


async def csi():
    alice = await login(args.alice + "/desk")
    bob = await login(args.bob + "/phone")
    if not bob.plugin["xep_0352"].enabled:
        fail("no csi stream feature")
    print("CSI_FEATURE")
    bob.plugin["xep_0352"].send_inactive()
    # Taken before anything else bob sends; the answer to this ping is important, so nothing is held yet.
    await barrier(bob)
    bob.arrivals.clear()

    alice.send_presence(pto=bob.boundjid.full)
    await barrier(alice)
    await asyncio.sleep(HOLD_CHECK)
    if bob.arrivals:
        fail(f"an inactive client got {bob.arrivals}")
    print("PRESENCE_HELD")

    body = "wake up " + uuid.uuid4().hex
    alice.send_message(mto=bob.boundjid.full, mbody=body, mtype="chat")
    try:
        while ("message", body) not in bob.arrivals:
            bob.arrived.clear()
            await asyncio.wait_for(bob.arrived.wait(), TIMEOUT)
    except asyncio.TimeoutError:
        fail(f"the message never came: {bob.arrivals}")
    expected = [("presence", alice.boundjid.full), ("message", body)]
    if bob.arrivals != expected:
        fail(f"arrived {bob.arrivals}, expected {expected}")
    print("FLUSHED_IN_ORDER")
    bob.plugin["xep_0352"].send_active()
    for c in (alice, bob):
        c.disconnect()


async def main():
    await carbons()
    await csi()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
