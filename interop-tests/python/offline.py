#!/usr/bin/env python3
"""Offline messages (XEP-0160) with slixmpp, a client nobody here wrote.

--send TO: log in, send a chat message with --body to TO, make sure the server has routed it (a ping round trip),
print SENT and leave without ever sending presence.

--receive: log in; before any presence, nothing may arrive (checked with a ping round trip); then send initial
presence and wait for the message with --body from --from, which must carry a XEP-0203 delay from --domain stamped
between --stored-after and --stored-before (unix seconds). Prints OFFLINE_OK and exits 0 only if all of that held.
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
p.add_argument("--jid", required=True)
p.add_argument("--password", required=True)
p.add_argument("--ca", required=True, help="PEM file of the CA that signed the server's certificate")
p.add_argument("--body", required=True)
p.add_argument("--send", metavar="TO")
p.add_argument("--receive", action="store_true")
p.add_argument("--from", dest="sender", help="with --receive: the full JID the message must come from")
p.add_argument("--domain", help="with --receive: the server's domain, which must stamp the delay")
p.add_argument("--stored-after", type=int)
p.add_argument("--stored-before", type=int)
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(args.jid, args.password)
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0203")
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.messages = asyncio.Queue()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda _: self.fail_start("authentication failed"))
        self.add_event_handler("message", self.messages.put_nowait)

    def on_start(self, _event):
        # No presence here: the test decides when this client becomes available.
        if not self.started.done():
            self.started.set_result(True)

    def fail_start(self, why):
        if not self.started.done():
            self.started.set_exception(RuntimeError(why))


async def main():
    c = Client()
    c.connect(args.host, args.port)
    try:
        await asyncio.wait_for(c.started, TIMEOUT)
    except Exception as e:
        fail(f"login: {e}")
    print("LOGGED_IN", c.boundjid.full)

    if args.send:
        c.send_message(mto=args.send, mbody=args.body, mtype="chat")
        await c.plugin["xep_0199"].ping(jid=c.boundjid.domain, timeout=TIMEOUT)
        print("SENT", args.send)
    elif args.receive:
        await c.plugin["xep_0199"].ping(jid=c.boundjid.domain, timeout=TIMEOUT)
        if not c.messages.empty():
            fail(f"a message arrived before any presence: {c.messages.get_nowait()}")
        c.send_presence()
        msg = await asyncio.wait_for(c.messages.get(), TIMEOUT)
        if msg["body"] != args.body:
            fail(f"unexpected body {msg['body']!r}")
        if str(msg["from"]) != args.sender:
            fail(f"message came from {msg['from']}, not {args.sender}")
        delay = msg["delay"]
        if delay["stamp"] is None:
            fail(f"no delay stamp: {msg}")
        if str(delay["from"]) != args.domain:
            fail(f"delay from {delay['from']}, not {args.domain}")
        stamp = delay["stamp"]
        if stamp.tzinfo is None:
            fail(f"stamp without a time zone: {stamp}")
        seconds = int(stamp.timestamp())
        if not args.stored_after <= seconds <= args.stored_before:
            fail(f"stamp {stamp} is not between {args.stored_after} and {args.stored_before}")
        print("OFFLINE_OK", msg["from"], stamp.isoformat())
    else:
        fail("--send or --receive")

    c.disconnect()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
