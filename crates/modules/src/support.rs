//! Small pieces the modules share.

use rookery_core::{BoxFuture, IqHandler, IqOutcome, IqRequest, Server};
use rookery_proto::{ErrorType, StanzaCondition, StanzaError};
use rookery_store::StoreError;

/// An IQ handler that waits (on the database, say): a plain function returning a boxed future.
pub struct AsyncIq(pub for<'a> fn(IqRequest<'a>) -> BoxFuture<'a, IqOutcome>);

impl IqHandler for AsyncIq {
    fn handle<'a>(&'a self, request: IqRequest<'a>) -> BoxFuture<'a, IqOutcome> {
        (self.0)(request)
    }
}

/// The username of the local account a request to `Target::Own` or `Target::Bare` is addressed to (the router
/// sets `to` to the sender's own bare JID when the stanza had none).
pub fn addressed_account<'a>(req: &'a IqRequest<'_>) -> &'a str {
    req.to.node().map_or("", |n| n.as_str())
}

/// Whether the account exists. RFC 6121 §8.5.1: an IQ to an account that does not exist gets
/// `service-unavailable`, which [`no_such_account`] builds.
pub async fn account_exists(server: &Server, username: &str) -> Result<bool, StoreError> {
    server.store.accounts().exists(username).await
}

/// The answer to an IQ for an account that does not exist (RFC 6121 §8.5.1).
pub fn no_such_account() -> IqOutcome {
    IqOutcome::Error(StanzaError::new(StanzaCondition::ServiceUnavailable))
}

/// The answer when the database fails: logged here, `internal-server-error` (type `wait`: it may work later) to
/// the requester, who learns nothing about the cause.
pub fn storage_failed(what: &str, error: &StoreError) -> IqOutcome {
    tracing::warn!(%error, "{what} failed");
    IqOutcome::Error(
        StanzaError::new(StanzaCondition::InternalServerError).with_type(ErrorType::Wait),
    )
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
