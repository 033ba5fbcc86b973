//! Hand changes at the relay: checking what a desk sends, and carrying out a forget on the
//! relay's own copy before the desk is told it was accepted.
//!
//! The relay derives nothing, so it finds the deliveries a forget names by reading them: each
//! stored, not-erased delivery is parsed with its connection's settings
//! (`clientele_core::providers::parse`) and each event's record hashed with the forget's salt.
//! Matches are erased as a desk erases them (bytes gone, a row with a keyed hash of the dedupe key
//! kept), then the WAL is checkpointed and truncated so no old copy stays in it.

use crate::store::RelayStore;
use chrono::{DateTime, Utc};
use clientele_core::hand::{Decision, Forget, HandChange, HandChangeKind, RecordRef};
use clientele_store::{AcceptedChange, ForgetHashes, StoreError};
use std::time::Duration;

/// Deliveries read per batch while looking for a forget's.
const BATCH: usize = 500;
/// The most records one forget may name.
pub const MAX_FORGET_RECORDS: usize = 10_000;
/// Longest uid or computer name in a change.
const MAX_NAME: usize = 128;
/// How long the relay keeps trying to empty its WAL after a forget (readers may hold it).
const TRUNCATE_FOR: Duration = Duration::from_secs(5);

/// Why a change was refused, in words for the desk.
pub fn validate(change: &HandChange) -> Result<(), String> {
    let name_ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= MAX_NAME;
    if !name_ok(&change.uid)
        || !change
            .uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err("A change needs an id of letters, digits and dashes.".into());
    }
    if !name_ok(&change.by) || change.by.chars().any(char::is_control) {
        return Err("A change needs the name of the computer it was made on.".into());
    }
    let record_ok = |r: &RecordRef| name_ok(&r.connection) && !r.customer_ref.is_empty();
    match &change.what {
        HandChangeKind::Decide {
            decision: Decision::Merge { records },
        } if records.iter().all(record_ok) && records[0] != records[1] => Ok(()),
        HandChangeKind::Decide {
            decision: Decision::Split { record },
        } if record_ok(record) => Ok(()),
        HandChangeKind::Decide { .. } => Err("That decision doesn't name its records.".into()),
        HandChangeKind::Undo { decision } | HandChangeKind::StopForgetting { forget: decision }
            if name_ok(decision) =>
        {
            Ok(())
        }
        HandChangeKind::Undo { .. } | HandChangeKind::StopForgetting { .. } => {
            Err("That change doesn't say which change it undoes.".into())
        }
        HandChangeKind::Forget { forget } => {
            if forget.records.is_empty() || forget.records.len() > MAX_FORGET_RECORDS {
                return Err(format!("A forget names 1 to {MAX_FORGET_RECORDS} records."));
            }
            ForgetHashes::decode(forget)
                .map(drop)
                .ok_or_else(|| "A forget names its records by salted hashes.".into())
        }
    }
}

/// What accepting a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub change: AcceptedChange,
    /// Deliveries erased on the relay (a forget).
    pub erased: usize,
    /// The WAL was emptied afterwards (a forget); false if readers kept it from finishing.
    pub wal_truncated: bool,
}

/// Keeps `change` (once, by uid), carrying out a forget on the relay's deliveries first.
/// Blocking: call it off the async threads.
pub fn accept(
    store: &dyn RelayStore,
    change: &HandChange,
    device: &str,
    now: DateTime<Utc>,
) -> Result<Accepted, StoreError> {
    let forget = match &change.what {
        HandChangeKind::Forget { forget } => Some(forget),
        _ => None,
    };
    if let Some(id) = store.change_id(&change.uid)? {
        return Ok(Accepted {
            change: AcceptedChange {
                id,
                new: false,
                decisions_deleted: 0,
            },
            erased: 0,
            wal_truncated: false,
        });
    }
    let Some(forget) = forget else {
        let change = store.accept_change(change, device, now)?;
        return Ok(Accepted {
            change,
            erased: 0,
            wal_truncated: false,
        });
    };
    // Erase first, so that once the change is kept the relay's copy is forgotten; then once more
    // for deliveries stored meanwhile (with "keep forgetting", those after it are withheld).
    let (mut erased, scanned) = erase_named(store, forget, 0, now)?;
    let accepted = store.accept_change(change, device, now)?;
    erased += erase_named(store, forget, scanned, now)?.0;
    let wal_truncated = truncate_wal(store)?;
    tracing::info!(
        erased,
        decisions_deleted = accepted.decisions_deleted,
        wal_truncated,
        "a desk's forget was carried out on the relay"
    );
    Ok(Accepted {
        change: accepted,
        erased,
        wal_truncated,
    })
}

/// Erases the deliveries after id `after` about a record `forget` names; returns how many were
/// erased and the last id read.
fn erase_named(
    store: &dyn RelayStore,
    forget: &Forget,
    mut after: i64,
    now: DateTime<Utc>,
) -> Result<(usize, i64), StoreError> {
    let hashes = ForgetHashes::decode(forget).ok_or_else(|| {
        StoreError::Invalid("A forget names its records by salted hashes.".into())
    })?;
    let mut named = Vec::new();
    loop {
        let batch = store.deliveries_to_check(after, BATCH)?;
        let Some(last) = batch.last().map(|d| d.id) else {
            break;
        };
        named.extend(
            batch
                .iter()
                .filter(|d| hashes.names_any_in(d))
                .map(|d| d.id),
        );
        after = last;
    }
    let erased = if named.is_empty() {
        0
    } else {
        store.erase_deliveries(&named, now)? as usize
    };
    Ok((erased, after))
}

/// Makes what was erased unreadable on disk (SQLite: the WAL copied and truncated, and on a
/// database from before `secure_delete` one `VACUUM`; PostgreSQL: the rewritten tables vacuumed),
/// trying for a few seconds while readers hold it.
fn truncate_wal(store: &dyn RelayStore) -> Result<bool, StoreError> {
    let checkpointed = store.wipe_forgotten(TRUNCATE_FOR)?;
    if !checkpointed {
        tracing::warn!(
            "the relay couldn't empty its WAL after a forget; it is emptied at the next checkpoint"
        );
    }
    Ok(checkpointed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clientele_core::hand::{ErasureReason, record_hash};

    fn change(what: HandChangeKind) -> HandChange {
        HandChange {
            uid: "0f3a-77".into(),
            at: Utc::now(),
            by: "Front desk".into(),
            what,
        }
    }

    #[test]
    fn changes_are_checked_before_they_are_kept() {
        let r: RecordRef = "tiquo/main/1".parse().unwrap();
        let ok = change(HandChangeKind::Decide {
            decision: Decision::Split { record: r.clone() },
        });
        assert!(validate(&ok).is_ok());
        let same = change(HandChangeKind::Decide {
            decision: Decision::Merge {
                records: [r.clone(), r.clone()],
            },
        });
        assert!(validate(&same).is_err());
        let mut bad_uid = ok.clone();
        bad_uid.uid = "a b".into();
        assert!(validate(&bad_uid).is_err());
        let salt = [7u8; 16];
        let forget = |records: Vec<String>| {
            change(HandChangeKind::Forget {
                forget: Forget {
                    salt: hex::encode(salt),
                    records,
                    keep_forgetting: false,
                    reason: ErasureReason::Request,
                },
            })
        };
        assert!(validate(&forget(vec![hex::encode(record_hash(&salt, &r))])).is_ok());
        assert!(validate(&forget(vec![])).is_err());
        assert!(
            validate(&forget(vec!["tiquo/main/1".into()])).is_err(),
            "plain ids refused"
        );
    }
}
