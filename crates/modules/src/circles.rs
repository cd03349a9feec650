//! Snikket's circles (`spec/snikket-compat.md` §6): groups of people who see each other. Every pair of members of
//! a circle has a mutual subscription, and each sees the other in a roster group named after the circle.
//!
//! - At start-up, [`ensure_default_circle`] creates the circle `default` (named after the site) holding every
//!   existing account, once, as Snikket's `mod_groups_migration` does. Accounts created later join circles
//!   through their invite or the command line, never automatically.
//! - Contact-list sync ([`sync_user`]) runs at every resource bind and right after [`add_member`]: for each other
//!   member of each of the user's circles, both roster items are made `both` (no `ask`, no pre-approval, no pending
//!   request) and get the circle's name as a group. No subscription stanzas are exchanged: the server writes both
//!   rosters and pushes the changed items. A pair that already is `both` with the group costs one read.
//! - Removing a member only stops future syncs; subscriptions made through the circle stay (the reference
//!   behaviour). Deleting a circle removes its memberships only. A deleted account leaves its circles with the
//!   rest of its data (the store's cascade).
//!
//! A member added by the command line while the server runs (a separate process) is synced at the next session
//! start of any member of the pair: "checked again at each login".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rookery_core::{BoxFuture, Module, Registry, Server, Session, SessionHandler, SessionHook};
use rookery_store::{Circle, DEFAULT_CIRCLE, RosterItem, StoreError, Subscription};
use tracing::{info, warn};

use crate::roster::{MAX_GROUPS_PER_ITEM, MAX_NAME_BYTES, lock_rosters, push};

/// Runs the contact-list sync at every resource bind. The sync is done before the session's initial presence is
/// read, so that presence goes to the new contacts and probes them like any other.
pub struct CirclesModule;

impl Module for CirclesModule {
    fn name(&self) -> &'static str {
        "circles"
    }

    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry
            .hooks
            .on_session(SessionHook::Started, 0, Arc::new(SyncAtLogin));
    }
}

struct SyncAtLogin;

impl SessionHandler for SyncAtLogin {
    fn handle<'a>(
        &'a self,
        server: &'a Arc<Server>,
        session: &'a Arc<Session>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(err) = sync_user(server, session.username()).await {
                // Not fatal: the next login tries again.
                warn!(%err, account = session.username(), "cannot sync the circles' contacts");
            }
        })
    }
}

/// Creates the circle `default` if it does not exist, named `SNIKKET_SITE_NAME` (or the domain), with every
/// existing account as a member. Called once at server start, before any client connects.
pub async fn ensure_default_circle(server: &Server) -> Result<(), StoreError> {
    let circles = server.store.circles();
    if circles.get(DEFAULT_CIRCLE).await?.is_some() {
        return Ok(());
    }
    let name = default_circle_name(server);
    match circles.create(DEFAULT_CIRCLE, &name).await {
        Ok(_) => {}
        // Another process (the command line) created it meanwhile: it is that one's to fill.
        Err(StoreError::AlreadyExists) => return Ok(()),
        Err(err) => return Err(err),
    }
    let accounts = server.store.accounts().list().await?;
    for account in &accounts {
        circles
            .add_member(DEFAULT_CIRCLE, &account.username)
            .await?;
    }
    info!(
        circle = DEFAULT_CIRCLE,
        %name,
        members = accounts.len(),
        "created the default circle with every account"
    );
    Ok(())
}

/// The default circle's name: the site's name, or the domain when the site has none.
fn default_circle_name(server: &Server) -> String {
    let site = server.config.site_name.trim();
    if site.is_empty() {
        server.domain.clone()
    } else {
        site.to_owned()
    }
}

/// Adds an account to a circle and syncs its contacts at once (the server's way in: invites, admin commands).
/// `false` if it was a member already; an unknown circle or account is [`StoreError::InvalidInput`].
pub async fn add_member(
    server: &Arc<Server>,
    circle_id: &str,
    username: &str,
) -> Result<bool, StoreError> {
    let added = server
        .store
        .circles()
        .add_member(circle_id, username)
        .await?;
    sync_user(server, username).await?;
    Ok(added)
}

/// Makes the subscription between the user and every other member of each of its circles mutual, with the
/// circle's name as a roster group on both items. Returns how many pairs changed.
pub async fn sync_user(server: &Arc<Server>, username: &str) -> Result<usize, StoreError> {
    let contacts = circle_contacts(server, username).await?;
    if contacts.is_empty() {
        return Ok(0);
    }
    let user_jid = bare_jid(server, username);
    let roster = server.store.roster();
    let synced_pairs: Vec<String> = {
        // Every roster the sync may write is locked, in stripe order (see `lock_rosters`), while it reads and
        // writes; nothing is routed meanwhile.
        let owners = std::iter::once(username).chain(contacts.keys().map(String::as_str));
        let _locks = lock_rosters(owners).await;
        // The user's own roster, read once. A pair whose item on the user's side is already what the circles make
        // it was synced before (both sides are written together): at an ordinary login nothing else is read.
        let own: BTreeMap<String, RosterItem> = roster
            .get(username)
            .await?
            .items
            .into_iter()
            .map(|item| (item.contact.clone(), item))
            .collect();
        let mut changes: Vec<(String, RosterItem)> = Vec::new();
        let mut pairs = Vec::new();
        for (member, groups) in &contacts {
            let contact_jid = bare_jid(server, member);
            let mut mine = own
                .get(&contact_jid)
                .cloned()
                .unwrap_or_else(|| RosterItem::new(&contact_jid));
            if !make_synced(&mut mine, groups) && own.contains_key(&contact_jid) {
                continue;
            }
            let mut theirs = roster
                .item(member, &user_jid)
                .await?
                .unwrap_or_else(|| RosterItem::new(&user_jid));
            make_synced(&mut theirs, groups);
            changes.push((username.to_owned(), mine));
            changes.push((member.clone(), theirs));
            pairs.push(member.clone());
        }
        if changes.is_empty() {
            return Ok(0);
        }
        // One transaction for the whole circle: joining a circle of hundreds is one commit, not hundreds.
        let versions = roster
            .put_many(&changes, server.config.limits.roster_max_items)
            .await?;
        for ((owner, item), version) in changes.iter().zip(versions) {
            match version {
                Some(version) => push(server, owner, item, version, false).await,
                // A full roster: the owner keeps what it has; the other side still gets its item.
                None => {
                    warn!(account = %owner, contact = %item.contact, "cannot add a circle contact")
                }
            }
        }
        pairs
    };
    // Both may be online already (a member added while they are): each sees the other's current presence at
    // once. At a login, the new session is not available yet; its initial presence probes as usual.
    for member in &synced_pairs {
        let contact_jid = bare_jid(server, member);
        crate::presence::send_available_presences(server, username, &contact_jid).await;
        crate::presence::send_available_presences(server, member, &user_jid).await;
    }
    if !synced_pairs.is_empty() {
        info!(
            account = username,
            contacts = synced_pairs.len(),
            "circle contacts synced"
        );
    }
    Ok(synced_pairs.len())
}

/// Every other member of the user's circles, each with the names of the circles they share.
async fn circle_contacts(
    server: &Server,
    username: &str,
) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    let circles = server.store.circles();
    let mut contacts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for Circle { id, name, .. } in circles.circles_of(username).await? {
        for member in circles.members(&id).await? {
            if member != username {
                contacts.entry(member).or_default().insert(name.clone());
            }
        }
    }
    Ok(contacts)
}

/// Whether an item already is what the circles make it.
#[cfg(test)]
fn is_synced(item: &RosterItem, groups: &BTreeSet<String>) -> bool {
    let mut copy = item.clone();
    !make_synced(&mut copy, groups)
}

/// Makes an item mutual, without pending or pre-approved states, in the circles' groups (within the roster's
/// limits on groups). Returns whether it changed.
fn make_synced(item: &mut RosterItem, groups: &BTreeSet<String>) -> bool {
    let before = item.clone();
    item.subscription = Subscription::Both;
    item.ask = false;
    item.approved = false;
    for group in groups {
        let fits = group.len() <= MAX_NAME_BYTES && item.groups.len() < MAX_GROUPS_PER_ITEM;
        if fits && !item.groups.contains(group) {
            item.groups.push(group.clone());
        }
    }
    item.groups.sort();
    item.groups.dedup();
    *item != before
}

fn bare_jid(server: &Server, username: &str) -> String {
    format!("{username}@{}", server.domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn an_item_becomes_mutual_in_the_circles_groups() {
        let mut item = RosterItem::new("bob@example.com");
        item.subscription = Subscription::To;
        item.ask = true;
        item.approved = true;
        item.groups = vec!["Work".into()];
        assert!(make_synced(&mut item, &groups(&["Family", "Work"])));
        assert_eq!(item.subscription, Subscription::Both);
        assert!(!item.ask && !item.approved);
        assert_eq!(item.groups, ["Family", "Work"]);
        assert!(is_synced(&item, &groups(&["Family"])));
        assert!(!make_synced(&mut item, &groups(&["Work"])));
    }

    #[test]
    fn groups_stay_within_the_roster_limits() {
        let mut item = RosterItem::new("bob@example.com");
        item.subscription = Subscription::Both;
        item.groups = (0..MAX_GROUPS_PER_ITEM)
            .map(|i| format!("g{i:03}"))
            .collect();
        assert!(is_synced(&item, &groups(&["one more"])));
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let mut item = RosterItem::new("bob@example.com");
        assert!(make_synced(&mut item, &groups(&[&long])));
        assert!(item.groups.is_empty());
    }
}
