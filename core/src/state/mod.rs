//! Shared decision state: the one-time use of intents' `jti`s and of
//! approvals, and the counters of quotas.
//!
//! Everything the engine must remember between decisions goes through one
//! [`StateStore`]: an in-memory default ([`MemoryStore`], bounded, failing
//! closed when full) for one process, or a store shared by every replica
//! (Redis: `RedisStore`, with the `redis` feature) so that an
//! intent or approval used on one replica is refused on every other and a
//! quota counts across all of them.
//!
//! Keys are strings the engine builds (`jti:<issuer>:<jti>`,
//! `approval:<issuer>:<jti>`, `quota:<id>:<subject>:<window>`); a store only
//! keeps them and their expiry. Times are the decision's evaluation time in
//! nanoseconds since the Unix epoch, so that a store can expire keys by the
//! time the engine reasons in (the in-memory store) or convert the
//! remaining lifetime to its own clock (Redis `PX`).

mod memory;

use std::sync::Arc;

pub use memory::{DEFAULT_STATE_CAPACITY, MemoryStore};

use crate::intent::{ReplayCache, ReplayError};

/// Why a store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The store holds as many live keys as it may: it refuses new ones
    /// rather than forget one that has not expired.
    #[error("the state store is full ({capacity} live keys)")]
    Full {
        /// The store's capacity.
        capacity: usize,
    },
    /// The store cannot vouch for the answer: its backend is unreachable or
    /// failed, or it dropped entries it would need.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
}

/// The result of [`StateStore::add_within`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The amount was added; the counter now holds this total.
    Added(i64),
    /// The amount was not added: the counter (which holds this total)
    /// would have passed the limit.
    Exceeded(i64),
}

/// Decision state shared by every decision of one or more engines.
///
/// Implementations are called from many threads at once, and each
/// operation must be atomic against every other caller of the same store —
/// across processes for a shared store: of two concurrent
/// [`insert_once`](Self::insert_once) calls with one key, exactly one
/// succeeds; two concurrent [`add_within`](Self::add_within) calls never
/// take a counter past its limit together. When a store cannot answer for
/// sure it returns an error and the engine fails closed.
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// Records `key` until `expires_unix_nanos`. `Ok(true)` when it was not
    /// recorded (and now is), `Ok(false)` when it already was and has not
    /// expired.
    fn insert_once(
        &self,
        key: &str,
        expires_unix_nanos: i128,
        now_unix_nanos: i128,
    ) -> Result<bool, StateError>;

    /// Adds `amount` (≥ 0) to the counter `key` unless the total would pass
    /// `limit`; a counter that does not exist starts at 0 and lives until
    /// `expires_unix_nanos`.
    fn add_within(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        expires_unix_nanos: i128,
        now_unix_nanos: i128,
    ) -> Result<Added, StateError>;

    /// Takes `amount` back from the counter `key` (undoing an
    /// [`add_within`](Self::add_within) whose decision did not go ahead).
    fn subtract(&self, key: &str, amount: i64, now_unix_nanos: i128) -> Result<(), StateError>;

    /// The counter `key` now (0 when it does not exist or expired).
    fn counter(&self, key: &str, now_unix_nanos: i128) -> Result<i64, StateError>;

    /// A short name for metrics and errors: `memory`, `redis`, …
    fn kind(&self) -> &'static str;
}

/// A store that remembers nothing: **no replay protection, no one-time
/// approvals, no quotas** — every key is new, every amount fits.
///
/// For test suites that decide the same request many times on purpose
/// (expected-decision tables, thread-consistency tests). Never use it where
/// requests come from the outside.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoState;

impl StateStore for NoState {
    fn insert_once(&self, _: &str, _: i128, _: i128) -> Result<bool, StateError> {
        Ok(true)
    }

    fn add_within(
        &self,
        _: &str,
        amount: i64,
        _: i64,
        _: i128,
        _: i128,
    ) -> Result<Added, StateError> {
        Ok(Added::Added(amount))
    }

    fn subtract(&self, _: &str, _: i64, _: i128) -> Result<(), StateError> {
        Ok(())
    }

    fn counter(&self, _: &str, _: i128) -> Result<i64, StateError> {
        Ok(0)
    }

    fn kind(&self) -> &'static str {
        "none"
    }
}

/// The key under which an intent's `jti` is remembered.
pub(crate) fn jti_key(issuer: &str, jti: &str) -> String {
    key3("jti", issuer, jti)
}

/// `prefix:len(a):a:b` — the length keeps `a` from running into `b` (an
/// issuer holding `:` cannot forge another pair's key).
pub(crate) fn key3(prefix: &str, a: &str, b: &str) -> String {
    format!("{prefix}:{}:{a}:{b}", a.len())
}

/// A [`StateStore`] seen as the intents' [`ReplayCache`].
#[derive(Debug, Clone)]
pub(crate) struct StoreReplay(pub(crate) Arc<dyn StateStore>);

impl ReplayCache for StoreReplay {
    fn check_and_record(
        &self,
        issuer: &str,
        jti: &str,
        expires_unix_nanos: i128,
        now_unix_nanos: i128,
    ) -> Result<(), ReplayError> {
        match self
            .0
            .insert_once(&jti_key(issuer, jti), expires_unix_nanos, now_unix_nanos)
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(ReplayError::Seen {
                issuer: issuer.to_owned(),
                jti: jti.to_owned(),
            }),
            Err(StateError::Full { capacity }) => Err(ReplayError::Full { capacity }),
            Err(e) => Err(ReplayError::Unavailable(e.to_string())),
        }
    }
}
