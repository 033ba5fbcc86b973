//! The ingest pipeline: one thread owns the store's writer and commits deliveries in groups.
//!
//! Why a group commit: `200` may only be sent once a delivery is on disk, and an fsync costs
//! around a millisecond whatever it carries. One transaction per request caps a listener at a few
//! thousand deliveries a second; here every delivery that queues while the previous transaction
//! is being fsync'd joins the next one, so under load hundreds share one fsync and each still gets
//! its `200` only after *its* transaction is durable. Nothing is acknowledged early and no
//! durability setting is relaxed for deliveries.
//!
//! Between groups, the same thread derives timelines from what it stored, in slices that never
//! keep a delivery waiting long. Derivation lagging behind a burst is fine: `deliveries` is the
//! source of truth and nothing acknowledged depends on it. Deriving a delivery costs several
//! times what storing it does (parsing, phone numbers, relinking, search terms: about 180 µs
//! against 30 µs here), so how the thread shares its time decides how fast the listener is
//! during a burst:
//! - groups earn derivation time, [`DERIVE_SHARE`] of the time they took to commit, spent in
//!   slices of about [`DERIVE_SLICE`] (a transaction has a fixed cost — its WAL pages and
//!   checkpoints — so slices of one or two deliveries would cost twice as much per delivery);
//! - then it waits for the next deliveries, which are usually on their way (their senders were
//!   waiting for this group's answers), rather than treating a momentarily empty queue as
//!   idleness: up to [`GATHER_WAIT`] after a lone delivery, and up to [`BUSY_GATHER_WAIT`] after a
//!   group of several — requests (deliveries or refusals) queued while the last group was
//!   written, so the listener is saturated, and the gap before the next ones is the time its
//!   threads need the CPU to read, check and queue them;
//! - when nothing is waiting, slices of about [`IDLE_DERIVE_SLICE`] until it has caught up.
//!
//! How big a share: only a saturated listener — every connection waiting on the writer — is
//! affected, and then answering comes first. A provider whose deliveries wait too long retries
//! them, adding to the very load that slowed it, while a timeline that is seconds behind during a
//! burst harms nobody and catches up at full speed as soon as it eases. A twentieth keeps
//! timelines moving during a long burst; `make bench` prints how far derivation was behind when
//! the load stopped and how long it took to catch up. What the share costs, measured: a quarter
//! cost a fifth of the listener's throughput at 16 connections and a quarter at 64; a tenth
//! instead of a twentieth, about 8 % at 16 connections and 2 % at 64 (alternating pairs of
//! builds, 8 each), for deriving 200–300 deliveries a second instead of 90–150 against
//! 18,000–33,000 arriving — a slice between groups holds every waiting connection, so its wall
//! time, not its CPU, is what the listener loses. A fiftieth gained no more at 16 connections.
//!
//! A single sender that posts its next delivery the moment it is answered saturates the
//! listener in the same sense, and its timelines advance at the same share; the writer is idle
//! between its deliveries meanwhile, but deriving one delivery (about 450 µs in a transaction of
//! its own) takes longer than that gap (about 300 µs). Spending the gaps on derivation (a
//! throwaway build) derived 60–77 % of such a sender's deliveries as they came, and slowed the
//! sender by 34–40 %.
//!
//! Profiling `make bench` found, with a single 500 µs wait, a saturated listener's writer
//! deriving in the gaps between groups for a quarter of its time: every gap longer than the wait
//! (the two cores busy with the listener's threads) started a 2 ms idle slice, which took the CPU
//! from the threads bringing the next deliveries and held them meanwhile. Waiting longer after a
//! group of several raised throughput by about 15 % at 16 and 64 connections (measured back to
//! back, three times each) while derivation keeps its share between groups. The price: under a
//! steady load that keeps groups of several coming, timelines advance at that share only and
//! catch up when the load eases (`make bench` prints by how much).
//!
//! Before that, the same profiling found a 1 ms slice after every group and a 500-delivery
//! transaction (about 100 ms) whenever the queue was empty for an instant holding 64 busy
//! connections to 3,000–4,000 deliveries a second with a p99 of 100 ms or more on two cores.

use clientele_store::{
    Checkpointer, DeriveReport, IngestOutcome, NewDelivery, NewRejection, Store, StoreError,
    WAL_RESTART_FRAMES, WalProgress, Writer,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, oneshot};

/// Most deliveries in one transaction (bounds the latency of the first in the group).
pub const MAX_GROUP: usize = 1_024;
/// Target time for a slice of derivation between two groups.
pub const DERIVE_SLICE: Duration = Duration::from_millis(1);
/// While deliveries keep arriving, derivation between groups takes about this share of the
/// writer thread's time (the rest commits deliveries). Small on purpose: see the module notes.
pub const DERIVE_SHARE: f64 = 0.05;
/// After a group of one delivery, how long to wait for more before deriving instead.
pub const GATHER_WAIT: Duration = Duration::from_micros(500);
/// After a group of several (the listener is saturated), how long to wait for more before
/// deriving instead. Also how late derivation starts once a burst ends.
pub const BUSY_GATHER_WAIT: Duration = Duration::from_millis(5);
/// Target time for a slice of derivation when no deliveries are waiting: a delivery arriving
/// meanwhile waits at most about this long.
pub const IDLE_DERIVE_SLICE: Duration = Duration::from_millis(2);
/// Largest chunk for catching up when nothing else is waiting (and at shutdown).
const IDLE_DERIVE_CHUNK: usize = 500;
/// How many jobs may queue before senders wait (backpressure instead of unbounded memory).
const QUEUE_CAPACITY: usize = 8_192;
/// After a commit, the checkpointer waits this long (for more commits) before copying the WAL
/// into the database (see `clientele_store::checkpoint`).
const CHECKPOINT_AFTER: Duration = Duration::from_millis(50);
/// Before the writer finishes a checkpoint, the checkpointer copies again (at most this many
/// times) until at most [`FINISH_FRAMES`] are left for the writer.
const CATCH_UP_PASSES: usize = 4;
/// What the checkpointer's catching up may leave for the writer (see [`CATCH_UP_PASSES`]).
const FINISH_FRAMES: i64 = 256;
/// The checkpointer's nice value (Linux): below the listener's threads and the writer, whose
/// work someone is waiting for; see [`copy_wal`].
const CHECKPOINTER_NICE: i32 = 10;
/// The pipeline's threads, as `top` and `/proc` show them (Linux keeps their first 15 bytes).
const WRITER_THREAD: &str = "clientele-ingest";
const CHECKPOINTER_THREAD: &str = "clientele-checkpoint";

/// Why a delivery could not be stored. The listener answers `503` so the provider retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Store(String),
    #[error("Clientele is shutting down")]
    ShuttingDown,
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

enum Job {
    Deliver(
        NewDelivery,
        oneshot::Sender<Result<IngestOutcome, IngestError>>,
    ),
    Reject(NewRejection),
    /// Derive everything pending, then answer (tests, `reprocess`-like callers).
    Flush(oneshot::Sender<Result<(), IngestError>>),
}

/// The sending side, cheap to clone.
#[derive(Debug, Clone)]
pub struct IngestHandle {
    jobs: Sender<Job>,
    notices: broadcast::Sender<Notice>,
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
            Job::Flush(_) => "Flush",
        })
    }
}

/// Starts the pipeline on its own thread. Deliveries stored earlier but not yet derived (the
/// process was killed) are derived first.
pub fn start(store: &Store) -> Result<(IngestHandle, Pipeline), StoreError> {
    let mut writer = store.writer()?;
    writer.checkpoint_elsewhere()?;
    let checkpointer = store.checkpointer()?;
    clientele_core::identity::warm_up();
    let (jobs, rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
    let (notices, _) = broadcast::channel(1_024);
    let thread_notices = notices.clone();
    // The writer tells the checkpointer it committed (one pending signal is enough); dropping the
    // sender when the writer stops stops the checkpointer.
    let (committed, commits) = crossbeam_channel::bounded(1);
    let finish = Arc::new(AtomicBool::new(false));
    let checkpoints = WalCheckpoints {
        committed,
        finish: finish.clone(),
    };
    let spawn_error =
        |e: std::io::Error| StoreError::Invalid(format!("couldn't start the ingest thread: {e}"));
    let checkpointer = std::thread::Builder::new()
        .name(CHECKPOINTER_THREAD.into())
        .spawn(move || copy_wal(checkpointer, commits, finish))
        .map_err(spawn_error)?;
    let thread = std::thread::Builder::new()
        .name(WRITER_THREAD.into())
        .spawn(move || run(writer, rx, thread_notices, checkpoints))
        .map_err(spawn_error)?;
    Ok((
        IngestHandle { jobs, notices },
        Pipeline {
            thread: Some(thread),
            checkpointer: Some(checkpointer),
        },
    ))
}

/// The writer's side of checkpointing.
struct WalCheckpoints {
    committed: Sender<()>,
    /// Set by the checkpointer when the writer should finish a checkpoint.
    finish: Arc<AtomicBool>,
}

impl WalCheckpoints {
    /// After a transaction: tells the checkpointer, and finishes a checkpoint when asked.
    fn after_commit(&self, writer: &mut Writer) {
        let _ = self.committed.try_send(());
        if self.finish.swap(false, Ordering::AcqRel) {
            let started = Instant::now();
            match writer.finish_checkpoint() {
                Ok(wal) => tracing::debug!(
                    frames = wal.frames,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "finished a checkpoint"
                ),
                Err(e) => tracing::warn!(error = %e, "couldn't finish a checkpoint"),
            }
        }
    }
}

/// The checkpointer thread: after commits, copies the WAL into the database in the background
/// and asks the writer to finish once the WAL is long. Idle while nothing is written.
///
/// It runs at a lower priority ([`CHECKPOINTER_NICE`]): no request waits for a copy, while on a
/// busy machine a copy running at the same priority takes turns on the CPU with the threads
/// that read, check and answer requests. On two cores the p99 latency went from a median 4.7 ms
/// to 4.3 ms at 64 connections (lower in 7 of 8 alternating pairs) and from 2.2 to 1.8 ms at 16
/// (3 pairs), at the same throughput.
/// When the CPU is free the copy runs as before; when it is not, the WAL grows until the writer
/// finishes the checkpoint itself at [`WAL_RESTART_FRAMES`], as it already does under load.
fn copy_wal(checkpointer: Checkpointer, commits: Receiver<()>, finish: Arc<AtomicBool>) {
    lower_priority(CHECKPOINTER_NICE);
    while commits.recv().is_ok() {
        // Let a burst's commits accumulate rather than copying after each one.
        std::thread::sleep(CHECKPOINT_AFTER);
        let _ = commits.try_recv();
        match checkpointer.copy() {
            Ok(wal) if wal.frames >= WAL_RESTART_FRAMES => {
                catch_up(&checkpointer, wal);
                finish.store(true, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "couldn't copy the WAL into the database"),
        }
    }
}

/// Lowers the calling thread's priority (Linux's nice values are per thread); best effort.
/// Never raises it: a process started at a lower priority (`nice -n 15`) keeps it.
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    use rustix::process::{getpriority_process, setpriority_process};
    let thread = Some(rustix::thread::gettid());
    let result = getpriority_process(thread).and_then(|current| {
        if current < nice {
            setpriority_process(thread, nice)
        } else {
            Ok(())
        }
    });
    if let Err(e) = result {
        tracing::debug!(error = %e, "couldn't lower the checkpointer's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

/// Before asking the writer to finish a checkpoint: copies again what the writer appended during
/// the last copy (a copy ends with an fsync of the database, so it takes a while), until little is
/// left — `wal`, where the last copy left it, says whether anything needs copying at all. What
/// is left the writer copies while every delivery in flight waits for it: driven by `loadgen` at
/// 64 connections, the writer spent a median 6–8 ms finishing (the frames of the 50 ms before,
/// then an fsync), and about 2 ms once the checkpointer caught up first.
fn catch_up(checkpointer: &Checkpointer, mut wal: WalProgress) {
    for _ in 0..CATCH_UP_PASSES {
        if wal.frames - wal.copied <= FINISH_FRAMES {
            break;
        }
        match checkpointer.copy() {
            Ok(progress) => wal = progress,
            Err(e) => {
                tracing::warn!(error = %e, "couldn't copy the WAL into the database");
                break;
            }
        }
    }
}

impl IngestHandle {
    /// Stores one delivery durably; resolves once its group is committed.
    pub async fn deliver(&self, delivery: NewDelivery) -> Result<IngestOutcome, IngestError> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Deliver(delivery, tx)).await?;
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
) {
    let mut chunk = 32usize; // between groups
    let mut idle_chunk = 32usize; // when nothing is waiting
    let mut behind = true; // derive whatever a previous run left pending
    let mut committed = 0usize; // jobs in the group the last turn stored
    let mut earned = Duration::ZERO; // derivation time earned by committing groups
    loop {
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
                let group = commit_group(&mut writer, job, &rx, &notices);
                earned = (earned + derive_share(committing.elapsed())).min(4 * DERIVE_SLICE);
                checkpoints.after_commit(&mut writer);
                committed = group.jobs;
                behind |= group.stored_any;
                if behind && earned >= DERIVE_SLICE {
                    // A short slice between groups keeps the timeline close behind the listener.
                    let started = Instant::now();
                    behind = derive(&mut writer, chunk, &notices);
                    let took = started.elapsed();
                    checkpoints.after_commit(&mut writer);
                    earned = earned.saturating_sub(took);
                    chunk = next_chunk(chunk, took, DERIVE_SLICE, 256);
                }
            }
            None => {
                let started = Instant::now();
                behind = derive(&mut writer, idle_chunk, &notices);
                idle_chunk = next_chunk(
                    idle_chunk,
                    started.elapsed(),
                    IDLE_DERIVE_SLICE,
                    IDLE_DERIVE_CHUNK,
                );
                checkpoints.after_commit(&mut writer);
            }
        }
    }
    // Shutting down: derive what is left so a clean stop leaves nothing pending.
    while derive(&mut writer, IDLE_DERIVE_CHUNK, &notices) {}
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

/// Derives one chunk; returns true if more may be pending.
fn derive(writer: &mut Writer, chunk: usize, notices: &broadcast::Sender<Notice>) -> bool {
    match writer.derive_pending(chunk) {
        Ok(DeriveReport { deliveries: 0, .. }) => false,
        Ok(report) => {
            let _ = notices.send(Notice::Derived {
                deliveries: report.deliveries,
                people: report.people_changed,
            });
            report.deliveries >= chunk
        }
        Err(e) => {
            // Deliveries are safe; derivation retries on the next delivery or restart.
            tracing::error!(error = %e, "couldn't derive timelines");
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
    writer: &mut Writer,
    first: Job,
    rx: &Receiver<Job>,
    notices: &broadcast::Sender<Notice>,
) -> Group {
    let mut deliveries = Vec::new();
    let mut waiters = Vec::new();
    let mut rejections = Vec::new();
    let mut flushes = Vec::new();
    let mut jobs = 0;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        jobs += 1;
        match job {
            Job::Deliver(d, reply) => {
                deliveries.push(d);
                waiters.push(reply);
            }
            Job::Reject(r) => rejections.push(r),
            Job::Flush(reply) => flushes.push(reply),
        }
        if deliveries.len() < MAX_GROUP {
            next = rx.try_recv().ok();
        }
    }
    let result = writer.ingest(&deliveries, &rejections);
    let mut stored_any = false;
    match result {
        Ok(outcomes) => {
            for (outcome, reply) in outcomes.into_iter().zip(waiters) {
                let notice = match outcome {
                    IngestOutcome::Stored { id } => {
                        stored_any = true;
                        Notice::Stored { delivery_id: id }
                    }
                    IngestOutcome::Duplicate { id, duplicates } => Notice::Duplicate {
                        delivery_id: id,
                        duplicates,
                    },
                };
                let _ = reply.send(Ok(outcome));
                let _ = notices.send(notice);
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
            let error = IngestError::Store(e.to_string());
            for reply in waiters {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
    if !flushes.is_empty() {
        let outcome = writer
            .derive_all()
            .map(|report| {
                let _ = notices.send(Notice::Derived {
                    deliveries: report.deliveries,
                    people: report.people_changed,
                });
            })
            .map_err(|e| IngestError::Store(e.to_string()));
        for reply in flushes {
            let _ = reply.send(outcome.clone());
        }
    }
    Group { jobs, stored_any }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clientele_core::{ConnectionSettings, Provider};
    use clientele_store::{DeliveryStatus, NewConnection};

    /// Adds a Tiquo connection that needs no secret; returns its id.
    fn add_tiquo(writer: &mut Writer) -> i64 {
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

    /// The nice value of this process's thread named `name` (from `/proc`, which keeps the
    /// first 15 bytes of a name).
    #[cfg(target_os = "linux")]
    fn nice_of_thread(name: &str) -> Option<i32> {
        let name = &name[..name.len().min(15)];
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .find_map(|task| {
                let task = task.ok()?.path();
                let comm = std::fs::read_to_string(task.join("comm")).ok()?;
                (comm.trim_end() == name).then(|| {
                    let stat = std::fs::read_to_string(task.join("stat")).unwrap();
                    // After "pid (comm) ", the fields from the third (state); nice is the 19th.
                    let fields: Vec<&str> =
                        stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
                    fields[19 - 3].parse().unwrap()
                })
            })
    }

    /// The checkpointer yields the CPU to the listener and the writer; they keep the priority
    /// the process started with.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_checkpointer_runs_at_a_lower_priority_than_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let started_with = rustix::process::getpriority_process(None).unwrap();
        // Already that low (`nice -n 15 make test`): kept, never raised.
        let expected = CHECKPOINTER_NICE.max(started_with);
        let (handle, pipeline) = start(&store).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let checkpointer = loop {
            // The thread lowers its own priority as it starts.
            let nice = nice_of_thread(CHECKPOINTER_THREAD);
            if nice == Some(expected) || Instant::now() > deadline {
                break nice;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(checkpointer, Some(expected));
        assert_eq!(nice_of_thread(WRITER_THREAD), Some(started_with));
        drop(handle);
        pipeline.join();
    }

    #[test]
    fn the_checkpointer_catches_up_before_the_writer_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_dir(dir.path()).unwrap();
        let mut writer = store.writer().unwrap();
        writer.checkpoint_elsewhere().unwrap();
        let connection = add_tiquo(&mut writer);
        // More frames than SQLite's own checkpoint (1,000) would let pile up, in many
        // transactions as under load.
        for i in 0..400 {
            let delivery = NewDelivery {
                connection_id: connection,
                received_at: chrono::Utc::now(),
                dedupe_key: format!("evt_{i}"),
                headers: vec![],
                body: vec![b'x'; 5_000],
                verification: "test".into(),
                is_test: false,
            };
            writer.ingest(&[delivery], &[]).unwrap();
        }
        let checkpointer = store.checkpointer().unwrap();
        let database = || std::fs::metadata(store.path()).unwrap().len();
        assert!(database() < 1_000_000, "the deliveries are only in the WAL");

        // Where the last copy left it says little is left: nothing more is copied.
        catch_up(
            &checkpointer,
            WalProgress {
                frames: 1_000,
                copied: 1_000 - FINISH_FRAMES,
            },
        );
        assert!(database() < 1_000_000, "nothing was copied");

        // Much was left (appended during the copy): it copies again.
        catch_up(
            &checkpointer,
            WalProgress {
                frames: 1_000,
                copied: 0,
            },
        );
        assert!(
            database() > 400 * 5_000,
            "the WAL was copied into the database: {} bytes",
            database()
        );
        let wal = checkpointer.copy().unwrap();
        assert_eq!(wal.copied, wal.frames, "nothing is left to copy: {wal:?}");
    }
}
