#!/usr/bin/env python3
"""PEP (XEP-0163) through Rookery with slixmpp's own plugins, as the Snikket apps use it.

alice and bob are mutual contacts (a circle); carol knows neither. Each logs in with entity capabilities
(XEP-0115) that list the `+notify` interests of a phone app. Checks, one line each:

- OMEMO (Conversations' legacy namespace): alice publishes her device list and a bundle with publish-options
  `pubsub#access_model=open`; bob gets the device list as the last item when he comes online and then as a
  notification when it changes; bob and carol (a stranger: only `open` lets her in) fetch both; a bundle node
  made earlier without `open` is closed to carol, refuses publish-options `open` as a failed precondition, and
  opens once alice reconfigures it (what Conversations does then); carol gets no notification.
- Avatars (xep_0084): data and metadata published; bob notified and fetches the data; vcard-temp shows the PEP
  avatar as PHOTO (XEP-0398); a vcard-temp PHOTO set by alice becomes PEP avatar metadata and data for bob;
  removing the avatar (empty metadata) is notified and leaves no PHOTO in vcard-temp.
- Bookmarks 2 (xep_0402): a bookmark published to `urn:xmpp:bookmarks:1` is in the legacy private storage
  (xep_0049 + xep_0048), and one stored there is in Bookmarks 2, notified to alice's other device; a retracted
  bookmark leaves the legacy storage; bob may not read them.
- Bad input: a publish to bob's node (forbidden), publish-options that contradict the node (conflict +
  precondition-not-met), an item over the size limit (not-acceptable + payload-too-big); none changes anything.

Exits 0 only if every check passed.
"""
import argparse
import asyncio
import hashlib
import logging
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.plugins.xep_0048 import Bookmarks
from slixmpp.plugins.xep_0402.stanza import Conference

p = argparse.ArgumentParser()
p.add_argument("--host", required=True)
p.add_argument("--port", type=int, required=True)
p.add_argument("--domain", required=True)
p.add_argument("--password", required=True, help="the password of every account")
p.add_argument("--ca", required=True)
p.add_argument("--item-limit", type=int, required=True, help="the server's largest PEP item payload, in bytes")
p.add_argument("-v", action="store_true")
args = p.parse_args()
logging.basicConfig(level=logging.DEBUG if args.v else logging.ERROR)

TIMEOUT = 30
PUBSUB = "http://jabber.org/protocol/pubsub"
EVENT = "http://jabber.org/protocol/pubsub#event"
ERRORS = "http://jabber.org/protocol/pubsub#errors"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICELIST = AXOLOTL + ".devicelist"
AVATAR_DATA = "urn:xmpp:avatar:data"
AVATAR_METADATA = "urn:xmpp:avatar:metadata"
BOOKMARKS2 = "urn:xmpp:bookmarks:1"
# What Conversations and Snikket's apps say they want notifications of (their caps list `node+notify`).
INTERESTS = (DEVICELIST, AVATAR_METADATA, "http://jabber.org/protocol/nick", BOOKMARKS2)


def fail(msg):
    print("FAIL", msg)
    sys.exit(1)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid):
        super().__init__(jid, args.password)
        for plugin in ("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0084", "xep_0054",
                       "xep_0049", "xep_0048", "xep_0402", "xep_0199"):
            self.register_plugin(plugin)
        self.ca_certs = Path(args.ca)
        self.enable_starttls = True
        self.enable_direct_tls = False
        self.enable_plaintext = False
        self.started = asyncio.get_event_loop().create_future()
        # Every pubsub event received, in arrival order, until a check takes it.
        self.events = []
        self.event_arrived = asyncio.Event()
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda _: self.started.done() or self.started.set_exception(
            RuntimeError("login refused")))
        # slixmpp's 'message' event is for messages with a body; pubsub notifications come as 'pubsub_publish'.
        self.add_event_handler("pubsub_publish", self.on_notification)
        self.add_event_handler("pubsub_retract", self.on_notification)

    async def on_start(self, _event):
        # As a phone app does: interests into the caps before the initial presence that carries them.
        for node in INTERESTS:
            self.plugin["xep_0030"].add_feature(node + "+notify")
        await self.plugin["xep_0115"].update_caps(broadcast=False)
        await self.get_roster()
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def on_notification(self, msg):
        items = msg.xml.find(f"{{{EVENT}}}event/{{{EVENT}}}items")
        # slixmpp raises an event per item, each with the whole message: keep the message once.
        if items is not None and not any(kept is items for _, kept in self.events):
            self.events.append((str(msg["from"]), items))
            self.event_arrived.set()

    async def next_event(self, publisher, node, what):
        """Takes the first notification from `publisher` about `node` (already received or still to come)."""
        async def wait():
            while True:
                for i, (sender, items) in enumerate(self.events):
                    if sender == publisher and items.get("node") == node:
                        del self.events[i]
                        return items
                self.event_arrived.clear()
                await self.event_arrived.wait()
        try:
            return await asyncio.wait_for(wait(), TIMEOUT)
        except asyncio.TimeoutError:
            fail(f"{self.boundjid.full} never got {what}; events received: "
                 f"{[(s, i.get('node')) for s, i in self.events]}")

    def events_about(self, node):
        return [items for _, items in self.events if items.get("node") == node]

    async def barrier(self):
        """A ping round trip: whatever the server queued for this client before arrives before the pong."""
        await self.plugin["xep_0199"].ping(jid=self.boundjid.domain, timeout=TIMEOUT)


async def login(jid):
    c = Client(jid)
    c.connect(args.host, args.port)
    await asyncio.wait_for(c.started, TIMEOUT)
    return c


def options(client, **fields):
    """A publish-options form: pubsub#NAME=VALUE for each keyword."""
    form = client.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=PUBLISH_OPTIONS)
    for name, value in fields.items():
        form.add_field(var="pubsub#" + name, value=value)
    return form


def element(ns, tag, text=None, children=(), **attrs):
    el = ET.Element(f"{{{ns}}}{tag}", attrs)
    if text is not None:
        el.text = text
    el.extend(children)
    return el


def devicelist(*ids):
    return element(AXOLOTL, "list", children=[element(AXOLOTL, "device", id=str(i)) for i in ids])


def bundle(identity_key):
    return element(AXOLOTL, "bundle", children=[
        element(AXOLOTL, "signedPreKeyPublic", "BYPZsignedprekey", signedPreKeyId="1"),
        element(AXOLOTL, "signedPreKeySignature", "c2lnbmF0dXJl"),
        element(AXOLOTL, "identityKey", identity_key),
        element(AXOLOTL, "prekeys", children=[
            element(AXOLOTL, "preKeyPublic", "cHJla2V5" + str(n), preKeyId=str(n)) for n in range(1, 4)
        ]),
    ])


def same_xml(a, b):
    return ET.tostring(a) == ET.tostring(b)


def only_item(items, what):
    """The single <item/> of an <items/> (a result's or an event's): (id, payload)."""
    found = [c for c in items if c.tag.endswith("}item")]
    if len(found) != 1:
        fail(f"{what}: expected one item, got {ET.tostring(items)!r}")
    payload = list(found[0])
    return found[0].get("id"), (payload[0] if payload else None)


async def fetch(client, owner, node, what):
    try:
        iq = await client.plugin["xep_0060"].get_items(owner, node, timeout=TIMEOUT)
    except IqError as e:
        fail(f"{what}: {client.boundjid.bare} could not fetch {owner}'s {node}: {e.condition}")
    return iq["pubsub"]["items"].xml


def error_conditions(e):
    """(stanza condition, pubsub#errors condition or None) of an IqError."""
    error = e.iq.xml.find("{jabber:client}error")
    specific = None
    if error is not None:
        for child in error:
            if child.tag.startswith(f"{{{ERRORS}}}"):
                specific = child.tag.split("}")[1]
    return e.condition, specific


async def expect_error(coro, expected, what):
    try:
        result = await coro
    except IqError as e:
        got = error_conditions(e)
        if got != expected:
            fail(f"{what}: got {got}, expected {expected}")
        return
    fail(f"{what}: succeeded, expected {expected}: {result}")


async def omemo(alice, carol):
    open_access = options(alice, access_model="open")
    await alice.plugin["xep_0060"].publish(None, DEVICELIST, id="current", payload=devicelist(1001),
                                           options=open_access, timeout=TIMEOUT)
    print("OMEMO_DEVICELIST_PUBLISHED")
    bundle_node = f"{AXOLOTL}.bundles:1001"
    alice_bundle = bundle("BQidentitykey1001")
    await alice.plugin["xep_0060"].publish(None, bundle_node, id="current", payload=alice_bundle,
                                           options=options(alice, access_model="open"), timeout=TIMEOUT)

    # bob comes online after the publish: his caps ask for the device list, so it comes as the last item.
    bob = await login(f"bob@{args.domain}/phone")
    items = await bob.next_event(alice.boundjid.bare, DEVICELIST, "alice's device list on coming online")
    if not same_xml(only_item(items, "last device list")[1], devicelist(1001)):
        fail(f"last device list: {ET.tostring(items)!r}")
    print("OMEMO_LAST_ITEM_OK")

    # A second device: the list changes and bob is notified at once.
    await alice.plugin["xep_0060"].publish(None, DEVICELIST, id="current", payload=devicelist(1001, 2002),
                                           options=options(alice, access_model="open"), timeout=TIMEOUT)
    items = await bob.next_event(alice.boundjid.bare, DEVICELIST, "the new device list")
    item_id, payload = only_item(items, "device list notification")
    if item_id != "current" or not same_xml(payload, devicelist(1001, 2002)):
        fail(f"device list notification: {ET.tostring(items)!r}")
    print("OMEMO_NOTIFY_OK")

    # Both fetch both; carol only because the nodes are open.
    for reader in (bob, carol):
        items = await fetch(reader, alice.boundjid.bare, DEVICELIST, "device list")
        if not same_xml(only_item(items, "device list")[1], devicelist(1001, 2002)):
            fail(f"{reader.boundjid.bare} read the device list: {ET.tostring(items)!r}")
        items = await fetch(reader, alice.boundjid.bare, bundle_node, "bundle")
        if not same_xml(only_item(items, "bundle")[1], alice_bundle):
            fail(f"{reader.boundjid.bare} read the bundle: {ET.tostring(items)!r}")
    print("OMEMO_FETCH_OK bob carol")

    # As Conversations does when a bundle node predates `open`: the publish with options fails on the
    # precondition, the client reconfigures the node and publishes again.
    old_node = f"{AXOLOTL}.bundles:3003"
    old_bundle = bundle("BQidentitykey3003")
    await alice.plugin["xep_0060"].publish(None, old_node, id="current", payload=old_bundle, timeout=TIMEOUT)
    await expect_error(carol.plugin["xep_0060"].get_items(alice.boundjid.bare, old_node, timeout=TIMEOUT),
                       ("not-authorized", "presence-subscription-required"), "carol reads a presence-access bundle")
    await expect_error(
        alice.plugin["xep_0060"].publish(None, old_node, id="current", payload=old_bundle,
                                         options=options(alice, access_model="open"), timeout=TIMEOUT),
        ("conflict", "precondition-not-met"), "publish-options open on a presence-access node")
    iq = await alice.plugin["xep_0060"].get_node_config(None, old_node, timeout=TIMEOUT)
    config = iq["pubsub_owner"]["configure"]["form"].get_values()
    if config.get("pubsub#access_model") != "presence":
        fail(f"the bundle node's configuration: {config}")
    form = alice.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
    form.add_field(var="pubsub#access_model", value="open")
    await alice.plugin["xep_0060"].set_node_config(None, old_node, form, timeout=TIMEOUT)
    await alice.plugin["xep_0060"].publish(None, old_node, id="current", payload=old_bundle,
                                           options=options(alice, access_model="open"), timeout=TIMEOUT)
    items = await fetch(carol, alice.boundjid.bare, old_node, "the reconfigured bundle")
    if not same_xml(only_item(items, "reconfigured bundle")[1], old_bundle):
        fail(f"carol read the reconfigured bundle: {ET.tostring(items)!r}")
    print("OMEMO_RECONFIGURE_TO_OPEN_OK")

    # carol has the same interests but no subscription to alice: no notification for her.
    await carol.barrier()
    if carol.events_about(DEVICELIST):
        fail(f"carol, a stranger, was notified: {[ET.tostring(i) for i in carol.events_about(DEVICELIST)]}")
    print("OMEMO_STRANGER_NOT_NOTIFIED_OK")
    return bob


async def avatars(alice, bob, carol):
    avatar = os.urandom(3000)
    avatar_id = hashlib.sha1(avatar).hexdigest()
    await alice.plugin["xep_0084"].publish_avatar(avatar, timeout=TIMEOUT)
    await alice.plugin["xep_0084"].publish_avatar_metadata(
        {"id": avatar_id, "type": "image/png", "bytes": len(avatar), "width": "64", "height": "64"}, timeout=TIMEOUT)
    items = await bob.next_event(alice.boundjid.bare, AVATAR_METADATA, "alice's avatar metadata")
    item_id, metadata = only_item(items, "avatar metadata")
    info = metadata.find(f"{{{AVATAR_METADATA}}}info") if metadata is not None else None
    if item_id != avatar_id or info is None or info.get("bytes") != str(len(avatar)):
        fail(f"avatar metadata notification: {ET.tostring(items)!r}")
    iq = await bob.plugin["xep_0084"].retrieve_avatar(alice.boundjid.bare, avatar_id, timeout=TIMEOUT)
    if iq["pubsub"]["items"]["item"]["avatar_data"]["value"] != avatar:
        fail("the avatar data bob fetched differs")
    print("AVATAR_PEP_OK", avatar_id)

    # A stranger may not see it (the default access model is presence).
    await expect_error(carol.plugin["xep_0060"].get_items(alice.boundjid.bare, AVATAR_METADATA, timeout=TIMEOUT),
                       ("not-authorized", "presence-subscription-required"), "carol reads alice's avatar")
    print("AVATAR_STRANGER_REFUSED_OK")

    # XEP-0398: vcard-temp shows the PEP avatar.
    iq = await bob.plugin["xep_0054"].get_vcard(alice.boundjid.bare, timeout=TIMEOUT)
    photo = iq["vcard_temp"]["PHOTO"]
    if photo["BINVAL"] != avatar or photo["TYPE"] != "image/png":
        fail(f"vcard-temp PHOTO: type {photo['TYPE']!r}, {len(photo['BINVAL'] or b'')} bytes")
    print("VCARD_SHOWS_PEP_AVATAR_OK")

    # And the other way: a vcard-temp PHOTO set by an older client becomes the PEP avatar.
    newer = os.urandom(2000)
    newer_id = hashlib.sha1(newer).hexdigest()
    vcard = alice.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Alice"
    vcard["PHOTO"]["TYPE"] = "image/jpeg"
    vcard["PHOTO"]["BINVAL"] = newer
    await alice.plugin["xep_0054"].publish_vcard(vcard, timeout=TIMEOUT)
    items = await bob.next_event(alice.boundjid.bare, AVATAR_METADATA, "the avatar from alice's vCard")
    item_id, metadata = only_item(items, "converted avatar metadata")
    info = metadata.find(f"{{{AVATAR_METADATA}}}info") if metadata is not None else None
    if (item_id != newer_id or info is None or info.get("id") != newer_id or info.get("type") != "image/jpeg"
            or info.get("bytes") != str(len(newer))):
        fail(f"converted avatar metadata: {ET.tostring(items)!r}, expected id {newer_id}")
    iq = await bob.plugin["xep_0084"].retrieve_avatar(alice.boundjid.bare, newer_id, timeout=TIMEOUT)
    if iq["pubsub"]["items"]["item"]["avatar_data"]["value"] != newer:
        fail("the converted avatar data differs")
    print("VCARD_TO_PEP_AVATAR_OK", newer_id)

    # Removing the avatar (XEP-0084 §4.6: empty metadata): bob is told, and vcard-temp has no PHOTO any more.
    await alice.plugin["xep_0084"].stop(timeout=TIMEOUT)
    items = await bob.next_event(alice.boundjid.bare, AVATAR_METADATA, "the avatar's removal")
    _, metadata = only_item(items, "empty avatar metadata")
    if metadata is None or len(metadata) != 0:
        fail(f"avatar removal notification: {ET.tostring(items)!r}")
    iq = await bob.plugin["xep_0054"].get_vcard(alice.boundjid.bare, timeout=TIMEOUT)
    if iq["vcard_temp"].xml.find("{vcard-temp}PHOTO") is not None or iq["vcard_temp"]["FN"] != "Alice":
        fail(f"vcard-temp after the avatar's removal: {iq['vcard_temp']}")
    print("AVATAR_REMOVED_OK")


def conference(name, nick, autojoin):
    """A Bookmarks 2 conference as slixmpp's xep_0402 makes it."""
    conf = Conference()
    conf["name"] = name
    conf["autojoin"] = autojoin
    conf["nick"] = nick
    return conf


def bookmarks2_options(client):
    # What XEP-0402 §4 tells clients to publish with.
    return options(client, persist_items="true", max_items="max", send_last_published_item="never",
                   access_model="whitelist")


async def bookmarks(alice, bob):
    tea = f"tea@groups.{args.domain}"
    await alice.plugin["xep_0060"].publish(None, BOOKMARKS2, id=tea, payload=conference("Tea room", "ali", True),
                                           options=bookmarks2_options(alice), timeout=TIMEOUT)
    iq = await alice.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=TIMEOUT)
    legacy = {c["jid"]: c for c in iq["private"]["bookmarks"]["conferences"]}
    if tea not in legacy or legacy[tea]["name"] != "Tea room" or legacy[tea]["nick"] != "ali" \
            or not legacy[tea]["autojoin"]:
        fail(f"the Bookmarks 2 item in private storage: {iq['private']}")
    print("BOOKMARKS2_TO_PRIVATE_OK")

    # An older client of alice's (legacy private storage only) adds a room; her phone follows through Bookmarks 2.
    phone = await login(f"alice@{args.domain}/phone")
    # The server learns what the phone wants notifications for by asking it for its caps (XEP-0115) after its
    # presence, and then sends it the last item of each such node. Once the avatar's last item is here, the server
    # knows the phone's interests: only then can a publish be expected to notify it.
    await phone.next_event(alice.boundjid.bare, AVATAR_METADATA, "the last avatar metadata after login")
    legacy_client = alice
    storage = Bookmarks()
    storage.add_conference(tea, "ali", name="Tea room", autojoin=True)
    cake = f"cake@groups.{args.domain}"
    storage.add_conference(cake, "alice", name="Cake", autojoin=False, password="sponge")
    await legacy_client.plugin["xep_0048"].set_bookmarks(storage, method="xep_0049", timeout=TIMEOUT)
    items = await phone.next_event(alice.boundjid.bare, BOOKMARKS2, "the bookmark stored in private storage")
    item_id, payload = only_item(items, "Bookmarks 2 notification")
    if item_id != cake or payload is None or payload.get("name") != "Cake":
        fail(f"Bookmarks 2 notification: {ET.tostring(items)!r}")
    items = await fetch(phone, alice.boundjid.bare, BOOKMARKS2, "Bookmarks 2")
    rooms = {}
    for item in items:
        conf = item.find(f"{{{BOOKMARKS2}}}conference")
        if conf is None:
            fail(f"Bookmarks 2 item without a conference: {ET.tostring(item)!r}")
        rooms[item.get("id")] = (conf.get("name"), conf.findtext(f"{{{BOOKMARKS2}}}nick"),
                                 conf.findtext(f"{{{BOOKMARKS2}}}password"), conf.get("autojoin"))
    wanted = {tea: ("Tea room", "ali", None, "true"), cake: ("Cake", "alice", "sponge", None)}
    # autojoin="false" may be written or left out.
    if cake in rooms and rooms[cake][3] == "false":
        rooms[cake] = rooms[cake][:3] + (None,)
    if rooms != wanted:
        fail(f"Bookmarks 2 after the legacy store: {rooms}, expected {wanted}")
    print("PRIVATE_TO_BOOKMARKS2_OK", len(rooms), "rooms")

    # The phone removes a bookmark the XEP-0402 way: the legacy view loses it too.
    await phone.plugin["xep_0060"].retract(None, BOOKMARKS2, cake, notify=True, timeout=TIMEOUT)
    iq = await legacy_client.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=TIMEOUT)
    left = sorted(c["jid"] for c in iq["private"]["bookmarks"]["conferences"])
    if left != [tea]:
        fail(f"private storage after the retraction: {left}, expected {[tea]}")
    print("BOOKMARKS2_RETRACT_TO_PRIVATE_OK")

    await expect_error(bob.plugin["xep_0060"].get_items(alice.boundjid.bare, BOOKMARKS2, timeout=TIMEOUT),
                       ("not-allowed", "closed-node"), "bob reads alice's bookmarks")
    print("BOOKMARKS_PRIVATE_TO_OWNER_OK")
    return phone


async def bad_input(alice, bob, carol):
    # Publishing to someone else's PEP service.
    await expect_error(
        alice.plugin["xep_0060"].publish(bob.boundjid.bare, DEVICELIST, id="current", payload=devicelist(666),
                                         options=options(alice, access_model="open"), timeout=TIMEOUT),
        ("forbidden", None), "alice publishes to bob's node")
    await expect_error(bob.plugin["xep_0060"].get_items(bob.boundjid.bare, DEVICELIST, timeout=TIMEOUT),
                       ("item-not-found", None), "bob's node after alice's attempt")
    print("FOREIGN_PUBLISH_FORBIDDEN_OK")

    # publish-options that contradict the open device list node are a failed precondition: nothing published,
    # the node stays open.
    await expect_error(
        alice.plugin["xep_0060"].publish(None, DEVICELIST, id="current", payload=devicelist(3003),
                                         options=options(alice, access_model="presence"), timeout=TIMEOUT),
        ("conflict", "precondition-not-met"), "a publish whose options contradict the node")
    items = await fetch(carol, alice.boundjid.bare, DEVICELIST, "device list after the refused publish")
    if not same_xml(only_item(items, "device list")[1], devicelist(1001, 2002)):
        fail(f"the refused publish changed the device list: {ET.tostring(items)!r}")
    print("PRECONDITION_NOT_MET_OK")

    # An item over the size limit (the stanza itself is within the stanza limit).
    big = element("urn:rookery:interop:big", "blob", "A" * args.item_limit)
    await expect_error(
        alice.plugin["xep_0060"].publish(None, "urn:rookery:interop:big", id="too-big", payload=big,
                                         timeout=TIMEOUT),
        ("not-acceptable", "payload-too-big"), "an item over the size limit")
    await expect_error(alice.plugin["xep_0060"].get_items(alice.boundjid.bare, "urn:rookery:interop:big",
                                                          timeout=TIMEOUT),
                       ("item-not-found", None), "the node of the refused item")
    print("ITEM_TOO_BIG_OK")


async def main():
    alice = await login(f"alice@{args.domain}/laptop")
    carol = await login(f"carol@{args.domain}/phone")
    print("LOGGED_IN", alice.boundjid.full, carol.boundjid.full)
    bob = await omemo(alice, carol)
    await avatars(alice, bob, carol)
    phone = await bookmarks(alice, bob)
    await bad_input(alice, bob, carol)
    for c in (alice, bob, carol, phone):
        c.disconnect()
    await asyncio.sleep(0.2)
    print("PASS")


asyncio.run(main())
