// Password change with in-band registration (XEP-0077 §3.3): a logged-in user sets a new password (10 characters
// or more and not containing the username, as Snikket's password policy requires), the old one stops working, the
// new one works. The old password is put back at the end, so that the account is left as it was found.
// Accounts: alice.
import { NS, Session, check, ok, password, run, setup, xml } from "../lib/harness.mjs";

const cfg = setup("password");

async function change(session, newPassword, what) {
  await session.iq(
    "set",
    cfg.domain,
    xml("query", { xmlns: NS.register }, xml("username", {}, session.user), xml("password", {}, newPassword)),
    what,
  );
}

run(async () => {
  const original = password(cfg, "alice");
  // At least 10 characters and without the username: what Snikket's password policy asks of a new password.
  const changed = `changed-secret-${process.pid}`;
  check(changed.length >= 10 && !changed.includes("alice"), "the new password is acceptable to Snikket's policy");
  check(!original.includes("alice"), "the original password does not contain the username (it is put back at the end)");

  const alice = await Session.login(cfg, "alice", "old");
  await change(alice, changed, "changing the password");
  ok("the server accepted the new password");
  await alice.close();

  const refused = await Session.loginFails(cfg, "alice", original);
  check(refused === "not-authorized", `the old password is refused with not-authorized, got ${refused}`);
  ok("the old password no longer works");

  cfg.accounts.set("alice", changed);
  const again = await Session.login(cfg, "alice", "new");
  ok("the new password works");

  await change(again, original, "changing the password back");
  await again.close();
  cfg.accounts.set("alice", original);
  const back = await Session.login(cfg, "alice", "back");
  await back.close();
  ok("the original password works again");
});
