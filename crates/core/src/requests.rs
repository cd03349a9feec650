//! IQ requests the server itself sends to a local client (a disco#info query for the client's entity
//! capabilities, say), and the matching of their replies.
//!
//! Requests go out from the server's domain with an id of their own; the router hands every IQ response addressed to
//! the domain to [`PendingRequests::resolve`], which accepts it only from the JID the request went to. The table is
//! bounded ([`MAX_PENDING`]) and every request times out, so a client that never answers costs nothing lasting.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jid::{FullJid, Jid};
use rookery_proto::IqType;
use rookery_xml::{Element, ns};
use tokio::sync::oneshot;

use crate::Server;
use crate::router::Origin;

/// Requests waiting for a reply at once, all clients together. Each holds a few hundred bytes; a server asks one
/// query per login at most, so this is reached only under a flood, which then waits for earlier answers.
pub const MAX_PENDING: usize = 1024;

/// How long the server waits for a reply: clients answer disco queries at once, but a phone on a slow link may
/// take seconds.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// [`MAX_PENDING`] requests are waiting already.
    Busy,
    /// No reply within [`REPLY_TIMEOUT`].
    TimedOut,
}

struct Pending {
    to: FullJid,
    reply: oneshot::Sender<Element>,
}

/// The requests waiting for their replies, by id.
#[derive(Default)]
pub struct PendingRequests {
    waiting: Mutex<HashMap<String, Pending>>,
    next_id: AtomicU64,
}

/// Takes a request out of the table when its waiter goes (reply, timeout or cancellation).
struct Forget<'a> {
    table: &'a PendingRequests,
    id: String,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.table.lock().remove(&self.id);
    }
}

impl PendingRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes an IQ response addressed to the server. `true` if it answered one of its requests (from the JID asked):
    /// the waiter gets it. Anything else is for nobody and is dropped by the router.
    pub fn resolve(&self, response: Element, from: &Jid) -> bool {
        let Some(id) = response.attr("id") else {
            return false;
        };
        let mut waiting = self.lock();
        let Some(pending) = waiting.get(id) else {
            return false;
        };
        if pending.to.as_str() != from.as_str() {
            return false;
        }
        let pending = waiting.remove(id).expect("found above");
        drop(waiting);
        let _ = pending.reply.send(response);
        true
    }

    /// How many requests are waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Server {
    /// Sends an IQ request (`get` or `set` with `payload`) from the server's domain to a local client and waits
    /// for its reply: a `result` or an `error` stanza, as the client sent it.
    pub async fn request(
        &self,
        iq_type: IqType,
        to: &FullJid,
        payload: Element,
    ) -> Result<Element, RequestError> {
        let serial = self.requests.next_id.fetch_add(1, Ordering::Relaxed);
        // Unguessable, so that nobody else can answer in the client's place even if they could send from its JID.
        let id = format!("rookery-{serial}-{:016x}", rand::random::<u64>());
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = self.requests.lock();
            if waiting.len() >= MAX_PENDING {
                return Err(RequestError::Busy);
            }
            waiting.insert(
                id.clone(),
                Pending {
                    to: to.clone(),
                    reply: tx,
                },
            );
        }
        let _forget = Forget {
            table: &self.requests,
            id: id.clone(),
        };
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("type", iq_type.name())
            .with_attr("id", id)
            .with_attr("from", self.domain.as_str())
            .with_attr("to", to.as_str())
            .with_child(payload);
        self.send_local(iq, &Origin::Local).await;
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            // The sender is dropped only with the table entry, which `resolve` removes after sending.
            Ok(Err(_)) | Err(_) => Err(RequestError::TimedOut),
        }
    }
}
