// Roster management (RFC 6121 §2): versioning feature, get with and without 'ver', set with name and groups,
// pushes to every interested resource, update, remove, and the error cases of §2.3.3 and §2.5.3.
// Accounts: alice, bob (bob only as a contact; he does not log in).
import {
  NS,
  Session,
  check,
  checkRule,
  clearRoster,
  groupsOf,
  isRosterPush,
  ok,
  rosterItem,
  rosterPush,
  run,
  setup,
  show,
  xml,
} from "../lib/harness.mjs";

const cfg = setup("roster");
const bob = `bob@${cfg.domain}`;

function rosterSet(item, ...children) {
  return xml("query", { xmlns: NS.roster }, xml("item", item, ...children));
}

/** Sends a roster set that must be refused with `condition`; returns the error. */
async function refused(session, what, to, query, condition, rule) {
  const { reply, error } = await session.iqRaw("set", to, query);
  const good = error?.condition === condition;
  if (!rule) check(good, `${what}: expected a ${condition} error, got ${show(reply)}`);
  else checkRule(cfg, rule, good, `${what}: expected a ${condition} error, got ${show(reply)}`);
  if (good) ok(`${what} -> ${condition}`);
  return error;
}

run(async () => {
  const first = await Session.login(cfg, "alice", "first");
  const features = first.postAuthFeatures();
  if (features) {
    check(
      features.getChild("ver", NS.rosterver),
      `roster versioning: the stream features after login must include <ver xmlns='${NS.rosterver}'/> (RFC 6121 §2.6.1); got ${show(features)}`,
    );
    ok("the server advertises roster versioning");
  } else {
    console.log("SKIP the roster versioning feature: the login used SASL2, which sends no stream features after it");
  }
  await clearRoster(first);

  // A get without 'ver': the whole (empty) roster.
  let query = await first.roster();
  check(query, "a roster get without 'ver' is answered with a <query/>");
  check(query.getChildren("item").length === 0, `the roster is empty at the start: ${show(query)}`);
  // With 'ver' (empty: "no cached roster"), the server that advertises versioning includes a version (§2.6.3).
  query = await first.roster("");
  check(query && typeof query.attrs.ver === "string", `a roster get with ver='' returns the roster with a 'ver' attribute: ${show(query)}`);
  const emptyVer = query.attrs.ver;
  ok(`roster get with and without 'ver' (version ${JSON.stringify(emptyVer)})`);

  // A second resource becomes interested by getting the roster.
  const second = await Session.login(cfg, "alice", "second");
  await second.roster();

  // Set an item with a name and two groups: a result, and a push to both interested resources (§2.3.2).
  await first.iq(
    "set",
    undefined,
    rosterSet({ jid: bob, name: "Bob" }, xml("group", {}, "Friends"), xml("group", {}, "Work")),
    "roster set of bob",
  );
  for (const s of [first, second]) {
    const item = await rosterPush(s, bob, `${s.label}: the push after adding bob`);
    check(item.attrs.name === "Bob", `${s.label}: the pushed item has name='Bob': ${show(item)}`);
    check(
      JSON.stringify(groupsOf(item)) === JSON.stringify(["Friends", "Work"]),
      `${s.label}: the pushed item has the groups Friends and Work: ${show(item)}`,
    );
    check(
      (item.attrs.subscription ?? "none") === "none",
      `${s.label}: a new item has subscription 'none': ${show(item)}`,
    );
    check(item.attrs.ask === undefined, `${s.label}: a new item has no 'ask': ${show(item)}`);
  }
  ok("roster set with name and groups, pushed to both interested resources");

  query = await second.roster();
  const got = rosterItem(query, bob);
  check(got && got.attrs.name === "Bob", `the roster now holds bob with his name: ${show(query)}`);
  check(JSON.stringify(groupsOf(got)) === JSON.stringify(["Friends", "Work"]), `bob's groups are kept: ${show(got)}`);
  ok("roster get returns the new item");

  // With the version from before the change, the client gets either the whole roster (with a new version) or an
  // empty result followed by pushes of what changed (§2.6.3).
  const changedVer = (await first.roster("")).attrs.ver;
  const verChanged = checkRule(
    cfg,
    "roster-ver-first-change",
    changedVer !== emptyVer,
    `the roster version must change when the roster does (RFC 6121 §2.6.1): it was ${JSON.stringify(emptyVer)} before adding bob and is ${JSON.stringify(changedVer)} after`,
  );
  if (verChanged) {
    query = await first.roster(emptyVer);
    if (query) {
      check(rosterItem(query, bob), `a get with a stale version returns bob: ${show(query)}`);
      check(query.attrs.ver !== emptyVer, `a get with a stale version returns a newer version: ${show(query)}`);
    } else {
      await rosterPush(first, bob, "the push of bob after a get with a stale version");
    }
  }
  // With the current version the roster is not sent again (an empty result, or pushes of nothing).
  const current = (await first.roster("")).attrs.ver;
  query = await first.roster(current);
  check(
    query === null || query.attrs.ver === current,
    `a get with the current version returns an empty result or the same version: ${show(query)}`,
  );
  ok("roster versioning: stale and current versions");

  // Update: new name, one group fewer.
  await first.iq("set", undefined, rosterSet({ jid: bob, name: "Robert" }, xml("group", {}, "Work")), "roster update of bob");
  for (const s of [first, second]) {
    const item = await rosterPush(s, bob, `${s.label}: the push after updating bob`);
    check(
      item.attrs.name === "Robert" && JSON.stringify(groupsOf(item)) === '["Work"]',
      `${s.label}: the pushed item is the updated one (name Robert, group Work): ${show(item)}`,
    );
  }
  ok("roster update pushed to both resources");

  // Error cases of §2.3.3. Nothing may change: no push follows a refused set.
  await refused(
    first,
    "an item with a duplicate group",
    undefined,
    rosterSet({ jid: bob }, xml("group", {}, "Work"), xml("group", {}, "Work")),
    "bad-request",
    "roster-duplicate-group",
  );
  await refused(
    first,
    "an item with an empty group",
    undefined,
    rosterSet({ jid: `carol@${cfg.domain}` }, xml("group", {}, "")),
    "not-acceptable",
    "roster-empty-group",
  );
  await refused(
    first,
    "a roster set with two items",
    undefined,
    xml("query", { xmlns: NS.roster }, xml("item", { jid: bob }), xml("item", { jid: `carol@${cfg.domain}` })),
    "bad-request",
  );
  // A set addressed to another account's roster comes from someone who may not change it (§2.3.3: forbidden).
  await refused(first, "a roster set sent to bob's account", bob, rosterSet({ jid: `dave@${cfg.domain}` }), "forbidden", "roster-foreign-set");
  // An item for the user's own bare JID: RFC 6121 does not say; Prosody refuses it with not-allowed, and so
  // must a drop-in replacement.
  await refused(first, "an item for the user's own bare JID", undefined, rosterSet({ jid: first.bare }), "not-allowed");
  // Removing an item that is not there: item-not-found (§2.5.3).
  await refused(
    first,
    "removing an item that is not in the roster",
    undefined,
    rosterSet({ jid: `nobody-here@${cfg.domain}`, subscription: "remove" }),
    "item-not-found",
  );
  // Whatever a server did with the refused sets, the order of its replies says whether a push came first.
  await first.barrier();
  await second.barrier();
  for (const s of [first, second]) {
    const stray = s.peek((el) => el.is("iq") && el.attrs.type === "set");
    // A server that accepted a deviating set (Prosody merges duplicate groups, keeps empty ones) pushes it.
    const unexpected = stray.filter((el) => {
      const jid = el.getChild("query", NS.roster)?.getChild("item")?.attrs.jid;
      if (jid === bob && cfg.deviations.has("roster-duplicate-group")) return false;
      if (jid === `carol@${cfg.domain}` && cfg.deviations.has("roster-empty-group")) return false;
      return true;
    });
    check(unexpected.length === 0, `${s.label}: a refused roster set is not pushed: ${unexpected.map(show).join(" ")}`);
    s.discard((el) => el.is("iq") && el.attrs.type === "set");
  }
  query = await first.roster();
  check(!rosterItem(query, first.bare), `no item for oneself was stored: ${show(query)}`);
  check(!rosterItem(query, `dave@${cfg.domain}`), `the roster set sent to bob's account changed nothing here: ${show(query)}`);
  if (!cfg.deviations.has("roster-empty-group")) {
    check(!rosterItem(query, `carol@${cfg.domain}`), `the refused item with an empty group was not stored: ${show(query)}`);
  } else if (rosterItem(query, `carol@${cfg.domain}`)) {
    await first.iq("set", undefined, rosterSet({ jid: `carol@${cfg.domain}`, subscription: "remove" }), "cleaning up carol");
    for (const s of [first, second]) await rosterPush(s, `carol@${cfg.domain}`, "the push removing carol");
  }
  ok("refused roster sets changed nothing");

  // Remove: a result, and a push with subscription='remove' to both resources (§2.5.2).
  await first.iq("set", undefined, rosterSet({ jid: bob, subscription: "remove" }), "removing bob");
  for (const s of [first, second]) {
    const item = await rosterPush(s, bob, `${s.label}: the push after removing bob`);
    check(item.attrs.subscription === "remove", `${s.label}: the removal push has subscription='remove': ${show(item)}`);
  }
  query = await second.roster();
  check(!rosterItem(query, bob), `bob is gone from the roster: ${show(query)}`);
  ok("roster remove pushed to both resources");

  // A resource that never asked for the roster is not interested and gets no push (§2.1.6).
  const third = await Session.login(cfg, "alice", "third");
  await first.iq("set", undefined, rosterSet({ jid: bob }), "adding bob again");
  await rosterPush(first, bob, "the push after adding bob again");
  await third.barrier();
  check(
    third.peek(isRosterPush(third, bob)).length === 0,
    `a resource that did not request the roster gets no roster push: ${third.peek(() => true).map(show).join(" ")}`,
  );
  ok("no push to a resource that never requested the roster");
});
