#!/usr/bin/env python3
"""XEP-0198 stream management with slixmpp, a client nobody here wrote.

Bob logs in with slixmpp's stream-management plugin (resumption on); alice sends him a message, which he gets. Then
bob's TCP connection is cut without a word (the transport is aborted, as when a phone changes networks), alice sends
--count messages while he is away, and bob connects again: slixmpp resumes the session (no new session starts) and
every message sent meanwhile arrives, once. Prints RESUMED_OK and exits 0 only if all of that held.
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
p.add_argument("--domain", required=True)
p.add_argument("--password", required=True)
p.add_argument("--ca", required=True, help="PEM file of the CA that signed the server's certificate")
p.add_argument("--count", type=int, default=5)
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self, user, stream_management):
        super().__init__(f"{user}@{args.domain}/phone", args.password)
        self.register_plugin("xep_0199")
        if stream_management:
            self.register_plugin("xep_0198")
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        self.messages = asyncio.Queue()
        self.events = asyncio.Queue()
        for event in ("session_start", "session_resumed", "sm_enabled", "disconnected"):
            self.add_event_handler(event, lambda _e, name=event: self.events.put_nowait(name))
        self.add_event_handler("failed_auth", lambda _: self.events.put_nowait("failed_auth"))
        self.add_event_handler("message", self.messages.put_nowait)

    async def wait_for(self, wanted):
        """Waits for the event `wanted`; returns the other events seen before it."""
        seen = []
        while True:
            event = await asyncio.wait_for(self.events.get(), TIMEOUT)
            if event == wanted:
                return seen
            if event == "failed_auth":
                fail("authentication failed")
            seen.append(event)

    async def next_body(self):
        msg = await asyncio.wait_for(self.messages.get(), TIMEOUT)
        return msg["body"]


async def main():
    alice = Client("alice", stream_management=False)
    bob = Client("bob", stream_management=True)
    alice.connect(args.host, args.port)
    bob.connect(args.host, args.port)
    await alice.wait_for("session_start")
    await bob.wait_for("session_start")
    await bob.wait_for("sm_enabled")
    sm = bob.plugin["xep_0198"]
    if not sm.sm_id:
        fail("no resumption id")
    bob.send_presence()
    alice.send_presence()

    alice.send_message(mto=f"bob@{args.domain}", mbody="before", mtype="chat")
    if await bob.next_body() != "before":
        fail("first message")
    print("ENABLED", sm.sm_id)

    # The connection dies: no </stream>, no TLS close.
    bob.transport.abort()
    await bob.wait_for("disconnected")
    bodies = [f"meanwhile-{i}" for i in range(args.count)]
    for body in bodies:
        alice.send_message(mto=f"bob@{args.domain}", mbody=body, mtype="chat")
    await alice.plugin["xep_0199"].ping(jid=args.domain, timeout=TIMEOUT)

    bob.connect(args.host, args.port)
    seen = await bob.wait_for("session_resumed")
    if "session_start" in seen:
        fail(f"a new session started instead of a resumption: {seen}")
    got = []
    for _ in bodies:
        got.append(await bob.next_body())
    if got != bodies:
        fail(f"got {got}, wanted {bodies}")
    # Nothing twice: a ping round trip brings nothing more.
    await bob.plugin["xep_0199"].ping(jid=args.domain, timeout=TIMEOUT)
    if not bob.messages.empty():
        fail(f"more arrived: {bob.messages.get_nowait()['body']}")
    print("RESUMED_OK", len(got))
    alice.disconnect()
    bob.disconnect()


asyncio.run(main())
