//! The ingest pipeline: one thread owns the store's writer and commits deliveries in groups, so
//! hundreds of deliveries share one fsync and each is answered only once *its* group is durable.
//! Between groups the same thread derives timelines from what it stored; a second thread copies
//! the WAL into the database ([`checkpoint`]).
//!
//! The listener hands deliveries over through an [`IngestHandle`] and awaits the outcome; the
//! desktop app subscribes to [`Notice`]s to refresh its screens. How the writer shares its time
//! between storing and deriving, and the measurements behind each constant, are in
//! `docs/performance.md` ("The ingest pipeline").

mod checkpoint;
mod pipeline;

pub use pipeline::{
    BUSY_GATHER_WAIT, DERIVE_SHARE, DERIVE_SLICE, Derivation, GATHER_WAIT, GroupStore,
    IDLE_DERIVE_BUDGET, IngestError, IngestHandle, MAX_GROUP, Notice, Pipeline, start,
    start_storing, start_with,
};
