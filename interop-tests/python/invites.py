#!/usr/bin/env python3
"""XEP-0401 invites from an app, with slixmpp's own xep_0050 plugin against Rookery.

As Snikket's Android app does for "Invite to app": the admin finds urn:xmpp:invite#invite in the server's command
list, runs it and reads `uri` (and `landing-url`, `expire`) from the result form. A normal user neither sees the
command nor may run it. Prints one line per step (the invite's fields on the INVITE line) and exits 0 only if every
step worked.
"""
import argparse
import asyncio
import logging
import sys
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--ca", required=True)
p.add_argument("--domain", required=True)
p.add_argument("--admin", required=True, help="JID of an admin account")
p.add_argument("--user", required=True, help="JID of a normal account")
p.add_argument("--password", required=True)
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30
INVITE = "urn:xmpp:invite#invite"


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


def single(value):
    """A field value as one string: slixmpp may give single values as a list."""
    if isinstance(value, list):
        return value[0] if len(value) == 1 else None
    return value


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid):
        super().__init__(jid, args.password)
        for plugin in ("xep_0030", "xep_0004", "xep_0050"):
            self.register_plugin(plugin)
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.started.done() or self.started.set_result(None))


async def login(jid):
    client = Client(jid)
    client.connect(args.host, args.port)
    await asyncio.wait_for(client.started, TIMEOUT)
    return client


async def run_command(client, node):
    """Runs a one-stage command with slixmpp's session workflow."""
    done = asyncio.get_event_loop().create_future()

    def on_result(iq, session):
        if not done.done():
            done.set_result(iq)

    def on_error(iq, session):
        if not done.done():
            done.set_exception(IqError(iq))

    session = {"next": on_result, "error": on_error}
    client.plugin["xep_0050"].start_command(jid=args.domain, node=node, session=session)
    return await asyncio.wait_for(done, TIMEOUT)


async def command_nodes(client):
    items = await client.plugin["xep_0050"].get_commands(args.domain, timeout=TIMEOUT)
    return {item[1] for item in items["disco_items"]["items"]}


async def main():
    admin = await login(args.admin)
    user = await login(args.user)
    print("LOGGED_IN")

    if INVITE not in await command_nodes(admin):
        fail("the admin's command list has no invite command")
    iq = await run_command(admin, INVITE)
    if iq["command"]["status"] != "completed":
        fail(f"not completed: {iq}")
    form = iq["command"]["form"]
    if form["title"] != "Your invite has been created":
        fail(f"result form title: {form['title']!r}")
    values = form.get_values()
    uri = single(values.get("uri"))
    if not uri:
        fail(f"no uri in {form}")
    print("INVITE", "uri=" + uri, "landing=" + str(single(values.get("landing-url"))),
          "expire=" + str(single(values.get("expire"))))

    if INVITE in await command_nodes(user):
        fail("a normal user sees the invite command")
    try:
        await run_command(user, INVITE)
        fail("a normal user ran the invite command")
    except IqError as e:
        if e.condition != "forbidden":
            fail(f"a normal user got {e.condition}, expected forbidden")
    print("USER_REFUSED forbidden")

    admin.disconnect()
    user.disconnect()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
