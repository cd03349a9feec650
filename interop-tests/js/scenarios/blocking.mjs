// Blocking command (XEP-0191): alice blocks bob, a mutual contact; his messages and presence stop reaching her,
// hers stop reaching him, her messages to him are refused; unblocking restores all of it.
// Accounts: alice, bob.
import {
  NS,
  Session,
  befriend,
  check,
  clearRoster,
  errorOf,
  isMessageWithBody,
  isPresence,
  ok,
  run,
  setup,
  show,
  xml,
} from "../lib/harness.mjs";

const cfg = setup("blocking");

async function blocklist(session) {
  const reply = await session.iq("get", undefined, xml("blocklist", { xmlns: NS.blocking }), "blocklist get");
  const list = reply.getChild("blocklist", NS.blocking);
  check(list, `a blocklist get returns <blocklist/>: ${show(reply)}`);
  return list.getChildren("item").map((i) => i.attrs.jid);
}

/** Waits for a blocking push (an IQ set with <block/> or <unblock/>) naming `contact` (or, for unblock-all, none). */
async function blockPush(session, name, contact) {
  const push = await session.waitFor(`a <${name}/> push${contact ? ` for ${contact}` : ""}`, (el) => {
    const child = el.is("iq") && el.attrs.type === "set" ? el.getChild(name, NS.blocking) : undefined;
    if (!child) return false;
    const jids = child.getChildren("item").map((i) => i.attrs.jid);
    return contact ? jids.includes(contact) : jids.length === 0;
  });
  check(push.attrs.from === undefined || push.attrs.from === session.bare, `a blocking push comes from the account itself: ${show(push)}`);
}

run(async () => {
  const phone = await Session.login(cfg, "alice", "phone");
  const bob = await Session.login(cfg, "bob", "pc");
  for (const s of [phone, bob]) {
    await clearRoster(s);
    await s.sendPresence({ priority: 0 });
  }
  await befriend(phone, bob);
  const tablet = await Session.login(cfg, "alice", "tablet", { priority: 0 });
  await bob.waitFor("the presence of alice's tablet", isPresence(tablet.jid));

  const info = await phone.iq("get", cfg.domain, xml("query", { xmlns: NS.discoInfo }), "disco#info of the server");
  const features = info.getChild("query", NS.discoInfo).getChildren("feature").map((f) => f.attrs.var);
  check(features.includes(NS.blocking), `the server advertises ${NS.blocking} (XEP-0191 §2): ${features.join(" ")}`);
  for (const s of [phone, tablet]) {
    check((await blocklist(s)).length === 0, `${s.label}: the blocklist is empty at the start`);
  }
  ok("blocking advertised; the blocklist starts empty");

  // Block: a result, a push to the other resource that asked for the list (§3.3), and bob sees alice go offline.
  await phone.iq("set", undefined, xml("block", { xmlns: NS.blocking }, xml("item", { jid: bob.bare })), "blocking bob");
  await blockPush(tablet, "block", bob.bare);
  for (const r of [phone, tablet]) {
    await bob.waitFor(`unavailable presence from ${r.jid} once alice blocked him`, isPresence(r.jid, "unavailable"));
  }
  for (const s of [phone, tablet]) {
    check(JSON.stringify(await blocklist(s)) === JSON.stringify([bob.bare]), `${s.label}: the blocklist holds bob`);
  }
  ok("block: pushed to the other resource, bob got alice's unavailable presence, the list holds bob");
  // From here on nothing from bob may arrive; what he sent before the block (probe answers) is dropped.
  const fromBob = (el) => (el.is("message") || el.is("presence")) && (el.attrs.from ?? "").startsWith(bob.bare);
  for (const s of [phone, tablet]) {
    await s.barrier();
    s.discard(fromBob);
  }

  // While blocked: bob's message and presence do not reach alice. If his message is answered, it is with
  // service-unavailable (§3.5, as for an account that is not there).
  await bob.send(xml("message", { to: phone.bare, type: "chat" }, xml("body", {}, "can you hear me?")));
  await bob.send(xml("message", { to: phone.jid, type: "chat" }, xml("body", {}, "and now?")));
  await bob.sendPresence({ show: "xa", status: "blocked" });
  // alice's messages to bob are refused with not-acceptable and <blocked/> (§3.6).
  const { reply } = await (async () => {
    await phone.send(xml("message", { to: bob.bare, type: "chat", id: "to-blocked" }, xml("body", {}, "you are blocked")));
    return { reply: await phone.waitFor("the error for a message to a blocked contact", (el) => el.is("message") && el.attrs.id === "to-blocked" && el.attrs.type === "error") };
  })();
  const refusal = errorOf(reply);
  check(refusal.condition === "not-acceptable", `a message to a blocked contact is refused with not-acceptable: ${show(reply)}`);
  check(reply.getChild("error").getChild("blocked", NS.blockingErrors), `the refusal carries <blocked xmlns='${NS.blockingErrors}'/>: ${show(reply)}`);
  // Barriers: bob's stanzas are handled before his ping is answered; whatever the server queued for alice
  // arrives before her own ping's reply.
  await bob.barrier();
  await phone.barrier();
  await tablet.barrier();
  for (const s of [phone, tablet]) {
    const leaked = s.peek(fromBob);
    check(leaked.length === 0, `${s.label}: nothing from blocked bob arrives: ${leaked.map(show).join(" ")}`);
  }
  check(bob.peek(isMessageWithBody("you are blocked")).length === 0, "bob does not get alice's message");
  const bounces = bob.peek((el) => el.is("message") && el.attrs.type === "error");
  for (const b of bounces) {
    check(errorOf(b).condition === "service-unavailable", `a blocked message is answered with service-unavailable if at all: ${show(b)}`);
  }
  bob.discard((el) => el.is("message") && el.attrs.type === "error");
  ok(`while blocked nothing passes either way (bob's messages ${bounces.length ? "answered with service-unavailable" : "dropped silently"})`);

  // Unblock: a push, alice's presence goes to bob again, and his stanzas reach her again (§3.4).
  await phone.iq("set", undefined, xml("unblock", { xmlns: NS.blocking }, xml("item", { jid: bob.bare })), "unblocking bob");
  await blockPush(tablet, "unblock", bob.bare);
  await bob.waitFor("alice's presence after she unblocked him", isPresence(phone.jid));
  await bob.sendPresence({ show: "chat", status: "back" });
  await phone.waitFor("bob's presence after the unblock", (el) => isPresence(bob.jid)(el) && el.getChildText("status") === "back");
  await bob.send(xml("message", { to: phone.jid, type: "chat" }, xml("body", {}, "welcome back")));
  await phone.waitFor("bob's message after the unblock", isMessageWithBody("welcome back"));
  check((await blocklist(phone)).length === 0, "the blocklist is empty after unblocking");
  ok("unblock: presence and messages flow again");

  // Unblock-all: an <unblock/> without items empties the list (§3.4).
  await phone.iq("set", undefined, xml("block", { xmlns: NS.blocking }, xml("item", { jid: bob.bare }), xml("item", { jid: `carol@${cfg.domain}` })), "blocking two");
  await blockPush(tablet, "block", bob.bare);
  await phone.iq("set", undefined, xml("unblock", { xmlns: NS.blocking }), "unblocking everyone");
  await blockPush(tablet, "unblock", undefined);
  check((await blocklist(tablet)).length === 0, "an <unblock/> without items empties the blocklist");
  // A <block/> without items is a bad-request (§3.3).
  const empty = await phone.iqRaw("set", undefined, xml("block", { xmlns: NS.blocking }));
  check(empty.error?.condition === "bad-request", `a <block/> without items gets bad-request: ${show(empty.reply)}`);
  ok("unblock-all empties the list; an empty block is a bad-request");
});
