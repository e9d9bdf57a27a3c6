//! The state store's behaviour, written once and run against every store:
//! the in-memory store always, Redis when `redis-server` is there (feature
//! `redis`; see `redis_server/`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "redis")]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agentriage::state::{Added, MemoryStore, StateError, StateStore};

const MS: i128 = 1_000_000;
const S: i128 = 1_000 * MS;

/// Now, in nanoseconds since the Unix epoch: the stores' tests run on the
/// real clock, because Redis expires keys by its own.
fn now() -> i128 {
    i128::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

/// Waits until the real clock has passed `t` (plus a margin for Redis'
/// expiry, which starts when it receives the command).
fn wait_past(t: i128) {
    while now() <= t + 5 * MS {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `f` (with the current time) until it is true, for at most 10 s.
fn eventually(what: &str, f: impl Fn(i128) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f(now()) {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Makes stores over one shared state: every store it returns sees what
/// the others recorded.
type Factory<'a> = &'a dyn Fn() -> Arc<dyn StateStore>;

fn records_a_key_once(new: Factory<'_>) {
    let (a, b) = (new(), new());
    let t = now();
    assert_eq!(a.insert_once("once:a", t + 60 * S, t), Ok(true));
    assert_eq!(a.insert_once("once:a", t + 60 * S, t), Ok(false));
    assert_eq!(b.insert_once("once:a", t + 60 * S, t), Ok(false));
    assert_eq!(b.insert_once("once:b", t + 60 * S, t), Ok(true));
    assert_eq!(a.insert_once("once:b", t + 60 * S, t), Ok(false));
    // Keys are compared whole: a prefix is another key.
    assert_eq!(a.insert_once("once:", t + 60 * S, t), Ok(true));
}

fn a_key_may_be_recorded_again_only_after_it_expired(new: Factory<'_>) {
    let (a, b) = (new(), new());
    let t = now();
    let expires = t + 60 * MS;
    assert_eq!(a.insert_once("exp:a", expires, t), Ok(true));
    assert_eq!(b.insert_once("exp:a", expires + 60 * S, now()), Ok(false));
    wait_past(expires);
    eventually("the expired key is recorded again", |n| {
        b.insert_once("exp:a", n + 60 * S, n) == Ok(true)
    });
    assert!(now() > expires);
    assert_eq!(a.insert_once("exp:a", now() + 60 * S, now()), Ok(false));
}

fn counters_stay_within_their_limit(new: Factory<'_>) {
    let (a, b) = (new(), new());
    let t = now();
    let e = t + 60 * S;
    assert_eq!(a.counter("q", t), Ok(0));
    assert_eq!(a.add_within("q", 3, 5, e, t), Ok(Added::Added(3)));
    assert_eq!(b.add_within("q", 2, 5, e, t), Ok(Added::Added(5)));
    assert_eq!(a.add_within("q", 1, 5, e, t), Ok(Added::Exceeded(5)));
    assert_eq!(b.counter("q", t), Ok(5));
    b.subtract("q", 2, t).unwrap();
    assert_eq!(a.counter("q", t), Ok(3));
    assert_eq!(a.add_within("q", 2, 5, e, t), Ok(Added::Added(5)));
    // Taking back more than the counter holds leaves it at 0.
    a.subtract("q", 9, t).unwrap();
    assert_eq!(b.counter("q", t), Ok(0));
    assert_eq!(b.add_within("q", 5, 5, e, t), Ok(Added::Added(5)));
    // A single amount above the limit never fits, even in a new counter.
    assert_eq!(a.add_within("r", 6, 5, e, t), Ok(Added::Exceeded(0)));
    assert_eq!(a.counter("r", t), Ok(0));
    // A zero amount fits a counter at its limit; a negative one counts 0.
    assert_eq!(a.add_within("q", 0, 5, e, t), Ok(Added::Added(5)));
    assert_eq!(a.add_within("q", -3, 5, e, t), Ok(Added::Added(5)));
    // Subtracting from a counter that does not exist leaves it absent.
    a.subtract("none", 4, t).unwrap();
    assert_eq!(a.counter("none", t), Ok(0));
    assert_eq!(a.add_within("none", 2, 2, e, t), Ok(Added::Added(2)));
    // Counters and one-time keys do not collide with other keys.
    assert_eq!(a.add_within("q2", 1, 1, e, t), Ok(Added::Added(1)));
}

fn a_counter_restarts_after_it_expired_and_keeps_its_longest_expiry(new: Factory<'_>) {
    let (a, b) = (new(), new());
    let t = now();
    let short = t + 60 * MS;
    assert_eq!(a.add_within("w", 4, 5, short, t), Ok(Added::Added(4)));
    // A later expiry extends the counter; an earlier one never shortens it.
    assert_eq!(a.add_within("long", 1, 9, short, t), Ok(Added::Added(1)));
    assert_eq!(
        b.add_within("long", 1, 9, t + 60 * S, t),
        Ok(Added::Added(2))
    );
    assert_eq!(
        a.add_within("keep", 1, 9, t + 60 * S, t),
        Ok(Added::Added(1))
    );
    assert_eq!(b.add_within("keep", 1, 9, short, t), Ok(Added::Added(2)));
    assert_eq!(
        b.add_within("w", 2, 5, short, now()),
        Ok(Added::Exceeded(4))
    );
    wait_past(short);
    eventually("the expired counter starts from 0", |n| {
        b.counter("w", n) == Ok(0)
    });
    let n = now();
    assert_eq!(b.add_within("w", 2, 5, n + 60 * S, n), Ok(Added::Added(2)));
    assert_eq!(a.counter("long", n), Ok(2));
    assert_eq!(a.counter("keep", n), Ok(2));
}

/// 8 threads on each of two stores: exactly one `insert_once` of each key
/// wins, and the counter never passes its limit.
fn concurrent_callers_never_share_a_key_or_pass_a_limit(new: Factory<'_>) {
    let stores = [new(), new()];
    let t = now();
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let s = Arc::clone(&stores[i % 2]);
            std::thread::spawn(move || {
                let (mut won, mut added) = (0u32, 0u32);
                for n in 0..100 {
                    if s.insert_once(&format!("c:k{n}"), t + 60 * S, t) == Ok(true) {
                        won += 1;
                    }
                    match s.add_within("c:q", 1, 150, t + 60 * S, t) {
                        Ok(Added::Added(total)) => {
                            assert!(total <= 150, "{total}");
                            added += 1;
                        }
                        Ok(Added::Exceeded(total)) => assert_eq!(total, 150),
                        Err(e) => panic!("{e}"),
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
    assert_eq!(won, 100);
    assert_eq!(added, 150);
    assert_eq!(stores[0].counter("c:q", t), Ok(150));
    assert_eq!(stores[1].counter("c:q", t), Ok(150));
}

/// A behaviour, by name.
type Case = (&'static str, fn(Factory<'_>));

/// Every behaviour above, against the stores `new` makes.
const CASES: [Case; 5] = [
    ("records_a_key_once", records_a_key_once),
    (
        "a_key_may_be_recorded_again_only_after_it_expired",
        a_key_may_be_recorded_again_only_after_it_expired,
    ),
    (
        "counters_stay_within_their_limit",
        counters_stay_within_their_limit,
    ),
    (
        "a_counter_restarts_after_it_expired_and_keeps_its_longest_expiry",
        a_counter_restarts_after_it_expired_and_keeps_its_longest_expiry,
    ),
    (
        "concurrent_callers_never_share_a_key_or_pass_a_limit",
        concurrent_callers_never_share_a_key_or_pass_a_limit,
    ),
];

#[test]
fn the_memory_store_conforms() {
    for (name, case) in CASES {
        let shared: Arc<dyn StateStore> = Arc::new(MemoryStore::new(10_000));
        eprintln!("memory: {name}");
        case(&|| Arc::clone(&shared));
    }
}

#[test]
fn state_urls_open_the_store_they_name() {
    use agentriage::state::{StateOpenError, open};
    assert_eq!(open("memory").unwrap().kind(), "memory");
    assert_eq!(open(" memory:5 ").unwrap().kind(), "memory");
    for (url, want) in [
        ("", "empty"),
        ("memory:0", "`0`"),
        ("memory:-1", "`-1`"),
        ("memory:lots", "`lots`"),
        ("postgres://u:pw@h/db", "`postgres://***@h/db`"),
        ("rediss://u:pw@h:6380", "TLS"),
    ] {
        let e = open(url).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(want), "{url}: {text}");
        assert!(!text.contains("pw"), "{url}: {text}");
        assert!(!matches!(e, StateOpenError::BadOption { .. }), "{url}");
    }
    // A full memory store refuses, naming its capacity.
    let s = open("memory:1").unwrap();
    let t = now();
    assert_eq!(s.insert_once("a", t + S, t), Ok(true));
    assert_eq!(
        s.insert_once("b", t + S, t),
        Err(StateError::Full { capacity: 1 })
    );
    #[cfg(not(feature = "redis"))]
    assert!(matches!(
        open("redis://127.0.0.1:6379"),
        Err(StateOpenError::RedisNotBuilt { .. })
    ));
    #[cfg(feature = "redis")]
    assert_eq!(
        open("redis://127.0.0.1:6379/0?namespace=x:")
            .unwrap()
            .kind(),
        "redis"
    );
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use agentriage::state::{RedisOptions, RedisStore};
    use redis_server::RedisServer;

    /// A server of the test's own (killed when the test ends: a static one
    /// would outlive the test binary). `None` when redis-server is missing
    /// (skipped).
    fn server() -> Option<RedisServer> {
        RedisServer::start()
    }

    #[test]
    fn the_redis_store_conforms() {
        let Some(server) = server() else { return };
        for (name, case) in CASES {
            eprintln!("redis: {name}");
            let url = server.url(&format!("?namespace=conform:{name}:"));
            case(&|| Arc::new(RedisStore::from_url(&url).unwrap()));
        }
    }

    #[test]
    fn namespaces_and_databases_keep_deployments_apart() {
        let Some(server) = server() else { return };
        let t = now();
        let one = RedisStore::from_url(&server.url("?namespace=ns-one:")).unwrap();
        let two = RedisStore::from_url(&server.url("?namespace=ns-two:")).unwrap();
        let db = RedisStore::from_url(&server.url("/3?namespace=ns-one:")).unwrap();
        assert_eq!(one.insert_once("k", t + 60 * S, t), Ok(true));
        assert_eq!(two.insert_once("k", t + 60 * S, t), Ok(true));
        assert_eq!(db.insert_once("k", t + 60 * S, t), Ok(true));
        assert_eq!(one.insert_once("k", t + 60 * S, t), Ok(false));
        // The default namespace is `agentriage:`.
        let plain = RedisStore::new(&server.url("/4"), RedisOptions::default()).unwrap();
        assert_eq!(
            plain.add_within("q", 7, 9, t + 60 * S, t),
            Ok(Added::Added(7))
        );
        let named = RedisStore::from_url(&server.url("/4?namespace=agentriage:")).unwrap();
        assert_eq!(named.counter("q", t), Ok(7));
        plain.ping().unwrap();
    }

    #[test]
    fn a_key_holding_something_else_is_an_error_not_a_count() {
        let Some(server) = server() else { return };
        let t = now();
        let s = RedisStore::from_url(&server.url("?namespace=foreign:")).unwrap();
        // Another writer put a non-integer where a counter lives.
        assert_eq!(s.insert_once("q", t + 60 * S, t), Ok(true));
        let mut raw = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        std::io::Write::write_all(&mut raw, b"SET foreign:q 1.5\r\nSET foreign:h abc\r\n").unwrap();
        let mut buf = [0u8; 10];
        std::io::Read::read_exact(&mut raw, &mut buf).unwrap();
        assert_eq!(&buf, b"+OK\r\n+OK\r\n");
        for e in [
            s.add_within("q", 1, 10, t + 60 * S, t).map(|_| ()),
            s.counter("h", t).map(|_| ()),
            s.subtract("h", 1, t),
        ] {
            assert!(
                matches!(&e, Err(StateError::Unavailable(m)) if m.contains("redis")),
                "{e:?}"
            );
        }
    }

    #[test]
    fn an_unreachable_redis_fails_every_operation_without_hanging() {
        // A listener that accepts connections and never answers: each
        // command must end at the I/O timeout.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let keep = std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in silent.incoming().take(8) {
                held.push(c);
            }
        });
        let s = RedisStore::from_url(&format!("redis://127.0.0.1:{port}?timeout_ms=50")).unwrap();
        let started = std::time::Instant::now();
        let t = now();
        let e = s.insert_once("k", t + S, t);
        assert!(
            matches!(&e, Err(StateError::Unavailable(m)) if m.contains("insert_once")),
            "{e:?}"
        );
        let e = s.add_within("q", 1, 5, t + S, t);
        assert!(
            matches!(&e, Err(StateError::Unavailable(m)) if m.contains("add_within")),
            "{e:?}"
        );
        // Watchdog only: two 50 ms timeouts, far below this.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // Nothing listening at all: connecting fails at once.
        drop(keep);
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let s = RedisStore::from_url(&format!("redis://127.0.0.1:{port}")).unwrap();
        for (op, e) in [
            ("insert_once", s.insert_once("k", t + S, t).map(|_| ())),
            ("add_within", s.add_within("q", 1, 5, t + S, t).map(|_| ())),
            ("subtract", s.subtract("q", 1, t)),
            ("counter", s.counter("q", t).map(|_| ())),
        ] {
            assert!(
                matches!(&e, Err(StateError::Unavailable(m)) if m.contains(op) && m.contains("cannot connect")),
                "{op}: {e:?}"
            );
        }
        assert!(s.ping().is_err());
    }

    #[test]
    fn a_wrong_password_is_an_error() {
        let Some(server) = server() else { return };
        let t = now();
        let s = RedisStore::from_url(&format!(
            "redis://user:wrong-secret@127.0.0.1:{}",
            server.port()
        ))
        .unwrap();
        let e = s.insert_once("k", t + S, t);
        let Err(StateError::Unavailable(m)) = &e else {
            panic!("{e:?}")
        };
        assert!(!m.contains("wrong-secret"), "{m}");
        assert!(format!("{s:?}").contains("***@127.0.0.1"), "{s:?}");
    }
}
