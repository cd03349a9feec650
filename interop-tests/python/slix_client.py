#!/usr/bin/env python3
"""Drives Rookery with slixmpp, a client nobody here wrote.

Logs in (STARTTLS or direct TLS, a chosen SASL mechanism), then does what the flags ask: ping the server, ask its
disco#info, exchange a message with a second account. Prints one line per result and exits 0 only if every step
worked. With --expect-auth-failure it succeeds only if the login is refused, printing the SASL condition.
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
p.add_argument("--jid", required=True)
p.add_argument("--password", required=True)
p.add_argument("--ca", required=True, help="PEM file of the CA that signed the server's certificate")
p.add_argument("--direct-tls", action="store_true", help="XEP-0368 direct TLS instead of STARTTLS")
p.add_argument("--mech", help="the SASL mechanism to use (default: slixmpp's choice)")
p.add_argument("--expect-auth-failure", action="store_true")
p.add_argument("--ping", action="store_true")
p.add_argument("--disco", action="store_true")
p.add_argument("--peer-jid", help="second account: a message goes from --jid to it")
p.add_argument("--peer-password")
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password, sasl_mech=args.mech)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")
        self.ca_certs = Path(args.ca)
        self.enable_direct_tls = args.direct_tls
        self.enable_starttls = not args.direct_tls
        self.enable_plaintext = False
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.received = loop.create_future()
        self.expected_body = None
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("message", self.on_message)

    def on_start(self, _event):
        if not self.started.done():
            self.started.set_result(True)

    def on_failed_auth(self, failure):
        condition = "unknown"
        try:
            condition = failure["condition"]
        except Exception:
            pass
        if not self.started.done():
            self.started.set_exception(AuthFailed(condition))

    def on_message(self, msg):
        if self.expected_body and msg["body"] == self.expected_body and not self.received.done():
            self.received.set_result(msg)


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
    except AuthFailed as e:
        c.disconnect()
        return c, str(e)
    return c, None


async def main():
    c, auth_error = await login(args.jid, args.password)
    if args.expect_auth_failure:
        if auth_error is None:
            fail("login succeeded but should not have")
        print("AUTH_FAILED", auth_error)
        return
    if auth_error is not None:
        fail(f"login refused: {auth_error}")
    print("LOGGED_IN", c.boundjid.full)

    if args.ping:
        rtt = await c.plugin["xep_0199"].ping(jid=c.boundjid.domain, timeout=TIMEOUT)
        print("PING_OK", c.boundjid.domain)

    if args.disco:
        info = await c.plugin["xep_0030"].get_info(jid=c.boundjid.domain, timeout=TIMEOUT)
        identities = {(i[0], i[1]) for i in info["disco_info"]["identities"]}
        features = set(info["disco_info"]["features"])
        if ("server", "im") not in identities:
            fail(f"no server/im identity: {identities}")
        for needed in ("urn:xmpp:ping", "http://jabber.org/protocol/disco#info"):
            if needed not in features:
                fail(f"feature {needed} missing: {sorted(features)}")
        print("DISCO_OK", " ".join(sorted(features)))

    if args.peer_jid:
        peer, err = await login(args.peer_jid, args.peer_password)
        if err:
            fail(f"peer login refused: {err}")
        body = "hello " + uuid.uuid4().hex
        peer.expected_body = body
        c.send_message(mto=peer.boundjid.full, mbody=body, mtype="chat")
        msg = await asyncio.wait_for(peer.received, TIMEOUT)
        if str(msg["from"]) != c.boundjid.full:
            fail(f"message came from {msg['from']}, not {c.boundjid.full}")
        print("MESSAGE_OK", msg["from"], "->", msg["to"])
        peer.disconnect()

    c.disconnect()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
