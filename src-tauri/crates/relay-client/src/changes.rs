//! Hand changes between a desk and its relay: sending the desk's outbox, and applying the
//! changes other desks made, in the relay's order, before the deliveries pulled with them.
//!
//! What sending and applying mean is the desk's business ([`HandChanges`], implemented by the
//! engine): this module only moves them, in order, and says what went wrong.

use crate::client::{ClientError, RelayClient};
use crate::pull::StoreFailure;
use clientele_core::hand::HandChange;
use clientele_core::relay_protocol::{MAX_CHANGES_PAGE, Policy, PulledChange};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The desk's side of hand changes. Blocking: called off the async threads.
pub trait HandChanges: Send + Sync + std::fmt::Debug {
    /// The changes made here that the relay hasn't accepted yet, oldest first.
    fn to_send(&self) -> Result<Vec<HandChange>, String>;
    /// The relay has the change `uid` (or refused it for good): it leaves the outbox.
    fn sent(&self, uid: &str) -> Result<(), String>;
    /// How far this desk has applied the relay's changes.
    fn cursor(&self) -> Result<i64, String>;
    /// Applies one of the relay's changes (one made here is already applied: a no-op) and moves
    /// the cursor past it; returns the people it changed.
    fn apply(&self, change: &PulledChange) -> Result<BTreeSet<i64>, String>;
    /// Keeps the retention policy the relay holds for every desk.
    fn policy(&self, policy: &Policy) -> Result<(), String>;
}

/// What one round of [`sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    /// Changes from the outbox the relay accepted.
    pub sent: usize,
    /// The relay's changes applied here.
    pub applied: usize,
    /// The people those changed.
    pub people: BTreeSet<i64>,
}

/// Runs a blocking call of `changes` on the blocking pool.
async fn blocking<T: Send + 'static>(
    changes: &Arc<dyn HandChanges>,
    f: impl FnOnce(&dyn HandChanges) -> Result<T, String> + Send + 'static,
) -> Result<T, StoreFailure> {
    let changes = changes.clone();
    tokio::task::spawn_blocking(move || f(changes.as_ref()))
        .await
        .map_err(|e| StoreFailure::Local(e.to_string()))?
        .map_err(StoreFailure::Local)
}

/// A relay from before hand changes answers their paths `404 not_found`.
fn not_supported(e: &ClientError) -> bool {
    matches!(e, ClientError::Refused { status: 404, .. })
}

/// A refusal that sending again won't change (the change itself is wrong).
fn refused_for_good(e: &ClientError) -> bool {
    matches!(e, ClientError::Refused { status, .. } if matches!(status, 400 | 413 | 422))
}

/// Sends the outbox, then applies the relay's changes after this desk's cursor, then keeps the
/// relay's policy. Stops at the first failure to reach the relay (what was done stays done).
pub async fn sync(
    client: &RelayClient,
    changes: &Arc<dyn HandChanges>,
) -> Result<Synced, StoreFailure> {
    let mut synced = Synced::default();
    for change in blocking(changes, |c| c.to_send()).await? {
        match client.send_change(&change).await {
            Ok(_) => synced.sent += 1,
            Err(e) if refused_for_good(&e) => {
                tracing::warn!(error = %e, "the relay refused a change made here; it is dropped");
            }
            // An older relay: the change waits for the relay to be updated.
            Err(e) if not_supported(&e) => break,
            Err(e) => return Err(e.into()),
        }
        let uid = change.uid.clone();
        blocking(changes, move |c| c.sent(&uid)).await?;
    }
    loop {
        let cursor = blocking(changes, |c| c.cursor()).await?;
        let page = match client.changes(cursor, MAX_CHANGES_PAGE).await {
            Ok(page) => page,
            Err(e) if not_supported(&e) => return Ok(synced),
            Err(e) => return Err(e.into()),
        };
        let more = page.more && !page.changes.is_empty();
        for change in page.changes {
            let people = blocking(changes, move |c| c.apply(&change)).await?;
            synced.applied += 1;
            synced.people.extend(people);
        }
        if !more {
            break;
        }
    }
    match client.policy().await {
        Ok(policy) => blocking(changes, move |c| c.policy(&policy)).await?,
        Err(e) if not_supported(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(synced)
}
