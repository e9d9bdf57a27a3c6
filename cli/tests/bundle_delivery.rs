//! `agentriage bundle build | push` and `eval --bundle ARCHIVE | --bundle-url`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../core/tests/common/mod.rs"]
mod common;

fn agentriage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentriage"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The bundle digest of every decision printed by `eval`.
fn digests(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["bundle"]["digest"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Serves `body` to every request on 127.0.0.1 (one thread, closes each
/// connection); `/missing` answers 404.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 2048];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if req.starts_with(b"GET /missing") {
                let _ = conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn
                .write_all(head.as_bytes())
                .and_then(|()| conn.write_all(&body));
        }
    });
    addr
}

#[test]
fn build_is_reproducible_and_every_form_decides_with_the_directory_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("pack");
    common::copy_dir(&common::reference_pack(), &pack);
    let keys = tmp.path().join("publisher");
    let out = agentriage(&["bundle", "keygen", "--out", &s(&keys)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let public = s(&tmp.path().join("publisher.pub.pem"));
    let requests = s(&common::repo().join("testdata/requests.jsonl"));

    let from_dir = agentriage(&["eval", "--bundle", &s(&pack), "--input", &requests]);
    assert_eq!(
        from_dir.status.code(),
        Some(0),
        "{}",
        text(&from_dir.stderr)
    );
    let digest = digests(&from_dir)[0].clone();

    let (a, b) = (tmp.path().join("a.tar.gz"), tmp.path().join("b.tar.gz"));
    for out_path in [&a, &b] {
        let out = agentriage(&["bundle", "build", &s(&pack), "-o", &s(out_path)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&digest), "{}", text(&out.stdout));
        assert!(text(&out.stdout).contains("(unsigned)"));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // Unsigned archive with a trusted key: refused (exit 3).
    let refused = agentriage(&[
        "eval",
        "--bundle",
        &s(&a),
        "--input",
        &requests,
        "--trusted-key",
        &public,
    ]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("not signed"));

    // Signed, then archived: the signature travels inside.
    let out = agentriage(&[
        "bundle",
        "sign",
        "--key",
        &s(&tmp.path().join("publisher.pem")),
        &s(&pack),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let signed = tmp.path().join("signed.tar.gz");
    let out = agentriage(&["bundle", "build", &s(&pack), "-o", &s(&signed)]);
    assert!(text(&out.stdout).contains("(signed)"));
    let from_archive = agentriage(&[
        "eval",
        "--bundle",
        &s(&signed),
        "--input",
        &requests,
        "--trusted-key",
        &public,
    ]);
    assert_eq!(
        from_archive.status.code(),
        Some(0),
        "{}",
        text(&from_archive.stderr)
    );
    assert_eq!(digests(&from_archive), digests(&from_dir));

    // Over HTTP.
    let addr = serve(std::fs::read(&signed).unwrap());
    let url = format!("http://{addr}/a2a.tar.gz");
    let from_url = agentriage(&[
        "eval",
        "--bundle-url",
        &url,
        "--input",
        &requests,
        "--trusted-key",
        &public,
    ]);
    assert_eq!(
        from_url.status.code(),
        Some(0),
        "{}",
        text(&from_url.stderr)
    );
    assert_eq!(digests(&from_url), digests(&from_dir));
    let missing = agentriage(&[
        "eval",
        "--bundle-url",
        &format!("http://{addr}/missing"),
        "--input",
        &requests,
    ]);
    assert_eq!(missing.status.code(), Some(4), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("HTTP 404"));
    let both = agentriage(&["eval", "--bundle", &s(&pack), "--bundle-url", &url]);
    assert_eq!(both.status.code(), Some(2));
}

/// Serves `body` over TLS on 127.0.0.1 with certificate `cert` of
/// testdata/tls (see its make.sh).
fn serve_tls(body: Vec<u8>, cert: &str) -> String {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = common::repo().join("testdata/tls");
    let certs = CertificateDer::pem_file_iter(dir.join(format!("{cert}.pem")))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{cert}.key"))).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let session = rustls::ServerConnection::new(std::sync::Arc::clone(&config)).unwrap();
            let mut tls = rustls::StreamOwned::new(session, conn);
            let mut req = Vec::new();
            let mut buf = [0u8; 2048];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if req.is_empty() {
                continue;
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = tls
                .write_all(head.as_bytes())
                .and_then(|()| tls.write_all(&body))
                .and_then(|()| tls.flush());
        }
    });
    addr
}

#[test]
fn eval_from_an_https_url_trusts_the_given_certificate_authority_only() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a.tar.gz");
    let out = agentriage(&[
        "bundle",
        "build",
        &s(&common::reference_pack()),
        "-o",
        &s(&archive),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let requests = s(&common::repo().join("testdata/requests.jsonl"));
    let ca = s(&common::repo().join("testdata/tls/ca.pem"));
    let body = std::fs::read(&archive).unwrap();
    let url = format!("https://{}/a2a.tar.gz", serve_tls(body.clone(), "server"));

    let trusted = agentriage(&[
        "eval",
        "--bundle-url",
        &url,
        "--bundle-ca",
        &ca,
        "--input",
        &requests,
    ]);
    assert_eq!(trusted.status.code(), Some(0), "{}", text(&trusted.stderr));
    let from_dir = agentriage(&[
        "eval",
        "--bundle",
        &s(&common::reference_pack()),
        "--input",
        &requests,
    ]);
    assert_eq!(digests(&trusted), digests(&from_dir));

    // The Mozilla roots do not know the test authority: exit 4, no decision.
    let untrusted = agentriage(&["eval", "--bundle-url", &url, "--input", &requests]);
    assert_eq!(
        untrusted.status.code(),
        Some(4),
        "{}",
        text(&untrusted.stderr)
    );
    assert!(text(&untrusted.stdout).is_empty());
    let stderr = text(&untrusted.stderr);
    assert!(stderr.contains("TLS with `https://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    // A certificate for another name: refused though the authority is trusted.
    let wrong = format!("https://{}/a2a.tar.gz", serve_tls(body, "wrong-name"));
    let out = agentriage(&[
        "eval",
        "--bundle-url",
        &wrong,
        "--bundle-ca",
        &ca,
        "--input",
        &requests,
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not valid for name"),
        "{}",
        text(&out.stderr)
    );

    // A file that holds no certificate: refused, naming the problem.
    let out = agentriage(&[
        "eval",
        "--bundle-url",
        &url,
        "--bundle-ca",
        &requests,
        "--input",
        &requests,
    ]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no PEM"),
        "{}",
        text(&out.stderr)
    );
    // --bundle-ca without --bundle-url is a usage error.
    let out = agentriage(&[
        "eval",
        "--bundle",
        &s(&common::reference_pack()),
        "--bundle-ca",
        &ca,
        "--input",
        &requests,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

fn registry_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("docker-registry"))
        .find(|p| p.is_file())
}

#[test]
fn push_to_a_registry_and_eval_from_it_by_digest() {
    let Some(bin) = registry_binary() else {
        assert!(
            std::env::var_os("AGENTRIAGE_REQUIRE_SERVERS").is_none(),
            "docker-registry is required (AGENTRIAGE_REQUIRE_SERVERS is set): apt-get install docker-registry"
        );
        eprintln!("skipped: no docker-registry binary (apt-get install docker-registry)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = tmp.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            tmp.path().join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed().as_secs() < 20, "registry never came up");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let archive = tmp.path().join("a2a.tar.gz");
    let out = agentriage(&[
        "bundle",
        "build",
        &s(&common::reference_pack()),
        "-o",
        &s(&archive),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reference = format!("oci://127.0.0.1:{port}/agentriage/a2a:2026.11.0");
    let pushed = agentriage(&["bundle", "push", &s(&archive), &reference]);
    assert_eq!(pushed.status.code(), Some(0), "{}", text(&pushed.stderr));
    let manifest = text(&pushed.stdout)
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    assert!(manifest.starts_with("sha256:"), "{manifest}");
    let requests = s(&common::repo().join("testdata/requests.jsonl"));
    let from_dir = agentriage(&[
        "eval",
        "--bundle",
        &s(&common::reference_pack()),
        "--input",
        &requests,
    ]);
    for r in [
        reference.clone(),
        format!("oci://127.0.0.1:{port}/agentriage/a2a@{manifest}"),
    ] {
        let out = agentriage(&["eval", "--bundle-url", &r, "--input", &requests]);
        assert_eq!(out.status.code(), Some(0), "{r}: {}", text(&out.stderr));
        assert_eq!(digests(&out), digests(&from_dir));
    }
    // Pushing something that is not a bundle archive: refused before upload.
    std::fs::write(tmp.path().join("junk"), b"not an archive").unwrap();
    let junk = agentriage(&["bundle", "push", &s(&tmp.path().join("junk")), &reference]);
    assert_eq!(junk.status.code(), Some(3), "{}", text(&junk.stderr));
    let _ = child.kill();
    let _ = child.wait();
}
