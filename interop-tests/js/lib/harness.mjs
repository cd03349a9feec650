// The scenario harness: command line, hang guard, logged-in xmpp.js sessions that keep every stanza they receive,
// and checks that end the process with a clear message on the first deviation.
//
// Every scenario takes the same options (or the XMPP_* environment variables named below):
//   --host 127.0.0.1 --port 5222    the server's c2s address (XMPP_HOST, XMPP_PORT)
//   --domain example.test           the XMPP domain; the TLS certificate must be valid for it (XMPP_DOMAIN)
//   --ca ca.pem                     a PEM file with the CA that issued the server's certificate (XMPP_CA)
//   --account alice:PASSWORD        one per account the scenario needs; a password may contain ':' (XMPP_ACCOUNTS,
//                                   accounts separated by newlines)
//   --timeout 60                    seconds before the whole scenario is abandoned as hung (XMPP_TIMEOUT)
//   --allow-deviation NAME          a known deviation of the server from the RFC/XEP, checked and reported as such
//                                   rather than failing (repeatable; used for Prosody's, see run-against-prosody.sh)
//
// Output: one line per check ("ok ..."), "PASS <scenario>" at the end, exit 0. On the first deviation:
// "FAIL <scenario>: <what was expected and what came>", exit 1. Hang guard: exit 2.
import { spawnSync } from "node:child_process";
import { realpathSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { client, xml, jid } from "@xmpp/client";

export { xml, jid, client };

export const NS = {
  roster: "jabber:iq:roster",
  rosterver: "urn:xmpp:features:rosterver",
  preApproval: "urn:xmpp:features:pre-approval",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
  streams: "http://etherx.jabber.org/streams",
  delay: "urn:xmpp:delay",
  blocking: "urn:xmpp:blocking",
  blockingErrors: "urn:xmpp:blocking:errors",
  ping: "urn:xmpp:ping",
  discoInfo: "http://jabber.org/protocol/disco#info",
  vcard: "vcard-temp",
  private: "jabber:iq:private",
  version: "jabber:iq:version",
  time: "urn:xmpp:time",
  last: "jabber:iq:last",
  register: "jabber:iq:register",
};

let scenarioName = path.basename(process.argv[1] ?? "scenario", ".mjs");
let sessions = new Set();

/** Ends the scenario as failed. */
export function fail(message) {
  console.error(`FAIL ${scenarioName}: ${message}`);
  process.exit(1);
}

/** Fails unless `condition`; `message` says what was expected. */
export function check(condition, message) {
  if (!condition) fail(message);
}

export function ok(message) {
  console.log(`ok ${message}`);
}

/** A short rendering of an element for failure messages. */
export function show(el) {
  if (el === undefined || el === null) return String(el);
  const s = el.toString();
  return s.length > 1500 ? `${s.slice(0, 1500)}...` : s;
}

/**
 * Parses the command line, re-runs this script with the CA trusted if needed, arms the hang guard.
 * Returns { host, port, domain, ca, accounts: Map<name, password>, deviations: Set<string>, timeout }.
 */
export function setup(name) {
  scenarioName = name;
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: process.env.XMPP_HOST ?? "127.0.0.1" },
      port: { type: "string", default: process.env.XMPP_PORT },
      domain: { type: "string", default: process.env.XMPP_DOMAIN },
      ca: { type: "string", default: process.env.XMPP_CA },
      account: { type: "string", multiple: true, default: [] },
      timeout: { type: "string", default: process.env.XMPP_TIMEOUT ?? "60" },
      "allow-deviation": { type: "string", multiple: true, default: [] },
    },
    strict: true,
  });
  const accountArgs = values.account.length
    ? values.account
    : (process.env.XMPP_ACCOUNTS ?? "").split("\n").filter(Boolean);
  for (const [opt, v] of [["--port", values.port], ["--domain", values.domain], ["--ca", values.ca]]) {
    if (!v) {
      console.error(`usage: node ${process.argv[1]} --host H --port P --domain D --ca CA.pem --account user:password ...`);
      fail(`${opt} is required`);
    }
  }
  const ca = realpathSync(values.ca);
  // xmpp.js verifies the certificate against Node's CA store during STARTTLS and takes no CA option; Node reads
  // extra CAs from NODE_EXTRA_CA_CERTS only at start-up, so run this same script again with it set.
  if (process.env.NODE_EXTRA_CA_CERTS !== ca) {
    const child = spawnSync(process.execPath, process.argv.slice(1), {
      stdio: "inherit",
      env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
    });
    if (child.error) fail(`cannot re-run node with the CA: ${child.error.message}`);
    process.exit(child.status ?? 2);
  }
  const accounts = new Map();
  for (const a of accountArgs) {
    const at = a.indexOf(":");
    if (at <= 0) fail(`--account ${JSON.stringify(a)} is not user:password`);
    accounts.set(a.slice(0, at), a.slice(at + 1));
  }
  const timeout = Number(values.timeout);
  if (!(timeout > 0)) fail(`--timeout ${values.timeout} is not a positive number of seconds`);
  // The hang guard: whatever the server does, the scenario ends.
  setTimeout(() => {
    console.error(`FAIL ${scenarioName}: hung for ${timeout} s (hang guard); see the last "ok" line above`);
    process.exit(2);
  }, timeout * 1000);
  return {
    host: values.host,
    port: Number(values.port),
    domain: values.domain,
    ca,
    accounts,
    deviations: new Set(values["allow-deviation"]),
    timeout,
  };
}

/** The password of `user`, which must have been given with --account. */
export function password(cfg, user) {
  const pw = cfg.accounts.get(user);
  if (pw === undefined) fail(`this scenario needs --account ${user}:PASSWORD`);
  return pw;
}

/**
 * A check of a rule that the server under test is known to break (listed with --allow-deviation NAME): a
 * violation is reported as "KNOWN DEVIATION" instead of failing. Without the flag it is an ordinary check.
 */
export function checkRule(cfg, name, condition, message) {
  if (condition) return true;
  if (cfg.deviations.has(name)) {
    console.log(`KNOWN DEVIATION ${name}: ${message}`);
    return false;
  }
  fail(`${message} [rule ${name}]`);
}

/** Waits at most `ms` for `promise` (whose rejection is passed on); on time-out fails with `what`. */
export async function within(ms, promise, what) {
  let timer;
  const timedOut = Symbol("timed out");
  const guard = new Promise((resolve) => {
    timer = setTimeout(() => resolve(timedOut), ms);
  });
  try {
    const got = await Promise.race([promise, guard]);
    if (got === timedOut) fail(`timed out after ${ms} ms waiting for ${what}`);
    return got;
  } finally {
    clearTimeout(timer);
  }
}

/** How long one expected stanza may take to arrive (a hang guard per step, not a measurement). */
export const STEP_MS = 15000;

let sessionCounter = 0;

/**
 * A logged-in xmpp.js session. Every stanza it receives is kept in `inbox` (in arrival order) until a `waitFor`
 * takes it; roster and blocklist pushes are answered with a result as RFC 6121 §2.1.6 asks of clients.
 */
export class Session {
  constructor(cfg, user, resource) {
    this.cfg = cfg;
    this.user = user;
    this.resource = resource;
    this.bare = `${user}@${cfg.domain}`;
    this.inbox = [];
    this.waiters = [];
    this.features = null;
    this.closed = false;
    this.label = `${user}/${resource}`;
    this.xmpp = client({
      service: `xmpp://${cfg.host}:${cfg.port}`,
      domain: cfg.domain,
      username: user,
      password: password(cfg, user),
      resource,
    });
    // A scenario decides itself when to connect again.
    this.xmpp.reconnect.stop();
    listenForStreamHeaderBeforeWriteCompletes(this.xmpp);
    this.xmpp.on("element", (el) => {
      if (el.is("features", NS.streams)) this.features = el;
    });
    this.xmpp.on("stanza", (el) => this.#receive(el));
    this.xmpp.on("error", (err) => {
      if (!this.closed) fail(`${this.label}: connection error: ${describeError(err)}`);
    });
    this.xmpp.on("offline", () => {
      if (!this.closed) fail(`${this.label}: the server ended the session unexpectedly`);
    });
    for (const ns of [NS.roster, NS.blocking]) {
      for (const name of ["query", "block", "unblock"]) {
        this.xmpp.iqCallee.set(ns, name, () => true);
      }
    }
  }

  /**
   * The stream features the server offered after authentication, or null when the login used SASL2 (XEP-0388),
   * which has no stream restart and so no post-authentication features to look at.
   */
  postAuthFeatures() {
    if (this.features?.getChild("authentication", "urn:xmpp:sasl:2")) return null;
    return this.features;
  }

  /** Logs in (STARTTLS, SASL, bind); with `priority` given, also sends initial presence with it. */
  static async login(cfg, user, resource, { priority, show } = {}) {
    const s = new Session(cfg, user, `${resource}-${process.pid}-${++sessionCounter}`);
    sessions.add(s);
    try {
      await within(STEP_MS, s.xmpp.start(), `${s.label} to log in`);
    } catch (err) {
      fail(`${s.label}: login failed: ${err.condition ?? ""} ${err.message}`);
    }
    s.jid = s.xmpp.jid.toString();
    if (priority !== undefined) await s.sendPresence({ priority, show });
    return s;
  }

  /** Tries a login that must fail; returns the SASL condition. */
  static async loginFails(cfg, user, pw) {
    const xmpp = client({
      service: `xmpp://${cfg.host}:${cfg.port}`,
      domain: cfg.domain,
      username: user,
      password: pw,
      resource: `fail-${process.pid}`,
    });
    xmpp.reconnect.stop();
    xmpp.on("error", () => {});
    let condition = null;
    try {
      await within(STEP_MS, xmpp.start(), `${user} to be refused`);
    } catch (err) {
      condition = err.condition ?? err.message;
    }
    if (condition === null) {
      await xmpp.stop().catch(() => {});
      fail(`${user} logged in with a password that must not work`);
    }
    await xmpp.stop().catch(() => {});
    return condition;
  }

  #receive(el) {
    this.inbox.push(el);
    for (const w of [...this.waiters]) {
      const i = this.inbox.findIndex(w.match);
      if (i >= 0) {
        const [found] = this.inbox.splice(i, 1);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(found);
      }
    }
  }

  /** Takes the first stanza (already received or still to come) that `match` accepts. */
  async waitFor(what, match, ms = STEP_MS) {
    const i = this.inbox.findIndex(match);
    if (i >= 0) return this.inbox.splice(i, 1)[0];
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { match, resolve };
      this.waiters.push(waiter);
    });
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    });
    const got = await Promise.race([p, timeout]);
    clearTimeout(timer);
    if (got === null) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      const seen = this.inbox.map(show).join("\n    ");
      fail(`${this.label}: timed out after ${ms} ms waiting for ${what}; unclaimed stanzas received:\n    ${seen || "(none)"}`);
    }
    return got;
  }

  /** Stanzas received so far that `match` accepts (not taken). */
  peek(match) {
    return this.inbox.filter(match);
  }

  /** Drops every received stanza `match` accepts (e.g. presence noise before a check). */
  discard(match) {
    this.inbox = this.inbox.filter((el) => !match(el));
  }

  async send(el) {
    await this.xmpp.send(el);
  }

  async sendPresence({ priority, show, status, to, type } = {}) {
    const p = xml("presence", { to, type });
    if (show) p.append(xml("show", {}, show));
    if (status) p.append(xml("status", {}, status));
    if (priority !== undefined) p.append(xml("priority", {}, String(priority)));
    await this.send(p);
  }

  /** Sends an IQ and returns the result stanza; an error reply fails the scenario. */
  async iq(type, to, child, what) {
    const { reply, error } = await this.iqRaw(type, to, child);
    if (error) fail(`${this.label}: ${what}: expected a result, got an error: ${show(reply)}`);
    return reply;
  }

  /** Sends an IQ and returns { reply, error }, where `error` is { type, condition } for an error reply. */
  async iqRaw(type, to, child) {
    const id = `${this.resource}-iq-${++sessionCounter}`;
    const attrs = { type, id };
    if (to) attrs.to = to;
    await this.send(xml("iq", attrs, child));
    const reply = await this.waitFor(
      `the reply to IQ ${id} (${type} ${child?.attrs?.xmlns ?? ""})`,
      (el) => el.is("iq") && el.attrs.id === id && (el.attrs.type === "result" || el.attrs.type === "error"),
    );
    return { reply, error: reply.attrs.type === "error" ? errorOf(reply) : null };
  }

  /**
   * A round trip with the server (XEP-0199 ping): the server has handled everything this session sent before,
   * and everything already queued for this session arrives before the reply. Negative checks use it as an
   * ordering barrier instead of a wall-clock wait.
   */
  async barrier() {
    await this.iq("get", this.cfg.domain, xml("ping", { xmlns: NS.ping }), "a ping to the server");
  }

  /** Gets the roster; returns the reply's <query/> (or null when the server answered with an empty result). */
  async roster(ver) {
    const attrs = { xmlns: NS.roster };
    if (ver !== undefined) attrs.ver = ver;
    const reply = await this.iq("get", undefined, xml("query", attrs), "roster get");
    return reply.getChild("query", NS.roster) ?? null;
  }

  async close() {
    this.closed = true;
    sessions.delete(this);
    try {
      await within(STEP_MS, this.xmpp.stop(), `${this.label} to close its stream`);
    } catch (err) {
      fail(`${this.label}: closing failed: ${err.message}`);
    }
  }
}

/**
 * Works around a race in xmpp.js 0.14 itself (any client built on it hits it; the server cannot prevent it).
 *
 * Connection.open() writes the stream header, awaits the socket's write callback, and only then starts listening
 * for the server's answering header (its "open" event, with a 2 s time-out). Nothing guarantees the callback runs
 * before the answer is read, and on the TLS socket after STARTTLS (TLS 1.3, where @xmpp/tls writes the header from
 * a 1 ms timer) it often does not: instrumented runs against Rookery saw the server's header parsed before the
 * write callback in most of these restarts. open() then waits for an event that has already happened and rejects
 * 2 s later with a TimeoutError that has no message; the STARTTLS feature handler awaiting it re-emits it as an
 * "error" event, although the stream is up and the login completed (stream features are handled from the
 * parser's events, not by open()). A scenario failed whenever the session lived on for those 2 s. Any server that
 * answers a header promptly can win this race, so it is worked around here rather than in the server.
 *
 * The workaround: the header write that open() issues resolves as soon as the header is handed to the socket, so
 * open() listens from the same job onwards, before any I/O callback can deliver the server's header. A failed
 * write is still reported as a connection error.
 */
function listenForStreamHeaderBeforeWriteCompletes(xmpp) {
  const open = xmpp.open.bind(xmpp);
  const write = xmpp.write.bind(xmpp);
  let nextWriteIsHeader = false;
  xmpp.open = (options) => {
    // open() issues the header write synchronously, before its first await.
    nextWriteIsHeader = true;
    try {
      return open(options);
    } finally {
      nextWriteIsHeader = false;
    }
  };
  xmpp.write = (data) => {
    if (!nextWriteIsHeader) return write(data);
    nextWriteIsHeader = false;
    write(data).catch((err) => xmpp.emit("error", err));
    return Promise.resolve();
  };
}

/** What a connection error is, for a failure message: xmpp.js's TimeoutError, for one, has neither message nor condition. */
function describeError(err) {
  const what = [err?.name, err?.condition, err?.message].filter(Boolean).join(" ");
  return err?.condition ? what : `${what}\n${err?.stack ?? err}`;
}

/** { type, condition } of an error stanza. */
export function errorOf(stanza) {
  const err = stanza.getChild("error");
  if (!err) return { type: null, condition: null };
  const cond = err.children.find((c) => typeof c !== "string" && c.attrs.xmlns === NS.stanzas && c.name !== "text");
  return { type: err.attrs.type ?? null, condition: cond?.name ?? null };
}

/** The <item/> for `contact` in a roster <query/>, or undefined. */
export function rosterItem(query, contact) {
  return query?.getChildren("item").find((i) => i.attrs.jid === contact);
}

export function groupsOf(item) {
  return item.getChildren("group").map((g) => g.text()).sort();
}

/** A matcher for a roster push (RFC 6121 §2.1.6) about `contact` received by `session`. */
export function isRosterPush(session, contact) {
  return (el) =>
    el.is("iq") &&
    el.attrs.type === "set" &&
    el.getChild("query", NS.roster)?.getChild("item")?.attrs.jid === contact;
}

/**
 * Waits for a roster push about `contact` and checks what RFC 6121 §2.1.6 requires of every push: 'from' absent
 * or the user's bare JID, exactly one item.
 */
export async function rosterPush(session, contact, what) {
  const push = await session.waitFor(`${what} (a roster push for ${contact})`, isRosterPush(session, contact));
  const from = push.attrs.from;
  check(
    from === undefined || from === session.bare,
    `${session.label}: a roster push must come from no one or the user's bare JID (RFC 6121 §2.1.6), came from ${from}`,
  );
  const items = push.getChild("query", NS.roster).getChildren("item");
  check(items.length === 1, `${session.label}: a roster push carries exactly one item: ${show(push)}`);
  return items[0];
}

/** Matches presence of `type` (undefined = available) whose 'from' is `from` (bare or full) or a resource of it. */
export function isPresence(from, type) {
  return (el) =>
    el.is("presence") &&
    el.attrs.type === type &&
    (el.attrs.from === from || (el.attrs.from ?? "").startsWith(`${from}/`));
}

export function isMessageWithBody(body) {
  return (el) => el.is("message") && el.getChildText("body") === body;
}

/** Closes every session still open and exits 0 after printing PASS. */
export async function pass() {
  for (const s of [...sessions]) await s.close();
  console.log(`PASS ${scenarioName}`);
  process.exit(0);
}

/** Removes every roster item of `session` (so that a scenario starts from an empty roster). */
export async function clearRoster(session) {
  const query = await session.roster();
  for (const item of query?.getChildren("item") ?? []) {
    await session.iq(
      "set",
      undefined,
      xml("query", { xmlns: NS.roster }, xml("item", { jid: item.attrs.jid, subscription: "remove" })),
      `removing ${item.attrs.jid} left from an earlier run`,
    );
  }
  session.discard((el) => el.is("iq") && el.attrs.type === "set");
}

/** Runs `body` and turns an unexpected exception into a failure with its stack. */
export function run(body) {
  body().then(
    () => pass(),
    (err) => fail(`unexpected exception: ${err?.stack ?? err}`),
  );
}

/**
 * Makes `a` and `b` (online, available, interested sessions) mutual contacts with the RFC 6121 §3.1 handshakes,
 * and waits until each has the other's presence.
 */
export async function befriend(a, b) {
  for (const [asker, approver] of [[a, b], [b, a]]) {
    await asker.sendPresence({ to: approver.bare, type: "subscribe" });
    await approver.waitFor(`a subscription request from ${asker.bare}`, (el) => el.is("presence") && el.attrs.type === "subscribe" && el.attrs.from === asker.bare);
    await approver.sendPresence({ to: asker.bare, type: "subscribed" });
    await asker.waitFor(`${approver.bare}'s presence after approving`, isPresence(approver.jid));
  }
  for (const [s, other] of [[a, b], [b, a]]) {
    const query = await s.roster();
    check(rosterItem(query, other.bare)?.attrs.subscription === "both", `${s.label}: ${other.bare} has subscription 'both': ${show(query)}`);
    s.discard((el) => el.is("iq") && el.attrs.type === "set");
    s.discard((el) => el.is("presence") && el.attrs.type !== undefined && el.attrs.type !== "unavailable");
  }
}
