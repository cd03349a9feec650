// Everyday account and server services: vcard-temp (XEP-0054) set and get, by the owner and by someone else;
// private XML storage (XEP-0049); software version (XEP-0092), entity time (XEP-0202) and last activity of the
// server, i.e. its uptime (XEP-0012), all asked of the server's domain.
// Accounts: alice, bob.
import { NS, Session, check, ok, run, setup, show, xml } from "../lib/harness.mjs";

const cfg = setup("services");

run(async () => {
  const alice = await Session.login(cfg, "alice", "desk");
  const bob = await Session.login(cfg, "bob", "desk");

  // --- vcard-temp (XEP-0054): set without 'to', get by the owner and by bob (to alice's bare JID).
  const card = xml(
    "vCard",
    { xmlns: NS.vcard },
    xml("FN", {}, "Alice Liddell"),
    xml("NICKNAME", {}, "ali"),
    xml("URL", {}, "https://example.org/alice"),
  );
  await alice.iq("set", undefined, card, "vcard-temp set");
  for (const [who, s, to] of [["alice", alice, undefined], ["bob", bob, alice.bare]]) {
    const reply = await s.iq("get", to, xml("vCard", { xmlns: NS.vcard }), `${who}'s vcard-temp get`);
    const got = reply.getChild("vCard", NS.vcard);
    check(got, `${who}: a vcard-temp get returns <vCard xmlns='vcard-temp'/>: ${show(reply)}`);
    check(got.getChildText("FN") === "Alice Liddell", `${who}: the vCard's FN is the one stored: ${show(got)}`);
    check(got.getChildText("NICKNAME") === "ali", `${who}: the vCard's NICKNAME is the one stored: ${show(got)}`);
  }
  // Replaced as a whole by the next set.
  await alice.iq("set", undefined, xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, "Alice L.")), "second vcard-temp set");
  const replaced = (await bob.iq("get", alice.bare, xml("vCard", { xmlns: NS.vcard }), "vcard-temp get after the update")).getChild("vCard", NS.vcard);
  check(replaced?.getChildText("FN") === "Alice L.", `the vCard is replaced by the second set: ${show(replaced)}`);
  check(!replaced.getChild("NICKNAME"), `fields left out of the second set are gone: ${show(replaced)}`);
  // Someone may not set another account's vCard.
  const foreign = await bob.iqRaw("set", alice.bare, xml("vCard", { xmlns: NS.vcard }, xml("FN", {}, "Mallory")));
  check(foreign.error, `setting another account's vCard is refused: ${show(foreign.reply)}`);
  const still = (await alice.iq("get", undefined, xml("vCard", { xmlns: NS.vcard }), "vcard-temp get after bob's attempt")).getChild("vCard", NS.vcard);
  check(still?.getChildText("FN") === "Alice L.", `bob's attempt changed nothing: ${show(still)}`);
  ok(`vcard-temp: set, get by owner and contact, replace; a foreign set is refused (${foreign.error.condition})`);

  // --- Private XML storage (XEP-0049).
  const prefs = xml("query", { xmlns: NS.private }, xml("prefs", { xmlns: "rookery:test:prefs" }, xml("colour", {}, "teal")));
  await alice.iq("set", undefined, prefs, "private storage set");
  const stored = await alice.iq("get", undefined, xml("query", { xmlns: NS.private }, xml("prefs", { xmlns: "rookery:test:prefs" })), "private storage get");
  const got = stored.getChild("query", NS.private)?.getChild("prefs", "rookery:test:prefs");
  check(got?.getChildText("colour") === "teal", `private storage returns what was stored: ${show(stored)}`);
  // A namespace with nothing stored comes back empty (XEP-0049 §2.2).
  const none = await alice.iq("get", undefined, xml("query", { xmlns: NS.private }, xml("other", { xmlns: "rookery:test:nothing" })), "private storage get of an empty namespace");
  const empty = none.getChild("query", NS.private)?.getChild("other", "rookery:test:nothing");
  check(empty && empty.children.length === 0, `an unknown namespace comes back as an empty element: ${show(none)}`);
  // Another account's private storage is not reachable.
  const peek = await bob.iqRaw("get", alice.bare, xml("query", { xmlns: NS.private }, xml("prefs", { xmlns: "rookery:test:prefs" })));
  check(peek.error, `another account's private storage is refused: ${show(peek.reply)}`);
  check(!peek.reply.toString().includes("teal"), "nothing of alice's private data leaks to bob");
  ok(`private storage: set and get, empty namespace, foreign get refused (${peek.error.condition})`);

  // --- Server software version (XEP-0092).
  const version = (await alice.iq("get", cfg.domain, xml("query", { xmlns: NS.version }), "software version of the server")).getChild("query", NS.version);
  check(version?.getChildText("name") && version.getChildText("version"), `the server tells its name and version: ${show(version)}`);
  ok(`XEP-0092: ${version.getChildText("name")} ${version.getChildText("version")}`);

  // --- Entity time (XEP-0202): UTC in XEP-0082 form and a time-zone offset.
  const time = (await alice.iq("get", cfg.domain, xml("time", { xmlns: NS.time }), "entity time of the server")).getChild("time", NS.time);
  const utc = time?.getChildText("utc") ?? "";
  const tzo = time?.getChildText("tzo") ?? "";
  check(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(utc), `<utc/> is a UTC XEP-0082 date-time: ${show(time)}`);
  check(/^(Z|[+-]\d{2}:\d{2})$/.test(tzo), `<tzo/> is Z or ±hh:mm: ${show(time)}`);
  // Same machine, same clock: within a minute of ours (a sanity bound, not a timing measurement).
  check(Math.abs(Date.parse(utc) - Date.now()) < 60000, `the server's UTC time ${utc} is the current time`);
  ok(`XEP-0202: ${utc} ${tzo}`);

  // --- Last activity of the server = its uptime (XEP-0012 §4).
  const last = (await alice.iq("get", cfg.domain, xml("query", { xmlns: NS.last }), "last activity (uptime) of the server")).getChild("query", NS.last);
  check(/^\d+$/.test(last?.attrs.seconds ?? ""), `the server answers with seconds='N': ${show(last)}`);
  ok(`XEP-0012: server up ${last.attrs.seconds} s`);

  // --- All of them advertised (XEP-0030).
  const info = await alice.iq("get", cfg.domain, xml("query", { xmlns: NS.discoInfo }), "disco#info of the server");
  const features = info.getChild("query", NS.discoInfo).getChildren("feature").map((f) => f.attrs.var);
  for (const ns of [NS.version, NS.time, NS.last]) {
    check(features.includes(ns), `the server's disco#info lists ${ns}: ${features.join(" ")}`);
  }
  const own = await alice.iq("get", alice.bare, xml("query", { xmlns: NS.discoInfo }), "disco#info of alice's account");
  const ownFeatures = own.getChild("query", NS.discoInfo).getChildren("feature").map((f) => f.attrs.var);
  check(
    features.includes(NS.vcard) || ownFeatures.includes(NS.vcard),
    `vcard-temp is advertised by the server or the account: ${features.join(" ")} | ${ownFeatures.join(" ")}`,
  );
  ok("disco#info lists version, time, last and vcard-temp");
});
