#!/usr/bin/env python3
"""Blocking (XEP-0191) and a password change (XEP-0077) with slixmpp's own plugins against Rookery.

alice blocks bob with xep_0191 and sees the push; bob's message then bounces and never reaches her, and hers to
him is refused as blocked; after unblocking, bob's message arrives. Then alice changes her password with xep_0077:
a too short one is refused, a good one works for the next login and the old one no longer does. Prints one line
per step and exits 0 only if every step worked.
"""
import argparse
import asyncio
import logging
import sys
import uuid
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--ca", required=True)
p.add_argument("--alice", required=True, help="alice's JID")
p.add_argument("--bob", required=True, help="bob's JID")
p.add_argument("--password", required=True, help="both accounts' password")
p.add_argument("--new-password", required=True, help="alice's password after the change")
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        for plugin in ("xep_0030", "xep_0077", "xep_0191", "xep_0199"):
            self.register_plugin(plugin)
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.bodies = []
        self.errors = asyncio.Queue()
        self.pushes = asyncio.Queue()
        self.add_event_handler("session_start", lambda _: self.started.done() or self.started.set_result(None))
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("message_error", self.errors.put_nowait)
        self.add_event_handler("blocked", lambda iq: self.pushes.put_nowait(("block", iq)))
        self.add_event_handler("unblocked", lambda iq: self.pushes.put_nowait(("unblock", iq)))

    def on_failed_auth(self, _failure):
        if not self.started.done():
            self.started.set_exception(AuthFailed())

    def on_message(self, msg):
        if msg["type"] != "error" and msg["body"]:
            self.bodies.append(msg["body"])


class AuthFailed(Exception):
    pass


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


async def login(jid, password):
    c = Client(jid, password)
    c.connect(args.host, args.port)
    try:
        await asyncio.wait_for(c.started, TIMEOUT)
    except AuthFailed:
        c.disconnect()
        return None
    return c


async def next_of(queue, what):
    try:
        return await asyncio.wait_for(queue.get(), TIMEOUT)
    except asyncio.TimeoutError:
        fail(f"no {what} within {TIMEOUT} s")


async def barrier(client):
    """Whatever was on its way to `client` before this has arrived once the ping is answered."""
    await client.plugin["xep_0199"].ping(jid=client.boundjid.domain, timeout=TIMEOUT)


async def main():
    alice = await login(args.alice, args.password)
    bob = await login(args.bob, args.password)
    if alice is None or bob is None:
        fail("login refused")
    blocking = alice.plugin["xep_0191"]
    bob_bare = slixmpp.JID(args.bob).bare

    if await blocking.get_blocked_jids(timeout=TIMEOUT):
        fail("the blocklist is not empty at first")
    await blocking.block(slixmpp.JID(bob_bare), timeout=TIMEOUT)
    kind, push = await next_of(alice.pushes, "block push")
    pushed = [item["jid"] for item in push["block"]]
    if kind != "block" or [str(j) for j in pushed] != [bob_bare]:
        fail(f"unexpected push {push}")
    blocked = {str(j) for j in await blocking.get_blocked_jids(timeout=TIMEOUT)}
    if blocked != {bob_bare}:
        fail(f"blocklist is {blocked}")
    print("BLOCKED", bob_bare)

    # bob's message bounces as if alice were offline, and never reaches her.
    body = "blocked " + uuid.uuid4().hex
    bob.send_message(mto=alice.boundjid.full, mbody=body, mtype="chat")
    error = await next_of(bob.errors, "error for bob's message")
    if error["error"]["condition"] != "service-unavailable":
        fail(f"bob got {error}")
    await barrier(alice)
    if body in alice.bodies:
        fail("alice received a message from a JID she blocked")
    print("INBOUND_BLOCKED", error["error"]["condition"])

    # alice's message to bob is refused as blocked.
    alice.send_message(mto=bob.boundjid.full, mbody="hi bob", mtype="chat")
    error = await next_of(alice.errors, "error for alice's message")
    if error["error"]["condition"] != "not-acceptable" or error.xml.find(
        "{jabber:client}error/{urn:xmpp:blocking:errors}blocked"
    ) is None:
        fail(f"alice got {error}")
    print("OUTBOUND_BLOCKED", error["error"]["condition"])

    await blocking.unblock(slixmpp.JID(bob_bare), timeout=TIMEOUT)
    kind, _ = await next_of(alice.pushes, "unblock push")
    if kind != "unblock":
        fail(f"expected an unblock push, got {kind}")
    body = "welcome back " + uuid.uuid4().hex
    bob.send_message(mto=alice.boundjid.full, mbody=body, mtype="chat")
    for _ in range(100):
        if body in alice.bodies:
            break
        await asyncio.sleep(0.1)
    else:
        fail("bob's message did not arrive after unblocking")
    print("UNBLOCKED", bob_bare)

    register = alice.plugin["xep_0077"]
    try:
        await register.change_password("too short", jid=alice.boundjid.domain, timeout=TIMEOUT)
        fail("a too short password was accepted")
    except IqError as e:
        if e.condition != "not-acceptable":
            fail(f"too short password: {e.condition} {e.text}")
        print("PASSWORD_REFUSED", e.condition, e.text)
    await register.change_password(args.new_password, jid=alice.boundjid.domain, timeout=TIMEOUT)
    print("PASSWORD_CHANGED")
    alice.disconnect()
    bob.disconnect()

    again = await login(args.alice, args.new_password)
    if again is None:
        fail("the new password does not log in")
    again.disconnect()
    if await login(args.alice, args.password) is not None:
        fail("the old password still logs in")
    print("NEW_PASSWORD_WORKS")
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
