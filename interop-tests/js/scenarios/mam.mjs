// Message archive (XEP-0313) with stanza ids (XEP-0359) and RSM paging (XEP-0059): alice's phone and bob talk;
// bob sees the archive's stanza id on what he receives; alice's tablet, which saw nothing, reads the history a page
// at a time both ways, filters it by contact and gets bad-request for a date that is not one.
// Accounts: alice, bob, carol.
import { NS, Session, check, errorOf, isMessageWithBody, ok, run, setup, show, xml } from "../lib/harness.mjs";

const cfg = setup("mam");
const MAM = "urn:xmpp:mam:2";
const RSM = "http://jabber.org/protocol/rsm";
const SID = "urn:xmpp:sid:0";
const DATA = "jabber:x:data";
const FORWARD = "urn:xmpp:forward:0";

let queries = 0;

/** Runs a MAM query on `session`'s own archive; returns { bodies, ids, fin } or { error }. */
async function query(session, { fields = {}, rsm = {} } = {}) {
  const queryid = `mam-${++queries}`;
  const children = [];
  if (Object.keys(fields).length) {
    const form = xml("x", { xmlns: DATA, type: "submit" }, xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, MAM)));
    for (const [name, value] of Object.entries(fields)) form.append(xml("field", { var: name }, xml("value", {}, value)));
    children.push(form);
  }
  if (Object.keys(rsm).length) {
    children.push(xml("set", { xmlns: RSM }, ...Object.entries(rsm).map(([name, value]) => xml(name, {}, value))));
  }
  const { reply, error } = await session.iqRaw("set", undefined, xml("query", { xmlns: MAM, queryid }, ...children));
  // Every result for this query arrived before the IQ reply.
  const results = session.peek((el) => el.is("message") && el.getChild("result", MAM)?.attrs.queryid === queryid);
  session.discard((el) => results.includes(el));
  if (error) return { error, reply };
  const fin = reply.getChild("fin", MAM);
  check(fin, `a query is answered with <fin/>: ${show(reply)}`);
  const bodies = results.map((m) => m.getChild("result", MAM).getChild("forwarded", FORWARD).getChild("message").getChildText("body"));
  const ids = results.map((m) => m.getChild("result", MAM).attrs.id);
  const set = fin.getChild("set", RSM);
  return { bodies, ids, complete: fin.attrs.complete === "true", first: set?.getChildText("first"), last: set?.getChildText("last") };
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

run(async () => {
  const phone = await Session.login(cfg, "alice", "phone", { priority: 0 });
  const bob = await Session.login(cfg, "bob", "pc", { priority: 0 });
  const carol = await Session.login(cfg, "carol", "pc", { priority: 0 });

  const sent = [];
  for (let i = 0; i < 7; i++) {
    const body = `to bob ${i}`;
    await phone.send(xml("message", { to: bob.bare, type: "chat", id: `m${i}` }, xml("body", {}, body)));
    sent.push(body);
    const got = await bob.waitFor(`alice's message ${i}`, isMessageWithBody(body));
    const ids = got.getChildren("stanza-id", SID);
    check(ids.length === 1 && ids[0].attrs.by === bob.bare && ids[0].attrs.id, `bob's copy carries one stanza id by his account: ${show(got)}`);
    if (i === 3) {
      await carol.send(xml("message", { to: phone.bare, type: "chat" }, xml("body", {}, "from carol")));
      await phone.waitFor("carol's message", isMessageWithBody("from carol"));
      sent.push("from carol");
    }
  }
  ok("bob's copies carry the stanza id of his archive");

  const tablet = await Session.login(cfg, "alice", "tablet");
  const info = await tablet.iq("get", tablet.bare, xml("query", { xmlns: NS.discoInfo }), "disco#info of the account");
  const features = info.getChild("query", NS.discoInfo).getChildren("feature").map((f) => f.attrs.var);
  check(features.includes(MAM), `the account advertises ${MAM}: ${features.join(" ")}`);

  // Forwards, three at a time.
  const forwards = [];
  let page = await query(tablet, { rsm: { max: "3" } });
  forwards.push(...page.bodies);
  while (!page.complete) {
    check(page.last === page.ids.at(-1), `<last/> names the page's last message: ${page.last}`);
    page = await query(tablet, { rsm: { max: "3", after: page.last } });
    forwards.push(...page.bodies);
  }
  check(same(forwards, sent), `forwards: ${forwards} should be ${sent}`);
  ok("paging forwards (after) returns the whole history in order");

  // Backwards from the last page.
  const backwards = [];
  page = await query(tablet, { rsm: { max: "3", before: "" } });
  backwards.unshift(...page.bodies);
  while (!page.complete) {
    check(page.first === page.ids[0], `<first/> names the page's first message: ${page.first}`);
    page = await query(tablet, { rsm: { max: "3", before: page.first } });
    backwards.unshift(...page.bodies);
  }
  check(same(backwards, sent), `backwards: ${backwards} should be ${sent}`);
  ok("paging backwards (before) returns the whole history in order");

  const withCarol = await query(tablet, { fields: { with: `carol@${cfg.domain}` } });
  check(same(withCarol.bodies, ["from carol"]) && withCarol.complete, `with carol: ${withCarol.bodies}`);
  const withBob = await query(tablet, { fields: { with: bob.bare }, rsm: { max: "50" } });
  check(same(withBob.bodies, sent.filter((b) => b !== "from carol")), `with bob: ${withBob.bodies}`);
  ok("the with filter");

  const bad = await query(tablet, { fields: { start: "last tuesday" } });
  check(bad.error?.condition === "bad-request", `a start that is not a date gets bad-request: ${show(bad.reply)}`);
  const unknown = await query(tablet, { rsm: { after: "no-such-id" } });
  check(unknown.error?.condition === "item-not-found", `an unknown id gets item-not-found: ${show(unknown.reply)}`);
  ok("bad dates and unknown ids are refused");

  for (const s of [phone, bob, carol, tablet]) await s.close();
});
