// Presence subscriptions (RFC 6121 §3) and presence exchange (§4): a mutual subscription built by two handshakes,
// presence both ways, unavailable on logout, a pending request delivered at the contact's next login, and
// pre-approval (§3.4) when the server advertises it.
// Accounts: alice, bob, carol, dave.
import {
  NS,
  Session,
  check,
  checkRule,
  clearRoster,
  isMessageWithBody,
  isPresence,
  ok,
  rosterItem,
  rosterPush,
  run,
  setup,
  show,
  xml,
} from "../lib/harness.mjs";

const cfg = setup("subscriptions");
const jidOf = (user) => `${user}@${cfg.domain}`;

/** Logs in, gets the roster (so the session is interested) after clearing it, and sends initial presence. */
async function online(user, resource) {
  const s = await Session.login(cfg, user, resource);
  await clearRoster(s);
  await s.sendPresence({ priority: 0 });
  return s;
}

/** Waits for a subscription stanza of `type` from `from`'s bare JID (RFC 6121 §3.1.2 stamps the bare JID). */
async function subscriptionStanza(session, type, from) {
  const p = await session.waitFor(
    `presence type='${type}' from ${from}`,
    (el) => el.is("presence") && el.attrs.type === type && (el.attrs.from ?? "").split("/")[0] === from,
  );
  check(p.attrs.from === from, `${session.label}: a '${type}' is stamped with the sender's bare JID ${from}, was ${p.attrs.from}`);
  return p;
}

/** Waits for a roster push about `contact` with the given subscription and ask. */
async function pushed(session, contact, subscription, ask) {
  for (;;) {
    const item = await rosterPush(session, contact, `${session.label}: a push of ${contact} with subscription='${subscription}'`);
    // A server may push intermediate states (e.g. the 'ask' being set) before this one; skip those.
    if ((item.attrs.subscription ?? "none") === subscription && item.attrs.ask === ask) return item;
    const progress = ["none", "to", "from", "both"];
    check(
      progress.includes(item.attrs.subscription ?? "none"),
      `${session.label}: a push with a valid subscription state: ${show(item)}`,
    );
  }
}

async function rosterShows(session, contact, subscription) {
  const query = await session.roster();
  const item = rosterItem(query, contact);
  check(
    item && item.attrs.subscription === subscription && item.attrs.ask === undefined,
    `${session.label}: the roster shows ${contact} with subscription='${subscription}' and no ask: ${show(query)}`,
  );
}

run(async () => {
  const alice = await online("alice", "phone");
  const bob = await online("bob", "laptop");
  const A = jidOf("alice");
  const B = jidOf("bob");

  // 1. alice asks bob: alice's roster gets bob with ask='subscribe' (§3.1.2), bob gets the request (§3.1.3).
  await alice.sendPresence({ to: B, type: "subscribe" });
  await pushed(alice, B, "none", "subscribe");
  await subscriptionStanza(bob, "subscribe", A);
  ok("alice's subscription request: ask='subscribe' pushed to alice, request delivered to bob");

  // 2. bob approves: bob's roster gets alice with 'from' (§3.1.5), alice's gets bob with 'to' (§3.1.6), and alice
  //    receives bob's current presence from his available resource.
  await bob.sendPresence({ to: A, type: "subscribed" });
  await pushed(bob, A, "from", undefined);
  await subscriptionStanza(alice, "subscribed", B);
  await pushed(alice, B, "to", undefined);
  await alice.waitFor(`bob's available presence after his approval`, (el) => isPresence(bob.jid)(el) && el.attrs.from === bob.jid);
  ok("bob approved: bob has 'from', alice has 'to' and bob's presence");

  // 3. bob asks alice back and she approves: 'both' on each side, and bob gets alice's presence.
  await bob.sendPresence({ to: A, type: "subscribe" });
  await pushed(bob, A, "from", "subscribe");
  await subscriptionStanza(alice, "subscribe", B);
  await alice.sendPresence({ to: B, type: "subscribed" });
  await pushed(alice, B, "both", undefined);
  await subscriptionStanza(bob, "subscribed", A);
  await pushed(bob, A, "both", undefined);
  await bob.waitFor(`alice's available presence after her approval`, (el) => isPresence(alice.jid)(el) && el.attrs.from === alice.jid);
  await rosterShows(alice, B, "both");
  await rosterShows(bob, A, "both");
  ok("mutual subscription: both rosters show subscription='both'");

  // 4. Presence both ways (§4.4: broadcast to contacts with a 'from' subscription).
  await alice.sendPresence({ show: "away", status: "at lunch" });
  const fromAlice = await bob.waitFor("alice's away presence", (el) => isPresence(alice.jid)(el) && el.getChildText("show") === "away");
  check(fromAlice.attrs.from === alice.jid && fromAlice.getChildText("status") === "at lunch", `bob gets alice's presence from her full JID with her status: ${show(fromAlice)}`);
  await bob.sendPresence({ show: "dnd" });
  const fromBob = await alice.waitFor("bob's dnd presence", (el) => isPresence(bob.jid)(el) && el.getChildText("show") === "dnd");
  check(fromBob.attrs.from === bob.jid, `alice gets bob's presence from his full JID: ${show(fromBob)}`);
  ok("presence seen both ways");

  // 5. A second resource of alice comes online: it gets bob's presence (the server probes, §4.3), bob gets its.
  const aliceTablet = await Session.login(cfg, "alice", "tablet");
  await aliceTablet.sendPresence({ priority: 0 });
  await aliceTablet.waitFor("bob's presence answering the probe of alice's new resource", (el) => isPresence(bob.jid)(el) && el.attrs.from === bob.jid);
  await bob.waitFor("the initial presence of alice's second resource", (el) => isPresence(aliceTablet.jid)(el) && el.attrs.from === aliceTablet.jid);
  ok("a new resource gets its contacts' presence and is announced to them");

  // 6. bob logs out: alice's resources get unavailable presence from his full JID (§4.5.2).
  const bobJid = bob.jid;
  await bob.close();
  for (const s of [alice, aliceTablet]) {
    const gone = await s.waitFor(`unavailable presence from ${bobJid}`, isPresence(bobJid, "unavailable"));
    check(gone.attrs.from === bobJid, `${s.label}: the unavailable presence comes from bob's full JID: ${show(gone)}`);
  }
  ok("unavailable presence seen when bob logs out");

  // 7. A request to an account that is offline is delivered when it next sends initial presence (§3.1.3).
  const C = jidOf("carol");
  await alice.sendPresence({ to: C, type: "subscribe" });
  await pushed(alice, C, "none", "subscribe");
  const carol = await Session.login(cfg, "carol", "desktop");
  await carol.roster();
  await carol.sendPresence({ priority: 0 });
  await subscriptionStanza(carol, "subscribe", A);
  ok("a pending subscription request is delivered when the contact logs in");

  // 8. Pre-approval (§3.4), when the server advertises it.
  if (!alice.postAuthFeatures()?.getChild("sub", NS.preApproval)) {
    console.log("SKIP pre-approval: the server does not advertise urn:xmpp:features:pre-approval after login");
    return;
  }
  const D = jidOf("dave");
  await alice.sendPresence({ to: D, type: "subscribed" });
  // The pre-approval shows in alice's roster as approved='true' (§3.4.1); no subscription yet.
  const preApproved = await rosterPush(alice, D, "the push of the pre-approved dave");
  check((preApproved.attrs.subscription ?? "none") === "none", `the pre-approved contact has subscription 'none': ${show(preApproved)}`);
  checkRule(
    cfg,
    "preapproval-approved-flag",
    preApproved.attrs.approved === "true",
    `a pre-approved contact is pushed with approved='true' (RFC 6121 §3.4.2): ${show(preApproved)}`,
  );
  const dave = await online("dave", "pc");
  await dave.sendPresence({ to: A, type: "subscribe" });
  // alice's server approves on her behalf: dave gets 'subscribed' and her presence, alice never sees the request.
  await subscriptionStanza(dave, "subscribed", A);
  await pushed(dave, A, "to", undefined);
  await dave.waitFor("alice's presence after the automatic approval", (el) => isPresence(A)(el) && el.attrs.type === undefined);
  await pushed(alice, D, "from", undefined);
  await dave.send(xml("message", { to: alice.jid, type: "chat" }, xml("body", {}, "after pre-approval")));
  await alice.waitFor("dave's message", isMessageWithBody("after pre-approval"));
  const asked = alice.peek((el) => el.is("presence") && el.attrs.type === "subscribe" && (el.attrs.from ?? "").startsWith(D));
  check(asked.length === 0, `a pre-approved request is not delivered to alice: ${asked.map(show).join(" ")}`);
  ok("pre-approval: dave's request was approved by alice's server without asking her");
});
