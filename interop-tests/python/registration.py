#!/usr/bin/env python3
"""Registration by invite as Snikket Android does it, with slixmpp against Rookery.

Reads the stream features after TLS (the three <register/> features must be there), sends the XEP-0401 token in a
raw <preauth/> IQ, fetches the XEP-0077 form, fills in username and password, registers, then logs in on the same
stream and fetches the roster: the inviter of the contact invite must be there with subscription 'both'. Prints one
line per step and exits 0 only if every step worked.
"""
import argparse
import asyncio
import logging
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.stanza import StreamFeatures

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--ca", required=True)
p.add_argument("--jid", required=True)
p.add_argument("--password", required=True)
p.add_argument("--token", help="register with this invite first (else only log in)")
p.add_argument("--inviter", help="expect this JID in the roster with subscription both")
p.add_argument("--expect-contact", action="append", default=[], help="a JID the roster must hold, subscription both")
p.add_argument("--expect-group", help="the roster group every expected contact must be in")
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30
FEATURES = ("http://jabber.org/features/iq-register", "urn:xmpp:invite", "urn:xmpp:ibr-token:0")


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(args.jid, args.password)
        for plugin in ("xep_0004", "xep_0066", "xep_0077"):
            self.register_plugin(plugin)
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        self.seen_features = []
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.registered = loop.create_future()
        self.add_filter("in", self.note_features)
        if args.token:
            self.add_event_handler("register", self.register)
        self.add_event_handler("session_start", lambda _: self.started.done() or self.started.set_result(None))
        self.add_event_handler("failed_auth", lambda _: self.started.done() or self.started.set_exception(Exception("auth failed")))

    def note_features(self, stanza):
        if isinstance(stanza, StreamFeatures):
            self.seen_features.append([(child.tag) for child in stanza.xml])
        return stanza

    async def register(self, form):
        try:
            last = self.seen_features[-1]
            for ns in FEATURES:
                if "{%s}register" % ns not in last:
                    fail(f"feature {ns} missing from {last}")
            print("FEATURES_OK")
            preauth = self.Iq()
            preauth["type"] = "set"
            preauth["to"] = self.boundjid.domain
            preauth.xml.append(ET.Element("{urn:xmpp:pars:0}preauth", {"token": args.token}))
            # slixmpp holds back stanzas before login unless they are bind, session or register IQs; the token IQ
            # is neither, so let it through as the apps send it.
            self._always_send_everything = True
            try:
                await preauth.send(timeout=TIMEOUT)
            finally:
                self._always_send_everything = False
            print("TOKEN_ACCEPTED")
            form = await self["xep_0077"].get_registration(timeout=TIMEOUT)
            fields = form["register"]
            for name in ("username", "password"):
                if fields.xml.find("{jabber:iq:register}%s" % name) is None:
                    fail(f"no {name} field in {form}")
            data_form = fields.xml.find("{jabber:x:data}x")
            if data_form is None:
                fail(f"no data form in {form}")
            print("FORM_OK")
            iq = self.Iq()
            iq["type"] = "set"
            iq["register"]["username"] = self.boundjid.user
            iq["register"]["password"] = args.password
            await iq.send(timeout=TIMEOUT)
            print("REGISTERED")
            self.registered.set_result(None)
        except slixmpp.exceptions.IqError as err:
            fail(f"refused: {err.iq['error']['condition']} {err.iq['error']['text']}")
        except Exception as err:  # an exception in an event handler would otherwise only be logged
            fail(f"{type(err).__name__}: {err}")


async def main():
    client = Client()
    client.connect(args.host, args.port)
    if args.token:
        await asyncio.wait_for(client.registered, TIMEOUT)
    await asyncio.wait_for(client.started, TIMEOUT)
    print("LOGGED_IN")
    await client.get_roster(timeout=TIMEOUT)
    items = {jid: client.client_roster[jid]["subscription"] for jid in client.client_roster}
    expected = args.expect_contact + ([args.inviter] if args.inviter else [])
    for contact in expected:
        if items.get(contact) != "both":
            fail(f"{contact} not 'both' in roster {items}")
        groups = client.client_roster[contact]["groups"]
        if args.expect_group and args.expect_group not in groups:
            fail(f"{contact} not in group {args.expect_group!r}: {groups}")
    print("ROSTER_OK", " ".join(sorted(items)))
    client.disconnect()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
