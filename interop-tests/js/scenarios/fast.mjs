// SASL2 (XEP-0388) + Bind2 (XEP-0386) + FAST (XEP-0484) with xmpp.js's own implementation: a password login that
// binds with a tag and receives a token, then a new client with the same client id and a WRONG password that logs
// in anyway, in one round trip, with that token; then a made-up token and a wrong password, which must fail.
// Accounts: alice.
import { check, client, fail, ok, password, run, setup, within, STEP_MS, xml } from "../lib/harness.mjs";

const cfg = setup("fast");
const CLIENT_ID = "6f3b4ad8-0f9e-4e4b-9d76-1c1f9a8b2e10";

function makeClient(pw) {
  const xmpp = client({
    service: `xmpp://${cfg.host}:${cfg.port}`,
    domain: cfg.domain,
    username: "alice",
    password: pw,
    resource: "interop",
    userAgent: xml("user-agent", { id: CLIENT_ID }, xml("software", {}, "xmpp.js"), xml("device", {}, "node")),
  });
  xmpp.reconnect.stop();
  xmpp.on("error", () => {});
  const seen = { features: null, sasl2Success: null };
  xmpp.on("element", (el) => {
    if (el.is("features", "http://etherx.jabber.org/streams") && el.getChild("authentication", "urn:xmpp:sasl:2")) seen.features = el;
    if (el.is("success", "urn:xmpp:sasl:2")) seen.sasl2Success = el;
  });
  return { xmpp, seen };
}

run(async () => {
  const first = makeClient(password(cfg, "alice"));
  await within(STEP_MS, first.xmpp.start(), "the password login");
  const auth = first.seen.features?.getChild("authentication", "urn:xmpp:sasl:2");
  check(auth, "the server offers SASL2");
  const fastMechs = auth.getChild("inline")?.getChild("fast", "urn:xmpp:fast:0")?.getChildren("mechanism").map((m) => m.text()) ?? [];
  check(fastMechs.includes("HT-SHA-256-NONE"), `FAST offers HT-SHA-256-NONE, got ${fastMechs}`);
  check(first.seen.sasl2Success, "the login went through SASL2");
  check(first.seen.sasl2Success.getChild("bound", "urn:xmpp:bind:0"), "Bind2 bound a resource inside the success");
  const resource = first.xmpp.jid.resource;
  check(resource?.startsWith("interop."), `the resource is the tag plus a server suffix, got ${resource}`);
  const token = await first.xmpp.fast.fetch();
  check(token?.token && token.mechanism === "HT-SHA-256-NONE", `a FAST token was issued, got ${JSON.stringify(token)}`);
  check(new Date(token.expiry) > new Date(Date.now() + 20 * 86400 * 1000), `the token lives about three weeks, expiry ${token.expiry}`);
  ok(`password login through SASL2 + Bind2 as ${first.xmpp.jid}, with a FAST token`);
  await first.xmpp.stop();

  // Same client id, wrong password: only the token can log it in.
  const second = makeClient("not-the-password-at-all");
  await second.xmpp.fast.saveToken(token);
  await within(STEP_MS, second.xmpp.start(), "the FAST login");
  const success = second.seen.sasl2Success;
  check(success?.getChild("additional-data"), "the server proved it knows the token (additional data, checked by xmpp.js)");
  check(second.xmpp.jid.resource === resource, `the same client gets the same resource, got ${second.xmpp.jid.resource}`);
  const pong = await second.xmpp.iqCaller.request(xml("iq", { type: "get", to: cfg.domain }, xml("ping", { xmlns: "urn:xmpp:ping" })));
  check(pong.attrs.type === "result", "the FAST session is established: the server answers its ping");
  ok("FAST login with the token, in one round trip");
  await second.xmpp.stop();

  // A token the server never issued, and a wrong password: refused.
  const third = makeClient("not-the-password-at-all");
  await third.xmpp.fast.saveToken({ ...token, token: "made-up-token-made-up-token-made-up-token-x" });
  let refused = null;
  try {
    await within(STEP_MS, third.xmpp.start(), "the refused login");
  } catch (err) {
    refused = err.condition ?? err.message;
  }
  await third.xmpp.stop().catch(() => {});
  if (refused === null) fail("a made-up token and a wrong password logged in");
  check(refused === "not-authorized", `refused with not-authorized, got ${refused}`);
  ok("a made-up token is refused");
});
