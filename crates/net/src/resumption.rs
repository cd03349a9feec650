//! XEP-0198 resumption: the registry of resumable sessions, by resumption id.
//!
//! A resumable session belongs to the connection task that serves it, live or hibernating. A new connection that
//! wants it sends a [`TakeoverRequest`] on the session's channel; the task that holds the session answers with the
//! whole session (its queue, counters and unacknowledged stanzas) and ends without unbinding it. The session thus
//! always has exactly one owner, and nothing is copied or lost in between.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use rookery_xml::Element;
use tokio::sync::{mpsc, oneshot};

use crate::c2s::BoundSession;

/// How many ended sessions' final counts are remembered, so that a client resuming too late learns which of its
/// stanzas the server handled (`<failed h=…/>`, as Prosody does). Each costs a few dozen bytes.
const REMEMBERED_ENDINGS: usize = 1000;

/// A new connection asks for a session.
pub(crate) struct TakeoverRequest {
    /// The answer: the whole session. The new connection checks the client's count against it.
    pub reply: oneshot::Sender<Box<BoundSession>>,
}

struct Resumable {
    username: String,
    takeovers: mpsc::Sender<TakeoverRequest>,
}

/// A session that ended: its owner and how many stanzas the server had handled from it.
struct Ended {
    id: String,
    username: String,
    handled: u32,
}

/// Every resumable session of the server, shared by its client listeners.
#[derive(Default)]
pub struct ResumableSessions {
    live: Mutex<HashMap<String, Resumable>>,
    ended: Mutex<VecDeque<Ended>>,
}

/// What a look-up found.
pub(crate) enum Found {
    /// A session to ask for.
    Session(mpsc::Sender<TakeoverRequest>),
    /// The session ended; the server had handled this many of its stanzas.
    Ended {
        handled: u32,
    },
    Unknown,
}

impl ResumableSessions {
    /// Registers a session as resumable under a new random id (128 bits) and returns the id and the channel its
    /// task must watch for takeovers.
    pub(crate) fn register(&self, username: &str) -> (String, mpsc::Receiver<TakeoverRequest>) {
        let id = format!("{:032x}", rand::random::<u128>());
        // One request at a time is all a session ever needs; a second waits.
        let (tx, rx) = mpsc::channel(1);
        self.lock_live().insert(
            id.clone(),
            Resumable {
                username: username.to_owned(),
                takeovers: tx,
            },
        );
        (id, rx)
    }

    /// The session `id` of this account. Another account's session is not found, whoever asks.
    pub(crate) fn find(&self, username: &str, id: &str) -> Found {
        if let Some(entry) = self.lock_live().get(id)
            && entry.username == username
        {
            return Found::Session(entry.takeovers.clone());
        }
        let ended = self.lock_ended();
        match ended.iter().find(|e| e.id == id && e.username == username) {
            Some(e) => Found::Ended { handled: e.handled },
            None => Found::Unknown,
        }
    }

    /// The session ended for good: it can no longer be resumed, and its final count is remembered for a while.
    pub(crate) fn ended(&self, id: &str, handled: u32) {
        let Some(entry) = self.lock_live().remove(id) else {
            return;
        };
        let mut ended = self.lock_ended();
        if ended.len() >= REMEMBERED_ENDINGS {
            ended.pop_front();
        }
        ended.push_back(Ended {
            id: id.to_owned(),
            username: entry.username,
            handled,
        });
    }

    /// How many sessions can be resumed now.
    pub fn count(&self) -> usize {
        self.lock_live().len()
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Resumable>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_ended(&self) -> std::sync::MutexGuard<'_, VecDeque<Ended>> {
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `<failed/>` for a resumption that cannot happen.
pub(crate) fn not_found(handled: Option<u32>) -> Element {
    rookery_proto::sm::failed("item-not-found", handled)
}
