// PEP (XEP-0163 over XEP-0060) as an OMEMO client uses it: alice publishes her device list with publish-options
// `pubsub#access_model=open`; bob, her contact, whose entity capabilities (XEP-0115) list `node+notify`, is
// notified of it and of its next version; carol, a stranger with the same interest, can fetch the open node but
// is not notified, and cannot fetch a node with the default (presence) access model; nobody but alice may publish
// to her nodes.
// Accounts: alice, bob, carol.
import { createHash } from "node:crypto";

import { NS, Session, befriend, check, checkRule, ok, run, setup, show, xml } from "../lib/harness.mjs";

const cfg = setup("pep");

const PUBSUB = "http://jabber.org/protocol/pubsub";
const EVENT = "http://jabber.org/protocol/pubsub#event";
const ERRORS = "http://jabber.org/protocol/pubsub#errors";
const CAPS = "http://jabber.org/protocol/caps";
const AXOLOTL = "eu.siacs.conversations.axolotl";
const DEVICELIST = `${AXOLOTL}.devicelist`;
const NICK = "http://jabber.org/protocol/nick";
const CAPS_NODE = "https://rookery.example/interop/xmppjs";

/** What this scenario's client says it is and wants (XEP-0115 §5.1 hashes exactly this). */
const IDENTITY = { category: "client", type: "phone", name: "xmpp.js pep scenario" };
const FEATURES = [NS.discoInfo, CAPS, `${DEVICELIST}+notify`, `${NICK}+notify`].sort();
const VER = createHash("sha1")
  .update(`${IDENTITY.category}/${IDENTITY.type}//${IDENTITY.name}<${FEATURES.map((f) => `${f}<`).join("")}`)
  .digest("base64");

/**
 * Answers disco#info for this client's capabilities and sends available presence carrying them, as a phone app
 * does at login; resolves once the server has asked (a server need not ask: it may know the hash already).
 */
async function announceCaps(session) {
  session.xmpp.iqCallee.get(NS.discoInfo, "query", (ctx) => {
    const node = ctx.element.attrs.node;
    return xml(
      "query",
      { xmlns: NS.discoInfo, node },
      xml("identity", IDENTITY),
      ...FEATURES.map((v) => xml("feature", { var: v })),
    );
  });
  await session.send(xml("presence", {}, xml("c", { xmlns: CAPS, hash: "sha-1", node: CAPS_NODE, ver: VER })));
}

function publish(node, id, payload, options) {
  const item = xml("item", { id }, payload);
  const pubsub = xml("pubsub", { xmlns: PUBSUB }, xml("publish", { node }, item));
  if (options) {
    pubsub.append(
      xml(
        "publish-options",
        {},
        xml(
          "x",
          { xmlns: "jabber:x:data", type: "submit" },
          xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, `${PUBSUB}#publish-options`)),
          ...Object.entries(options).map(([k, v]) => xml("field", { var: `pubsub#${k}` }, xml("value", {}, v))),
        ),
      ),
    );
  }
  return pubsub;
}

function devicelist(...ids) {
  return xml("list", { xmlns: AXOLOTL }, ...ids.map((id) => xml("device", { id: String(id) })));
}

function items(node) {
  return xml("pubsub", { xmlns: PUBSUB }, xml("items", { node }));
}

/** The device ids of the one item in a pubsub <items/> (of a result or an event), or null. */
function deviceIds(itemsEl) {
  const found = itemsEl?.getChildren("item") ?? [];
  if (found.length !== 1) return null;
  return found[0].getChild("list", AXOLOTL)?.getChildren("device").map((d) => d.attrs.id) ?? null;
}

/**
 * A matcher for a pubsub notification from `from` about `node`, and when `ids` is given, carrying the device list
 * with those ids. (A server may send an item more than once: as the last item when it learns a contact's interest
 * and as a live notification; XEP-0163 allows both, so a check waits for the item it expects.)
 */
function isEvent(from, node, ids) {
  return (el) =>
    el.is("message") &&
    el.attrs.from === from &&
    el.getChild("event", EVENT)?.getChild("items")?.attrs.node === node &&
    (ids === undefined || JSON.stringify(deviceIds(el.getChild("event", EVENT).getChild("items"))) === JSON.stringify(ids));
}

/** The pubsub#errors condition of an error reply, or null. */
function pubsubCondition(reply) {
  const child = reply.getChild("error")?.children.find((c) => typeof c !== "string" && c.attrs.xmlns === ERRORS);
  return child?.name ?? null;
}

run(async () => {
  const alice = await Session.login(cfg, "alice", "phone", { priority: 0 });
  const bob = await Session.login(cfg, "bob", "phone");
  const carol = await Session.login(cfg, "carol", "phone");
  await announceCaps(bob);
  await announceCaps(carol);
  await befriend(alice, bob);
  ok(`alice and bob are contacts; bob and carol announced caps ver ${VER}`);

  // Publish with open access (auto-create); bob is notified.
  await alice.iq("set", undefined, publish(DEVICELIST, "current", devicelist(1111), { access_model: "open" }), "publish of the device list");
  await bob.waitFor("alice's device list [1111] notified", isEvent(alice.bare, DEVICELIST, ["1111"]));
  ok("bob notified of the new device list (+notify in his caps)");

  // A new version: notified again, with the new item.
  await alice.iq("set", undefined, publish(DEVICELIST, "current", devicelist(1111, 2222), { access_model: "open" }), "second publish of the device list");
  await bob.waitFor("alice's updated device list [1111, 2222] notified", isEvent(alice.bare, DEVICELIST, ["1111", "2222"]));
  ok("bob notified of the updated device list");

  // Both fetch it; carol only because the node is open.
  for (const reader of [bob, carol]) {
    const reply = await reader.iq("get", alice.bare, items(DEVICELIST), `${reader.user} fetches alice's device list`);
    const ids = deviceIds(reply.getChild("pubsub", PUBSUB)?.getChild("items"));
    check(JSON.stringify(ids) === JSON.stringify(["1111", "2222"]), `${reader.user} fetches the current device list: ${show(reply)}`);
  }
  ok("bob and carol fetch the open device list");

  // carol wants the same notifications but has no subscription to alice: nothing for her. Barrier: alice's
  // publishes are done; whatever the server queued for carol arrives before her ping's reply.
  await carol.barrier();
  check(carol.peek(isEvent(alice.bare, DEVICELIST)).length === 0, `carol, a stranger, was notified: ${carol.peek(isEvent(alice.bare, DEVICELIST)).map(show).join(" ")}`);
  ok("carol, not a contact, is not notified");

  // A node with the default access model (presence): the contact reads it, the stranger may not.
  await alice.iq("set", undefined, publish(NICK, "current", xml("nick", { xmlns: NICK }, "Alice")), "publish of the nick");
  await bob.waitFor("alice's nick notification", isEvent(alice.bare, NICK));
  const nick = await bob.iq("get", alice.bare, items(NICK), "bob fetches alice's nick");
  check(nick.getChild("pubsub", PUBSUB)?.getChild("items")?.getChild("item")?.getChildText("nick", NICK) === "Alice", `bob reads the nick: ${show(nick)}`);
  const refused = await carol.iqRaw("get", alice.bare, items(NICK));
  check(refused.error, `carol's fetch of a presence-access node is refused: ${show(refused.reply)}`);
  checkRule(
    cfg,
    "pep-presence-access-error",
    refused.error.condition === "not-authorized" && pubsubCondition(refused.reply) === "presence-subscription-required",
    `carol's fetch of a presence-access node is not-authorized + presence-subscription-required (XEP-0060 §6.5.9.2): ${show(refused.reply)}`,
  );
  ok("a presence-access node: read by the contact, refused to the stranger");

  // Only the owner publishes.
  const foreign = await bob.iqRaw("set", alice.bare, publish(DEVICELIST, "current", devicelist(6666)));
  check(
    foreign.error?.condition === "forbidden" && foreign.error.type === "auth",
    `bob's publish to alice's node is an auth/forbidden error (XEP-0060 §7.1.3.1): ${show(foreign.reply)}`,
  );
  const after = await carol.iq("get", alice.bare, items(DEVICELIST), "carol fetches the device list again");
  check(JSON.stringify(deviceIds(after.getChild("pubsub", PUBSUB)?.getChild("items"))) === JSON.stringify(["1111", "2222"]), `bob's refused publish changed nothing: ${show(after)}`);
  ok(`a publish to someone else's node is refused (${foreign.error.condition})`);
});
