//! The writer thread: stores deliveries in groups, one fsync each, and derives between them.
//! Why, and how its time is shared, is in `docs/performance.md` ("The ingest pipeline").

use crate::checkpoint::{self, WalCheckpoints};
use clientele_store::{
    DeriveReport, IngestOutcome, NewDelivery, NewRejection, PulledUpTo, Store, StoreError,
    StoredBody, Writer,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::collections::BTreeSet;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot};

/// Most deliveries in one transaction (bounds the latency of the first in the group).
pub const MAX_GROUP: usize = 1_024;
/// Target time for a slice of derivation between two groups.
pub const DERIVE_SLICE: Duration = Duration::from_millis(1);
/// While deliveries keep arriving, derivation between groups takes about this share of the
/// writer thread's time (the rest commits deliveries). Small on purpose: see `docs/performance.md`,
/// "The ingest pipeline".
pub const DERIVE_SHARE: f64 = 0.05;
/// After a group of one delivery, how long to wait for more before deriving instead.
pub const GATHER_WAIT: Duration = Duration::from_micros(500);
/// After a group of several (the listener is saturated), how long to wait for more before
/// deriving instead. Also how late derivation starts once a burst ends.
pub const BUSY_GATHER_WAIT: Duration = Duration::from_millis(5);
/// Longest a pass of derivation reads deliveries for when none are waiting to be stored; it
/// also ends as soon as one is (asked every few deliveries), and then saves what it derived
/// (about as long again), so a delivery arriving meanwhile waits a few milliseconds at most.
/// The pass's size follows from the time rather than being guessed in advance: sized chunks
/// shrank to 4-6 deliveries a transaction on a busy machine (a backlog derived at 280-660/s).
pub const IDLE_DERIVE_BUDGET: Duration = Duration::from_millis(8);
/// Largest chunk for catching up when nothing else is waiting (and at shutdown): below the
/// store's read-ahead threshold, so a pass that stops early has parsed nothing in vain.
const IDLE_DERIVE_CHUNK: usize = 1_500;
/// How many jobs may queue before senders wait (backpressure instead of unbounded memory).
const QUEUE_CAPACITY: usize = 8_192;
/// The pipeline's threads, as `top` and `/proc` show them (Linux keeps their first 15 bytes).
pub(crate) const WRITER_THREAD: &str = "clientele-ingest";
/// How often a busy writer logs where its time went (at debug level: `CLIENTELE_LOG=
/// clientele_ingest=debug`).
const TIMES_EVERY: Duration = Duration::from_secs(5);

/// Where the writer thread's time goes, logged every [`TIMES_EVERY`] while it works: committing
/// groups of deliveries (the time every waiting sender waits), deriving (between groups, and
/// when nothing is waiting), finishing checkpoints, and waiting for work. Measuring costs a few
/// clock reads per group.
#[derive(Debug, Default)]
struct WriterTimes {
    since: Option<Instant>,
    commit: Duration,
    derive_between: Duration,
    derive_idle: Duration,
    checkpoint: Duration,
    groups: u64,
    jobs: u64,
    derived: u64,
    slices: u64,
}

impl WriterTimes {
    fn log_if_due(&mut self) {
        let since = *self.since.get_or_insert_with(Instant::now);
        let wall = since.elapsed();
        if wall < TIMES_EVERY {
            return;
        }
        if self.groups > 0 || self.derived > 0 {
            let share = |d: Duration| d.as_secs_f64() / wall.as_secs_f64();
            tracing::debug!(
                wall_s = wall.as_secs_f64(),
                commit = share(self.commit),
                derive_between = share(self.derive_between),
                derive_idle = share(self.derive_idle),
                checkpoint = share(self.checkpoint),
                groups = self.groups,
                jobs_per_group = self.jobs as f64 / self.groups.max(1) as f64,
                commit_us_per_job = self.commit.as_secs_f64() * 1e6 / self.jobs.max(1) as f64,
                derived = self.derived,
                derive_us_per_delivery = (self.derive_between + self.derive_idle).as_secs_f64()
                    * 1e6
                    / self.derived.max(1) as f64,
                slices = self.slices,
                "where the writer's time went"
            );
        }
        *self = WriterTimes {
            since: Some(Instant::now()),
            ..WriterTimes::default()
        };
    }
}

/// Why a delivery could not be stored. The listener answers `503` so the provider retries. The
/// store's own words (which may name files or SQLite's internals) go to the log only: these
/// messages are what a provider's delivery log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("The disk is full, so Clientele couldn't store the message. Send it again later.")]
    DiskFull,
    #[error("Clientele couldn't store the message right now. Send it again later.")]
    StoreUnavailable,
    #[error("Clientele is shutting down; send again shortly.")]
    ShuttingDown,
}

impl IngestError {
    /// What a store failure tells the sender; the caller logs the failure itself.
    fn from_store(e: &StoreError) -> Self {
        match e {
            StoreError::DiskFull => IngestError::DiskFull,
            _ => IngestError::StoreUnavailable,
        }
    }
}

/// What the pipeline reports as it works, for live screens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Stored {
        delivery_id: i64,
    },
    Duplicate {
        delivery_id: i64,
        duplicates: i64,
    },
    /// About a customer kept forgotten: acknowledged, not stored.
    Withheld,
    Rejected {
        provider: String,
        connection: String,
        code: String,
    },
    /// Derivation changed these people.
    Derived {
        deliveries: usize,
        people: BTreeSet<i64>,
    },
}

impl Notice {
    /// What a stored delivery's outcome tells live screens.
    fn of(outcome: IngestOutcome) -> Notice {
        match outcome {
            IngestOutcome::Stored { id } => Notice::Stored { delivery_id: id },
            IngestOutcome::Duplicate { id, duplicates } => Notice::Duplicate {
                delivery_id: id,
                duplicates,
            },
            IngestOutcome::Withheld { .. } => Notice::Withheld,
        }
    }
}

enum Job {
    /// With its body made ready to store where it was received, when the store packs bodies.
    Deliver(
        NewDelivery,
        Option<StoredBody>,
        oneshot::Sender<Result<IngestOutcome, IngestError>>,
    ),
    Reject(NewRejection),
    /// A page pulled from a relay, stored with the cursor past it in one transaction.
    Pulled(
        Vec<NewDelivery>,
        PulledUpTo,
        oneshot::Sender<Result<Vec<IngestOutcome>, IngestError>>,
    ),
    /// Derive everything pending, then answer (tests, `reprocess`-like callers).
    Flush(oneshot::Sender<Result<(), IngestError>>),
}

/// The sending side, cheap to clone.
#[derive(Debug, Clone)]
pub struct IngestHandle {
    jobs: Sender<Job>,
    notices: broadcast::Sender<Notice>,
    /// Bodies are packed by the sender (the data folder's SQLite packs them; a store-only
    /// pipeline's database keeps them as received).
    packs: bool,
}

/// Owns the pipeline thread; dropping every handle and calling [`Pipeline::join`] stops it after
/// it has stored and derived everything queued.
#[derive(Debug)]
pub struct Pipeline {
    thread: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Deliver(..) => "Deliver",
            Job::Reject(_) => "Reject",
            Job::Pulled(..) => "Pulled",
            Job::Flush(_) => "Flush",
        })
    }
}

/// Whether the pipeline builds timelines from what it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derivation {
    /// A desk: derive between groups, and what a previous run left pending.
    On,
    /// A relay: store only. Its desks derive what they pull.
    Off,
}

/// Where a store-only pipeline commits its groups: a database other than the data folder's
/// SQLite (the relay's PostgreSQL). One call per group, one durable transaction each; the
/// outcomes are in the order of `deliveries`.
pub trait GroupStore: Send + Sync + 'static {
    fn store_group(
        &self,
        deliveries: &[NewDelivery],
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError>;
}

/// What [`commit_group`] writes with: the data folder's [`Writer`] (which also derives and takes
/// pulled pages), or a [`GroupStore`] that only stores.
trait GroupWriter {
    fn ingest(
        &mut self,
        deliveries: &[NewDelivery],
        bodies: Option<&[StoredBody]>,
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError>;
    fn ingest_pulled(
        &mut self,
        page: &[NewDelivery],
        up_to: &PulledUpTo,
    ) -> Result<Vec<IngestOutcome>, StoreError>;
    fn derive_all(&mut self) -> Result<DeriveReport, StoreError>;
}

impl GroupWriter for Writer {
    fn ingest(
        &mut self,
        deliveries: &[NewDelivery],
        bodies: Option<&[StoredBody]>,
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        Writer::ingest_stored(self, deliveries, bodies, rejections)
    }

    fn ingest_pulled(
        &mut self,
        page: &[NewDelivery],
        up_to: &PulledUpTo,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        Writer::ingest_pulled(self, page, up_to)
    }

    fn derive_all(&mut self) -> Result<DeriveReport, StoreError> {
        Writer::derive_all(self)
    }
}

struct StoreOnly(std::sync::Arc<dyn GroupStore>);

impl GroupWriter for StoreOnly {
    fn ingest(
        &mut self,
        deliveries: &[NewDelivery],
        _bodies: Option<&[StoredBody]>,
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        if deliveries.is_empty() && rejections.is_empty() {
            return Ok(Vec::new());
        }
        self.0.store_group(deliveries, rejections)
    }

    fn ingest_pulled(
        &mut self,
        _page: &[NewDelivery],
        _up_to: &PulledUpTo,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        Err(StoreError::Invalid(
            "a store-only pipeline doesn't take pages pulled from a relay".into(),
        ))
    }

    fn derive_all(&mut self) -> Result<DeriveReport, StoreError> {
        Ok(DeriveReport::default())
    }
}

/// Starts a pipeline that only stores, into `store` (a relay on PostgreSQL): the same queue,
/// groups, answers and notices as [`start`], without derivation or the data folder's
/// checkpoints.
pub fn start_storing(
    store: std::sync::Arc<dyn GroupStore>,
) -> Result<(IngestHandle, Pipeline), StoreError> {
    let (jobs, rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
    let (notices, _) = broadcast::channel(1_024);
    let thread_notices = notices.clone();
    let thread = std::thread::Builder::new()
        .name(WRITER_THREAD.into())
        .spawn(move || {
            let mut writer = StoreOnly(store);
            while let Ok(first) = rx.recv() {
                commit_group(&mut writer, first, &rx, &thread_notices, false);
            }
        })
        .map_err(|e| StoreError::Invalid(format!("couldn't start the ingest thread: {e}")))?;
    Ok((
        IngestHandle {
            jobs,
            notices,
            packs: false,
        },
        Pipeline {
            thread: Some(thread),
            checkpointer: None,
        },
    ))
}

/// Starts the pipeline on its own thread. Deliveries stored earlier but not yet derived (the
/// process was killed) are derived first.
pub fn start(store: &Store) -> Result<(IngestHandle, Pipeline), StoreError> {
    start_with(store, Derivation::On)
}

/// [`start`], choosing whether to derive.
pub fn start_with(
    store: &Store,
    derivation: Derivation,
) -> Result<(IngestHandle, Pipeline), StoreError> {
    let mut writer = store.writer()?;
    writer.checkpoint_elsewhere()?;
    let checkpointer = store.checkpointer()?;
    clientele_core::identity::warm_up();
    let (jobs, rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
    let (notices, _) = broadcast::channel(1_024);
    let thread_notices = notices.clone();
    let spawn_error =
        |e: std::io::Error| StoreError::Invalid(format!("couldn't start the ingest thread: {e}"));
    let (checkpoints, checkpointer) = checkpoint::spawn(checkpointer).map_err(spawn_error)?;
    let thread = std::thread::Builder::new()
        .name(WRITER_THREAD.into())
        .spawn(move || run(writer, rx, thread_notices, checkpoints, derivation))
        .map_err(spawn_error)?;
    Ok((
        IngestHandle {
            jobs,
            notices,
            packs: true,
        },
        Pipeline {
            thread: Some(thread),
            checkpointer: Some(checkpointer),
        },
    ))
}

impl IngestHandle {
    /// Stores one delivery durably; resolves once its group is committed.
    pub async fn deliver(&self, delivery: NewDelivery) -> Result<IngestOutcome, IngestError> {
        let (tx, rx) = oneshot::channel();
        let body = self.packs.then(|| StoredBody::of(&delivery.body));
        self.send(Job::Deliver(delivery, body, tx)).await?;
        rx.await.map_err(|_| IngestError::ShuttingDown)?
    }

    /// Stores a page pulled from a relay and moves the relay cursor past it, in one durable
    /// transaction; resolves once it is committed. The outcomes are in the order of `deliveries`.
    pub async fn deliver_pulled(
        &self,
        deliveries: Vec<NewDelivery>,
        up_to: PulledUpTo,
    ) -> Result<Vec<IngestOutcome>, IngestError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Pulled(deliveries, up_to, tx)).await?;
        rx.await.map_err(|_| IngestError::ShuttingDown)?
    }

    /// Logs a refused request (not awaited: it must never slow the refusal down).
    pub fn reject(&self, rejection: NewRejection) {
        // A full queue drops the log line rather than the listener's responsiveness.
        let _ = self.jobs.try_send(Job::Reject(rejection));
    }

    /// Resolves when everything queued so far is stored and derived.
    pub async fn flush(&self) -> Result<(), IngestError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Flush(tx)).await?;
        rx.await.map_err(|_| IngestError::ShuttingDown)?
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// The sending side of the notices, to subscribe later even after this handle is dropped.
    pub fn notices(&self) -> broadcast::Sender<Notice> {
        self.notices.clone()
    }

    async fn send(&self, job: Job) -> Result<(), IngestError> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(IngestError::ShuttingDown),
            Err(crossbeam_channel::TrySendError::Full(job)) => {
                // Backpressure: wait off the async runtime.
                let jobs = self.jobs.clone();
                tokio::task::spawn_blocking(move || {
                    jobs.send(job).map_err(|_| IngestError::ShuttingDown)
                })
                .await
                .map_err(|_| IngestError::ShuttingDown)?
            }
        }
    }
}

impl Pipeline {
    /// Waits for the thread to finish (after every handle is dropped).
    pub fn join(mut self) {
        for thread in [self.thread.take(), self.checkpointer.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
    }
}

fn run(
    mut writer: Writer,
    rx: Receiver<Job>,
    notices: broadcast::Sender<Notice>,
    checkpoints: WalCheckpoints,
    derivation: Derivation,
) {
    let derives = derivation == Derivation::On;
    let mut chunk = 32usize; // between groups
    let mut behind = derives; // derive whatever a previous run left pending
    let mut committed = 0usize; // jobs in the group the last turn stored
    let mut earned = Duration::ZERO; // derivation time earned by committing groups
    let mut times = WriterTimes::default();
    loop {
        times.log_if_due();
        let first = if !behind {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else if committed > 0 {
            let wait = if committed > 1 {
                BUSY_GATHER_WAIT
            } else {
                GATHER_WAIT
            };
            match rx.recv_timeout(wait) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.try_recv() {
                Ok(job) => Some(job),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => break,
            }
        };
        committed = 0;
        match first {
            Some(job) => {
                let committing = Instant::now();
                let group = commit_group(&mut writer, job, &rx, &notices, derives);
                let commit = committing.elapsed();
                times.commit += commit;
                times.groups += 1;
                times.jobs += group.jobs as u64;
                earned = (earned + derive_share(commit)).min(4 * DERIVE_SLICE);
                after_commit(&checkpoints, &mut writer, &mut times);
                committed = group.jobs;
                behind |= group.stored_any && derives;
                if behind && earned >= DERIVE_SLICE {
                    // A short slice between groups keeps the timeline close behind the listener.
                    let started = Instant::now();
                    let (more, derived) = derive(&mut writer, chunk, &notices);
                    behind = more;
                    let took = started.elapsed();
                    times.derive_between += took;
                    times.derived += derived as u64;
                    times.slices += 1;
                    after_commit(&checkpoints, &mut writer, &mut times);
                    earned = earned.saturating_sub(took);
                    chunk = next_chunk(chunk, took, DERIVE_SLICE, 256);
                }
            }
            None => {
                let started = Instant::now();
                let mut stop = || !rx.is_empty() || started.elapsed() >= IDLE_DERIVE_BUDGET;
                let (_, derived) =
                    derive_until(&mut writer, IDLE_DERIVE_CHUNK, &notices, &mut stop);
                // Stopped early or not, whatever is left is found by the next pass.
                behind = derived > 0;
                let took = started.elapsed();
                times.derive_idle += took;
                times.derived += derived as u64;
                times.slices += 1;
                after_commit(&checkpoints, &mut writer, &mut times);
            }
        }
    }
    // Shutting down: derive what is left so a clean stop leaves nothing pending.
    while derives && derive(&mut writer, IDLE_DERIVE_CHUNK, &notices).0 {}
}

/// [`WalCheckpoints::after_commit`], its time counted.
fn after_commit(checkpoints: &WalCheckpoints, writer: &mut Writer, times: &mut WriterTimes) {
    let started = Instant::now();
    checkpoints.after_commit(writer);
    times.checkpoint += started.elapsed();
}

/// The derivation time a group that took `commit` to store earns: [`DERIVE_SHARE`] of the
/// thread's time.
fn derive_share(commit: Duration) -> Duration {
    commit.mul_f64(DERIVE_SHARE / (1.0 - DERIVE_SHARE))
}

/// Adapts a chunk size (between 1 and `max`) so a slice takes about `target`.
fn next_chunk(chunk: usize, took: Duration, target: Duration, max: usize) -> usize {
    let ratio = target.as_secs_f64() / took.as_secs_f64().max(1e-6);
    ((chunk as f64 * ratio.clamp(0.5, 2.0)) as usize).clamp(1, max)
}

/// Derives one chunk; returns whether more may be pending, and how many it derived.
fn derive(writer: &mut Writer, chunk: usize, notices: &broadcast::Sender<Notice>) -> (bool, usize) {
    derive_until(writer, chunk, notices, &mut || false)
}

/// [`derive`] that ends early when `stop` says so.
fn derive_until(
    writer: &mut Writer,
    chunk: usize,
    notices: &broadcast::Sender<Notice>,
    stop: &mut dyn FnMut() -> bool,
) -> (bool, usize) {
    match writer.derive_pending_until(chunk, stop) {
        Ok(DeriveReport { deliveries: 0, .. }) => (false, 0),
        Ok(report) => {
            let derived = report.deliveries;
            let _ = notices.send(Notice::Derived {
                deliveries: report.deliveries,
                people: report.people_changed,
            });
            (derived >= chunk, derived)
        }
        Err(e) => {
            // Deliveries are safe; derivation retries on the next delivery or restart.
            tracing::error!(error = %e, "couldn't derive timelines");
            (false, 0)
        }
    }
}

/// Stores one pulled page with its cursor and answers its sender; true if anything was new.
fn store_pulled(
    writer: &mut impl GroupWriter,
    page: &[NewDelivery],
    up_to: &PulledUpTo,
    reply: oneshot::Sender<Result<Vec<IngestOutcome>, IngestError>>,
    notices: &broadcast::Sender<Notice>,
) -> bool {
    match writer.ingest_pulled(page, up_to) {
        Ok(outcomes) => {
            let mut stored_any = false;
            for outcome in &outcomes {
                stored_any |= matches!(outcome, IngestOutcome::Stored { .. });
                let _ = notices.send(Notice::of(*outcome));
            }
            let _ = reply.send(Ok(outcomes));
            stored_any
        }
        Err(e) => {
            tracing::error!(error = %e, count = page.len(), "couldn't store a pulled page");
            let _ = reply.send(Err(IngestError::from_store(&e)));
            false
        }
    }
}

/// What [`commit_group`] did.
struct Group {
    /// Jobs taken from the queue (deliveries, rejections, flushes).
    jobs: usize,
    /// New deliveries were stored (not only duplicates).
    stored_any: bool,
}

/// Gathers every job already queued (up to `MAX_GROUP` deliveries) behind `first` and commits
/// them in one transaction.
fn commit_group(
    writer: &mut impl GroupWriter,
    first: Job,
    rx: &Receiver<Job>,
    notices: &broadcast::Sender<Notice>,
    derives: bool,
) -> Group {
    let mut deliveries = Vec::new();
    let mut bodies = Vec::new();
    let mut waiters = Vec::new();
    let mut rejections = Vec::new();
    let mut flushes = Vec::new();
    let mut jobs = 0;
    let mut stored_any = false;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        jobs += 1;
        match job {
            Job::Deliver(d, body, reply) => {
                deliveries.push(d);
                bodies.extend(body);
                waiters.push(reply);
            }
            Job::Reject(r) => rejections.push(r),
            Job::Pulled(page, up_to, reply) => {
                // Its own transaction: the cursor must commit with exactly this page.
                stored_any |= store_pulled(writer, &page, &up_to, reply, notices);
            }
            Job::Flush(reply) => flushes.push(reply),
        }
        if deliveries.len() < MAX_GROUP {
            next = rx.try_recv().ok();
        }
    }
    // Every delivery's body was made ready by its sender, or none was.
    let bodies = (bodies.len() == deliveries.len()).then_some(&bodies[..]);
    let result = writer.ingest(&deliveries, bodies, &rejections);
    match result {
        Ok(outcomes) => {
            for (outcome, reply) in outcomes.into_iter().zip(waiters) {
                stored_any |= matches!(outcome, IngestOutcome::Stored { .. });
                let _ = reply.send(Ok(outcome));
                let _ = notices.send(Notice::of(outcome));
            }
            for r in rejections {
                let _ = notices.send(Notice::Rejected {
                    provider: r.provider,
                    connection: r.connection,
                    code: r.code,
                });
            }
        }
        Err(e) => {
            tracing::error!(error = %e, count = deliveries.len(), "couldn't store deliveries");
            let error = IngestError::from_store(&e);
            for reply in waiters {
                let _ = reply.send(Err(error));
            }
        }
    }
    if !flushes.is_empty() {
        let outcome = if !derives {
            Ok(())
        } else {
            writer
                .derive_all()
                .map(|report| {
                    let _ = notices.send(Notice::Derived {
                        deliveries: report.deliveries,
                        people: report.people_changed,
                    });
                })
                .map_err(|e| {
                    tracing::error!(error = %e, "couldn't derive timelines for a flush");
                    IngestError::from_store(&e)
                })
        };
        for reply in flushes {
            let _ = reply.send(outcome);
        }
    }
    Group { jobs, stored_any }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clientele_core::{ConnectionSettings, Provider};
    use clientele_store::{DeliveryStatus, NewConnection};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    /// Adds a Tiquo connection that needs no secret; returns its id.
    pub(crate) fn add_tiquo(writer: &mut Writer) -> i64 {
        let connection = NewConnection {
            provider: Provider::Tiquo,
            name: "main".into(),
            settings: ConnectionSettings::default(),
            requires_secret: false,
        };
        writer
            .add_connection(&connection, chrono::Utc::now())
            .unwrap()
            .id
    }

    /// The data folder's pipeline has each body packed by its sender, off the writer thread; a
    /// store-only one (PostgreSQL keeps bodies as received) packs nothing.
    #[test]
    fn bodies_are_packed_by_senders_only_where_the_store_packs_them() {
        struct Nowhere;
        impl GroupStore for Nowhere {
            fn store_group(
                &self,
                _: &[NewDelivery],
                _: &[NewRejection],
            ) -> Result<Vec<IngestOutcome>, StoreError> {
                Ok(Vec::new())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let (handle, pipeline) = start(&store).unwrap();
        assert!(handle.packs);
        drop(handle);
        pipeline.join();
        let (handle, pipeline) = start_storing(Arc::new(Nowhere)).unwrap();
        assert!(!handle.packs);
        drop(handle);
        pipeline.join();
    }

    /// A sustained burst — every sender delivering again as soon as it is answered, so the
    /// writer never finds the queue empty for long — still moves timelines forward while it
    /// lasts (the share derivation earns between groups), not only once it ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timelines_advance_during_a_sustained_burst() {
        const SENDERS: usize = 8;
        const EACH: usize = 500;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let connection = add_tiquo(&mut store.writer().unwrap());
        let (handle, pipeline) = start(&store).unwrap();
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // (stored, derived) at three quarters of the burst.
        let midway = Arc::new(std::sync::OnceLock::new());
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let (handle, answered, midway) = (handle.clone(), answered.clone(), midway.clone());
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        let n = sender * EACH + i;
                        let at = chrono::Utc::now();
                        let customer = format!("cus_{n}");
                        let email = format!("guest{n}@example.com");
                        let delivery = NewDelivery {
                            connection_id: connection,
                            received_at: at,
                            dedupe_key: format!("evt_{n}"),
                            headers: vec![],
                            body: clientele_core::providers::sample_body(
                                Provider::Tiquo,
                                &customer,
                                &email,
                                at,
                            ),
                            verification: "test".into(),
                            is_test: false,
                        };
                        handle.deliver(delivery).await.unwrap();
                        // Three quarters answered, the others still sending: how far are the
                        // timelines?
                        if answered.fetch_add(1, Ordering::AcqRel) + 1 == SENDERS * EACH * 3 / 4 {
                            // One query: the burst goes on meanwhile.
                            let stored = store.reader().unwrap().deliveries(None).unwrap();
                            let derived = stored
                                .iter()
                                .filter(|d| d.status != DeliveryStatus::Pending)
                                .count();
                            midway.set((stored.len(), derived)).unwrap();
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        let (stored, derived) = *midway.get().unwrap();
        assert!(
            derived > 0,
            "none of the {stored} deliveries stored by three quarters of the burst was derived"
        );
        handle.flush().await.unwrap();
        let reader = store.reader().unwrap();
        assert_eq!(reader.pending_deliveries().unwrap(), 0);
        drop(handle);
        pipeline.join();
    }
}
