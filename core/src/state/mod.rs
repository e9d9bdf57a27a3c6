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
#[cfg(feature = "redis")]
mod redis;

use std::sync::Arc;

pub use memory::{DEFAULT_STATE_CAPACITY, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::{
    DEFAULT_NAMESPACE, DEFAULT_POOL, DEFAULT_TIMEOUT, MAX_EXACT, RedisOptions, RedisStore,
};

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

/// Why [`open`] refused a state URL. URLs in these errors never hold
/// credentials (`user:password@` is shown as `***@`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateOpenError {
    /// The URL is empty.
    #[error(
        "the state URL is empty; expected `memory`, `memory:CAPACITY` or `redis://host:port/db`"
    )]
    Empty,
    /// The URL names no store this build knows.
    #[error(
        "the state URL `{url}` names no known store; expected `memory`, `memory:CAPACITY` or `redis://host:port/db`"
    )]
    UnknownScheme {
        /// The URL, without credentials.
        url: String,
    },
    /// `memory:CAPACITY` with a capacity that is not a positive integer.
    #[error(
        "the state URL `{url}` has the capacity `{value}`; expected an integer from 1 to {max}"
    )]
    BadCapacity {
        /// The URL.
        url: String,
        /// The capacity as given.
        value: String,
        /// The largest capacity taken.
        max: usize,
    },
    /// A `redis://` URL, while this build has no Redis store (the `redis`
    /// feature of the `agentriage` crate is off).
    #[error(
        "the state URL `{url}` needs the Redis store, which this build does not include (feature `redis`)"
    )]
    RedisNotBuilt {
        /// The URL, without credentials.
        url: String,
    },
    /// `rediss://`: this build connects to Redis over plain TCP only.
    #[error(
        "the state URL `{url}` asks for TLS, which this build does not support; \
         reach Redis over `redis://` on a trusted network or through a local TLS tunnel"
    )]
    TlsUnsupported {
        /// The URL, without credentials.
        url: String,
    },
    /// The URL does not parse as a Redis URL.
    #[error("the state URL `{url}` is not a valid Redis URL: {reason}")]
    BadUrl {
        /// The URL, without credentials.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's query names an option the store does not have.
    #[error(
        "the state URL `{url}` has the unknown option `{name}`; \
         expected `namespace`, `timeout_ms`, `connect_timeout_ms`, `io_timeout_ms` or `pool`"
    )]
    UnknownOption {
        /// The URL, without credentials.
        url: String,
        /// The option's name.
        name: String,
    },
    /// An option with a value out of its range.
    #[error("the state option `{name}` is `{value}`; expected {expected}")]
    BadOption {
        /// The option's name.
        name: String,
        /// Its value as given.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
}

/// The largest capacity `memory:CAPACITY` takes.
pub const MAX_MEMORY_CAPACITY: usize = 100_000_000;

/// Opens the store a URL names:
///
/// - `memory` — a [`MemoryStore`] of [`DEFAULT_STATE_CAPACITY`] keys, for
///   one process;
/// - `memory:CAPACITY` — a [`MemoryStore`] of `CAPACITY` keys (1 to
///   [`MAX_MEMORY_CAPACITY`]);
/// - `redis://[user:password@]host[:port][/db][?options]` — a `RedisStore`
///   shared by every process using it (feature `redis`; options:
///   `namespace`, `timeout_ms`, `connect_timeout_ms`, `io_timeout_ms`,
///   `pool`). Opening does not connect; `rediss://` is refused.
///
/// ```
/// let store = agentriage::state::open("memory:1000")?;
/// assert_eq!(store.kind(), "memory");
/// assert!(agentriage::state::open("memory:0").is_err());
/// # Ok::<(), agentriage::state::StateOpenError>(())
/// ```
pub fn open(url: &str) -> Result<Arc<dyn StateStore>, StateOpenError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(StateOpenError::Empty);
    }
    if url == "memory" {
        return Ok(Arc::new(MemoryStore::default()));
    }
    if let Some(value) = url.strip_prefix("memory:") {
        return match value.parse::<usize>() {
            Ok(n) if (1..=MAX_MEMORY_CAPACITY).contains(&n) => Ok(Arc::new(MemoryStore::new(n))),
            _ => Err(StateOpenError::BadCapacity {
                url: url.to_owned(),
                value: value.to_owned(),
                max: MAX_MEMORY_CAPACITY,
            }),
        };
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        return open_redis(url);
    }
    Err(StateOpenError::UnknownScheme { url: redact(url) })
}

#[cfg(feature = "redis")]
fn open_redis(url: &str) -> Result<Arc<dyn StateStore>, StateOpenError> {
    Ok(Arc::new(RedisStore::from_url(url)?))
}

#[cfg(not(feature = "redis"))]
fn open_redis(url: &str) -> Result<Arc<dyn StateStore>, StateOpenError> {
    let url = redact(url);
    if url.starts_with("rediss://") {
        return Err(StateOpenError::TlsUnsupported { url });
    }
    Err(StateOpenError::RedisNotBuilt { url })
}

/// `url` without credentials (`user:password@` shown as `***@`) nor query.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.contains('@') {
            "***".into()
        } else {
            url.to_owned()
        };
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", authority.get(at + 1..).unwrap_or("")),
        None => authority.to_owned(),
    };
    let tail = tail.split(['?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}{tail}")
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
