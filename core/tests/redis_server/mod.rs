//! A real `redis-server` for tests: started on 127.0.0.1 on a free port,
//! waited for by connecting (never a fixed sleep), killed on drop.
//!
//! When the binary is missing the tests that need it skip, printing why —
//! unless `AGENTRIAGE_REQUIRE_SERVERS=1` (set by `scripts/test.sh`), then
//! they fail.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting server may take to answer `PING`: a watchdog, far
/// above the few milliseconds it takes.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

/// The `redis-server` binary, or `None` (with the reason printed) when
/// missing and not required.
fn binary() -> Option<String> {
    let bin = std::env::var("AGENTRIAGE_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let found = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(bin);
    }
    let why = format!(
        "`{bin}` not found: install the Debian package `redis-server` \
         (apt-get install redis-server) or set AGENTRIAGE_REDIS_SERVER"
    );
    if std::env::var("AGENTRIAGE_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!("{why} (AGENTRIAGE_REQUIRE_SERVERS=1)");
    }
    eprintln!("skipped: {why}");
    None
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Whether a Redis on `port` answers `PING` now.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl RedisServer {
    /// A new server on a free port, or `None` when `redis-server` is
    /// missing (and not required).
    pub fn start() -> Option<RedisServer> {
        let bin = binary()?;
        for _ in 0..5 {
            let port = free_port();
            if let Some(s) = RedisServer::spawn(&bin, port) {
                return Some(s);
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// Starts `bin` on `port`; `None` if it exited (the port was taken).
    fn spawn(bin: &str, port: u16) -> Option<RedisServer> {
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "yes", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = RedisServer {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if answers(port) {
                return Some(server);
            }
            if let Some(c) = server.child.as_mut()
                && c.try_wait().unwrap().is_some()
            {
                server.child = None;
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} never answered"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` plus `tail` (a path or query).
    pub fn url(&self, tail: &str) -> String {
        format!("redis://127.0.0.1:{}{tail}", self.port)
    }

    /// Kills the server and waits until it is gone and the port refuses
    /// connections.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + START_DEADLINE;
        while answers(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not stop",
                self.port
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts the server again on the same port (empty: nothing persisted).
    pub fn restart(&mut self) {
        self.stop();
        let bin = binary().expect("redis-server was there a moment ago");
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(mut s) = RedisServer::spawn(&bin, self.port) {
                self.child = s.child.take();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
