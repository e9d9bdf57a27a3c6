//! The replay cache: remembers each issuer's `jti` until the intent expires.
//!
//! [`ReplayCache`] is the seam for multi-process deployments (a shared store
//! such as Redis `SET NX PX` implements it in a few lines);
//! [`MemoryReplayCache`] is the bounded, expiring, thread-safe default.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Why a replay cache did not accept a `jti`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The `jti` was recorded before and has not expired: a replay.
    #[error("jti `{jti}` of `{issuer}` was already used")]
    Seen {
        /// The issuer.
        issuer: String,
        /// The repeated `jti`.
        jti: String,
    },
    /// The cache is full of unexpired entries and cannot record one more.
    #[error("the replay cache is full ({capacity} unexpired entries)")]
    Full {
        /// The cache's capacity.
        capacity: usize,
    },
    /// The cache cannot tell whether the `jti` was seen (an entry that old
    /// may already have been evicted), or its backing store failed.
    #[error("{0}")]
    Unavailable(String),
}

/// Records `(issuer, jti)` pairs until they expire.
///
/// Implementations must be safe to call from many threads at once, and
/// `check_and_record` must be atomic: of two concurrent calls with the same
/// pair, exactly one succeeds. When in doubt, an implementation returns an
/// error: the engine then refuses the intent (fails closed).
pub trait ReplayCache: Send + Sync + std::fmt::Debug {
    /// Records `(issuer, jti)` as used until `expires_unix_nanos`, or fails if
    /// it is already recorded. `now_unix_nanos` is the decision's evaluation
    /// time.
    fn check_and_record(
        &self,
        issuer: &str,
        jti: &str,
        expires_unix_nanos: i128,
        now_unix_nanos: i128,
    ) -> Result<(), ReplayError>;
}

/// Default capacity of a [`MemoryReplayCache`].
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// An in-memory replay cache with a fixed capacity.
///
/// - An entry lives until its expiry is passed by the latest evaluation
///   time the cache has seen (its *horizon*, which only moves forward).
///   Expired entries are dropped when the cache is full, not before, so
///   that memory is only reclaimed when it is needed.
/// - When full of unexpired entries it refuses new ones
///   ([`ReplayError::Full`]): evicting an unexpired entry would let that
///   intent be replayed, so the cache fails closed instead. Size it for the
///   peak rate of intents times their maximum lifetime plus clock skew.
/// - An intent expiring at or before the latest expiry the cache has
///   dropped is refused with [`ReplayError::Unavailable`]: its entry may be
///   among those dropped, so the cache cannot vouch that it is fresh. (This
///   only happens to requests evaluated at times far apart and out of order.)
///
/// One mutex guards the state; each call does a hash lookup and an ordered
/// insert, so it holds the lock for well under a microsecond.
#[derive(Debug)]
pub struct MemoryReplayCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `(issuer, jti)` → expiry.
    seen: HashMap<(String, String), i128>,
    /// Expiry order, for dropping what expired.
    by_expiry: BTreeSet<(i128, String, String)>,
    /// The latest evaluation time seen.
    horizon: i128,
    /// The latest expiry of an entry dropped.
    dropped_up_to: i128,
}

impl MemoryReplayCache {
    /// A cache holding at most `capacity` unexpired entries.
    pub fn new(capacity: usize) -> MemoryReplayCache {
        MemoryReplayCache {
            capacity,
            state: Mutex::new(State {
                horizon: i128::MIN,
                dropped_up_to: i128::MIN,
                ..State::default()
            }),
        }
    }

    /// How many entries the cache holds now.
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.seen.len())
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        MemoryReplayCache::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl State {
    fn expire(&mut self) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 > self.horizon {
                break;
            }
            if let Some((expiry, issuer, jti)) = self.by_expiry.pop_first() {
                self.seen.remove(&(issuer, jti));
                self.dropped_up_to = self.dropped_up_to.max(expiry);
            }
        }
    }
}

impl ReplayCache for MemoryReplayCache {
    fn check_and_record(
        &self,
        issuer: &str,
        jti: &str,
        expires_unix_nanos: i128,
        now_unix_nanos: i128,
    ) -> Result<(), ReplayError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| ReplayError::Unavailable("the replay cache's lock is poisoned".into()))?;
        state.horizon = state.horizon.max(now_unix_nanos);
        if expires_unix_nanos <= state.dropped_up_to {
            return Err(ReplayError::Unavailable(
                "the intent expires before entries this replay cache has already dropped; \
                 it cannot tell whether the jti was used"
                    .into(),
            ));
        }
        let key = (issuer.to_owned(), jti.to_owned());
        if state.seen.contains_key(&key) {
            return Err(ReplayError::Seen {
                issuer: issuer.to_owned(),
                jti: jti.to_owned(),
            });
        }
        if state.seen.len() >= self.capacity {
            state.expire();
        }
        if state.seen.len() >= self.capacity {
            return Err(ReplayError::Full {
                capacity: self.capacity,
            });
        }
        state
            .by_expiry
            .insert((expires_unix_nanos, key.0.clone(), key.1.clone()));
        state.seen.insert(key, expires_unix_nanos);
        Ok(())
    }
}

/// A replay cache that accepts every `jti`: **no replay protection**.
///
/// For test suites that decide the same signed request many times on
/// purpose (expected-decision tables, thread-consistency tests). Never use
/// it where intents come from the outside: a captured intent could then be
/// acted on again and again.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReplayCheck;

impl ReplayCache for NoReplayCheck {
    fn check_and_record(&self, _: &str, _: &str, _: i128, _: i128) -> Result<(), ReplayError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const S: i128 = 1_000_000_000;

    #[test]
    fn refuses_a_replay_until_expiry_then_forgets() {
        let c = MemoryReplayCache::new(2);
        c.check_and_record("i", "j", 100 * S, 10 * S).unwrap();
        assert!(matches!(
            c.check_and_record("i", "j", 100 * S, 20 * S),
            Err(ReplayError::Seen { .. })
        ));
        // Another issuer may use the same jti.
        c.check_and_record("other", "j", 100 * S, 20 * S).unwrap();
        assert_eq!(c.len(), 2);
        // Full: what expired by the horizon is dropped to make room.
        c.check_and_record("i", "k", 300 * S, 200 * S).unwrap();
        assert_eq!(c.len(), 1);
        // A token expiring before what was dropped is refused as
        // unverifiable rather than accepted.
        assert!(matches!(
            c.check_and_record("i", "j", 100 * S, 50 * S),
            Err(ReplayError::Unavailable(_))
        ));
        // Out-of-order times are fine while nothing was dropped.
        let c = MemoryReplayCache::new(10);
        c.check_and_record("i", "late", 1000 * S, 900 * S).unwrap();
        c.check_and_record("i", "early", 100 * S, 50 * S).unwrap();
        assert!(c.check_and_record("i", "early", 100 * S, 60 * S).is_err());
    }

    #[test]
    fn a_full_cache_fails_closed_until_entries_expire() {
        let c = MemoryReplayCache::new(2);
        c.check_and_record("i", "a", 100 * S, 0).unwrap();
        c.check_and_record("i", "b", 200 * S, 0).unwrap();
        assert_eq!(
            c.check_and_record("i", "c", 200 * S, 0),
            Err(ReplayError::Full { capacity: 2 })
        );
        c.check_and_record("i", "c", 300 * S, 150 * S).unwrap();
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn exactly_one_of_many_threads_records_a_jti() {
        let c = Arc::new(MemoryReplayCache::new(1000));
        let wins: usize = (0..8)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    (0..100)
                        .filter(|n| {
                            c.check_and_record("i", &format!("j{n}"), 100 * S, 0)
                                .is_ok()
                        })
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(wins, 100);
        assert_eq!(c.len(), 100);
    }
}
