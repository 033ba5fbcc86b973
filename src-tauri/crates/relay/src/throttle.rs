//! Slowing down guessing: whoever keeps presenting wrong pairing codes or wrong device tokens
//! is made to wait, longer and longer.
//!
//! The relay is on the internet, so anyone can try codes at `POST /pair` or tokens at `/v1/`.
//! Codes and tokens are far too long to guess (35 and 256 random bits), but an unthrottled relay
//! would still let one client hammer it, and a pairing code is only 35 bits: this keeps guessing
//! to a trickle per client. The relay calls [`GuessThrottle::check`] before verifying anything
//! (a locked-out client is refused at once, with nothing looked up), then
//! [`GuessThrottle::failed`] or [`GuessThrottle::succeeded`] with the outcome.
//!
//! **Policy.**
//! - A client is an IPv4 address, or an IPv6 /64 (one household or server usually holds a whole
//!   /64, so counting single IPv6 addresses would let one client change address per guess). An
//!   IPv4 address seen as IPv6 (`::ffff:a.b.c.d`, from a dual-stack socket) counts as the IPv4
//!   address, not as part of the one /64 every such address shares.
//! - The first [`FREE_FAILURES`] (5) failures cost nothing: people mistype.
//! - Each failure after those locks the client out, for [`FIRST_LOCKOUT`] (1 s) after the 6th,
//!   then 2 s, 4 s, 8 s … doubling up to [`MAX_LOCKOUT`] (15 minutes). Attempts during a lockout
//!   are refused without being checked, so they don't count.
//! - A client's failures are forgotten after [`QUIET_PERIOD`] (10 minutes) with no failure and no
//!   lockout in force: roughly "5 free failures per 10 minutes". The quiet period starts when the
//!   lockout ends, so a client that tries again as soon as each lockout ends stays at one guess per
//!   15 minutes.
//! - A success forgets the client's failures. Use one throttle per kind of secret (one for
//!   pairing codes, one for tokens), so that a device using its own token can't wipe out its
//!   failed guesses at pairing codes.
//!
//! **Memory stays bounded.** At most [`DEFAULT_CAPACITY`] clients are remembered. When a new one
//! would go over, the forgotten (expired) entries are dropped; if that is not enough, the tenth
//! of entries whose last activity is oldest is dropped in one pass (so a flood of new addresses
//! costs one scan per tenth of the capacity, not per request). Clients locked out are the last to
//! go: their activity ends when their lockout does, in the future. Per-client throttling can't
//! stop someone spreading guesses over very many addresses; against that, codes rely on their
//! length, their 15-minute life and being usable once.
//!
//! Time is passed in (`now: Instant`) rather than read, so tests walk through hours of policy
//! without sleeping.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Failures a client may make before it is slowed down.
pub const FREE_FAILURES: u32 = 5;

/// How long a client must have had no failure and no lockout for its failures to be forgotten.
pub const QUIET_PERIOD: Duration = Duration::from_secs(10 * 60);

/// The lockout after the first failure beyond the free ones; each further failure doubles it.
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(1);

/// The longest lockout.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// How many clients a throttle remembers at most.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// Counts each client's failed guesses and says when it must wait. `Send + Sync`: share one in an
/// `Arc` between request handlers.
pub struct GuessThrottle {
    clients: Mutex<HashMap<Client, Entry>>,
    capacity: usize,
}

/// A client must wait before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    seconds: u64,
}

/// Who is guessing: an IPv4 address, or the first 64 bits of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6(u64),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failures since the client was last forgotten.
    failures: u32,
    last_failure: Instant,
    /// Set once the client has used its free failures.
    locked_until: Option<Instant>,
}

impl Client {
    fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(u32::from(v4)),
                None => Client::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl Entry {
    /// When the client last did something that counts: its last failure or the end of its
    /// lockout, whichever is later.
    fn active_until(&self) -> Instant {
        match self.locked_until {
            Some(until) => until.max(self.last_failure),
            None => self.last_failure,
        }
    }

    fn forgotten(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.active_until()) >= QUIET_PERIOD
    }
}

impl GuessThrottle {
    /// A throttle remembering up to [`DEFAULT_CAPACITY`] clients.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A throttle remembering up to `capacity` clients (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        GuessThrottle {
            clients: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Call before verifying a code or token: `Err` while `ip` is locked out, with how long to
    /// wait; the request should then be refused (`429` with `Retry-After`) without checking it.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let client = Client::of(ip);
        let mut clients = self.clients();
        let Some(entry) = clients.get(&client) else {
            return Ok(());
        };
        if entry.forgotten(now) {
            clients.remove(&client);
            return Ok(());
        }
        match entry.locked_until {
            Some(until) if until > now => Err(RetryAfter::from(until - now)),
            _ => Ok(()),
        }
    }

    /// Records that `ip` presented a wrong code or token. Returns how long it must now wait, if
    /// this failure locked it out (for a `Retry-After` on this very answer).
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Option<RetryAfter> {
        let client = Client::of(ip);
        let mut clients = self.clients();
        if !clients.contains_key(&client) && clients.len() >= self.capacity {
            self.make_room(&mut clients, now);
        }
        let fresh = Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
        };
        let entry = clients.entry(client).or_insert(fresh);
        if entry.forgotten(now) {
            *entry = fresh;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = entry.last_failure.max(now);
        let beyond_free = entry.failures.checked_sub(FREE_FAILURES)?;
        if beyond_free == 0 {
            return None;
        }
        let lockout = lockout_after(beyond_free);
        let until = now + lockout;
        let until = entry.locked_until.map_or(until, |old| old.max(until));
        entry.locked_until = Some(until);
        Some(RetryAfter::from(until - now))
    }

    /// Records that `ip` presented a good code or token: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        self.clients().remove(&Client::of(ip));
    }

    /// How many clients are remembered now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.clients().len()
    }

    /// Every change is a single insert, update or removal, so a panic elsewhere while the lock was
    /// held can't leave the map half-changed: a poisoned lock is still safe to use.
    fn clients(&self) -> MutexGuard<'_, HashMap<Client, Entry>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Frees room for one more client: drops forgotten entries, then, if still full, the tenth
    /// least recently active.
    fn make_room(&self, clients: &mut HashMap<Client, Entry>, now: Instant) {
        clients.retain(|_, entry| !entry.forgotten(now));
        if clients.len() < self.capacity {
            return;
        }
        let evict = (self.capacity / 10).max(1);
        let mut by_activity: Vec<(Instant, Client)> = clients
            .iter()
            .map(|(client, entry)| (entry.active_until(), *client))
            .collect();
        by_activity.select_nth_unstable_by_key(evict - 1, |(active, _)| *active);
        for (_, client) in &by_activity[..evict] {
            clients.remove(client);
        }
        tracing::debug!(
            evicted = evict,
            remaining = clients.len(),
            "guess throttle full: forgot the least recently active clients"
        );
    }
}

/// How many clients, not which (a full map would print 100,000 addresses).
impl fmt::Debug for GuessThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuessThrottle")
            .field("tracked", &self.tracked())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for GuessThrottle {
    fn default() -> Self {
        Self::new()
    }
}

/// The lockout after the `beyond_free`-th failure past the free ones (1-based): 1 s, 2 s, 4 s, …,
/// never more than [`MAX_LOCKOUT`].
fn lockout_after(beyond_free: u32) -> Duration {
    // 2^10 s is already past the cap; stopping the exponent there keeps the shift in range.
    let doublings = (beyond_free - 1).min(10);
    (FIRST_LOCKOUT * (1u32 << doublings)).min(MAX_LOCKOUT)
}

impl RetryAfter {
    /// Whole seconds to wait, rounded up and at least 1: the `Retry-After` header's value.
    pub fn seconds(self) -> u64 {
        self.seconds
    }
}

impl From<Duration> for RetryAfter {
    /// Rounds up, so waiting the given seconds is always enough.
    fn from(wait: Duration) -> Self {
        let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        RetryAfter {
            seconds: whole.max(1),
        }
    }
}

/// What to tell the client: "Too many wrong tries from your network. Wait 4 seconds, then try
/// again."
impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wait = match self.seconds {
            1 => "1 second".to_string(),
            s if s < 60 => format!("{s} seconds"),
            s => match s.div_ceil(60) {
                1 => "1 minute".to_string(),
                m => format!("{m} minutes"),
            },
        };
        write!(
            f,
            "Too many wrong tries from your network. Wait {wait}, then try again."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const ALICE: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    const BOB: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 8));

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Fails `n` times at `now` and returns the last answer.
    fn fail_times(
        throttle: &GuessThrottle,
        ip: IpAddr,
        now: Instant,
        n: u32,
    ) -> Option<RetryAfter> {
        (0..n).map(|_| throttle.failed(ip, now)).last().flatten()
    }

    #[test]
    fn five_failures_are_free_then_lockouts_double_up_to_a_quarter_hour() {
        let throttle = GuessThrottle::new();
        let mut now = Instant::now();
        for attempt in 1..=FREE_FAILURES {
            assert_eq!(throttle.check(ALICE, now), Ok(()));
            assert_eq!(
                throttle.failed(ALICE, now),
                None,
                "failure {attempt} is free"
            );
        }
        let mut waits = Vec::new();
        for _ in 0..14 {
            assert_eq!(throttle.check(ALICE, now), Ok(()), "the lockout is over");
            let wait = throttle.failed(ALICE, now).expect("locked out now");
            assert_eq!(throttle.check(ALICE, now), Err(wait), "refused at once");
            waits.push(wait.seconds());
            now += secs(wait.seconds());
        }
        assert_eq!(
            waits,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]
        );
    }

    #[test]
    fn a_locked_out_client_is_told_how_long_is_left_rounded_up() {
        let throttle = GuessThrottle::new();
        let start = Instant::now();
        fail_times(&throttle, ALICE, start, FREE_FAILURES + 3); // the 3rd lockout: 4 s
        assert_eq!(throttle.check(ALICE, start).unwrap_err().seconds(), 4);
        let later = start + Duration::from_millis(2_500);
        assert_eq!(throttle.check(ALICE, later).unwrap_err().seconds(), 2);
        let almost = start + Duration::from_millis(3_999);
        assert_eq!(throttle.check(ALICE, almost).unwrap_err().seconds(), 1);
        assert_eq!(throttle.check(ALICE, start + secs(4)), Ok(()));
    }

    #[test]
    fn clients_are_counted_apart() {
        let throttle = GuessThrottle::new();
        let now = Instant::now();
        fail_times(&throttle, ALICE, now, FREE_FAILURES + 1);
        assert!(throttle.check(ALICE, now).is_err());
        assert_eq!(throttle.check(BOB, now), Ok(()));
        assert_eq!(
            throttle.failed(BOB, now),
            None,
            "Bob's first failure is free"
        );
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let throttle = GuessThrottle::new();
        let now = Instant::now();
        let host = |last: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last));
        // Each guess from a different address of the same /64: they all count together.
        for i in 0..FREE_FAILURES {
            assert_eq!(throttle.failed(host(i as u16), now), None);
        }
        assert!(throttle.failed(host(99), now).is_some());
        assert!(throttle.check(host(12345), now).is_err(), "same /64");
        let neighbour = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert_eq!(throttle.check(neighbour, now), Ok(()), "another /64");
    }

    #[test]
    fn ipv4_seen_through_a_dual_stack_socket_counts_as_ipv4() {
        let throttle = GuessThrottle::new();
        let now = Instant::now();
        let mapped = |ip: Ipv4Addr| IpAddr::V6(ip.to_ipv6_mapped());
        fail_times(
            &throttle,
            mapped(Ipv4Addr::new(198, 51, 100, 1)),
            now,
            FREE_FAILURES + 1,
        );
        assert!(
            throttle
                .check(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), now)
                .is_err(),
            "the same client either way"
        );
        assert_eq!(
            throttle.check(mapped(Ipv4Addr::new(198, 51, 100, 2)), now),
            Ok(()),
            "every mapped address is in one /64; they must not share a count"
        );
    }

    #[test]
    fn success_forgets_the_failures() {
        let throttle = GuessThrottle::new();
        let now = Instant::now();
        fail_times(&throttle, ALICE, now, FREE_FAILURES);
        throttle.succeeded(ALICE);
        assert_eq!(throttle.tracked(), 0);
        assert_eq!(
            fail_times(&throttle, ALICE, now, FREE_FAILURES),
            None,
            "five free failures again"
        );
    }

    #[test]
    fn failures_are_forgotten_after_ten_quiet_minutes() {
        let throttle = GuessThrottle::new();
        let start = Instant::now();
        fail_times(&throttle, ALICE, start, FREE_FAILURES);
        let almost = start + QUIET_PERIOD - secs(1);
        assert!(
            throttle.failed(ALICE, almost).is_some(),
            "not quiet long enough"
        );

        let throttle = GuessThrottle::new();
        fail_times(&throttle, ALICE, start, FREE_FAILURES);
        let quiet = start + QUIET_PERIOD;
        assert_eq!(throttle.check(ALICE, quiet), Ok(()));
        assert_eq!(throttle.tracked(), 0, "forgotten when checked");
        assert_eq!(fail_times(&throttle, ALICE, quiet, FREE_FAILURES), None);
    }

    #[test]
    fn the_quiet_period_starts_when_the_lockout_ends() {
        let throttle = GuessThrottle::new();
        let mut now = Instant::now();
        fail_times(&throttle, ALICE, now, FREE_FAILURES);
        // Climb to the longest lockout.
        let mut wait = RetryAfter { seconds: 0 };
        for _ in 0..11 {
            wait = throttle.failed(ALICE, now).unwrap();
            now += secs(wait.seconds());
        }
        assert_eq!(wait.seconds(), 900);
        // The lockout has just ended; 9 minutes later the client is still remembered, so its
        // next failure locks it out for the longest time again rather than being free.
        now += QUIET_PERIOD - secs(60);
        assert_eq!(throttle.check(ALICE, now), Ok(()));
        assert_eq!(
            throttle.failed(ALICE, now).map(RetryAfter::seconds),
            Some(900)
        );
    }

    #[test]
    fn a_flood_of_addresses_never_grows_the_map_past_its_capacity() {
        let throttle = GuessThrottle::new();
        let now = Instant::now();
        for i in 0..(DEFAULT_CAPACITY as u32 + 50_000) {
            throttle.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), now);
            assert!(throttle.tracked() <= DEFAULT_CAPACITY);
        }
        assert!(throttle.tracked() >= DEFAULT_CAPACITY * 9 / 10);
    }

    #[test]
    fn a_flood_drops_forgotten_clients_first_and_locked_out_ones_last() {
        let throttle = GuessThrottle::with_capacity(100);
        let start = Instant::now();
        // Alice is locked out for 15 minutes; Bob failed once, long ago.
        fail_times(&throttle, ALICE, start, FREE_FAILURES + 11);
        assert_eq!(throttle.check(ALICE, start).unwrap_err().seconds(), 900);
        throttle.failed(BOB, start);

        let flood_at = start + QUIET_PERIOD + secs(1);
        for i in 0..99u32 {
            throttle.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), flood_at);
        }
        // 101 clients would not fit: Bob, forgotten anyway, made room.
        assert_eq!(throttle.tracked(), 100);
        assert!(throttle.check(ALICE, flood_at).is_err());

        for i in 99..10_000u32 {
            throttle.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), flood_at);
            assert!(throttle.tracked() <= 100);
        }
        assert!(
            throttle.check(ALICE, flood_at).is_err(),
            "a flood of new addresses must not end a lockout"
        );
    }

    #[test]
    fn can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<GuessThrottle>();
        let throttle = std::sync::Arc::new(GuessThrottle::new());
        let now = Instant::now();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let throttle = throttle.clone();
                std::thread::spawn(move || {
                    for _ in 0..2 {
                        throttle.failed(ALICE, now);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        // 8 failures from four threads: 5 free, then lockouts of 1, 2 and 4 s.
        assert_eq!(throttle.check(ALICE, now).unwrap_err().seconds(), 4);
    }

    #[test]
    fn debug_says_how_many_not_who() {
        let throttle = GuessThrottle::with_capacity(10);
        throttle.failed(ALICE, Instant::now());
        let shown = format!("{throttle:?}");
        assert_eq!(shown, "GuessThrottle { tracked: 1, capacity: 10 }");
    }

    #[test]
    fn retry_after_reads_as_a_plain_sentence() {
        let said = |s: u64| RetryAfter { seconds: s }.to_string();
        assert_eq!(
            said(1),
            "Too many wrong tries from your network. Wait 1 second, then try again."
        );
        assert!(said(4).contains("Wait 4 seconds,"));
        assert!(said(60).contains("Wait 1 minute,"));
        assert!(said(61).contains("Wait 2 minutes,"));
        assert!(said(900).contains("Wait 15 minutes,"));
        assert_eq!(RetryAfter::from(Duration::from_millis(1)).seconds(), 1);
        assert_eq!(RetryAfter::from(Duration::ZERO).seconds(), 1);
        assert_eq!(RetryAfter::from(Duration::from_millis(2_001)).seconds(), 3);
    }
}
