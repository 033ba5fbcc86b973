//! Changes staff make to people by hand — merging two people, splitting a record out of one,
//! undoing either, forgetting someone — as they are recorded, stored and sent between a desk and
//! its relay.
//!
//! Every change names **provider records** (`provider/connection/customer_ref`), never a desk's
//! local person ids: person ids are derived and differ between desks, while a provider's record is
//! the same everywhere. So a change means the same on every desk, and still means it after
//! `reprocess`.
//!
//! Forgetting names records only by **salted hashes** ([`record_hash`]): a provider's customer id
//! may itself be personal (a Standard Webhooks sender can use an email as its id), and what is
//! kept to go on forgetting — on a desk, and on the relay until every desk has heard — must not
//! hold it. A desk finds the records a forget names by hashing its own with the change's salt.

use crate::Provider;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// One provider record: a customer as one connection of one provider knows them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct RecordRef {
    pub provider: Provider,
    pub connection: String,
    pub customer_ref: String,
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.provider.id(),
            self.connection,
            self.customer_ref
        )
    }
}

impl std::str::FromStr for RecordRef {
    type Err = String;

    /// `PROVIDER/CONNECTION/REF` as the command line takes it. The customer id is everything
    /// after the second `/` (ids may hold slashes; connection names can't).
    fn from_str(s: &str) -> Result<RecordRef, String> {
        let mut parts = s.trim().splitn(3, '/');
        let (Some(provider), Some(connection), Some(customer_ref)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "'{s}' isn't a record. Write it as PROVIDER/CONNECTION/CUSTOMER-ID, for example tiquo/main-salon/cus_123 (`clientele customers show ID` lists a person's records)."
            ));
        };
        let provider: Provider = provider.parse().map_err(|e| format!("{e}"))?;
        if connection.is_empty() || customer_ref.is_empty() {
            return Err(format!(
                "'{s}' isn't a record: it needs a connection and a customer id after the provider."
            ));
        }
        Ok(RecordRef {
            provider,
            connection: connection.to_string(),
            customer_ref: customer_ref.to_string(),
        })
    }
}

/// A decision made by hand about who is who.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// These two records are the same person (and so is everyone linked with either).
    Merge { records: [RecordRef; 2] },
    /// This record is nobody else: it links to no other record by email or phone. Merges of it
    /// made before the split no longer count; merges made after it do.
    Split { record: RecordRef },
}

impl Decision {
    pub fn kind(&self) -> DecisionKind {
        match self {
            Decision::Merge { .. } => DecisionKind::Merge,
            Decision::Split { .. } => DecisionKind::Split,
        }
    }

    pub fn records(&self) -> Vec<&RecordRef> {
        match self {
            Decision::Merge { records } => records.iter().collect(),
            Decision::Split { record } => vec![record],
        }
    }
}

/// `merge` or `split`, as `clientele customers decisions --json` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum DecisionKind {
    Merge,
    Split,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Merge => "merge",
            DecisionKind::Split => "split",
        }
    }

    pub fn parse(s: &str) -> Option<DecisionKind> {
        match s {
            "merge" => Some(DecisionKind::Merge),
            "split" => Some(DecisionKind::Split),
            _ => None,
        }
    }
}

/// Why people were forgotten: what the erasure log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErasureReason {
    /// Staff forgot them on request (the customer asked).
    Request,
    /// The provider deleted the customer, and the connection forgets deleted customers.
    ProviderDeleted,
    /// No activity for longer than the retention setting allows.
    Retention,
}

impl ErasureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureReason::Request => "request",
            ErasureReason::ProviderDeleted => "provider_deleted",
            ErasureReason::Retention => "retention",
        }
    }

    pub fn parse(s: &str) -> Option<ErasureReason> {
        match s {
            "request" => Some(ErasureReason::Request),
            "provider_deleted" => Some(ErasureReason::ProviderDeleted),
            "retention" => Some(ErasureReason::Retention),
            _ => None,
        }
    }
}

/// Bytes of a salt for [`record_hash`].
pub const SALT_BYTES: usize = 16;

/// A record as a forget names it: SHA-256 of the salt and `provider/connection/customer_ref`.
pub fn record_hash(salt: &[u8], record: &RecordRef) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(record.provider.id().as_bytes());
    h.update([0]);
    h.update(record.connection.as_bytes());
    h.update([0]);
    h.update(record.customer_ref.as_bytes());
    h.finalize().into()
}

/// A forget as it travels: which records (hashed), whether to keep forgetting them, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forget {
    /// Hex of the salt the record hashes were made with.
    pub salt: String,
    /// Hex of each record's [`record_hash`].
    pub records: Vec<String>,
    /// Later deliveries about these records are acknowledged and not kept.
    pub keep_forgetting: bool,
    pub reason: ErasureReason,
}

/// A change made by hand, as it is sent to the relay and pulled by every other desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandChange {
    /// Made by the desk that made the change; the same on every desk (it is how a repeat is
    /// recognised, and how an undo names its decision).
    pub uid: String,
    pub at: DateTime<Utc>,
    /// The name of the computer it was made on ("Front desk").
    pub by: String,
    #[serde(flatten)]
    pub what: HandChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum HandChangeKind {
    Decide {
        decision: Decision,
    },
    /// Undo the decision with this uid.
    Undo {
        decision: String,
    },
    Forget {
        forget: Forget,
    },
    /// Stop forgetting the records of the forget with this uid.
    StopForgetting {
        forget: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(r: &str) -> RecordRef {
        r.parse().unwrap()
    }

    #[test]
    fn records_read_as_the_command_line_writes_them() {
        let r = record("tiquo/main-salon/cus/42");
        assert_eq!(r.provider, Provider::Tiquo);
        assert_eq!(r.connection, "main-salon");
        assert_eq!(r.customer_ref, "cus/42", "ids may hold slashes");
        assert_eq!(r.to_string(), "tiquo/main-salon/cus/42");
        for bad in ["tiquo", "tiquo/main", "tiquo//x", "stripe/a/b", "tiquo/a/"] {
            assert!(bad.parse::<RecordRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn record_hashes_depend_on_salt_and_every_part() {
        let a = record("tiquo/main/1");
        let h = record_hash(b"salt", &a);
        assert_eq!(h, record_hash(b"salt", &a));
        assert_ne!(h, record_hash(b"other", &a));
        assert_ne!(h, record_hash(b"salt", &record("tiquo/main/2")));
        assert_ne!(h, record_hash(b"salt", &record("tiquo/mai/n1")));
        assert_ne!(h, record_hash(b"salt", &record("vagaro/main/1")));
    }

    #[test]
    fn changes_travel_as_flat_json() {
        let change = HandChange {
            uid: "u1".into(),
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            by: "Front desk".into(),
            what: HandChangeKind::Decide {
                decision: Decision::Split {
                    record: record("zupy/loyalty/9"),
                },
            },
        };
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(json["change"], "decide");
        assert_eq!(json["decision"]["kind"], "split");
        assert_eq!(json["decision"]["record"]["customer_ref"], "9");
        let back: HandChange = serde_json::from_value(json).unwrap();
        assert_eq!(back, change);
    }
}
