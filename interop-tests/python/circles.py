#!/usr/bin/env python3
"""Circles through Rookery, seen by slixmpp.

alice and bob share circles but never asked for each other's presence. Each logs in, fetches its roster, and must
find the other with subscription 'both', no pending ask, in every circle's group. Then each sees the other's
presence (the subscription is real, not only a roster entry). Prints one line per step; exits 0 only if all worked.
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
p.add_argument("--ca", required=True)
p.add_argument("--groups", required=True, help="the circles' names, comma-separated")
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
        self.ca_certs = Path(args.ca)
        self.enable_starttls = True
        self.enable_direct_tls = False
        self.enable_plaintext = False
        loop = asyncio.get_event_loop()
        self.started = loop.create_future()
        self.available = asyncio.Queue()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("presence_available", self.available.put_nowait)

    async def on_start(self, _event):
        await self.get_roster()
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)


async def login(jid):
    c = Client(jid)
    c.connect(args.host, args.port)
    await asyncio.wait_for(c.started, TIMEOUT)
    return c


def check_roster(client, contact, name):
    """The roster as slixmpp received it at login: the contact, mutual, in every circle's group."""
    roster = client.client_roster
    if contact not in roster:
        fail(f"{name}'s roster lacks {contact}: {list(roster.keys())}")
    item = roster[contact]
    wanted = sorted(args.groups.split(","))
    if item["subscription"] != "both" or item["pending_out"] or sorted(item["groups"]) != wanted:
        fail(f"{name}'s item for {contact}: subscription={item['subscription']} "
             f"pending_out={item['pending_out']} groups={item['groups']} (wanted both, {wanted})")


async def sees(client, contact):
    async def loop():
        while True:
            presence = await client.available.get()
            if presence["from"].bare == contact:
                return
    try:
        await asyncio.wait_for(loop(), TIMEOUT)
    except asyncio.TimeoutError:
        fail(f"{client.boundjid.bare} never saw {contact} available")


async def main():
    alice_jid = f"alice@{args.domain}"
    bob_jid = f"bob@{args.domain}"
    alice = await login(f"{alice_jid}/phone")
    check_roster(alice, bob_jid, "alice")
    print("ALICE_ROSTER_OK")
    bob = await login(f"{bob_jid}/laptop")
    check_roster(bob, alice_jid, "bob")
    print("BOB_ROSTER_OK")
    # Bob's initial presence reaches alice; alice's presence reaches bob through his login's probe.
    await asyncio.gather(sees(alice, bob_jid), sees(bob, alice_jid))
    print("PRESENCE_OK")
    for c in (alice, bob):
        c.disconnect()
    print("PASS")


asyncio.run(main())
