#!/usr/bin/env python3
"""The everyday XEPs against Rookery with slixmpp's own plugins.

Logs in an admin, a normal user and (after the admin changed its password with an ad-hoc command) a third user,
and checks: XEP-0030/0128 contact addresses, XEP-0092 version, XEP-0202 time, XEP-0012 last activity, XEP-0054
vCards (with an avatar, and an oversized one refused), XEP-0049 private storage (and a forbidden namespace
refused), XEP-0050/0133 commands (the list by role, a single-stage and a two-stage command, a normal user denied).
Prints one line per check and exits 0 only if all passed.
"""
import argparse
import asyncio
import datetime
import logging
import os
import sys
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins import xep_0082
from slixmpp.xmlstream import ElementBase

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--ca", required=True)
p.add_argument("--domain", required=True)
p.add_argument("--admin", required=True, help="JID of an admin account")
p.add_argument("--user", required=True, help="JID of a normal account")
p.add_argument("--third", required=True, help="JID whose password the admin changes")
p.add_argument("--password", required=True, help="the password of all three accounts")
p.add_argument("--new-password", required=True, help="what the admin sets for --third")
p.add_argument("--version", required=True, help="the version the server should report")
p.add_argument("--site-name", required=True)
p.add_argument("--abuse", required=True, help="the abuse address the server should publish")
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30
ADMIN_FORM = "http://jabber.org/protocol/admin"
ONLINE_USERS = ADMIN_FORM + "#get-online-users-num"
CHANGE_PASSWORD = ADMIN_FORM + "#change-user-password"
SERVERINFO = "http://jabber.org/network/serverinfo"


class Prefs(ElementBase):
    """Something a client keeps in private storage."""
    name = "prefs"
    namespace = "urn:rookery:interop:prefs"
    plugin_attrib = "rookery_prefs"
    interfaces = {"theme"}
    sub_interfaces = interfaces


class StreamContent(ElementBase):
    """An element in the client stream namespace, which private storage must refuse."""
    name = "message"
    namespace = "jabber:client"
    plugin_attrib = "rookery_stream_content"
    interfaces = {"body"}
    sub_interfaces = interfaces


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        for plugin in ("xep_0030", "xep_0004", "xep_0128", "xep_0012", "xep_0049", "xep_0050",
                       "xep_0054", "xep_0092", "xep_0133", "xep_0202"):
            self.register_plugin(plugin)
        self.plugin["xep_0049"].register(Prefs)
        self.plugin["xep_0049"].register(StreamContent)
        self.ca_certs = Path(args.ca)
        self.enable_plaintext = False
        self.started = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", lambda _: self.started.done() or self.started.set_result(True))
        self.add_event_handler("failed_auth", lambda _: self.started.done() or self.started.set_exception(
            RuntimeError("login refused")))


def single(value):
    """A field value as one string: slixmpp gives some single values (a hidden FORM_TYPE) as a list."""
    if isinstance(value, list):
        return value[0] if len(value) == 1 else None
    return value


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


async def login(jid, password):
    c = Client(jid, password)
    c.connect(args.host, args.port)
    await asyncio.wait_for(c.started, TIMEOUT)
    return c


async def expect_error(coro, condition, what):
    try:
        result = await coro
    except IqError as e:
        if e.condition != condition:
            fail(f"{what}: {e.condition}, expected {condition}")
        return
    fail(f"{what}: succeeded, expected {condition}: {result}")


async def disco_form(admin):
    info = await admin.plugin["xep_0030"].get_info(jid=args.domain, timeout=TIMEOUT)
    features = set(info["disco_info"]["features"])
    for needed in ("vcard-temp", "jabber:iq:private", "jabber:iq:last", "jabber:iq:version", "urn:xmpp:time",
                   "http://jabber.org/protocol/commands"):
        if needed not in features:
            fail(f"feature {needed} missing: {sorted(features)}")
    forms = [f for f in info["disco_info"]["forms"] if single(f.get_values().get("FORM_TYPE")) == SERVERINFO]
    if len(forms) != 1:
        fail(f"expected one serverinfo form: {info}")
    values = forms[0].get_values()
    if values.get("abuse-addresses") != ["mailto:" + args.abuse]:
        fail(f"abuse-addresses: {values}")
    if "security-addresses" in values:
        fail(f"security-addresses without SNIKKET_SECURITY_EMAIL: {values}")
    print("DISCO_FORM_OK", values["abuse-addresses"][0])


async def version_and_time(admin):
    iq = await admin.plugin["xep_0092"].get_version(args.domain, timeout=TIMEOUT)
    version = iq["software_version"]
    if (version["name"], version["version"]) != ("Rookery", args.version) or version["os"]:
        fail(f"version: {version}")
    print("VERSION_OK", version["name"], version["version"])
    iq = await admin.plugin["xep_0202"].get_entity_time(args.domain, timeout=TIMEOUT)
    # Read as text: slixmpp 1.17's own accessors fail on what XEP-0202 requires (`utc` appends a second 'Z';
    # `tzo` cannot parse '+00:00' alone). The values themselves are XEP-0082's.
    tzo = iq["entity_time"].xml.find("{urn:xmpp:time}tzo").text
    if tzo != "+00:00":
        fail(f"tzo: {tzo}")
    utc = xep_0082.parse(iq["entity_time"].xml.find("{urn:xmpp:time}utc").text)
    # Sanity only: the server's clock and ours are the same machine's.
    if abs(utc - datetime.datetime.now(datetime.timezone.utc)) > datetime.timedelta(hours=1):
        fail(f"time: {utc}")
    print("TIME_OK", utc.isoformat())


async def last_activity(admin, user):
    iq = await admin.plugin["xep_0012"].get_last_activity(args.domain, timeout=TIMEOUT)
    if iq["last_activity"]["seconds"] < 0:
        fail(f"uptime: {iq}")
    iq = await admin.plugin["xep_0012"].get_last_activity(admin.boundjid.bare, timeout=TIMEOUT)
    if iq["last_activity"]["seconds"] != 0:
        fail(f"an online account is active now: {iq}")
    await expect_error(user.plugin["xep_0012"].get_last_activity(admin.boundjid.bare, timeout=TIMEOUT),
                       "forbidden", "last activity without a subscription")
    print("LAST_OK")


async def vcards(admin, user):
    avatar = os.urandom(6000)
    vcard = admin.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Ada Admin"
    vcard["PHOTO"]["TYPE"] = "image/png"
    vcard["PHOTO"]["BINVAL"] = avatar
    await admin.plugin["xep_0054"].publish_vcard(vcard, timeout=TIMEOUT)
    iq = await user.plugin["xep_0054"].get_vcard(admin.boundjid.bare, timeout=TIMEOUT)
    got = iq["vcard_temp"]
    if got["FN"] != "Ada Admin" or got["PHOTO"]["BINVAL"] != avatar:
        fail(f"vCard read back differs: {got['FN']!r}")
    # An avatar far too big for the limit (but not for the stanza): refused, the old vCard stays.
    huge = admin.plugin["xep_0054"].make_vcard()
    huge["FN"] = "Too Big"
    huge["PHOTO"]["BINVAL"] = os.urandom(150 * 1024)
    await expect_error(admin.plugin["xep_0054"].publish_vcard(huge, timeout=TIMEOUT), "not-acceptable",
                       "oversized vCard")
    iq = await user.plugin["xep_0054"].get_vcard(admin.boundjid.bare, timeout=TIMEOUT)
    if iq["vcard_temp"]["FN"] != "Ada Admin":
        fail("the oversized vCard replaced the stored one")
    iq = await user.plugin["xep_0054"].get_vcard(args.domain, timeout=TIMEOUT)
    if iq["vcard_temp"]["FN"] != args.site_name:
        fail(f"server vCard: {iq['vcard_temp']}")
    print("VCARD_OK", len(avatar), "byte avatar;", "server", args.site_name)


async def private_storage(admin):
    prefs = Prefs()
    prefs["theme"] = "dark"
    await admin.plugin["xep_0049"].store(prefs, timeout=TIMEOUT)
    iq = await admin.plugin["xep_0049"].retrieve("rookery_prefs", timeout=TIMEOUT)
    if iq["private"]["rookery_prefs"]["theme"] != "dark":
        fail(f"private storage read back: {iq}")
    bad = StreamContent()
    bad["body"] = "not storable"
    await expect_error(admin.plugin["xep_0049"].store(bad, timeout=TIMEOUT), "not-acceptable",
                       "private storage in jabber:client")
    print("PRIVATE_OK")


async def run_command(client, node, answer=None):
    """Runs a command with slixmpp's session workflow; `answer(form)` fills each form it is shown."""
    done = asyncio.get_event_loop().create_future()

    def on_result(iq, session):
        if iq["command"]["status"] == "executing" and answer is not None:
            session["payload"] = answer(iq["command"]["form"])
            session["next"] = on_result
            client.plugin["xep_0050"].complete_command(session)
        elif not done.done():
            done.set_result(iq)

    def on_error(iq, session):
        if not done.done():
            done.set_exception(IqError(iq))

    session = {"next": on_result, "error": on_error}
    client.plugin["xep_0050"].start_command(jid=args.domain, node=node, session=session)
    return await asyncio.wait_for(done, TIMEOUT)


async def commands(admin, user):
    items = await user.plugin["xep_0050"].get_commands(args.domain, timeout=TIMEOUT)
    # A normal user sees only the commands about their own clients, never an admin's.
    nodes = {node for (_jid, node, _name) in items["disco_items"]["items"]}
    own = {"urn:rookery:client-management#list", "urn:rookery:client-management#revoke"}
    if nodes != own:
        fail(f"a normal user sees commands: {items['disco_items']['items']}")
    await expect_error(run_command(user, ONLINE_USERS), "forbidden", "a normal user runs an admin command")

    items = await admin.plugin["xep_0050"].get_commands(args.domain, timeout=TIMEOUT)
    nodes = {item[1] for item in items["disco_items"]["items"]}
    if not {ONLINE_USERS, CHANGE_PASSWORD} <= nodes:
        fail(f"admin command list: {nodes}")

    iq = await run_command(admin, ONLINE_USERS)
    online = single(iq["command"]["form"].get_values().get("onlineusersnum"))
    if iq["command"]["status"] != "completed" or online != "2":
        fail(f"online users: {online!r} in {iq}")

    def fill(form):
        if not {"accountjid", "password"} <= set(form.get_fields()):
            fail(f"change-user-password form: {form}")
        answer = admin.plugin["xep_0004"].make_form(ftype="submit")
        answer.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN_FORM)
        answer.add_field(var="accountjid", value=args.third)
        answer.add_field(var="password", value=args.new_password)
        return answer

    iq = await run_command(admin, CHANGE_PASSWORD, fill)
    notes = iq["command"]["notes"]
    if iq["command"]["status"] != "completed" or not notes or notes[0][0] != "info":
        fail(f"change-user-password: {iq}")
    third = await login(args.third, args.new_password)
    print("ADHOC_OK", "online", online, "; logged in as", third.boundjid.bare, "with the new password")
    third.disconnect()


async def main():
    admin = await login(args.admin, args.password)
    user = await login(args.user, args.password)
    print("LOGGED_IN", admin.boundjid.full, user.boundjid.full)
    await disco_form(admin)
    await version_and_time(admin)
    await last_activity(admin, user)
    await vcards(admin, user)
    await private_storage(admin)
    await commands(admin, user)
    admin.disconnect()
    user.disconnect()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
