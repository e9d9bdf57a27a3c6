//! `agentriage bundle keygen | sign | verify` and `eval --trusted-key`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
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

#[test]
fn keygen_sign_verify_and_eval_with_a_trusted_key() {
    let keys = tempfile::tempdir().unwrap();
    let pack = tempfile::tempdir().unwrap();
    common::copy_dir(&common::reference_pack(), pack.path());
    let prefix = keys.path().join("publisher");
    let out = agentriage(&["bundle", "keygen", "--out", &s(&prefix)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let private = keys.path().join("publisher.pem");
    let public = keys.path().join("publisher.pub.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
    // keygen never overwrites a private key.
    let again = agentriage(&["bundle", "keygen", "--out", &s(&prefix)]);
    assert_eq!(again.status.code(), Some(4));

    // Not signed yet: eval with a trusted key refuses to load it.
    let requests = s(&common::repo().join("testdata/requests.jsonl"));
    let eval = |trusted: &Path| {
        agentriage(&[
            "eval",
            "--bundle",
            &s(pack.path()),
            "--input",
            &requests,
            "--trusted-key",
            &s(trusted),
        ])
    };
    let out = eval(&public);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("not signed"),
        "{}",
        text(&out.stderr)
    );

    let out = agentriage(&["bundle", "sign", "--key", &s(&private), &s(pack.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = agentriage(&["bundle", "verify", "-k", &s(&public), &s(pack.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("a2a-supply-chain"));
    let out = eval(&public);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 7);

    // Another key is not trusted; a changed file is named.
    let other = keys.path().join("other");
    agentriage(&["bundle", "keygen", "--out", &s(&other)]);
    let out = eval(&keys.path().join("other.pub.pem"));
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("no signature by a trusted key"));
    std::fs::write(pack.path().join("rego/extra.rego"), "package extra\n").unwrap();
    let out = agentriage(&["bundle", "verify", "-k", &s(&public), &s(pack.path())]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("rego/extra.rego"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_key_file_is_an_io_error() {
    let keys = tempfile::tempdir().unwrap();
    let bad = keys.path().join("bad.pem");
    std::fs::write(&bad, "not a key").unwrap();
    let pack = s(&common::reference_pack());
    let out = agentriage(&["bundle", "verify", "-k", &s(&bad), &pack]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("bad.pem"),
        "{}",
        text(&out.stderr)
    );
    let out = agentriage(&["bundle", "sign", "--key", &s(&bad), &pack]);
    assert_eq!(out.status.code(), Some(4));
}
