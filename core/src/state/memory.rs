//! The in-memory [`StateStore`]: one process, bounded, failing closed.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{Added, StateError, StateStore};

/// Default capacity of a [`MemoryStore`]: live keys of every kind together.
pub const DEFAULT_STATE_CAPACITY: usize = 100_000;

/// A bounded, thread-safe, in-memory store for one process.
///
/// - A key lives until its expiry is passed by the latest evaluation time
///   the store has seen (its *horizon*, which only moves forward). Expired
///   keys are dropped when the store is full, not before.
/// - When full of live keys it refuses new ones ([`StateError::Full`]):
///   forgetting a live key would let an intent or approval be used again, or
///   restart a quota, so the store fails closed instead.
/// - A key expiring at or before the latest expiry the store has dropped is
///   answered with [`StateError::Unavailable`]: it may be among those
///   dropped, so the store cannot vouch for it (this only happens to
///   requests evaluated at times far apart and out of order).
///
/// Engines in one process may share one store (`Arc`); engines in several
/// processes need a shared store such as Redis.
#[derive(Debug)]
pub struct MemoryStore {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// key → (value, expiry).
    keys: HashMap<String, (i64, i128)>,
    /// Expiry order, for dropping what expired.
    by_expiry: BTreeSet<(i128, String)>,
    horizon: i128,
    dropped_up_to: i128,
}

impl MemoryStore {
    /// A store holding at most `capacity` live keys.
    pub fn new(capacity: usize) -> MemoryStore {
        MemoryStore {
            capacity,
            state: Mutex::new(State {
                keys: HashMap::new(),
                by_expiry: BTreeSet::new(),
                horizon: i128::MIN,
                dropped_up_to: i128::MIN,
            }),
        }
    }

    /// How many keys the store holds now (expired ones not yet dropped
    /// included).
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.keys.len())
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most live keys the store holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self, now: i128) -> Result<MutexGuard<'_, State>, StateError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| StateError::Unavailable("the store's lock is poisoned".into()))?;
        state.horizon = state.horizon.max(now);
        Ok(state)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_STATE_CAPACITY)
    }
}

impl State {
    fn expire(&mut self) {
        while let Some((expiry, _)) = self.by_expiry.first() {
            if *expiry > self.horizon {
                break;
            }
            if let Some((expiry, key)) = self.by_expiry.pop_first() {
                self.keys.remove(&key);
                self.dropped_up_to = self.dropped_up_to.max(expiry);
            }
        }
    }

    /// The live value of `key`, if any (an entry past the horizon is gone).
    fn live(&self, key: &str) -> Option<i64> {
        self.keys
            .get(key)
            .filter(|(_, expiry)| *expiry > self.horizon)
            .map(|(v, _)| *v)
    }

    fn vouch(&self, expires: i128) -> Result<(), StateError> {
        if expires <= self.dropped_up_to {
            return Err(StateError::Unavailable(
                "the key expires before entries this store has already dropped; \
                 it cannot tell whether the key was used"
                    .into(),
            ));
        }
        Ok(())
    }

    fn put(
        &mut self,
        capacity: usize,
        key: &str,
        value: i64,
        expires: i128,
    ) -> Result<(), StateError> {
        if let Some(entry) = self.keys.get_mut(key) {
            let old = entry.1;
            entry.0 = value;
            if expires > old {
                entry.1 = expires;
                self.by_expiry.remove(&(old, key.to_owned()));
                self.by_expiry.insert((expires, key.to_owned()));
            }
            return Ok(());
        }
        if self.keys.len() >= capacity {
            self.expire();
        }
        if self.keys.len() >= capacity {
            return Err(StateError::Full { capacity });
        }
        self.keys.insert(key.to_owned(), (value, expires));
        self.by_expiry.insert((expires, key.to_owned()));
        Ok(())
    }
}

impl StateStore for MemoryStore {
    fn insert_once(&self, key: &str, expires: i128, now: i128) -> Result<bool, StateError> {
        let mut state = self.lock(now)?;
        state.vouch(expires)?;
        if state.live(key).is_some() {
            return Ok(false);
        }
        // An expired entry still in the map is replaced.
        if let Some((_, old)) = state.keys.remove(key) {
            state.by_expiry.remove(&(old, key.to_owned()));
        }
        state.put(self.capacity, key, 1, expires)?;
        Ok(true)
    }

    fn add_within(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        expires: i128,
        now: i128,
    ) -> Result<Added, StateError> {
        let mut state = self.lock(now)?;
        state.vouch(expires)?;
        let current = state.live(key).unwrap_or(0);
        let total = current.saturating_add(amount.max(0));
        if total > limit {
            return Ok(Added::Exceeded(current));
        }
        if state.live(key).is_none()
            && let Some((_, old)) = state.keys.remove(key)
        {
            state.by_expiry.remove(&(old, key.to_owned()));
        }
        state.put(self.capacity, key, total, expires)?;
        Ok(Added::Added(total))
    }

    fn subtract(&self, key: &str, amount: i64, now: i128) -> Result<(), StateError> {
        let mut state = self.lock(now)?;
        let horizon = state.horizon;
        if let Some(entry) = state.keys.get_mut(key)
            && entry.1 > horizon
        {
            entry.0 = entry.0.saturating_sub(amount.max(0)).max(0);
        }
        Ok(())
    }

    fn counter(&self, key: &str, now: i128) -> Result<i64, StateError> {
        let state = self.lock(now)?;
        Ok(state.live(key).unwrap_or(0))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const S: i128 = 1_000_000_000;

    #[test]
    fn a_key_is_recorded_once_until_it_expires() {
        let s = MemoryStore::new(10);
        assert_eq!(s.insert_once("a", 100 * S, 0), Ok(true));
        assert_eq!(s.insert_once("a", 100 * S, 50 * S), Ok(false));
        // Past its expiry (by the horizon) it may be recorded again.
        assert_eq!(s.insert_once("a", 300 * S, 150 * S), Ok(true));
        assert_eq!(s.insert_once("a", 300 * S, 150 * S), Ok(false));
    }

    #[test]
    fn a_full_store_fails_closed_and_never_forgets_a_live_key() {
        let s = MemoryStore::new(2);
        assert_eq!(s.insert_once("a", 100 * S, 0), Ok(true));
        assert_eq!(s.add_within("q", 1, 5, 200 * S, 0), Ok(Added::Added(1)));
        assert_eq!(
            s.insert_once("b", 100 * S, 0),
            Err(StateError::Full { capacity: 2 })
        );
        // Once `a` expired it is dropped to make room; a key expiring before
        // what was dropped is refused as unverifiable.
        assert_eq!(s.insert_once("b", 300 * S, 150 * S), Ok(true));
        assert!(matches!(
            s.insert_once("a", 90 * S, 150 * S),
            Err(StateError::Unavailable(_))
        ));
        assert_eq!(s.counter("q", 150 * S), Ok(1));
    }

    #[test]
    fn counters_stay_within_their_limit_and_restart_per_key() {
        let s = MemoryStore::new(10);
        assert_eq!(s.add_within("q", 3, 5, 100 * S, 0), Ok(Added::Added(3)));
        assert_eq!(s.add_within("q", 2, 5, 100 * S, 0), Ok(Added::Added(5)));
        assert_eq!(s.add_within("q", 1, 5, 100 * S, 0), Ok(Added::Exceeded(5)));
        s.subtract("q", 2, 0).unwrap();
        assert_eq!(s.counter("q", 0), Ok(3));
        assert_eq!(s.add_within("q", 2, 5, 100 * S, 0), Ok(Added::Added(5)));
        // A counter past its expiry starts again from zero.
        assert_eq!(
            s.add_within("q", 4, 5, 300 * S, 200 * S),
            Ok(Added::Added(4))
        );
        // A single amount above the limit never fits.
        assert_eq!(
            s.add_within("r", 6, 5, 300 * S, 200 * S),
            Ok(Added::Exceeded(0))
        );
    }

    #[test]
    fn concurrent_callers_never_pass_a_limit_or_share_a_key() {
        let s = Arc::new(MemoryStore::new(10_000));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let mut won = 0;
                    let mut added = 0;
                    for n in 0..200 {
                        if s.insert_once(&format!("k{n}"), 100 * S, 0) == Ok(true) {
                            won += 1;
                        }
                        if matches!(s.add_within("q", 1, 150, 100 * S, 0), Ok(Added::Added(_))) {
                            added += 1;
                        }
                    }
                    (won, added)
                })
            })
            .collect();
        let (won, added) = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!(won, 200);
        assert_eq!(added, 150);
        assert_eq!(s.counter("q", 0), Ok(150));
    }
}
