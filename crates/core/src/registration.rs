//! In-band registration before login (XEP-0077 with XEP-0401 invites): the connection task hands a registration
//! request to whichever module provides the [`AccountRegistrar`], so that the network layer needs no knowledge of
//! invites, rosters or circles.

use std::sync::Arc;

use rookery_proto::StanzaError;

use crate::{BoxFuture, Server};

/// A registration request from an unauthenticated stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    /// Already nodeprepped.
    pub username: String,
    pub password: String,
    /// The invite token the stream presented and had accepted (XEP-0401 `<preauth/>`), if any.
    pub invite_token: Option<String>,
}

/// Creates accounts (or resets passwords) from registration requests.
pub trait AccountRegistrar: Send + Sync {
    /// Checks the request and carries it out; the error is the one to answer the registration IQ with.
    fn register<'a>(
        &'a self,
        server: &'a Arc<Server>,
        request: NewAccount,
    ) -> BoxFuture<'a, Result<(), StanzaError>>;
}

/// The extension ([`crate::Extensions`]) through which a module provides registration. Without one, streams offer
/// no registration.
#[derive(Default)]
pub struct Registration {
    pub registrar: Option<Arc<dyn AccountRegistrar>>,
}
