//! [`Puller`]: keeps this desk's store up to date with its relay.
//!
//! Each turn asks for the deliveries after the saved cursor, waiting at the relay up to
//! [`WAIT`] when there are none, so a new delivery reaches the desk as soon as it is stored
//! there. A page goes through the desk's one writer together with the cursor past it
//! (`IngestHandle::deliver_pulled`): a desk stopped at any moment resumes from exactly what it
//! stored. Only then is the relay told (`ack`), so it never counts a delivery as delivered that
//! isn't on the desk's disk. A delivery that also came in at the desk's own listener has the same
//! dedupe key on the same connection and is stored once.
//!
//! Before each pull — and so first thing when it starts — the puller sends this desk's hand
//! changes the relay doesn't have yet and applies the relay's new ones ([`crate::changes`]): a
//! customer forgotten on another desk is forgotten here before any page pulled after it is
//! stored, and a desk that was off forgets as soon as it is back. The relay answers a waiting pull
//! at once when a change arrives, so a change reaches a running desk within moments.
//!
//! When the relay can't be reached the puller says so (with the time it started) and tries again
//! after a growing pause (up to [`MAX_BACKOFF`]); waking from sleep tries at once, on a new
//! connection. When the relay says this desk's access was removed, it stops and says that.

use crate::changes::HandChanges;
use crate::client::{ClientError, RelayClient};
use crate::wake;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use clientele_core::Provider;
use clientele_core::relay_protocol::{FeedConnectionInfo, Page};
use clientele_ingest::{IngestHandle, Notice};
use clientele_store::{IngestOutcome, NewDelivery, NewRejection, PulledUpTo, Store};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long one pull waits at the relay for something new.
pub const WAIT: Duration = Duration::from_secs(25);
/// Deliveries asked for per page.
pub const PAGE: usize = 1_000;
/// The longest pause between tries while the relay can't be reached.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How the link to the relay is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkState {
    /// Not yet heard from the relay since starting.
    Connecting,
    Connected,
    /// Failing since `since`; deliveries wait at the relay.
    Unreachable {
        since: DateTime<Utc>,
        error: String,
    },
    /// The relay removed this desk's access.
    Revoked {
        message: String,
    },
}

/// What the window and `relay status` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullStatus {
    pub state: LinkState,
    pub last_pull_at: Option<DateTime<Utc>>,
    /// When the newest delivery pulled in this run was received at the relay.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Deliveries stored from the relay in this run.
    pub pulled: u64,
}

impl Default for PullStatus {
    fn default() -> Self {
        PullStatus {
            state: LinkState::Connecting,
            last_pull_at: None,
            last_delivery_at: None,
            pulled: 0,
        }
    }
}

/// Why storing a page failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreFailure {
    #[error(transparent)]
    Relay(#[from] ClientError),
    #[error("{0}")]
    Local(String),
}

/// Pulls from one relay into one store.
#[derive(Debug)]
pub struct Puller {
    client: RelayClient,
    ca_pem: Option<String>,
    store: Store,
    ingest: IngestHandle,
    cursor: String,
    status: watch::Sender<PullStatus>,
    /// The desk's connection id for each relay connection seen.
    connections: HashMap<(Provider, String), i64>,
    /// On an admin desk: the newest relay refusal copied here, and when refusals were last
    /// copied.
    refusals: Option<(i64, Option<std::time::Instant>)>,
    /// Hand changes to send and apply, when the desk takes part in them.
    changes: Option<Arc<dyn HandChanges>>,
}

/// How often an admin desk copies the relay's refusals at most.
pub const REFUSALS_EVERY: Duration = Duration::from_secs(30);
/// Refusals asked for per call.
const REFUSALS_PAGE: usize = 500;

impl Puller {
    /// A puller starting from `cursor`; its status is published on `status`.
    pub fn new(
        client: RelayClient,
        ca_pem: Option<String>,
        store: Store,
        ingest: IngestHandle,
        cursor: String,
        status: watch::Sender<PullStatus>,
    ) -> Puller {
        Puller {
            client,
            ca_pem,
            store,
            ingest,
            cursor,
            status,
            connections: HashMap::new(),
            refusals: None,
            changes: None,
        }
    }

    /// Also sends this desk's hand changes and applies the relay's, before every pull.
    pub fn with_hand_changes(mut self, changes: Arc<dyn HandChanges>) -> Puller {
        self.changes = Some(changes);
        self
    }

    /// Sends this desk's hand changes and applies the relay's (see [`crate::changes::sync`]);
    /// tells live screens about the people that changed.
    pub async fn sync_changes(&mut self) -> Result<crate::changes::Synced, StoreFailure> {
        let Some(changes) = &self.changes else {
            return Ok(Default::default());
        };
        let synced = crate::changes::sync(&self.client, changes).await?;
        if !synced.people.is_empty() {
            let _ = self.ingest.notices().send(Notice::Derived {
                deliveries: 0,
                people: synced.people.clone(),
            });
        }
        Ok(synced)
    }

    /// Also copies the relay's refusals (after the one with id `cursor`) into this desk's log, so
    /// Activity and each connection's health show what the relay refused and why. For admin
    /// desks: the relay tells only them.
    pub fn copying_refusals(mut self, cursor: i64) -> Puller {
        self.refusals = Some((cursor, None));
        self
    }

    /// Pulls until there is nothing more, without waiting at the relay; returns how many
    /// deliveries were new to this desk.
    pub async fn catch_up(&mut self) -> Result<u64, StoreFailure> {
        let mut stored = 0;
        loop {
            self.sync_changes().await?;
            let page = self.client.pull(&self.cursor, PAGE, Duration::ZERO).await?;
            let more = page.more;
            stored += self.store_page(page).await?;
            if !more {
                self.copy_refusals(true).await?;
                return Ok(stored);
            }
        }
    }

    /// Pulls until `stop` becomes true (or its sender is dropped).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_secs(1);
        let mut failing_since: Option<DateTime<Utc>> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            let turn = async {
                self.sync_changes().await?;
                let page = self.client.pull(&self.cursor, PAGE, WAIT).await?;
                let stored = self.store_page(page).await?;
                self.copy_refusals(false).await?;
                Ok(stored)
            };
            let outcome = tokio::select! {
                outcome = turn => outcome,
                _ = stop.changed() => return,
                () = wake::next_wake() => {
                    self.reconnect();
                    continue;
                }
            };
            match outcome {
                Ok(_) => {
                    backoff = Duration::from_secs(1);
                    failing_since = None;
                }
                Err(StoreFailure::Relay(e)) if e.is_revoked() => {
                    tracing::warn!(error = %e, "the relay removed this computer's access");
                    self.status.send_modify(|s| {
                        s.state = LinkState::Revoked {
                            message: e.to_string(),
                        }
                    });
                    // Nothing to do until someone pairs again (which restarts pulling).
                    let _ = stop.changed().await;
                    return;
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Utc::now);
                    if backoff == Duration::from_secs(1) {
                        tracing::warn!(error = %e, "couldn't pull from the relay");
                    }
                    self.status.send_modify(|s| {
                        s.state = LinkState::Unreachable {
                            since,
                            error: e.to_string(),
                        }
                    });
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                        () = wake::next_wake() => self.reconnect(),
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// On an admin desk, copies the relay's new refusals and its list of connections (at most
    /// every [`REFUSALS_EVERY`] unless `now`): the Providers screen then shows connections another
    /// admin desk added before any message came in on them, and drops those removed.
    async fn copy_refusals(&mut self, now: bool) -> Result<(), StoreFailure> {
        let Some((mut cursor, last)) = self.refusals else {
            return Ok(());
        };
        if !now && last.is_some_and(|t| t.elapsed() < REFUSALS_EVERY) {
            return Ok(());
        }
        let listed = self.client.connections().await?;
        let store = self.store.clone();
        let known = tokio::task::spawn_blocking(move || {
            let mut writer = store.writer()?;
            let at = Utc::now();
            let mut known = Vec::new();
            for c in &listed {
                let id = writer.relay_connection(c.provider, &c.name, &c.settings, at)?;
                known.push(((c.provider, c.name.clone()), id));
            }
            let gone: Vec<_> = store
                .reader()?
                .connections()?
                .into_iter()
                .filter(|c| {
                    c.via_relay
                        && !listed
                            .iter()
                            .any(|l| l.provider == c.provider && l.name == c.name)
                })
                .collect();
            for c in gone {
                writer.drop_relay_connection(c.provider, &c.name, at)?;
            }
            Ok::<_, clientele_store::StoreError>(known)
        })
        .await
        .map_err(|e| StoreFailure::Local(e.to_string()))?
        .map_err(|e| StoreFailure::Local(e.to_string()))?;
        self.connections.extend(known);
        loop {
            let page = self.client.rejections(cursor, REFUSALS_PAGE).await?;
            let Some(newest) = page.iter().map(|r| r.id).max() else {
                break;
            };
            let full = page.len() >= REFUSALS_PAGE;
            let rows: Vec<NewRejection> = page
                .into_iter()
                .map(|r| NewRejection {
                    received_at: r.received_at,
                    provider: r.provider,
                    connection: r.connection,
                    code: r.code,
                    reason: format!("At the relay: {}", r.reason),
                    remote_addr: r.remote_addr,
                    body_bytes: None,
                })
                .collect();
            let notices: Vec<Notice> = rows
                .iter()
                .map(|r| Notice::Rejected {
                    provider: r.provider.clone(),
                    connection: r.connection.clone(),
                    code: r.code.clone(),
                })
                .collect();
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || {
                store
                    .writer()
                    .and_then(|mut w| w.ingest_relay_rejections(&rows, newest))
            })
            .await
            .map_err(|e| StoreFailure::Local(e.to_string()))?
            .map_err(|e| StoreFailure::Local(e.to_string()))?;
            let live = self.ingest.notices();
            for notice in notices {
                let _ = live.send(notice);
            }
            cursor = newest;
            if !full {
                break;
            }
        }
        self.refusals = Some((cursor, Some(std::time::Instant::now())));
        Ok(())
    }

    /// Drops every connection to the relay: the next pull starts on a new one.
    fn reconnect(&mut self) {
        match self.client.fresh(self.ca_pem.as_deref()) {
            Ok(fresh) => self.client = fresh,
            Err(e) => tracing::warn!(error = %e, "couldn't renew the relay's connection"),
        }
    }

    /// Stores a page with its cursor, then acknowledges it; returns how many were new here.
    async fn store_page(&mut self, page: Page) -> Result<u64, StoreFailure> {
        let now = Utc::now();
        if page.deliveries.is_empty() {
            let store = self.store.clone();
            // A bookkeeping write: failing it loses nothing.
            let _ = tokio::task::spawn_blocking(move || {
                store.writer().and_then(|mut w| w.note_pull(now))
            })
            .await;
            self.status.send_modify(|s| {
                s.state = LinkState::Connected;
                s.last_pull_at = Some(now);
            });
            return Ok(0);
        }
        self.learn_connections(&page.connections).await?;
        let base64 = base64::engine::general_purpose::STANDARD;
        let mut deliveries = Vec::with_capacity(page.deliveries.len());
        let mut newest = None;
        for d in page.deliveries {
            let connection_id = *self
                .connections
                .get(&(d.provider, d.connection.clone()))
                .ok_or_else(|| {
                    StoreFailure::Relay(ClientError::NotARelay {
                        url: self.client.url().to_string(),
                        reason: "a delivery named a connection the page didn't describe".into(),
                    })
                })?;
            let body = base64.decode(d.body.as_bytes()).map_err(|_| {
                StoreFailure::Relay(ClientError::NotARelay {
                    url: self.client.url().to_string(),
                    reason: "a delivery's body wasn't valid base64".into(),
                })
            })?;
            newest = newest.max(Some(d.received_at));
            deliveries.push(NewDelivery {
                connection_id,
                received_at: d.received_at,
                dedupe_key: d.dedupe_key,
                headers: d.headers,
                body,
                verification: d.verification,
                is_test: d.is_test,
            });
        }
        let up_to = PulledUpTo {
            cursor: page.next.clone(),
            at: now,
        };
        let outcomes = self
            .ingest
            .deliver_pulled(deliveries, up_to)
            .await
            .map_err(|e| StoreFailure::Local(e.to_string()))?;
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, IngestOutcome::Stored { .. }))
            .count() as u64;
        self.cursor = page.next;
        // Stored: now the relay may count it as delivered here. A lost ack is repeated by the
        // next one (they only move forward).
        if let Err(e) = self.client.ack(&self.cursor).await {
            tracing::debug!(error = %e, "couldn't acknowledge to the relay; the next ack covers it");
        }
        self.status.send_modify(|s| {
            s.state = LinkState::Connected;
            s.last_pull_at = Some(now);
            s.last_delivery_at = s.last_delivery_at.max(newest);
            s.pulled += stored;
        });
        Ok(stored)
    }

    /// Makes sure each relay connection has its row here (with the relay's settings).
    async fn learn_connections(
        &mut self,
        connections: &[FeedConnectionInfo],
    ) -> Result<(), StoreFailure> {
        let unknown: Vec<FeedConnectionInfo> = connections
            .iter()
            .filter(|c| !self.connections.contains_key(&(c.provider, c.name.clone())))
            .cloned()
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let ids = tokio::task::spawn_blocking(move || {
            let mut writer = store.writer()?;
            let now = Utc::now();
            unknown
                .into_iter()
                .map(|c| {
                    writer
                        .relay_connection(c.provider, &c.name, &c.settings, now)
                        .map(|id| ((c.provider, c.name), id))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| StoreFailure::Local(e.to_string()))?
        .map_err(|e| StoreFailure::Local(e.to_string()))?;
        self.connections.extend(ids);
        Ok(())
    }
}
