//! What the relay keeps, whichever database keeps it: [`RelayStore`].
//!
//! One relay over two stores. Everything the relay does — receiving, pairing, the feed desks pull,
//! remote connections, hand changes, forgetting — goes through this trait, implemented here for
//! the data folder's SQLite ([`SqliteRelayStore`]) and in `clientele-relay-pg` for PostgreSQL,
//! where several relay instances share one database.
//!
//! Every method is blocking (a database round trip): call it off the async threads. Errors are
//! [`StoreError`]s: `NotFound` and `Invalid` carry words for the desk, anything else means the
//! database can't be used right now (the routes answer `503`, providers and desks retry).
//!
//! **The feed never skips**, on either store: ids become visible in the order they were handed
//! out (SQLite: one writer; PostgreSQL: one delivery transaction at a time, under an advisory lock
//! held to commit). See each implementation.

use chrono::{DateTime, Utc};
use clientele_core::hand::HandChange;
use clientele_core::relay_protocol::Policy;
use clientele_core::{ConnectionSettings, Provider};
use clientele_store::{
    AcceptedChange, ClaimRefused, Connection, ConnectionStats, DeliveryToCheck, Device,
    FeedConnection, FeedItem, IngestOutcome, NewConnection, NewDelivery, NewRejection,
    RejectionRow, SealedRow, Store, StoreError,
};
use std::fmt;
use std::time::Duration;
use tokio::sync::broadcast;

/// Something another relay instance committed to a shared database (PostgreSQL's
/// `LISTEN`/`NOTIFY`): pulls waiting on this instance look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEvent {
    /// New deliveries are in the feed.
    Deliveries,
    /// A hand change (or the retention policy) was accepted.
    Changes,
    /// A connection was added, removed or changed, or its secret replaced: reload them.
    Connections,
}

/// Everything the relay keeps. See the module docs.
pub trait RelayStore: Send + Sync + fmt::Debug {
    /// Where the data is, fit for messages and logs: a file path, or a database URL without its
    /// password.
    fn describe(&self) -> String;

    /// Commits by other instances sharing this database, when it can be shared (`None`: only
    /// this process writes, and its own pipeline's notices say everything). A lagging or closed
    /// receiver means "look again"; waiting pulls also look again every few seconds whatever
    /// this says, as a safety net.
    fn subscribe(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        None
    }

    // --- Receiving -------------------------------------------------------------------------

    /// Stores a group of deliveries (and logs refusals) in one durable transaction; the outcomes
    /// are in the order of `deliveries`. A delivery already stored (same connection and dedupe
    /// key) is a duplicate; one about a customer kept forgotten is withheld.
    fn ingest(
        &self,
        deliveries: &[NewDelivery],
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError>;

    /// The refusals after id `after`, oldest first.
    fn rejections_after(&self, after: i64, limit: usize) -> Result<Vec<RejectionRow>, StoreError>;

    /// Whether delivery `id` came in on `provider`/`name` with exactly `body` (the relay's test
    /// event proving its public address leads here).
    fn delivery_matches(
        &self,
        id: i64,
        provider: Provider,
        name: &str,
        body: &[u8],
    ) -> Result<bool, StoreError>;

    // --- Connections and their sealed secrets ---------------------------------------------

    /// Every connection (not removed), by provider and name.
    fn connections(&self) -> Result<Vec<Connection>, StoreError>;
    fn connection(&self, provider: Provider, name: &str) -> Result<Option<Connection>, StoreError>;
    /// Adds a connection; `Invalid` when the name is malformed or taken.
    fn add_connection(
        &self,
        new: &NewConnection,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError>;
    /// Removes a connection (what came in on it stays); `NotFound` when there is none.
    fn remove_connection(
        &self,
        provider: Provider,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError>;
    /// Replaces a connection's settings; false when there is no such connection.
    fn replace_connection_settings(
        &self,
        provider: Provider,
        name: &str,
        settings: &ConnectionSettings,
    ) -> Result<bool, StoreError>;
    /// When the connection last received, and how much since `since`.
    fn connection_stats(
        &self,
        connection: &Connection,
        since: DateTime<Utc>,
    ) -> Result<ConnectionStats, StoreError>;
    /// Tells the other instances sharing the database that connections or their secrets changed
    /// (they reload theirs); nothing to do where only one process serves.
    fn connections_changed(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn sealed_secret(&self, account: &str) -> Result<Option<SealedRow>, StoreError>;
    fn put_sealed_secret(&self, account: &str, row: &SealedRow) -> Result<(), StoreError>;
    fn delete_sealed_secret(&self, account: &str) -> Result<(), StoreError>;

    // --- Devices and pairing ----------------------------------------------------------------

    /// Records a new one-time pairing code (by hash) for a device called `name`.
    fn add_pairing_code(
        &self,
        code_hash: &[u8],
        name: &str,
        admin: bool,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Uses a pairing code: the device it pairs, or why not. Atomic: two claims of one code
    /// (on two instances) pair at most one device.
    fn claim_pairing_code(
        &self,
        code_hash: &[u8],
        token_hash: &[u8],
        rename: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Device, ClaimRefused>, StoreError>;
    /// The paired, not revoked device with this token hash.
    fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<Device>, StoreError>;
    /// Whether device `id` is still paired (not revoked).
    fn device_active(&self, id: i64) -> Result<bool, StoreError>;
    /// How many deliveries device `id` hasn't acknowledged.
    fn device_behind(&self, id: i64) -> Result<i64, StoreError>;
    /// Every device ever paired (revoked ones too), with how far behind each is.
    fn devices(&self) -> Result<Vec<Device>, StoreError>;
    /// Ends a device's access; false when no paired device has that name.
    fn revoke_device(&self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Notes when a device was last seen.
    fn touch_device(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Device `id` has stored everything up to `upto` (never moves back; never past the newest
    /// delivery).
    fn acknowledge(&self, id: i64, upto: i64) -> Result<(), StoreError>;

    // --- The feed ---------------------------------------------------------------------------

    fn newest_delivery_id(&self) -> Result<Option<i64>, StoreError>;
    /// Deliveries after id `after` (not erased), oldest first, at most `limit`.
    fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedItem>, StoreError>;
    /// The settings of the connections named, for desks to read what came in on them.
    fn feed_connections(
        &self,
        names: &[(Provider, String)],
    ) -> Result<Vec<FeedConnection>, StoreError>;
    /// Deletes deliveries received before `cutoff` that every paired device has acknowledged
    /// (never the newest, so no id is handed out twice); returns how many.
    fn delete_acknowledged(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError>;

    // --- Hand changes, forgetting, the policy ----------------------------------------------

    /// The id of the change with this uid, if the relay has it.
    fn change_id(&self, uid: &str) -> Result<Option<i64>, StoreError>;
    /// Keeps a change a desk sent, once by uid (see `Writer::accept_change`).
    fn accept_change(
        &self,
        change: &HandChange,
        device: &str,
        now: DateTime<Utc>,
    ) -> Result<AcceptedChange, StoreError>;
    /// The changes after id `after`, oldest first.
    fn changes_after(&self, after: i64, limit: usize)
    -> Result<Vec<(i64, HandChange)>, StoreError>;
    /// Stored, not-erased deliveries after id `after`, with their connection's settings, for a
    /// forget to read.
    fn deliveries_to_check(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryToCheck>, StoreError>;
    /// Erases these deliveries (bytes gone, a keyed hash of the dedupe key kept so a retry is a
    /// duplicate); returns how many were erased now.
    fn erase_deliveries(&self, ids: &[i64], at: DateTime<Utc>) -> Result<i64, StoreError>;
    /// Makes what was erased unreadable on disk, trying until `deadline`; true when done (false:
    /// it happens at the next chance). A database server that manages its own files answers
    /// true once the rows are gone.
    fn wipe_forgotten(&self, deadline: Duration) -> Result<bool, StoreError>;

    fn retention_policy(&self) -> Result<Policy, StoreError>;
    fn store_retention_policy(&self, policy: &Policy) -> Result<(), StoreError>;

    // --- Settings ---------------------------------------------------------------------------

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
}

/// The relay's data folder: everything in its SQLite database (`clientele_store`).
#[derive(Debug, Clone)]
pub struct SqliteRelayStore {
    store: Store,
}

impl SqliteRelayStore {
    pub fn new(store: Store) -> SqliteRelayStore {
        SqliteRelayStore { store }
    }

    /// The SQLite store underneath (the relay's pipeline writes to it directly, with its WAL
    /// checkpoints).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl RelayStore for SqliteRelayStore {
    fn describe(&self) -> String {
        self.store.path().display().to_string()
    }

    fn ingest(
        &self,
        deliveries: &[NewDelivery],
        rejections: &[NewRejection],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        self.store.writer()?.ingest(deliveries, rejections)
    }

    fn rejections_after(&self, after: i64, limit: usize) -> Result<Vec<RejectionRow>, StoreError> {
        self.store.reader()?.rejections_after(after, limit)
    }

    fn delivery_matches(
        &self,
        id: i64,
        provider: Provider,
        name: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        match self.store.reader()?.delivery(id) {
            Ok(d) => Ok(d.row.provider == provider && d.row.connection == name && d.body == body),
            Err(StoreError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        self.store.reader()?.connections()
    }

    fn connection(&self, provider: Provider, name: &str) -> Result<Option<Connection>, StoreError> {
        self.store.reader()?.connection(provider, name)
    }

    fn add_connection(
        &self,
        new: &NewConnection,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError> {
        self.store.writer()?.add_connection(new, now)
    }

    fn remove_connection(
        &self,
        provider: Provider,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Connection, StoreError> {
        self.store.writer()?.remove_connection(provider, name, now)
    }

    fn replace_connection_settings(
        &self,
        provider: Provider,
        name: &str,
        settings: &ConnectionSettings,
    ) -> Result<bool, StoreError> {
        self.store
            .writer()?
            .replace_connection_settings(provider, name, settings)
    }

    fn connection_stats(
        &self,
        connection: &Connection,
        since: DateTime<Utc>,
    ) -> Result<ConnectionStats, StoreError> {
        self.store.reader()?.connection_stats(
            connection.id,
            connection.provider,
            &connection.name,
            since,
        )
    }

    fn sealed_secret(&self, account: &str) -> Result<Option<SealedRow>, StoreError> {
        self.store.reader()?.sealed_secret(account)
    }

    fn put_sealed_secret(&self, account: &str, row: &SealedRow) -> Result<(), StoreError> {
        self.store.writer()?.put_sealed_secret(account, row)
    }

    fn delete_sealed_secret(&self, account: &str) -> Result<(), StoreError> {
        self.store.writer()?.delete_sealed_secret(account)
    }

    fn add_pairing_code(
        &self,
        code_hash: &[u8],
        name: &str,
        admin: bool,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store
            .writer()?
            .add_pairing_code(code_hash, name, admin, now, expires_at)
    }

    fn claim_pairing_code(
        &self,
        code_hash: &[u8],
        token_hash: &[u8],
        rename: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Device, ClaimRefused>, StoreError> {
        self.store
            .writer()?
            .claim_pairing_code(code_hash, token_hash, rename, now)
    }

    fn device_by_token(&self, token_hash: &[u8]) -> Result<Option<Device>, StoreError> {
        self.store.reader()?.device_by_token(token_hash)
    }

    fn device_active(&self, id: i64) -> Result<bool, StoreError> {
        self.store.reader()?.device_active(id)
    }

    fn device_behind(&self, id: i64) -> Result<i64, StoreError> {
        self.store.reader()?.device_behind(id)
    }

    fn devices(&self) -> Result<Vec<Device>, StoreError> {
        self.store.reader()?.devices()
    }

    fn revoke_device(&self, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.store.writer()?.revoke_device(name, now)
    }

    fn touch_device(&self, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.store.writer()?.touch_device(id, now)
    }

    fn acknowledge(&self, id: i64, upto: i64) -> Result<(), StoreError> {
        let newest = self.store.reader()?.newest_delivery_id()?.unwrap_or(0);
        self.store.writer()?.acknowledge(id, upto.min(newest))
    }

    fn newest_delivery_id(&self) -> Result<Option<i64>, StoreError> {
        self.store.reader()?.newest_delivery_id()
    }

    fn feed(&self, after: i64, limit: usize) -> Result<Vec<FeedItem>, StoreError> {
        self.store.reader()?.feed(after, limit)
    }

    fn feed_connections(
        &self,
        names: &[(Provider, String)],
    ) -> Result<Vec<FeedConnection>, StoreError> {
        self.store.reader()?.feed_connections(names)
    }

    fn delete_acknowledged(&self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        self.store.writer()?.delete_acknowledged(cutoff)
    }

    fn change_id(&self, uid: &str) -> Result<Option<i64>, StoreError> {
        self.store.reader()?.change_id(uid)
    }

    fn accept_change(
        &self,
        change: &HandChange,
        device: &str,
        now: DateTime<Utc>,
    ) -> Result<AcceptedChange, StoreError> {
        self.store.writer()?.accept_change(change, device, now)
    }

    fn changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, HandChange)>, StoreError> {
        self.store.reader()?.changes_after(after, limit)
    }

    fn deliveries_to_check(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryToCheck>, StoreError> {
        self.store.reader()?.deliveries_to_check(after, limit)
    }

    fn erase_deliveries(&self, ids: &[i64], at: DateTime<Utc>) -> Result<i64, StoreError> {
        self.store.writer()?.erase_deliveries(ids, at)
    }

    fn wipe_forgotten(&self, deadline: Duration) -> Result<bool, StoreError> {
        Ok(self.store.writer()?.wipe_forgotten(deadline)?.checkpointed)
    }

    fn retention_policy(&self) -> Result<Policy, StoreError> {
        self.store.reader()?.retention_policy()
    }

    fn store_retention_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        self.store.writer()?.store_retention_policy(policy, false)
    }

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.store.reader()?.setting(key)
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.store.writer()?.set_setting(key, value)
    }
}
