//! Signed bundles: what loads with a signature requirement and what does not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use agentriage::signing::{SIGNATURE_FILE, SigningKey, TrustedKeys, sign_bundle};
use agentriage::{Bundle, BundleError, BundleErrorKind};

fn signed_pack() -> (tempfile::TempDir, SigningKey) {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::reference_pack(), dir.path());
    let (key, _) = SigningKey::generate().unwrap();
    sign_bundle(dir.path(), &key).unwrap();
    (dir, key)
}

fn trusting(keys: &[&SigningKey]) -> TrustedKeys {
    let mut trusted = TrustedKeys::new();
    for k in keys {
        trusted.add(k.public_key());
    }
    trusted
}

fn refused(dir: &Path, trusted: &TrustedKeys) -> BundleError {
    let e = Bundle::load_verified(dir, trusted).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Signature, "{e}");
    e
}

#[test]
fn a_signed_bundle_loads_with_its_key_and_keeps_its_digest() {
    let (dir, key) = signed_pack();
    let bundle = Bundle::load_verified(dir.path(), &trusting(&[&key])).unwrap();
    // The signature file is hidden: signing does not change the digest.
    let unsigned = Bundle::load(common::reference_pack()).unwrap();
    assert_eq!(bundle.info().digest, unsigned.info().digest);
    // The plain loader ignores signatures.
    assert!(Bundle::load(dir.path()).is_ok());
}

#[test]
fn any_of_several_trusted_keys_may_sign() {
    let (dir, key) = signed_pack();
    let (other, _) = SigningKey::generate().unwrap();
    assert!(Bundle::load_verified(dir.path(), &trusting(&[&other, &key])).is_ok());
}

#[test]
fn a_missing_signature_is_refused_when_one_is_required() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::reference_pack(), dir.path());
    let (key, _) = SigningKey::generate().unwrap();
    let e = refused(dir.path(), &trusting(&[&key]));
    assert!(e.message().contains("not signed"), "{e}");
    assert!(e.file().ends_with(SIGNATURE_FILE));
}

#[test]
fn no_trusted_key_at_all_is_refused() {
    let (dir, _) = signed_pack();
    let e = refused(dir.path(), &TrustedKeys::new());
    assert!(e.message().contains("no trusted key"), "{e}");
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused() {
    let (dir, key) = signed_pack();
    let (other, _) = SigningKey::generate().unwrap();
    let e = refused(dir.path(), &trusting(&[&other]));
    assert!(e.message().contains("no signature by a trusted key"), "{e}");
    assert!(e.message().contains(&key.public_key().key_id()), "{e}");
}

#[test]
fn a_changed_file_is_named() {
    let (dir, key) = signed_pack();
    let data = dir.path().join("data/pack.json");
    let text = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, text.replace("3600", "36000")).unwrap();
    let e = refused(dir.path(), &trusting(&[&key]));
    assert!(e.file().ends_with("data/pack.json"), "{e}");
    assert!(e.message().contains("changed"), "{e}");
}

#[test]
fn an_added_file_is_named() {
    let (dir, key) = signed_pack();
    std::fs::write(dir.path().join("rego/extra.rego"), "package x\n").unwrap();
    let e = refused(dir.path(), &trusting(&[&key]));
    assert!(e.file().ends_with("rego/extra.rego"), "{e}");
    assert!(e.message().contains("added"), "{e}");
}

#[test]
fn a_removed_file_is_named() {
    let (dir, key) = signed_pack();
    std::fs::remove_file(dir.path().join("cedar/pack.cedarschema")).unwrap();
    let e = refused(dir.path(), &trusting(&[&key]));
    assert!(e.file().ends_with("cedar/pack.cedarschema"), "{e}");
    assert!(e.message().contains("removed"), "{e}");
}

#[test]
fn an_altered_statement_fails_the_signature() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (dir, key) = signed_pack();
    let path = dir.path().join(SIGNATURE_FILE);
    let mut envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // Re-point the statement at a changed data file: the list now matches the
    // files, but the signature no longer matches the list.
    let data = dir.path().join("data/pack.json");
    let changed = std::fs::read_to_string(&data)
        .unwrap()
        .replace("3600", "36000");
    std::fs::write(&data, &changed).unwrap();
    let payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let mut statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    let hash = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(changed.as_bytes());
        format!(
            "sha256:{}",
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    statement["files"]["data/pack.json"] = hash.into();
    envelope["payload"] = b64.encode(serde_json::to_vec(&statement).unwrap()).into();
    std::fs::write(&path, envelope.to_string()).unwrap();
    let e = refused(dir.path(), &trusting(&[&key]));
    assert!(e.message().contains("does not verify"), "{e}");
}

#[test]
fn a_flipped_signature_byte_fails() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (dir, key) = signed_pack();
    let path = dir.path().join(SIGNATURE_FILE);
    let mut envelope: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut sig = b64
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    sig[10] ^= 1;
    envelope["signatures"][0]["sig"] = b64.encode(sig).into();
    std::fs::write(&path, envelope.to_string()).unwrap();
    let e = refused(dir.path(), &trusting(&[&key]));
    assert!(e.message().contains("does not verify"), "{e}");
}

#[test]
fn a_garbled_signature_file_is_an_error() {
    let (dir, key) = signed_pack();
    for text in [
        "",
        "{",
        "[]",
        r#"{"payloadType":"x","payload":"","signatures":[]}"#,
    ] {
        std::fs::write(dir.path().join(SIGNATURE_FILE), text).unwrap();
        refused(dir.path(), &trusting(&[&key]));
    }
}

#[test]
fn co_signers_accumulate_and_a_new_revision_starts_over() {
    let (dir, first) = signed_pack();
    let (second, _) = SigningKey::generate().unwrap();
    sign_bundle(dir.path(), &second).unwrap();
    assert!(Bundle::load_verified(dir.path(), &trusting(&[&first])).is_ok());
    assert!(Bundle::load_verified(dir.path(), &trusting(&[&second])).is_ok());

    // Changing the bundle and signing again drops the stale co-signature.
    let data = dir.path().join("data/pack.json");
    let text = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, text.replace("3600", "1800")).unwrap();
    sign_bundle(dir.path(), &second).unwrap();
    assert!(Bundle::load_verified(dir.path(), &trusting(&[&second])).is_ok());
    refused(dir.path(), &trusting(&[&first]));
}

#[test]
fn a_bundle_that_does_not_load_is_not_signed() {
    let dir = common::bundle(&[("bundle.toml", "name = \"x\"\n")]);
    let (key, _) = SigningKey::generate().unwrap();
    let e = sign_bundle(dir.path(), &key).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Manifest, "{e}");
    assert!(!dir.path().join(SIGNATURE_FILE).exists());
}

#[test]
fn a_verifying_engine_keeps_its_bundle_when_a_reload_is_not_signed() {
    let (dir, key) = signed_pack();
    let engine = agentriage::Engine::from_dir_verified(dir.path(), trusting(&[&key])).unwrap();
    let live = engine.bundle_info();
    let request = common::decision_cases()
        .into_iter()
        .next()
        .expect("a decision case")
        .request;
    let before = engine.decide_value(&request).unwrap();

    // A new revision, changed after signing: refused, the old bundle stays.
    let manifest = dir.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("2026.11.0", "2026.11.1")).unwrap();
    let e = engine.reload_from_dir(dir.path()).unwrap_err();
    assert_eq!(
        e.as_bundle().unwrap().kind(),
        BundleErrorKind::Signature,
        "{e}"
    );
    assert_eq!(engine.bundle_info().digest, live.digest);
    assert_eq!(engine.bundle_info().revision, "2026.11.0");
    let after = engine.decide_value(&request).unwrap();
    assert_eq!(after.outcome, before.outcome);
    assert_eq!(after.bundle.digest, live.digest);

    // Unsigned altogether: refused too.
    std::fs::remove_file(dir.path().join(SIGNATURE_FILE)).unwrap();
    assert!(engine.reload_from_dir(dir.path()).is_err());
    // Signed by a key the engine does not trust: refused.
    let (stranger, _) = SigningKey::generate().unwrap();
    sign_bundle(dir.path(), &stranger).unwrap();
    assert!(engine.reload_from_dir(dir.path()).is_err());
    assert_eq!(engine.bundle_info().digest, live.digest);
    assert_eq!(engine.metrics().reload_failures(), 3);
    assert_eq!(engine.metrics().reloads(), 0);
    assert!(
        engine
            .metrics_text()
            .contains("agentriage_reload_failures_total 3")
    );

    // Signed by the trusted key: swapped in.
    sign_bundle(dir.path(), &key).unwrap();
    let previous = engine.reload_from_dir(dir.path()).unwrap();
    assert_eq!(previous.digest, live.digest);
    assert_eq!(engine.bundle_info().revision, "2026.11.1");
    assert_eq!(engine.metrics().reloads(), 1);
}

#[test]
fn a_verifying_engine_refuses_an_unsigned_bundle_from_the_start() {
    let (key, _) = SigningKey::generate().unwrap();
    let e = agentriage::Engine::from_dir_verified(common::reference_pack(), trusting(&[&key]))
        .unwrap_err();
    assert_eq!(e.as_bundle().unwrap().kind(), BundleErrorKind::Signature);
    // A plain engine has no trusted keys, and reloads what loads.
    let engine = agentriage::Engine::from_dir(common::reference_pack()).unwrap();
    assert!(engine.trusted_keys().is_none());
    assert!(engine.reload_from_dir(common::reference_pack()).is_ok());
}
