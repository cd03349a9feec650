#!/usr/bin/env python3
"""Account removal (XEP-0077 <remove/>) with slixmpp's own xep_0077 plugin against Rookery.

alice asks to remove her account; the server answers and closes her session. Logging in again with the right
password is then refused with <account-disabled/> and the text "Account deleted" (Prosody's words) while the grace
period runs. Prints one line per step and exits 0 only if every step worked.
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
p.add_argument("--jid", required=True)
p.add_argument("--password", required=True)
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
        for plugin in ("xep_0030", "xep_0077"):
            self.register_plugin(plugin)
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.ended = loop.create_future()
        self.add_event_handler("session_start", lambda _: self.started.done() or self.started.set_result(None))
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("disconnected", lambda _: self.ended.done() or self.ended.set_result(None))

    def on_failed_auth(self, failure):
        if not self.started.done():
            self.started.set_exception(AuthFailed(failure["condition"], failure["text"]))


class AuthFailed(Exception):
    pass


async def main():
    alice = Client()
    alice.connect(args.host, args.port)
    await asyncio.wait_for(alice.started, TIMEOUT)
    print("LOGGED_IN")
    await alice.plugin["xep_0077"].cancel_registration(timeout=TIMEOUT)
    print("REMOVE_ACCEPTED")
    await asyncio.wait_for(alice.ended, TIMEOUT)
    print("SESSION_CLOSED")

    again = Client()
    again.connect(args.host, args.port)
    try:
        await asyncio.wait_for(again.started, TIMEOUT)
        fail("logged in to a removed account")
    except AuthFailed as refused:
        condition, text = refused.args
        if condition != "account-disabled" or text != "Account deleted":
            fail(f"refused with {condition!r} {text!r}")
        print("LOGIN_REFUSED", condition, text)
    again.disconnect()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
