#!/usr/bin/env python3
"""Rosters, subscriptions, presence and messages between two slixmpp clients through Rookery.

alice (two resources) and bob log in. alice names bob in her roster (both her resources see the push), then asks
to see his presence; bob's slixmpp approves and asks back, as slixmpp does by default, and both rosters end with
subscription 'both' (checked in a fresh roster fetch, not only in slixmpp's cache). Presence flows both ways; bob's
logout is seen as unavailable; messages go to the bare JID and to a full JID. Prints one line per step and exits 0
only if every step worked.
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
p.add_argument("--domain", required=True)
p.add_argument("--password", required=True)
p.add_argument("--ca", required=True)
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
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")
        self.ca_certs = Path(args.ca)
        self.enable_starttls = True
        self.enable_direct_tls = False
        self.enable_plaintext = False
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.events = asyncio.Queue()
        self.add_event_handler("session_start", self.on_start)
        for name in ("roster_update", "presence_available", "presence_unavailable",
                     "presence_subscribe", "presence_subscribed", "message"):
            self.add_event_handler(name, self.recorder(name))

    def recorder(self, name):
        def record(stanza):
            self.events.put_nowait((name, stanza))
        return record

    async def on_start(self, _event):
        await self.get_roster()
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    async def wait_for(self, name, check=lambda s: True, what=""):
        async def loop():
            while True:
                event, stanza = await self.events.get()
                if event == name and check(stanza):
                    return stanza
        try:
            return await asyncio.wait_for(loop(), TIMEOUT)
        except asyncio.TimeoutError:
            fail(f"{self.boundjid.full}: no {name} {what} within {TIMEOUT}s")


async def login(jid):
    c = Client(jid)
    c.connect(args.host, args.port)
    await asyncio.wait_for(c.started, TIMEOUT)
    return c


async def fresh_subscription(client, contact):
    """The subscription the server reports in a full roster fetch (no 'ver': the whole roster comes back)."""
    iq = client.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    result = await iq.send(timeout=TIMEOUT)
    for jid, item in result["roster"]["items"].items():
        if str(jid) == contact:
            return item["subscription"]
    return None


async def main():
    alice_jid = f"alice@{args.domain}"
    bob_jid = f"bob@{args.domain}"
    alice = await login(f"{alice_jid}/phone")
    tablet = await login(f"{alice_jid}/tablet")
    bob = await login(f"{bob_jid}/laptop")
    print("LOGGED_IN")
    if "rosterver" not in alice.features:
        fail(f"roster versioning not negotiated: {alice.features}")
    print("ROSTER_VERSIONING_OK")

    # A roster set from one resource is pushed to the other.
    alice.update_roster(bob_jid, name="Bob", groups=["Friends"])
    def pushed(_stanza):
        item = tablet.client_roster[bob_jid]
        return item["name"] == "Bob"
    await tablet.wait_for("roster_update", pushed, "push naming bob")
    if tablet.client_roster[bob_jid]["name"] != "Bob" or tablet.client_roster[bob_jid]["groups"] != ["Friends"]:
        fail(f"tablet's roster: {tablet.client_roster[bob_jid]}")
    print("ROSTER_PUSH_OK")

    # slixmpp approves requests and subscribes back by default: this ends in 'both'.
    alice.send_presence_subscription(pto=bob_jid)
    await bob.wait_for("presence_subscribe", what="from alice")
    await alice.wait_for("presence_subscribe", what="from bob")
    for _ in range(50):
        if (await fresh_subscription(alice, bob_jid)) == "both" and (await fresh_subscription(bob, alice_jid)) == "both":
            break
        await asyncio.sleep(0.1)
    else:
        fail(f"subscriptions: alice has {await fresh_subscription(alice, bob_jid)}, "
             f"bob has {await fresh_subscription(bob, alice_jid)}")
    print("SUBSCRIPTION_BOTH_OK")

    # Presence both ways: a status change from each side reaches the other.
    bob.send_presence(pstatus="bob here " + uuid.uuid4().hex[:6])
    await alice.wait_for("presence_available", lambda s: s["from"].bare == bob_jid and s["status"].startswith("bob here"),
                         "status from bob")
    alice.send_presence(pstatus="alice here")
    await bob.wait_for("presence_available", lambda s: s["from"].bare == alice_jid and s["status"] == "alice here",
                       "status from alice")
    print("PRESENCE_OK")

    # A message to the bare JID reaches alice's resources; one to a full JID reaches that resource.
    body = "to bare " + uuid.uuid4().hex
    bob.send_message(mto=alice_jid, mbody=body, mtype="chat")
    await alice.wait_for("message", lambda m: m["body"] == body, "to the bare JID")
    body = "to full " + uuid.uuid4().hex
    bob.send_message(mto=f"{alice_jid}/tablet", mbody=body, mtype="chat")
    await tablet.wait_for("message", lambda m: m["body"] == body, "to the full JID")
    body = "back " + uuid.uuid4().hex
    alice.send_message(mto=bob_jid, mbody=body, mtype="chat")
    await bob.wait_for("message", lambda m: m["body"] == body, "from alice")
    print("MESSAGES_OK")

    # bob leaves: alice sees him go.
    bob.disconnect()
    await alice.wait_for("presence_unavailable", lambda s: s["from"].bare == bob_jid, "from bob")
    print("UNAVAILABLE_OK")

    tablet.disconnect()
    alice.disconnect()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
