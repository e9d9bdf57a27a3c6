//! `agentriage intent keygen | sign | verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const AUD: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
const ISS: &str = "spiffe://acme.example/ns/finance/sa/payments";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentriage"))
        .arg("intent")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn sign(key: &str, alg: &str, kid: &str, act: &str) -> Output {
    run(&[
        "sign",
        "--key",
        key,
        "--alg",
        alg,
        "--kid",
        kid,
        "--iss",
        ISS,
        "--aud",
        AUD,
        "--act",
        act,
        "--res",
        "invoice:INV-88",
        "--purpose",
        "settle INV-88",
        "--iat",
        "2026-11-21T14:04:00Z",
        "--lifetime-s",
        "600",
        "--scope",
        "payments",
    ])
}

fn verify(keys: &str, token: &str, time: &str) -> Output {
    run(&[
        "verify",
        "--keys",
        keys,
        "--aud",
        AUD,
        "--principal",
        ISS,
        "--act",
        "payment.release",
        "--res",
        "invoice:INV-88",
        "--time",
        time,
        token,
    ])
}

#[test]
fn keygen_sign_verify_round_trip_for_both_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    for alg in ["EdDSA", "ES256"] {
        let private = dir.path().join(format!("{alg}.pem"));
        let out = run(&[
            "keygen",
            "--alg",
            alg,
            "--kid",
            "k1",
            "--iss",
            ISS,
            "--private-key",
            private.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let jwk: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(jwk["iss"], ISS);
        assert_eq!(jwk["alg"], alg);
        assert!(
            jwk.get("d").is_none(),
            "the public JWK holds no private part"
        );
        let pem = std::fs::read_to_string(&private).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&private).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "private key readable by others");
        }
        // keygen refuses to overwrite a key.
        let again = run(&[
            "keygen",
            "--alg",
            alg,
            "--kid",
            "k1",
            "--iss",
            ISS,
            "--private-key",
            private.to_str().unwrap(),
        ]);
        assert_eq!(again.status.code(), Some(4));

        let keys = dir.path().join(format!("{alg}.jwks"));
        std::fs::write(&keys, json!({"keys": [jwk]}).to_string()).unwrap();
        let out = sign(private.to_str().unwrap(), alg, "k1", "payment.release");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = stdout(&out).trim().to_owned();
        assert_eq!(token.split('.').count(), 3);

        let out = verify(keys.to_str().unwrap(), &token, "2026-11-21T14:05:00Z");
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let fact: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(fact["status"], "verified");
        assert_eq!(fact["purpose"], "settle INV-88");
        assert_eq!(fact["scope"], json!(["payments"]));
        assert_eq!(fact["alg"], alg);

        // Evaluated after expiry: exit 1, naming the check.
        let out = verify(keys.to_str().unwrap(), &token, "2026-11-21T15:00:00Z");
        assert_eq!(out.status.code(), Some(1));
        let fact: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(fact["status"], "invalid");
        assert_eq!(fact["error"], "expired");
    }
}

#[test]
fn keygen_writes_a_key_set_that_verify_accepts_and_adds_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("trusted.jwks");
    let keygen = |alg: &str, kid: &str| {
        let private = dir.path().join(format!("{kid}.pem"));
        let out = run(&[
            "keygen",
            "--alg",
            alg,
            "--kid",
            kid,
            "--iss",
            ISS,
            "--private-key",
            private.to_str().unwrap(),
            "--key-set",
            set.to_str().unwrap(),
        ]);
        (out, private)
    };
    // Created by the first key, added to by the second.
    let mut tokens = Vec::new();
    for (alg, kid) in [("EdDSA", "k-ed"), ("ES256", "k-es")] {
        let (out, private) = keygen(alg, kid);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = sign(private.to_str().unwrap(), alg, kid, "payment.release");
        assert_eq!(out.status.code(), Some(0));
        tokens.push(stdout(&out).trim().to_owned());
    }
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&set).unwrap()).unwrap();
    let kids: Vec<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["k-ed", "k-es"]);
    assert!(doc["keys"][0].get("d").is_none(), "no private part");
    for token in &tokens {
        let out = verify(set.to_str().unwrap(), token, "2026-11-21T14:05:00Z");
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let fact: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(fact["status"], "verified");
    }

    // A key id already in the set: exit 3, the set unchanged, and no
    // private key written without its public half.
    let before = std::fs::read_to_string(&set).unwrap();
    let (out, _) = keygen("EdDSA", "k-es");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already has a key with kid `k-es`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&set).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "two private keys and the set"
    );

    // A file that is not a key set is refused, not overwritten.
    std::fs::write(&set, "[1, 2]").unwrap();
    let (out, _) = keygen("EdDSA", "k-new");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(std::fs::read_to_string(&set).unwrap(), "[1, 2]");
}

#[test]
fn the_shared_vectors_verify_through_the_cli() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("testdata/intents/vectors.json")).unwrap(),
    )
    .unwrap();
    let keys = repo().join(doc["keys"].as_str().unwrap());
    let time = doc["time"].as_str().unwrap();
    for v in doc["valid"]
        .as_array()
        .unwrap()
        .iter()
        .chain(doc["invalid"].as_array().unwrap())
    {
        let out = run(&[
            "verify",
            "--keys",
            keys.to_str().unwrap(),
            "--aud",
            doc["audience"].as_str().unwrap(),
            "--principal",
            v["principal"].as_str().unwrap(),
            "--act",
            v["action"].as_str().unwrap(),
            "--res",
            v["resource"].as_str().unwrap(),
            "--time",
            time,
            v["token"].as_str().unwrap(),
        ]);
        let fact: Value = serde_json::from_str(&stdout(&out)).unwrap();
        match v.get("check") {
            None => assert_eq!(fact["status"], "verified", "{}", v["name"]),
            Some(check) => {
                assert_eq!(out.status.code(), Some(1), "{}", v["name"]);
                assert_eq!(&fact["error"], check, "{}", v["name"]);
            }
        }
    }
}

#[test]
fn a_bad_key_set_or_key_exits_3_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        "{\"keys\": [\n{\"kty\": \"RSA\", \"kid\": \"a\"}\n]}",
    )
    .unwrap();
    let out = verify(keys.to_str().unwrap(), "a.b.c", "2026-11-21T14:05:00Z");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("keys.json:2") && err.contains("keys[0].kty"),
        "{err}"
    );

    let key = dir.path().join("bad.pem");
    std::fs::write(&key, "not a key").unwrap();
    let out = sign(key.to_str().unwrap(), "EdDSA", "k", "payment.release");
    assert_eq!(out.status.code(), Some(3));
    // A key of the other algorithm is refused too.
    let out = sign(
        repo()
            .join("testdata/intents/keys/payments.pem")
            .to_str()
            .unwrap(),
        "ES256",
        "k",
        "payment.release",
    );
    assert_eq!(out.status.code(), Some(3));
}
