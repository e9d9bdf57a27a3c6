//! The Redis [`StateStore`] (feature `redis`): one view of the decision
//! state for every replica and process that shares one Redis.
//!
//! Every operation is one atomic Redis command or script, so two replicas
//! never both record one key and never take a counter past its limit
//! together:
//!
//! | operation | Redis |
//! |---|---|
//! | [`insert_once`](StateStore::insert_once) | `SET key 1 NX PX ttl` |
//! | [`add_within`](StateStore::add_within) | a script: `GET`, compare with the limit, `INCRBY`, `PEXPIRE` when the key is new or would expire sooner |
//! | [`subtract`](StateStore::subtract) | a script: `DECRBY`, never below 0, keeping the key's TTL |
//! | [`counter`](StateStore::counter) | `GET` |
//!
//! Every failure — Redis unreachable, a timeout, an error reply, a value
//! that is not a counter — is a [`StateError::Unavailable`] naming the
//! operation and what failed, and the engine fails closed. Connecting,
//! reading and writing each have a timeout (default 250 ms), so an
//! unreachable Redis never holds a decision longer than that.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::{Added, StateError, StateOpenError, StateStore, redact};

/// Prefix of every key the store writes, unless configured otherwise.
pub const DEFAULT_NAMESPACE: &str = "agentriage:";

/// Default connect, read and write timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// Default number of idle connections kept for reuse.
pub const DEFAULT_POOL: usize = 8;

/// The largest amount, limit or counter the store handles: Redis scripts
/// compare numbers as doubles, exact up to 2^53 − 1. Larger values are
/// refused rather than compared approximately.
pub const MAX_EXACT: i64 = (1 << 53) - 1;

/// The longest lifetime given to a key (100 years, in milliseconds); a key
/// meant to live longer is kept this long.
const MAX_TTL_MS: i128 = 100 * 365 * 24 * 3600 * 1000;

const LONGEST_TIMEOUT: Duration = Duration::from_secs(60);
const LARGEST_POOL: usize = 1024;
const LONGEST_NAMESPACE: usize = 128;

/// `KEYS[1]` counter, `ARGV[1]` amount, `ARGV[2]` limit, `ARGV[3]` TTL in ms.
/// Returns `{1, total}` when added, `{0, current}` when the limit would be
/// passed.
const ADD_WITHIN: &str = r"
local raw = redis.call('GET', KEYS[1])
local current = 0
if raw then
  current = tonumber(raw)
  if current == nil or current ~= math.floor(current)
     or current > 9007199254740991 or current < -9007199254740991 then
    return redis.error_reply('the counter does not hold an integer')
  end
end
if current + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return {0, current}
end
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, total}
";

/// `KEYS[1]` counter, `ARGV[1]` amount. A counter that does not exist stays
/// absent; one taken below 0 is set to 0, keeping its TTL.
const SUBTRACT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left < 0 then
  redis.call('SET', KEYS[1], '0', 'KEEPTTL')
  return 0
end
return left
";

/// How a [`RedisStore`] connects and names its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    namespace: String,
    connect_timeout: Duration,
    io_timeout: Duration,
    pool: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            connect_timeout: DEFAULT_TIMEOUT,
            io_timeout: DEFAULT_TIMEOUT,
            pool: DEFAULT_POOL,
        }
    }
}

impl RedisOptions {
    /// Prefixes every key with `namespace` (1 to 128 characters among
    /// `A-Z a-z 0-9 : _ . -`), so that several deployments can share one
    /// Redis without sharing state.
    pub fn with_namespace(mut self, namespace: &str) -> Result<RedisOptions, StateOpenError> {
        let valid = !namespace.is_empty()
            && namespace.len() <= LONGEST_NAMESPACE
            && namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-'));
        if !valid {
            return Err(StateOpenError::BadOption {
                name: "namespace".into(),
                value: namespace.into(),
                expected: "1 to 128 characters among A-Z a-z 0-9 : _ . -",
            });
        }
        self.namespace = namespace.to_owned();
        Ok(self)
    }

    /// Sets the connect, read and write timeouts together (1 ms to 60 s).
    pub fn with_timeout(self, timeout: Duration) -> Result<RedisOptions, StateOpenError> {
        self.with_connect_timeout(timeout)?.with_io_timeout(timeout)
    }

    /// The longest wait for a connection to be set up (1 ms to 60 s).
    pub fn with_connect_timeout(
        mut self,
        timeout: Duration,
    ) -> Result<RedisOptions, StateOpenError> {
        self.connect_timeout = checked_timeout("connect_timeout_ms", timeout)?;
        Ok(self)
    }

    /// The longest wait for one command to be written or answered (1 ms to
    /// 60 s).
    pub fn with_io_timeout(mut self, timeout: Duration) -> Result<RedisOptions, StateOpenError> {
        self.io_timeout = checked_timeout("io_timeout_ms", timeout)?;
        Ok(self)
    }

    /// Keeps at most `pool` idle connections for reuse (1 to 1024); more
    /// are opened while more threads decide at once, and closed after use.
    pub fn with_pool(mut self, pool: usize) -> Result<RedisOptions, StateOpenError> {
        if !(1..=LARGEST_POOL).contains(&pool) {
            return Err(StateOpenError::BadOption {
                name: "pool".into(),
                value: pool.to_string(),
                expected: "an integer from 1 to 1024",
            });
        }
        self.pool = pool;
        Ok(self)
    }

    /// The prefix of every key.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The read and write timeout of each command.
    pub fn io_timeout(&self) -> Duration {
        self.io_timeout
    }

    /// The most idle connections kept.
    pub fn pool(&self) -> usize {
        self.pool
    }
}

fn checked_timeout(name: &str, timeout: Duration) -> Result<Duration, StateOpenError> {
    if timeout < Duration::from_millis(1) || timeout > LONGEST_TIMEOUT {
        return Err(StateOpenError::BadOption {
            name: name.into(),
            value: format!("{} ms", timeout.as_millis()),
            expected: "from 1 ms to 60000 ms",
        });
    }
    Ok(timeout)
}

/// A [`StateStore`] in Redis, shared by every engine, replica and process
/// that uses the same Redis and namespace.
///
/// Creating one does not connect: a replica starts while Redis is down, and
/// its decisions fail closed until Redis answers ([`RedisStore::ping`]
/// checks it now). Connections are opened on demand, kept for reuse (see
/// [`RedisOptions::with_pool`]) and dropped after any error, so the store
/// reconnects once Redis is back.
///
/// Needs Redis 6.0 or later (`SET … KEEPTTL`). Keys expire by Redis' clock:
/// the store turns the time left (`expires − now`, both the decision's
/// evaluation time) into a `PX` TTL of at least 1 ms.
pub struct RedisStore {
    client: redis::Client,
    /// The URL without credentials, for errors and `Debug`.
    target: String,
    options: RedisOptions,
    idle: Mutex<Vec<redis::Connection>>,
    add_within: redis::Script,
    subtract: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `url`, `redis://[user:password@]host[:port][/db]`, with
    /// `options`. Only plain TCP: `rediss://` (TLS) is refused, as is any
    /// query or fragment in the URL (use [`RedisStore::from_url`] for
    /// options in the URL).
    pub fn new(url: &str, options: RedisOptions) -> Result<RedisStore, StateOpenError> {
        let target = redact(url);
        if url.starts_with("rediss://") {
            return Err(StateOpenError::TlsUnsupported { url: target });
        }
        if !url.starts_with("redis://") {
            return Err(StateOpenError::UnknownScheme { url: target });
        }
        if url.contains(['?', '#']) {
            return Err(StateOpenError::BadUrl {
                url: target,
                reason: "a query or fragment is not taken here".into(),
            });
        }
        let client = redis::Client::open(url).map_err(|e| StateOpenError::BadUrl {
            url: target.clone(),
            reason: e.to_string(),
        })?;
        Ok(RedisStore {
            client,
            target,
            options,
            idle: Mutex::new(Vec::new()),
            add_within: redis::Script::new(ADD_WITHIN),
            subtract: redis::Script::new(SUBTRACT),
        })
    }

    /// A store for `url` with its options in the query:
    /// `redis://host:port/db?namespace=agentriage:&timeout_ms=250&pool=8`
    /// (also `connect_timeout_ms` and `io_timeout_ms`). An unknown option,
    /// or one given twice, is refused.
    pub fn from_url(url: &str) -> Result<RedisStore, StateOpenError> {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (url, None),
        };
        let mut options = RedisOptions::default();
        let mut seen: Vec<&str> = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if seen.contains(&name) {
                return Err(StateOpenError::BadUrl {
                    url: redact(url),
                    reason: format!("the option `{name}` is given twice"),
                });
            }
            seen.push(name);
            let millis = |name: &str| {
                value
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| StateOpenError::BadOption {
                        name: name.into(),
                        value: value.into(),
                        expected: "from 1 ms to 60000 ms",
                    })
            };
            options = match name {
                "namespace" => options.with_namespace(value)?,
                "timeout_ms" => options.with_timeout(millis(name)?)?,
                "connect_timeout_ms" => options.with_connect_timeout(millis(name)?)?,
                "io_timeout_ms" => options.with_io_timeout(millis(name)?)?,
                "pool" => {
                    let pool = value
                        .parse::<usize>()
                        .map_err(|_| StateOpenError::BadOption {
                            name: name.into(),
                            value: value.into(),
                            expected: "an integer from 1 to 1024",
                        })?;
                    options.with_pool(pool)?
                }
                _ => {
                    return Err(StateOpenError::UnknownOption {
                        url: redact(url),
                        name: name.into(),
                    });
                }
            };
        }
        RedisStore::new(base, options)
    }

    /// The store's options.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// The URL the store connects to, without credentials.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Connects (or reuses a connection) and sends `PING`: whether Redis
    /// answers now.
    pub fn ping(&self) -> Result<(), StateError> {
        self.run("ping", |c| redis::cmd("PING").query::<String>(c))
            .map(|_| ())
    }

    fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.options.namespace.len() + key.len());
        full.push_str(&self.options.namespace);
        full.push_str(key);
        full
    }

    fn idle(&self) -> MutexGuard<'_, Vec<redis::Connection>> {
        // A poisoned list of idle connections is still a list of
        // connections: each is checked by its next command.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn connect(&self, op: &str) -> Result<redis::Connection, StateError> {
        let fail = |e: redis::RedisError| {
            StateError::Unavailable(format!(
                "redis `{}`: cannot connect for `{op}`: {e}",
                self.target
            ))
        };
        let c = self
            .client
            .get_connection_with_timeout(self.options.connect_timeout)
            .map_err(fail)?;
        c.set_read_timeout(Some(self.options.io_timeout))
            .map_err(fail)?;
        c.set_write_timeout(Some(self.options.io_timeout))
            .map_err(fail)?;
        Ok(c)
    }

    fn give_back(&self, c: redis::Connection) {
        let mut idle = self.idle();
        if idle.len() < self.options.pool {
            idle.push(c);
        }
    }

    /// Runs `f` on a connection: an idle one if any — again on a fresh
    /// connection when that one turns out closed (Redis restarted) — or a
    /// fresh one. A connection that failed is dropped.
    fn run<T>(
        &self,
        op: &'static str,
        f: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        let reused = self.idle().pop();
        if let Some(mut c) = reused {
            match f(&mut c) {
                Ok(v) => {
                    self.give_back(c);
                    return Ok(v);
                }
                // The server closed this idle connection (restarted, or
                // timed it out): the command did not run on a live server
                // session; try once on a fresh connection. A timeout is not
                // retried: the command may have run.
                Err(e) if e.is_connection_dropped() && !e.is_timeout() => {}
                Err(e) => return Err(self.failed(op, &e)),
            }
        }
        let mut c = self.connect(op)?;
        match f(&mut c) {
            Ok(v) => {
                self.give_back(c);
                Ok(v)
            }
            Err(e) => Err(self.failed(op, &e)),
        }
    }

    fn failed(&self, op: &str, e: &redis::RedisError) -> StateError {
        StateError::Unavailable(format!("redis `{}`: `{op}` failed: {e}", self.target))
    }
}

/// `expires − now` in whole milliseconds, rounded up, at least 1 ms and at
/// most 100 years.
fn ttl_ms(expires_unix_nanos: i128, now_unix_nanos: i128) -> i64 {
    let left = expires_unix_nanos.saturating_sub(now_unix_nanos);
    let ms = if left <= 0 {
        1
    } else {
        (left / 1_000_000 + i128::from(left % 1_000_000 != 0)).clamp(1, MAX_TTL_MS)
    };
    i64::try_from(ms).unwrap_or(1)
}

fn exact(what: &str, value: i64) -> Result<i64, StateError> {
    if (-MAX_EXACT..=MAX_EXACT).contains(&value) {
        Ok(value)
    } else {
        Err(StateError::Unavailable(format!(
            "redis: the {what} {value} is beyond the exactly comparable range (±2^53 − 1)"
        )))
    }
}

impl StateStore for RedisStore {
    fn insert_once(
        &self,
        key: &str,
        expires_unix_nanos: i128,
        now_unix_nanos: i128,
    ) -> Result<bool, StateError> {
        let key = self.key(key);
        let ttl = ttl_ms(expires_unix_nanos, now_unix_nanos);
        let stored: Option<String> = self.run("insert_once", |c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .query(c)
        })?;
        match stored.as_deref() {
            Some("OK") => Ok(true),
            None => Ok(false),
            Some(other) => Err(StateError::Unavailable(format!(
                "redis `{}`: `insert_once` got the unexpected reply `{other}`",
                self.target
            ))),
        }
    }

    fn add_within(
        &self,
        key: &str,
        amount: i64,
        limit: i64,
        expires_unix_nanos: i128,
        now_unix_nanos: i128,
    ) -> Result<Added, StateError> {
        let amount = exact("amount", amount.max(0))?;
        let limit = exact("limit", limit)?;
        let key = self.key(key);
        let ttl = ttl_ms(expires_unix_nanos, now_unix_nanos);
        let (added, total): (i64, i64) = self.run("add_within", |c| {
            self.add_within
                .key(&key)
                .arg(amount)
                .arg(limit)
                .arg(ttl)
                .invoke(c)
        })?;
        Ok(if added == 1 {
            Added::Added(total)
        } else {
            Added::Exceeded(total)
        })
    }

    fn subtract(&self, key: &str, amount: i64, _now_unix_nanos: i128) -> Result<(), StateError> {
        let amount = exact("amount", amount.max(0))?;
        let key = self.key(key);
        let _left: i64 = self.run("subtract", |c| {
            self.subtract.key(&key).arg(amount).invoke(c)
        })?;
        Ok(())
    }

    fn counter(&self, key: &str, _now_unix_nanos: i128) -> Result<i64, StateError> {
        let key = self.key(key);
        let value: Option<String> =
            self.run("counter", |c| redis::cmd("GET").arg(&key).query(c))?;
        match value {
            None => Ok(0),
            Some(text) => text.parse::<i64>().map_err(|_| {
                StateError::Unavailable(format!(
                    "redis `{}`: `counter`: the key holds `{text}`, not an integer",
                    self.target
                ))
            }),
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_and_stay_within_bounds() {
        assert_eq!(ttl_ms(1_000_000, 0), 1);
        assert_eq!(ttl_ms(1_000_001, 0), 2);
        assert_eq!(ttl_ms(5, 10), 1);
        assert_eq!(ttl_ms(0, 0), 1);
        assert_eq!(
            ttl_ms(i128::MAX, i128::MIN),
            i64::try_from(MAX_TTL_MS).unwrap_or(0)
        );
        assert_eq!(ttl_ms(90_000_000_000, 30_000_000_000), 60_000);
    }

    #[test]
    fn credentials_never_reach_messages() {
        assert_eq!(redact("redis://u:secret@h:1/2?x=1"), "redis://***@h:1/2");
        assert_eq!(redact("redis://:p%40ss@h"), "redis://***@h");
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact("nonsense@x"), "***");
        let e = RedisStore::from_url("redis://u:secret@h:1/0?bogus=1").map(|_| ());
        let text = format!(
            "{:?} {}",
            e,
            e.as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("`bogus`"), "{text}");
    }

    #[test]
    fn urls_and_options_are_checked() {
        assert!(matches!(
            RedisStore::from_url("rediss://h:1"),
            Err(StateOpenError::TlsUnsupported { .. })
        ));
        assert!(matches!(
            RedisStore::from_url("redis://h:1/notadb"),
            Err(StateOpenError::BadUrl { .. })
        ));
        assert!(matches!(
            RedisStore::from_url("redis://h:1?timeout_ms=0"),
            Err(StateOpenError::BadOption { .. })
        ));
        assert!(matches!(
            RedisStore::from_url("redis://h:1?pool=x"),
            Err(StateOpenError::BadOption { .. })
        ));
        assert!(matches!(
            RedisStore::from_url("redis://h:1?namespace=a b"),
            Err(StateOpenError::BadOption { .. })
        ));
        assert!(matches!(
            RedisStore::from_url("redis://h:1?pool=2&pool=3"),
            Err(StateOpenError::BadUrl { .. })
        ));
        let s = RedisStore::from_url("redis://h:1/3?namespace=t1:&timeout_ms=40&pool=2")
            .map_err(|e| e.to_string());
        let s = match s {
            Ok(s) => s,
            Err(e) => unreachable!("{e}"),
        };
        assert_eq!(s.options().namespace(), "t1:");
        assert_eq!(s.options().io_timeout(), Duration::from_millis(40));
        assert_eq!(s.options().connect_timeout(), Duration::from_millis(40));
        assert_eq!(s.options().pool(), 2);
        assert_eq!(s.kind(), "redis");
    }

    #[test]
    fn out_of_range_amounts_are_refused_before_any_connection() {
        // Nothing listens on port 1: an attempt to connect would fail with
        // a connection error instead of the range error.
        let s = RedisStore::new("redis://127.0.0.1:1", RedisOptions::default());
        let Ok(s) = s else { unreachable!() };
        let e = s.add_within("q", MAX_EXACT + 1, MAX_EXACT, 10, 0);
        assert!(
            matches!(&e, Err(StateError::Unavailable(m)) if m.contains("amount")),
            "{e:?}"
        );
        let e = s.add_within("q", 1, i64::MIN, 10, 0);
        assert!(
            matches!(&e, Err(StateError::Unavailable(m)) if m.contains("limit")),
            "{e:?}"
        );
        let e = s.insert_once("k", 10, 0);
        assert!(
            matches!(&e, Err(StateError::Unavailable(m)) if m.contains("cannot connect") && m.contains("insert_once")),
            "{e:?}"
        );
    }
}
