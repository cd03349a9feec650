// Message delivery (RFC 6121 §8.5): to a full JID, to a bare JID (the highest-priority available resource), to an
// account that is offline (stored, delivered at its next initial presence with a XEP-0203 delay stamp, XEP-0160;
// headlines are not stored), and to an account that does not exist (service-unavailable).
// Accounts: alice, bob, carol (carol stays offline until the offline part).
import {
  NS,
  Session,
  check,
  errorOf,
  isMessageWithBody,
  ok,
  run,
  setup,
  show,
  xml,
} from "../lib/harness.mjs";

const cfg = setup("messages");
const jidOf = (user) => `${user}@${cfg.domain}`;

function chat(to, body, type = "chat") {
  return xml("message", { to, type, id: `m-${body.replace(/\W/g, "-")}` }, xml("body", {}, body));
}

/** XEP-0082 date-time (the profile XEP-0203 uses), as milliseconds since the epoch, or NaN. */
function parseStamp(stamp) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(stamp ?? "");
  return m ? Date.parse(stamp) : NaN;
}

run(async () => {
  const started = Date.now();
  const low = await Session.login(cfg, "alice", "low", { priority: 1 });
  const high = await Session.login(cfg, "alice", "high", { priority: 5 });
  const bob = await Session.login(cfg, "bob", "pc", { priority: 0 });

  // To a full JID: exactly that resource gets it, from bob's full JID.
  await bob.send(chat(low.jid, "to the low-priority resource"));
  const direct = await low.waitFor("bob's message to alice's full JID", isMessageWithBody("to the low-priority resource"));
  check(direct.attrs.from === bob.jid, `a message is stamped with the sender's full JID ${bob.jid}: ${show(direct)}`);
  check(direct.attrs.to === low.jid, `a message to a full JID arrives addressed to it: ${show(direct)}`);
  ok("a message to a full JID reaches that resource");

  // To the bare JID: the resource with the highest priority gets it (§8.5.2.1.1), the other does not. Ordering
  // barrier: bob's next message, to the low resource's full JID, arrives after the first one would have.
  await bob.send(chat(jidOf("alice"), "to the bare JID"));
  await bob.send(chat(low.jid, "after the bare-JID message"));
  const viaBare = await high.waitFor("bob's message to alice's bare JID on the priority-5 resource", isMessageWithBody("to the bare JID"));
  check(viaBare.attrs.from === bob.jid, `from bob's full JID: ${show(viaBare)}`);
  await low.waitFor("bob's follow-up message to the low resource", isMessageWithBody("after the bare-JID message"));
  check(
    low.peek(isMessageWithBody("to the bare JID")).length === 0,
    "a chat message to the bare JID goes to the highest-priority resource only, not to the priority-1 one",
  );
  ok("a message to the bare JID reaches the highest-priority resource only");

  // A missing account: service-unavailable, for a message and for an IQ (§8.5.1).
  const nobody = jidOf("nobody-has-this-name");
  await bob.send(chat(nobody, "into the void"));
  const bounced = await bob.waitFor(
    "the error for a message to an account that does not exist",
    (el) => el.is("message") && el.attrs.type === "error" && el.attrs.from === nobody,
  );
  check(errorOf(bounced).condition === "service-unavailable", `a message to a missing account gets service-unavailable: ${show(bounced)}`);
  const { error } = await bob.iqRaw("get", nobody, xml("query", { xmlns: NS.version }));
  check(error?.condition === "service-unavailable", `an IQ to a missing account gets service-unavailable, got ${JSON.stringify(error)}`);
  ok("a missing account: service-unavailable for a message and an IQ");

  // Offline: carol has never logged in here. A headline is not stored (XEP-0160 §3), a chat message is; they go
  // in that order, so at carol's login a wrongly stored headline would come before the chat message.
  const carolBare = jidOf("carol");
  await bob.send(chat(carolBare, "a headline nobody keeps", "headline"));
  await bob.send(chat(carolBare, "waiting for you", "chat"));
  await bob.send(chat(carolBare, "and a second one", "normal"));
  // Nothing comes back to bob for stored messages.
  await bob.barrier();
  const errors = bob.peek((el) => el.is("message") && el.attrs.type === "error");
  check(errors.length === 0, `messages to an offline account are stored, not bounced: ${errors.map(show).join(" ")}`);

  const carol = await Session.login(cfg, "carol", "laptop");
  // No offline messages before initial presence (XEP-0160 §3: delivered when the account becomes available).
  await carol.barrier();
  check(carol.peek((el) => el.is("message")).length === 0, `stored messages wait for initial presence: ${carol.peek(() => true).map(show).join(" ")}`);
  await carol.sendPresence({ priority: 0 });
  const stored = await carol.waitFor("the stored chat message", isMessageWithBody("waiting for you"));
  check(stored.attrs.from === bob.jid, `the stored message keeps bob's address as sender: ${show(stored)}`);
  const delay = stored.getChild("delay", NS.delay);
  check(delay, `a stored message carries <delay xmlns='${NS.delay}'/> (XEP-0160 §3, XEP-0203): ${show(stored)}`);
  const at = parseStamp(delay.attrs.stamp);
  check(!Number.isNaN(at), `the delay stamp is a XEP-0082 date-time: ${show(delay)}`);
  // The clocks are the same machine's: the stamp lies between the scenario's start and now (a minute's slack for
  // stamps rounded to seconds).
  check(at >= started - 60000 && at <= Date.now() + 60000, `the delay stamp ${delay.attrs.stamp} is when the message was stored`);
  check(delay.attrs.from === undefined || delay.attrs.from === cfg.domain, `the delay is stamped by the server (${cfg.domain}): ${show(delay)}`);
  const second = await carol.waitFor("the second stored message", isMessageWithBody("and a second one"));
  check(second.getChild("delay", NS.delay), `the second stored message has a delay too: ${show(second)}`);
  check(
    carol.peek(isMessageWithBody("a headline nobody keeps")).length === 0,
    "a headline sent to an offline account is not stored",
  );
  ok("offline messages delivered at the next login with a delay stamp, headline not stored");

  // Delivered once: a second login of carol gets nothing more.
  const again = await Session.login(cfg, "carol", "phone", { priority: 0 });
  await again.barrier();
  check(again.peek((el) => el.is("message") && el.getChildText("body")).length === 0, `offline messages are delivered only once: ${again.peek(() => true).map(show).join(" ")}`);
  ok("offline messages are removed once delivered");
});
