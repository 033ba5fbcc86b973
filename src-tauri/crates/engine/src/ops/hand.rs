//! People corrected by hand: merging two people, splitting a record out of one, undoing either,
//! and the list of "Changes made by hand". Decisions are stored by the provider records they
//! name (see `clientele_store`'s hand module), applied over the automatic links, and shared with
//! the relay so every desk joined to it shows the same people.

use super::hand_sync::{RelaySync, new_uid};
use super::{Operations, iso};
use crate::error::{ApiResult, AppError, ErrorCode};
use chrono::Utc;
use clientele_core::hand::{Decision, DecisionKind, HandChange, HandChangeKind, RecordRef};
use clientele_store::StoredDecision;
use serde::Serialize;
use ts_rs::TS;

/// A provider record, as lists of decisions and the forget confirmation show it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RecordView {
    pub record: RecordRef,
    pub provider_name: String,
    /// "Tiquo customer cus_1 (main-salon)".
    pub label: String,
    /// The name of the person the record belongs to now, when it is on this computer.
    pub name: Option<String>,
}

/// One decision made by hand.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct DecisionView {
    /// This computer's number for it (`clientele customers undo ID`).
    #[ts(type = "number")]
    pub id: i64,
    /// The same on every desk.
    pub uid: String,
    pub kind: DecisionKind,
    pub records: Vec<RecordView>,
    pub made_at: String,
    pub made_by: String,
    pub undone_at: Option<String>,
    pub undone_by: Option<String>,
    /// What it says, in words: "Tiquo customer 1 (main) and Vagaro customer 7 (salon) are the
    /// same person".
    pub summary: String,
    /// Where its records are now (the people to open), without repeats.
    #[ts(type = "Array<number>")]
    pub people: Vec<i64>,
}

/// What a merge, split or undo did.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct HandEditOutcome {
    pub decision: DecisionView,
    /// The person to show now: the merged person, or the one the split record left.
    #[ts(type = "number | null")]
    pub person_id: Option<i64>,
    pub relay: RelaySync,
}

pub(crate) fn label(record: &RecordRef) -> String {
    format!(
        "{} customer {} ({})",
        record.provider.display_name(),
        record.customer_ref,
        record.connection
    )
}

impl Operations {
    /// Shows `a` and `b` as one person from now on: records them as the same person by one
    /// record of each (the one each person's id comes from).
    pub fn merge_people(&self, a: i64, b: i64) -> ApiResult<HandEditOutcome> {
        if a == b {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "Choose two different customers to merge.",
            ));
        }
        let reader = self.store.reader()?;
        let first = self.first_record(&reader, a)?;
        let second = self.first_record(&reader, b)?;
        let decision = Decision::Merge {
            records: [first.clone(), second],
        };
        let outcome = self.decide(decision)?;
        let person_id = self.store.reader()?.person_of_record(&first)?;
        Ok(HandEditOutcome {
            person_id,
            ..outcome
        })
    }

    /// Shows `record` as a person of its own, apart from everyone its email or phone links it
    /// to, now and in later deliveries.
    pub fn split_record(&self, person: i64, record: &RecordRef) -> ApiResult<HandEditOutcome> {
        let reader = self.store.reader()?;
        let records = reader.records_of(person)?;
        if records.is_empty() {
            return Err(no_person(person));
        }
        if !records.contains(record) {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                format!(
                    "{} isn't one of this customer's records. `clientele customers show {person}` lists them.",
                    label(record)
                ),
            ));
        }
        if records.len() == 1 {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "This customer has only that one record: it is already on its own.",
            ));
        }
        let rest = records.iter().find(|r| *r != record).cloned();
        let outcome = self.decide(Decision::Split {
            record: record.clone(),
        })?;
        let person_id = match rest {
            Some(r) => self.store.reader()?.person_of_record(&r)?,
            None => None,
        };
        Ok(HandEditOutcome {
            person_id,
            ..outcome
        })
    }

    /// Undoes the decision with this computer's id `id` (on every desk joined to the relay too).
    pub fn undo_decision(&self, id: i64) -> ApiResult<HandEditOutcome> {
        let reader = self.store.reader()?;
        let Some(found) = reader.decision(id)? else {
            return Err(AppError::new(
                ErrorCode::NotFound,
                format!(
                    "There is no change made by hand with number {id}. `clientele customers decisions` lists them."
                ),
            ));
        };
        if found.undone_at.is_some() {
            return Err(AppError::new(
                ErrorCode::InvalidInput,
                "That change was already undone.",
            ));
        }
        let (at, by) = (Utc::now(), self.computer_name());
        self.store.writer()?.undo_decision(&found.uid, at, &by)?;
        let relay = self.share_hand_change(&HandChange {
            uid: new_uid(),
            at,
            by,
            what: HandChangeKind::Undo {
                decision: found.uid.clone(),
            },
        })?;
        let reader = self.store.reader()?;
        let decision = self.decision_view(&reader, reader.decision(id)?.unwrap_or(found))?;
        Ok(HandEditOutcome {
            person_id: decision.people.first().copied(),
            decision,
            relay,
        })
    }

    /// Every change made by hand, newest first.
    pub fn decisions(&self) -> ApiResult<Vec<DecisionView>> {
        let reader = self.store.reader()?;
        reader
            .decisions()?
            .into_iter()
            .map(|d| self.decision_view(&reader, d))
            .collect()
    }

    /// Records `decision` here, then shares it with the relay.
    fn decide(&self, decision: Decision) -> ApiResult<HandEditOutcome> {
        let (uid, at, by) = (new_uid(), Utc::now(), self.computer_name());
        self.store
            .writer()?
            .add_decision(&uid, &decision, at, &by)?;
        let relay = self.share_hand_change(&HandChange {
            uid: uid.clone(),
            at,
            by,
            what: HandChangeKind::Decide { decision },
        })?;
        let reader = self.store.reader()?;
        let stored = reader
            .decisions()?
            .into_iter()
            .find(|d| d.uid == uid)
            .ok_or_else(|| AppError::new(ErrorCode::Internal, "The change wasn't kept."))?;
        Ok(HandEditOutcome {
            decision: self.decision_view(&reader, stored)?,
            person_id: None,
            relay,
        })
    }

    fn first_record(&self, reader: &clientele_store::Reader, person: i64) -> ApiResult<RecordRef> {
        reader
            .records_of(person)?
            .into_iter()
            .next()
            .ok_or_else(|| no_person(person))
    }

    fn decision_view(
        &self,
        reader: &clientele_store::Reader,
        d: StoredDecision,
    ) -> ApiResult<DecisionView> {
        let mut records = Vec::new();
        for (record, person) in d.decision.records().into_iter().zip(&d.people) {
            let name = match person {
                Some(id) => Some(reader.person(*id)?.display_name),
                None => None,
            };
            records.push(RecordView {
                provider_name: record.provider.display_name().into(),
                label: label(record),
                record: record.clone(),
                name,
            });
        }
        let summary = match &d.decision {
            Decision::Merge { records: [a, b] } => {
                format!("{} and {} are the same person", label(a), label(b))
            }
            Decision::Split { record } => {
                format!("{} is kept apart from other records", label(record))
            }
        };
        let mut people: Vec<i64> = d.people.iter().flatten().copied().collect();
        people.dedup();
        people.sort_unstable();
        people.dedup();
        Ok(DecisionView {
            id: d.id,
            uid: d.uid,
            kind: d.decision.kind(),
            records,
            made_at: iso(d.made_at),
            made_by: d.made_by,
            undone_at: d.undone_at.map(iso),
            undone_by: d.undone_by,
            summary,
            people,
        })
    }
}

fn no_person(id: i64) -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        format!("There is no customer with id {id}. They may have been merged or forgotten."),
    )
}
