//! Bundle delivery: archives, directory watch, HTTP and OCI sources, status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentriage::delivery::archive::{archive_digest, build_archive, load_archive};
use agentriage::delivery::http::{HttpOptions, Startup};
use agentriage::delivery::watch::WatchOptions;
use agentriage::delivery::{DeliveryError, SourceOptions};
use agentriage::signing::{SigningKey, TrustedKeys, sign_bundle};
use agentriage::{Bundle, BundleErrorKind, Engine, Outcome};

/// A reroute the reference pack executes.
fn reroute() -> String {
    std::fs::read_to_string(common::repo().join("testdata/requests.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

/// Copies the reference pack to `dir` with revision `revision`; with
/// `reject_reroute`, its risk table lacks `shipment.reroute` (R2 rejects).
fn pack(dir: &Path, revision: &str, reject_reroute: bool) {
    common::copy_dir(&common::reference_pack(), dir);
    let manifest = dir.join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let mut changed = text.replace(
        "revision = \"2026.11.0\"",
        &format!("revision = \"{revision}\""),
    );
    if reject_reroute {
        changed = changed.replace("    \"shipment.reroute\",\n", "");
    }
    assert!(changed.contains(revision));
    std::fs::write(&manifest, changed).unwrap();
}

/// Rewrites the manifest of the pack in `dir` atomically (temporary file,
/// rename), as a deployment tool would: revision `revision`, and with
/// `reject_reroute` no `shipment.reroute` in the risk table.
fn update(dir: &Path, revision: &str, reject_reroute: bool) {
    let text = std::fs::read_to_string(common::reference_pack().join("bundle.toml")).unwrap();
    let mut changed = text.replace(
        "revision = \"2026.11.0\"",
        &format!("revision = \"{revision}\""),
    );
    if reject_reroute {
        changed = changed.replace("    \"shipment.reroute\",\n", "");
    }
    write_atomically(&dir.join("bundle.toml"), changed.as_bytes());
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(".tmp-write");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Waits (a generous watchdog against hangs, not a speed check) until
/// `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn key() -> (SigningKey, TrustedKeys) {
    let (key, _) = SigningKey::generate().unwrap();
    let mut trusted = TrustedKeys::new();
    trusted.add(key.public_key());
    (key, trusted)
}

// ---------------------------------------------------------------- archive

#[test]
fn archive_is_reproducible_and_has_the_directory_digest() {
    let dir = common::reference_pack();
    let a = build_archive(&dir).unwrap();
    let b = build_archive(&dir).unwrap();
    assert_eq!(a, b, "same files, same bytes");
    // A copy with other mtimes and modes gives the same archive.
    let tmp = tempfile::tempdir().unwrap();
    common::copy_dir(&dir, tmp.path());
    std::thread::sleep(Duration::from_millis(20));
    let manifest = tmp.path().join("bundle.toml");
    let text = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, text).unwrap();
    assert_eq!(build_archive(tmp.path()).unwrap(), a);

    let file = tmp.path().join("bundle.tar.gz");
    std::fs::write(&file, &a).unwrap();
    let from_dir = Bundle::load(&dir).unwrap();
    let from_file = Bundle::load(&file).unwrap();
    assert_eq!(from_dir.info(), from_file.info());
    assert!(archive_digest(&a).starts_with("sha256:"));
    assert_ne!(archive_digest(&a), from_dir.info().digest);

    // The tar inside: ustar, mode 0644, uid/gid 0, mtime 0, files only.
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&a[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(&a[4..8], &[0, 0, 0, 0], "gzip mtime is 0");
    let h = &tar[..512];
    assert_eq!(&h[100..108], b"0000644\0");
    assert_eq!(&h[108..116], b"0000000\0");
    assert_eq!(&h[116..124], b"0000000\0");
    assert_eq!(&h[136..148], b"00000000000\0");
    assert_eq!(h[156], b'0');
    assert_eq!(&h[257..263], b"ustar\0");
}

#[test]
fn signature_travels_inside_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    pack(&dir, "signed-1", false);
    let (key, trusted) = key();
    let (_, other) = key_pair();
    let unsigned = build_archive(&dir).unwrap();
    let e = load_archive(&unsigned, "unsigned.tar.gz", Some(&trusted)).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Signature);

    sign_bundle(&dir, &key).unwrap();
    let signed = build_archive(&dir).unwrap();
    let b = load_archive(&signed, "signed.tar.gz", Some(&trusted)).unwrap();
    assert_eq!(b.info().revision, "signed-1");
    assert_eq!(b.info().digest, Bundle::load(&dir).unwrap().info().digest);
    let e = load_archive(&signed, "signed.tar.gz", Some(&other)).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Signature);

    let file = tmp.path().join("signed.tar.gz");
    std::fs::write(&file, &signed).unwrap();
    assert_eq!(
        Bundle::load_verified(&file, &trusted)
            .unwrap()
            .info()
            .digest,
        b.info().digest
    );
    let engine = Engine::from_dir_verified(&file, trusted.clone()).unwrap();
    assert_eq!(engine.bundle_info().revision, "signed-1");

    // A file changed after signing (the tar rebuilt by hand with the old
    // signature): refused.
    let mut entries = untar(&signed);
    let manifest = entries
        .iter_mut()
        .find(|(p, _)| p == "bundle.toml")
        .unwrap();
    manifest.1 = String::from_utf8(manifest.1.clone())
        .unwrap()
        .replace("signed-1", "signed-2")
        .into_bytes();
    let tampered = gzip(&tar_of(
        &entries
            .iter()
            .map(|(p, b)| Entry::file(p, b))
            .collect::<Vec<_>>(),
    ));
    // Unverified it loads (it is a valid archive)...
    assert_eq!(
        load_archive(&tampered, "t.tar.gz", None)
            .unwrap()
            .info()
            .revision,
        "signed-2"
    );
    // ...verified it does not.
    let e = load_archive(&tampered, "t.tar.gz", Some(&trusted)).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Signature, "{e}");
}

fn key_pair() -> (SigningKey, TrustedKeys) {
    key()
}

/// A tar entry for hand-built archives.
struct Entry {
    path: String,
    kind: u8,
    body: Vec<u8>,
    link: String,
    magic: &'static [u8],
}

impl Entry {
    fn file(path: &str, body: &[u8]) -> Entry {
        Entry {
            path: path.into(),
            kind: b'0',
            body: body.to_vec(),
            link: String::new(),
            magic: b"ustar\x0000",
        }
    }
    fn of(kind: u8, path: &str) -> Entry {
        Entry {
            kind,
            ..Entry::file(path, b"")
        }
    }
}

fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = [0u8; 512];
        h[..e.path.len()].copy_from_slice(e.path.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", e.body.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = e.kind;
        h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
        h[257..257 + e.magic.len()].copy_from_slice(e.magic);
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&e.body);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The regular files of an archive (test-side reader).
fn untar(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(archive)
        .read_to_end(&mut tar)
        .unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while tar[at..at + 512].iter().any(|&b| b != 0) {
        let h = &tar[at..at + 512];
        let name =
            String::from_utf8(h[..100].iter().take_while(|&&b| b != 0).copied().collect()).unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&h[124..135]).unwrap(), 8).unwrap();
        out.push((name, tar[at + 512..at + 512 + size].to_vec()));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[test]
fn unsafe_or_malformed_archives_are_refused_with_typed_errors() {
    let manifest = std::fs::read(common::reference_pack().join("bundle.toml")).unwrap();
    let base: Vec<(String, Vec<u8>)> = untar(&build_archive(common::reference_pack()).unwrap());
    let with = |extra: Entry| {
        let mut entries: Vec<Entry> = base.iter().map(|(p, b)| Entry::file(p, b)).collect();
        entries.push(extra);
        gzip(&tar_of(&entries))
    };
    let mut symlink = Entry::of(b'2', "rego/evil.rego");
    symlink.link = "/etc/passwd".into();
    let mut hardlink = Entry::of(b'1', "rego/evil.rego");
    hardlink.link = "bundle.toml".into();
    let mut not_ustar = Entry::file("x.json", b"{}");
    not_ustar.magic = b"\0\0\0\0\0\0";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("symlink", with(symlink), "is a link"),
        ("hard link", with(hardlink), "is a link"),
        (
            "char device",
            with(Entry::of(b'3', "dev")),
            "device or FIFO",
        ),
        (
            "block device",
            with(Entry::of(b'4', "blk")),
            "device or FIFO",
        ),
        ("fifo", with(Entry::of(b'6', "fifo")), "device or FIFO"),
        (
            "pax header",
            with(Entry::of(b'x', "PaxHeader")),
            "extended header",
        ),
        (
            "gnu long name",
            with(Entry::of(b'L', "././@LongLink")),
            "extended header",
        ),
        (
            "parent path",
            with(Entry::file("../escape.rego", b"x")),
            "leaves the bundle",
        ),
        (
            "inner parent",
            with(Entry::file("rego/../../x", b"x")),
            "leaves the bundle",
        ),
        (
            "absolute path",
            with(Entry::file("/etc/cron.d/x", b"x")),
            "leaves the bundle",
        ),
        (
            "duplicate",
            with(Entry::file("bundle.toml", &manifest)),
            "appears twice",
        ),
        ("not ustar", with(not_ustar), "not a ustar header"),
        ("not gzip", b"bundle.toml".to_vec(), "not a gzip"),
        (
            "truncated gzip",
            {
                let a = build_archive(common::reference_pack()).unwrap();
                a[..a.len() / 2].to_vec()
            },
            "gzip",
        ),
        (
            "no end blocks",
            gzip(&tar_of(&[Entry::file("bundle.toml", b"x")])[..1024]),
            "end-of-archive",
        ),
        (
            "data after end",
            {
                let mut t = tar_of(&[Entry::file("bundle.toml", &manifest)]);
                t.extend_from_slice(&[1u8; 512]);
                gzip(&t)
            },
            "after the end",
        ),
        (
            "bad checksum",
            {
                let mut t = tar_of(&[Entry::file("bundle.toml", &manifest)]);
                t[0] ^= 1;
                gzip(&t)
            },
            "checksum",
        ),
        (
            "deep path",
            with(Entry::file(&format!("{}leaf", "d/".repeat(40)), b"x")),
            "deeper",
        ),
    ];
    for (name, bytes, message) in cases {
        let e = load_archive(&bytes, "bad.tar.gz", None)
            .err()
            .unwrap_or_else(|| panic!("{name}: loaded"));
        assert_eq!(e.kind(), BundleErrorKind::Archive, "{name}: {e}");
        assert!(e.to_string().contains(message), "{name}: {e}");
        assert!(e.to_string().starts_with("bad.tar.gz"), "{name}: {e}");
    }

    // More entries than a bundle may hold.
    let many: Vec<Entry> = (0..=agentriage::MAX_BUNDLE_FILES)
        .map(|i| Entry::file(&format!("d/{i}"), b""))
        .collect();
    let e = load_archive(&gzip(&tar_of(&many)), "many.tar.gz", None).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Archive);
    assert!(e.to_string().contains("more than"), "{e}");

    // A gzip bomb: unpacks past the bundle size limit, refused without
    // unpacking it all.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b'a'; 1 << 20];
    for _ in 0..(agentriage::MAX_BUNDLE_BYTES >> 20) + 64 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 2 << 20);
    let e = load_archive(&bomb, "bomb.tar.gz", None).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Archive);
    assert!(e.to_string().contains("unpacks to more than"), "{e}");

    // Directory entries and `./` prefixes (as `tar czf` writes) are read.
    let mut entries = vec![Entry::of(b'5', "./"), Entry::of(b'5', "./rego/")];
    entries.extend(base.iter().map(|(p, b)| Entry::file(&format!("./{p}"), b)));
    let b = load_archive(&gzip(&tar_of(&entries)), "dirs.tar.gz", None).unwrap();
    assert_eq!(
        b.info().digest,
        Bundle::load(common::reference_pack())
            .unwrap()
            .info()
            .digest
    );
}

// ---------------------------------------------------------------- watch

fn fast_watch() -> WatchOptions {
    WatchOptions {
        interval: Duration::from_millis(20),
        debounce: Duration::from_millis(60),
    }
}

#[test]
fn watched_directory_swaps_in_changes_and_keeps_the_live_bundle_on_bad_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    pack(&dir, "w-1", false);
    let (engine, follower) = Engine::from_watch(&dir, None, fast_watch()).unwrap();
    assert_eq!(engine.bundle_info().revision, "w-1");
    assert_eq!(engine.bundle_status().source, dir.display().to_string());
    assert_eq!(
        engine.decide_json(&reroute()).unwrap().outcome,
        Outcome::Execute
    );

    update(&dir, "w-2", true);
    eventually("w-2 live", || engine.bundle_info().revision == "w-2");
    assert_eq!(
        engine.decide_json(&reroute()).unwrap().outcome,
        Outcome::Reject
    );
    let st = engine.bundle_status();
    assert_eq!(st.updates, 1);
    assert_eq!(st.failures, 0);

    // A broken update: refused, w-2 stays, counted.
    write_atomically(&dir.join("bundle.toml"), b"name = \"x\"\nrevision = ");
    eventually("failure recorded", || engine.bundle_status().failures == 1);
    assert_eq!(engine.bundle_info().revision, "w-2");
    assert_eq!(engine.metrics().reload_failures(), 1);
    let st = engine.bundle_status();
    assert!(st.last_failure_unix.is_some());
    assert!(st.last_error.unwrap().contains("bundle.toml"));
    let text = engine.metrics_text();
    assert!(
        text.contains("agentriage_bundle_fetch_failures_total 1"),
        "{text}"
    );
    assert!(text.contains("revision=\"w-2\""), "{text}");

    // Fixed: taken.
    update(&dir, "w-3", false);
    eventually("w-3 live", || engine.bundle_info().revision == "w-3");
    assert!(engine.bundle_status().failures >= 1);

    // Stopped: changes are no longer followed.
    follower.stop();
    update(&dir, "w-4", false);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(engine.bundle_info().revision, "w-3");
}

/// Lays out `dir` as the kubelet lays out a ConfigMap volume: the files are
/// links through `..data` into a timestamped directory; an update writes a
/// new directory and renames a new `..data` link over the old one.
fn configmap_update(dir: &Path, version: &str, revision: &str, reject: bool) {
    let data = dir.join(format!("..{version}"));
    pack(&data, revision, reject);
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp_link).unwrap();
    std::fs::rename(&tmp_link, dir.join("..data")).unwrap();
    for entry in std::fs::read_dir(&data).unwrap() {
        let name = entry.unwrap().file_name();
        let link = dir.join(&name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(&name), link).unwrap();
        }
    }
}

#[test]
fn kubernetes_configmap_mount_is_followed_through_its_data_link() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mount");
    std::fs::create_dir(&dir).unwrap();
    configmap_update(&dir, "2026_12_01_a", "cm-1", false);
    let (engine, _follower) = Engine::from_watch(&dir, None, fast_watch()).unwrap();
    assert_eq!(engine.bundle_info().revision, "cm-1");
    configmap_update(&dir, "2026_12_01_b", "cm-2", true);
    std::fs::remove_dir_all(dir.join("..2026_12_01_a")).unwrap();
    eventually("cm-2 live", || engine.bundle_info().revision == "cm-2");
    assert_eq!(
        engine.decide_json(&reroute()).unwrap().outcome,
        Outcome::Reject
    );
}

#[test]
fn watched_source_with_trusted_keys_refuses_unsigned_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    pack(&dir, "s-1", false);
    let (key, trusted) = key();
    // Unsigned from the start: no engine.
    let e = Engine::from_watch(&dir, Some(trusted.clone()), fast_watch()).unwrap_err();
    assert_eq!(e.as_bundle().unwrap().kind(), BundleErrorKind::Signature);

    sign_bundle(&dir, &key).unwrap();
    let (engine, _f) = Engine::from_watch(&dir, Some(trusted), fast_watch()).unwrap();
    assert_eq!(engine.bundle_info().revision, "s-1");
    // The files change but the signature is the old one: refused.
    update(&dir, "s-2", true);
    eventually("refusal", || engine.bundle_status().failures >= 1);
    assert_eq!(engine.bundle_info().revision, "s-1");
    assert!(
        engine
            .bundle_status()
            .last_error
            .unwrap()
            .contains("after the bundle was signed")
    );
    // Re-signed: taken.
    sign_bundle(&dir, &key).unwrap();
    eventually("s-2 live", || engine.bundle_info().revision == "s-2");
}

#[test]
fn watched_archive_file_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let file = tmp.path().join("bundle.tar.gz");
    pack(&dir, "f-1", false);
    std::fs::write(&file, build_archive(&dir).unwrap()).unwrap();
    let (engine, _f) = Engine::from_source(
        file.to_str().unwrap(),
        None,
        SourceOptions {
            watch: fast_watch(),
            ..SourceOptions::default()
        },
    )
    .unwrap();
    assert_eq!(engine.bundle_info().revision, "f-1");
    pack(&dir, "f-2", false);
    let next = tmp.path().join("next.tar.gz");
    std::fs::write(&next, build_archive(&dir).unwrap()).unwrap();
    std::fs::rename(&next, &file).unwrap();
    eventually("f-2 live", || engine.bundle_info().revision == "f-2");
}

// ---------------------------------------------------------------- HTTP

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    Fail(u16),
    /// Sends the headers, then waits this long before the body.
    Slow(Duration),
}

struct Served {
    body: Vec<u8>,
    etag: String,
    mode: Mode,
}

/// A tiny HTTP/1.1 server on 127.0.0.1 serving one archive with an `ETag`;
/// over TLS when started with a certificate.
struct Server {
    addr: String,
    /// The certificate served, when HTTPS (it can be swapped).
    tls: Option<Arc<Mutex<Arc<rustls::ServerConfig>>>>,
    state: Arc<Mutex<Served>>,
    full: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
    authorized: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
}

/// The test certificates (see testdata/tls/make.sh).
fn tls_file(name: &str) -> Vec<u8> {
    std::fs::read(common::repo().join("testdata/tls").join(name)).unwrap()
}

/// A TLS server configuration with certificate `name` of testdata/tls.
fn tls_config(name: &str) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(&tls_file(&format!("{name}.pem")))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&tls_file(&format!("{name}.key"))).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    )
}

impl Server {
    fn start(body: Vec<u8>) -> Server {
        Server::serve(body, None)
    }

    /// An HTTPS server presenting certificate `cert` of testdata/tls.
    fn start_tls(body: Vec<u8>, cert: &str) -> Server {
        Server::serve(body, Some(tls_config(cert)))
    }

    /// Presents certificate `cert` from the next connection on.
    fn certificate(&self, cert: &str) {
        *self.tls.as_ref().unwrap().lock().unwrap() = tls_config(cert);
    }

    fn serve(body: Vec<u8>, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = Server {
            addr,
            tls: tls.map(|c| Arc::new(Mutex::new(c))),
            state: Arc::new(Mutex::new(Served {
                etag: format!("\"{}\"", &archive_digest(&body)[7..23]),
                body,
                mode: Mode::Serve,
            })),
            full: Arc::default(),
            not_modified: Arc::default(),
            authorized: Arc::default(),
            stop: Arc::default(),
        };
        let (state, full, nm, auth, stop, tls) = (
            Arc::clone(&server.state),
            Arc::clone(&server.full),
            Arc::clone(&server.not_modified),
            Arc::clone(&server.authorized),
            Arc::clone(&server.stop),
            server.tls.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let (state, full, nm, auth) = (
                    Arc::clone(&state),
                    Arc::clone(&full),
                    Arc::clone(&nm),
                    Arc::clone(&auth),
                );
                let config = tls.as_ref().map(|t| Arc::clone(&t.lock().unwrap()));
                std::thread::spawn(move || match config {
                    None => handle(conn, &state, &full, &nm, &auth),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config).unwrap();
                        let stream = rustls::StreamOwned::new(session, conn);
                        handle(stream, &state, &full, &nm, &auth);
                    }
                });
            }
        });
        server
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/bundle.tar.gz", self.addr)
    }

    fn publish(&self, body: Vec<u8>) {
        let mut s = self.state.lock().unwrap();
        s.etag = format!("\"{}\"", &archive_digest(&body)[7..23]);
        s.body = body;
    }

    fn mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn handle(
    mut conn: impl Read + Write,
    state: &Mutex<Served>,
    full: &AtomicUsize,
    not_modified: &AtomicUsize,
    authorized: &Mutex<Vec<Option<String>>>,
) {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&req).to_lowercase();
    let header = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
    };
    authorized.lock().unwrap().push(header("authorization"));
    let (body, etag, mode) = {
        let s = state.lock().unwrap();
        (s.body.clone(), s.etag.clone(), s.mode)
    };
    let _ = match mode {
        Mode::Fail(code) => conn.write_all(
            format!("HTTP/1.1 {code} Failing\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        ),
        _ if header("if-none-match").as_deref() == Some(&etag.to_lowercase()) => {
            not_modified.fetch_add(1, Ordering::Relaxed);
            conn.write_all(
                format!("HTTP/1.1 304 Not Modified\r\netag: {etag}\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            )
        }
        _ => {
            full.fetch_add(1, Ordering::Relaxed);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/gzip\r\ncontent-length: {}\r\netag: {etag}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).and_then(|()| {
                if let Mode::Slow(d) = mode {
                    std::thread::sleep(d);
                }
                conn.write_all(&body)
            })
        }
    };
    let _ = conn.flush();
}

fn archive_of(revision: &str, reject: bool, key: Option<&SigningKey>) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    pack(tmp.path(), revision, reject);
    if let Some(k) = key {
        sign_bundle(tmp.path(), k).unwrap();
    }
    build_archive(tmp.path()).unwrap()
}

fn fast_http() -> HttpOptions {
    HttpOptions {
        interval: Duration::from_millis(30),
        jitter: 0.2,
        max_backoff: Duration::from_millis(120),
        timeout: Duration::from_secs(5),
        startup: Startup::WaitForFirst(Duration::from_secs(10)),
        ..HttpOptions::default()
    }
}

#[test]
fn http_source_polls_with_etag_and_swaps_in_new_bundles() {
    let server = Server::start(archive_of("h-1", false, None));
    let mut options = fast_http();
    options.bearer_token = Some("s3cret".into());
    let (engine, follower) = Engine::from_http(&server.url(), None, options).unwrap();
    assert_eq!(engine.bundle_info().revision, "h-1");
    assert_eq!(engine.bundle_status().source, server.url());
    eventually("304s", || server.not_modified.load(Ordering::Relaxed) >= 3);
    assert_eq!(
        server.full.load(Ordering::Relaxed),
        1,
        "unchanged: 304 only"
    );
    assert_eq!(engine.bundle_status().updates, 0);
    assert!(
        server
            .authorized
            .lock()
            .unwrap()
            .iter()
            .all(|a| a.as_deref() == Some("bearer s3cret"))
    );

    server.publish(archive_of("h-2", true, None));
    eventually("h-2 live", || engine.bundle_info().revision == "h-2");
    assert_eq!(
        engine.decide_json(&reroute()).unwrap().outcome,
        Outcome::Reject
    );
    let st = engine.bundle_status();
    assert_eq!(st.updates, 1);
    assert!(st.last_success_unix.is_some());

    // The server fails: the live bundle stays, failures are recorded.
    server.mode(Mode::Fail(500));
    eventually("500s recorded", || engine.bundle_status().failures >= 2);
    assert_eq!(engine.bundle_info().revision, "h-2");
    assert!(
        engine
            .bundle_status()
            .last_error
            .unwrap()
            .contains("HTTP 500")
    );
    let text = engine.metrics_text();
    assert!(
        text.contains("agentriage_bundle_last_success_timestamp_seconds "),
        "{text}"
    );
    assert!(
        text.contains("agentriage_bundle_last_failure_timestamp_seconds "),
        "{text}"
    );
    assert!(
        text.contains(&format!("source=\"{}\"", server.url())),
        "{text}"
    );
    // Recovers.
    server.mode(Mode::Serve);
    server.publish(archive_of("h-3", false, None));
    eventually("h-3 live", || engine.bundle_info().revision == "h-3");
    drop(follower);
}

#[test]
fn http_failures_back_off() {
    let server = Server::start(archive_of("b-1", false, None));
    let mut options = fast_http();
    options.interval = Duration::from_millis(20);
    options.max_backoff = Duration::from_millis(640);
    options.jitter = 0.0;
    let (engine, _f) = Engine::from_http(&server.url(), None, options).unwrap();
    server.mode(Mode::Fail(503));
    // With doubling waits (40, 80, 160, 320, 640 ms...) five failures take
    // over 600 ms; without backoff they would take 100 ms. Counted, not timed:
    // after 5 failures, at most a few more arrive in the next 400 ms.
    eventually("5 failures", || engine.bundle_status().failures >= 5);
    let at = engine.bundle_status().failures;
    std::thread::sleep(Duration::from_millis(400));
    let later = engine.bundle_status().failures;
    assert!(later - at <= 2, "{at} then {later}: no backoff");
}

#[test]
fn http_refuses_tampered_slow_and_oversized_archives() {
    let (key, trusted) = key();
    let good = archive_of("t-1", false, Some(&key));
    let server = Server::start(good.clone());
    let (engine, _f) =
        Engine::from_http(&server.url(), Some(trusted.clone()), fast_http()).unwrap();
    assert_eq!(engine.bundle_info().revision, "t-1");

    // Tampered: a file changed after signing.
    let mut entries = untar(&archive_of("t-2", true, Some(&key)));
    for (p, b) in &mut entries {
        if p == "bundle.toml" {
            *b = String::from_utf8(b.clone())
                .unwrap()
                .replace("t-2", "t-2-evil")
                .into_bytes();
        }
    }
    server.publish(gzip(&tar_of(
        &entries
            .iter()
            .map(|(p, b)| Entry::file(p, b))
            .collect::<Vec<_>>(),
    )));
    eventually("tamper refused", || engine.bundle_status().failures >= 1);
    assert_eq!(engine.bundle_info().revision, "t-1");
    assert!(engine.metrics().reload_failures() >= 1);
    // Unsigned: refused too.
    server.publish(archive_of("t-3", false, None));
    let f = engine.bundle_status().failures;
    eventually("unsigned refused", || engine.bundle_status().failures > f);
    assert_eq!(engine.bundle_info().revision, "t-1");

    // Slow: the request time limit fails it, fast.
    server.publish(good.clone());
    server.mode(Mode::Slow(Duration::from_secs(30)));
    let mut options = fast_http();
    options.timeout = Duration::from_millis(300);
    options.startup = Startup::WaitForFirst(Duration::from_millis(500));
    let e = Engine::from_http(&server.url(), Some(trusted.clone()), options).unwrap_err();
    match e {
        DeliveryError::StartupTimeout { last_error, .. } => {
            assert!(
                last_error.contains("timeout") || last_error.contains("timed out"),
                "{last_error}"
            );
        }
        other => panic!("{other}"),
    }

    // Larger than allowed.
    server.mode(Mode::Serve);
    let mut options = fast_http();
    options.max_bytes = 1000;
    options.startup = Startup::WaitForFirst(Duration::from_millis(200));
    let e = Engine::from_http(&server.url(), Some(trusted), options).unwrap_err();
    assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
}

#[test]
fn http_source_persists_the_last_good_bundle_and_restarts_from_it_offline() {
    let (key, trusted) = key();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache/last.tar.gz");
    let server = Server::start(archive_of("c-1", false, Some(&key)));
    let mut options = fast_http();
    options.cache = Some(cache.clone());
    options.startup = Startup::PreferLocal(Duration::from_secs(10));
    let url = server.url();
    {
        let (engine, _f) = Engine::from_http(&url, Some(trusted.clone()), options.clone()).unwrap();
        assert_eq!(engine.bundle_info().revision, "c-1");
        server.publish(archive_of("c-2", true, Some(&key)));
        eventually("c-2 live", || engine.bundle_info().revision == "c-2");
        eventually("c-2 persisted", || {
            Bundle::load(&cache).is_ok_and(|b| b.info().revision == "c-2")
        });
    }
    drop(server);

    // Offline restart: starts from the copy, decides, records the failures.
    let (engine, _f) = Engine::from_http(&url, Some(trusted.clone()), options.clone()).unwrap();
    assert_eq!(engine.bundle_info().revision, "c-2");
    assert_eq!(engine.bundle_status().source, cache.display().to_string());
    assert_eq!(
        engine.decide_json(&reroute()).unwrap().outcome,
        Outcome::Reject
    );
    eventually("offline failure", || engine.bundle_status().failures >= 1);
    drop(engine);

    // WaitForFirst ignores the copy: offline, no engine.
    let mut strict = options.clone();
    strict.startup = Startup::WaitForFirst(Duration::from_millis(300));
    assert!(matches!(
        Engine::from_http(&url, Some(trusted.clone()), strict),
        Err(DeliveryError::StartupTimeout { .. })
    ));

    // A copy tampered on disk is not trusted.
    let mut bytes = std::fs::read(&cache).unwrap();
    let mut entries = untar(&bytes);
    entries.retain(|(p, _)| p != ".signature.json");
    bytes = gzip(&tar_of(
        &entries
            .iter()
            .map(|(p, b)| Entry::file(p, b))
            .collect::<Vec<_>>(),
    ));
    std::fs::write(&cache, bytes).unwrap();
    options.startup = Startup::PreferLocal(Duration::from_millis(300));
    assert!(matches!(
        Engine::from_http(&url, Some(trusted), options),
        Err(DeliveryError::StartupTimeout { .. })
    ));
}

#[test]
fn kept_etag_makes_a_restart_from_the_local_copy_a_304() {
    let (key, trusted) = key();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache/last.tar.gz");
    let etag_file = agentriage::delivery::http::etag_path(&cache);
    let good = archive_of("e-1", false, Some(&key));
    let server = Server::start(good.clone());
    let url = server.url();
    let mut options = fast_http();
    options.cache = Some(cache.clone());
    options.startup = Startup::PreferLocal(Duration::from_secs(10));
    let start = |url: &str| Engine::from_http(url, Some(trusted.clone()), options.clone()).unwrap();
    let full = || server.full.load(Ordering::Relaxed);
    let not_modified = || server.not_modified.load(Ordering::Relaxed);

    // First lifetime: one download; the copy and its ETag are kept.
    {
        let (engine, _f) = start(&url);
        assert_eq!(engine.bundle_info().revision, "e-1");
        eventually("a 304", || not_modified() >= 1);
    }
    assert_eq!(full(), 1);
    assert_eq!(std::fs::read(&cache).unwrap(), good);
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&etag_file).unwrap()).unwrap();
    assert_eq!(kept["url"], url.as_str());
    assert_eq!(kept["etag"], server.state.lock().unwrap().etag.as_str());
    assert_eq!(kept["archive_digest"], archive_digest(&good).as_str());

    // Second lifetime: starts from the copy and asks with its ETag; the
    // server's 304 keeps it, nothing is downloaded.
    let before = not_modified();
    {
        let (engine, _f) = start(&url);
        assert_eq!(engine.bundle_info().revision, "e-1");
        eventually("a 304 after the restart", || not_modified() > before);
        assert_eq!(full(), 1, "the restart downloaded the bundle again");
        eventually("the 304 confirmed the copy", || {
            engine.bundle_status().source == url
        });
        assert_eq!(engine.bundle_status().failures, 0);
    }

    // The copy replaced by another (valid, signed) archive: the kept ETag
    // is not its own, so it is not sent; the server's bundle is downloaded.
    std::fs::write(&cache, archive_of("e-other", true, Some(&key))).unwrap();
    {
        let (engine, _f) = start(&url);
        assert_eq!(engine.bundle_info().revision, "e-other");
        eventually("e-1 downloaded", || engine.bundle_info().revision == "e-1");
        assert_eq!(full(), 2);
    }
    eventually("copy rewritten", || std::fs::read(&cache).unwrap() == good);

    // A corrupt copy: a full fetch at start-up.
    std::fs::write(&cache, b"not an archive").unwrap();
    {
        let (engine, _f) = start(&url);
        assert_eq!(engine.bundle_info().revision, "e-1");
        assert_eq!(full(), 3);
    }
    // A missing copy with its ETag kept: a full fetch.
    std::fs::remove_file(&cache).unwrap();
    assert!(etag_file.exists());
    {
        let (engine, _f) = start(&url);
        assert_eq!(engine.bundle_info().revision, "e-1");
        assert_eq!(full(), 4);
    }
    // Another URL (same server): the ETag kept for the first is not sent.
    let other = format!("{url}?mirror");
    {
        let (engine, _f) = start(&other);
        eventually("full download from the other URL", || full() == 5);
        assert_eq!(engine.bundle_info().revision, "e-1");
    }
    // A kept ETag that does not parse is ignored.
    std::fs::write(&etag_file, b"{").unwrap();
    {
        let (engine, _f) = start(&url);
        eventually("full download", || full() == 6);
        assert_eq!(engine.bundle_info().revision, "e-1");
    }
}

#[test]
fn https_source_trusts_the_given_certificate_authority_and_fails_closed_otherwise() {
    let (key, trusted) = key();
    let ca = tls_file("ca.pem");
    let server = Server::start_tls(archive_of("s-1", false, Some(&key)), "server");
    let url = server.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let mut options = fast_http();
    options.tls_ca_pem = Some(ca.clone());

    // Trusted: loads, polls with ETag (304s over TLS), follows updates.
    let (engine, _f) = Engine::from_http(&url, Some(trusted.clone()), options.clone()).unwrap();
    assert_eq!(engine.bundle_info().revision, "s-1");
    eventually("304 over TLS", || {
        server.not_modified.load(Ordering::Relaxed) >= 1
    });
    server.publish(archive_of("s-2", true, Some(&key)));
    eventually("s-2 live", || engine.bundle_info().revision == "s-2");
    assert!(agentriage::delivery::http::get(&url, &options).is_ok());

    // The server turns to a certificate for another name: refused, the
    // live bundle stays, the failure says why.
    server.certificate("wrong-name");
    let f = engine.bundle_status().failures;
    eventually("wrong name refused", || engine.bundle_status().failures > f);
    assert_eq!(engine.bundle_info().revision, "s-2");
    let last = engine.bundle_status().last_error.unwrap();
    assert!(last.starts_with("TLS with `https://127.0.0.1:"), "{last}");
    assert!(last.contains("not valid for name"), "{last}");
    let e = agentriage::delivery::http::get(&url, &options).unwrap_err();
    assert!(matches!(e, DeliveryError::Tls { .. }), "{e}");
    server.certificate("server");
    server.publish(archive_of("s-3", false, Some(&key)));
    eventually("s-3 live", || engine.bundle_info().revision == "s-3");

    // Without the certificate authority (the Mozilla roots only): refused.
    let e = agentriage::delivery::http::get(&url, &fast_http()).unwrap_err();
    match &e {
        DeliveryError::Tls { url: u, message } => {
            assert_eq!(u, &url);
            assert!(message.contains("UnknownIssuer"), "{message}");
        }
        other => panic!("{other}"),
    }
    let mut strict = fast_http();
    strict.startup = Startup::WaitForFirst(Duration::from_millis(300));
    match Engine::from_http(&url, Some(trusted.clone()), strict) {
        Err(DeliveryError::StartupTimeout { last_error, .. }) => {
            assert!(last_error.contains("UnknownIssuer"), "{last_error}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("an untrusted server gave an engine"),
    }

    // Certificate authorities that do not parse: refused before connecting.
    let mut bad = fast_http();
    bad.tls_ca_pem = Some(b"not a certificate".to_vec());
    let e = Engine::from_http(&url, None, bad.clone()).unwrap_err();
    assert!(
        matches!(&e, DeliveryError::Tls { message, .. } if message.contains("no PEM")),
        "{e}"
    );
    let key_only = tls_file("server.key");
    bad.tls_ca_pem = Some(key_only);
    assert!(matches!(
        agentriage::delivery::http::get(&url, &bad),
        Err(DeliveryError::Tls { .. })
    ));

    // Plain HTTP works with a certificate authority given.
    let plain = Server::start(archive_of("p-1", false, None));
    let (engine, _f) = Engine::from_http(&plain.url(), None, options).unwrap();
    assert_eq!(engine.bundle_info().revision, "p-1");
}

#[test]
fn eight_deciding_threads_see_exactly_one_digest_per_decision_during_http_updates() {
    let a = archive_of("x-a", false, None);
    let b = archive_of("x-b", true, None);
    let da = load_archive(&a, "a", None).unwrap().info().digest.clone();
    let db = load_archive(&b, "b", None).unwrap().info().digest.clone();
    let expected: HashMap<String, (Outcome, &str)> = HashMap::from([
        (da.clone(), (Outcome::Execute, "x-a")),
        (db.clone(), (Outcome::Reject, "x-b")),
    ]);
    let server = Server::start(a.clone());
    let mut options = fast_http();
    options.interval = Duration::from_millis(10);
    let (engine, _f) = Engine::from_http(&server.url(), None, options).unwrap();
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(HashMap::<String, usize>::new());
    let request = reroute();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let mut mine = HashMap::<String, usize>::new();
                while !stop.load(Ordering::Relaxed) {
                    let d = engine.decide_json(&request).unwrap();
                    let (outcome, revision) = expected
                        .get(&d.bundle.digest)
                        .unwrap_or_else(|| panic!("unknown digest {}", d.bundle.digest));
                    assert_eq!(d.outcome, *outcome);
                    assert_eq!(d.bundle.revision, *revision);
                    *mine.entry(d.bundle.digest.clone()).or_default() += 1;
                }
                let mut all = seen.lock().unwrap();
                for (k, v) in mine {
                    *all.entry(k).or_default() += v;
                }
            });
        }
        for i in 0..6 {
            let (body, digest) = if i % 2 == 0 { (&b, &db) } else { (&a, &da) };
            server.publish(body.clone());
            eventually("update live", || engine.bundle_info().digest == *digest);
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let seen = seen.into_inner().unwrap();
    assert!(seen.get(&da).copied().unwrap_or(0) > 0, "{seen:?}");
    assert!(seen.get(&db).copied().unwrap_or(0) > 0, "{seen:?}");
    assert_eq!(engine.bundle_status().updates, 6);
}

#[test]
fn sources_that_are_not_understood_are_refused() {
    for bad in ["ftp://x/b.tar.gz", "oci://h", "s3://bucket/b"] {
        let e = Engine::from_source(bad, None, SourceOptions::default()).unwrap_err();
        assert!(matches!(e, DeliveryError::Source { .. }), "{bad}: {e}");
    }
    let e =
        Engine::from_source("/nonexistent/agentriage", None, SourceOptions::default()).unwrap_err();
    assert_eq!(e.as_bundle().unwrap().kind(), BundleErrorKind::Io);
}

// ---------------------------------------------------------------- OCI

/// The `docker-registry` binary, or why there is none.
fn registry_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join("docker-registry"))
        .find(|p| p.is_file())
}

struct Registry {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Option<Registry> {
    let Some(bin) = registry_binary() else {
        assert!(
            std::env::var_os("AGENTRIAGE_REQUIRE_SERVERS").is_none(),
            "docker-registry is required (AGENTRIAGE_REQUIRE_SERVERS is set): apt-get install docker-registry"
        );
        eprintln!("skipped: no docker-registry binary (apt-get install docker-registry)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let registry = Registry {
        child,
        addr,
        _dir: dir,
    };
    eventually("registry up", || TcpStream::connect(&registry.addr).is_ok());
    Some(registry)
}

#[test]
fn oci_registry_push_pull_by_tag_and_digest_and_follow() {
    use agentriage::delivery::oci::{OciOptions, pull, push};
    let Some(registry) = start_registry() else {
        return;
    };
    let (key, trusted) = key();
    let one = archive_of("o-1", false, Some(&key));
    let tag = format!("oci://{}/agentriage/a2a:stable", registry.addr);
    let digest = push(&one, &tag, fast_http(), OciOptions::default()).unwrap();
    assert!(digest.starts_with("sha256:"));
    assert_eq!(pull(&tag, fast_http(), OciOptions::default()).unwrap(), one);
    let pinned = format!("oci://{}/agentriage/a2a@{digest}", registry.addr);
    assert_eq!(
        pull(&pinned, fast_http(), OciOptions::default()).unwrap(),
        one
    );
    // A digest that is not the manifest's: refused (404 from the registry,
    // or a mismatch).
    let wrong = format!(
        "oci://{}/agentriage/a2a@sha256:{}",
        registry.addr,
        "0".repeat(64)
    );
    assert!(pull(&wrong, fast_http(), OciOptions::default()).is_err());

    let (engine, _f) = Engine::from_source(
        &tag,
        Some(trusted.clone()),
        SourceOptions {
            http: fast_http(),
            ..SourceOptions::default()
        },
    )
    .unwrap();
    assert_eq!(engine.bundle_info().revision, "o-1");
    assert_eq!(engine.bundle_status().source, tag);

    // A new push to the tag is followed.
    push(
        &archive_of("o-2", true, Some(&key)),
        &tag,
        fast_http(),
        OciOptions::default(),
    )
    .unwrap();
    eventually("o-2 live", || engine.bundle_info().revision == "o-2");
    // An unsigned push is refused; o-2 stays.
    push(
        &archive_of("o-3", false, None),
        &tag,
        fast_http(),
        OciOptions::default(),
    )
    .unwrap();
    eventually("o-3 refused", || engine.bundle_status().failures >= 1);
    assert_eq!(engine.bundle_info().revision, "o-2");

    // The pinned engine decides with o-1 whatever the tag says.
    let (pinned_engine, _g) =
        Engine::from_oci(&pinned, Some(trusted), fast_http(), OciOptions::default()).unwrap();
    assert_eq!(pinned_engine.bundle_info().revision, "o-1");
}

#[test]
fn long_paths_use_the_ustar_prefix_and_paths_too_long_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    pack(&dir, "long-1", false);
    let long = dir
        .join("notes")
        .join("x".repeat(90))
        .join(format!("{}.md", "y".repeat(90)));
    std::fs::create_dir_all(long.parent().unwrap()).unwrap();
    std::fs::write(&long, b"kept").unwrap();
    let archive = build_archive(&dir).unwrap();
    let from_archive = load_archive(&archive, "long.tar.gz", None).unwrap();
    assert_eq!(
        from_archive.info().digest,
        Bundle::load(&dir).unwrap().info().digest
    );
    // The name field holds the last component, the prefix field the rest.
    let leaf = format!("{}.md", "y".repeat(90));
    assert!(
        untar(&archive).iter().any(|(p, _)| *p == leaf),
        "no entry named by its last component"
    );

    let too_long = dir
        .join("z".repeat(200))
        .join(format!("{}.md", "w".repeat(120)));
    std::fs::create_dir_all(too_long.parent().unwrap()).unwrap();
    std::fs::write(&too_long, b"x").unwrap();
    let e = build_archive(&dir).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Archive);
    assert!(
        e.to_string().contains("longer than a tar header holds"),
        "{e}"
    );
}
