"""Signed bundles from Python: `Engine.from_bundle(path, trusted_keys=...)`.

The bundles here are signed by a signer written in this file from the format
in docs/bundle.md (DSSE envelope, `cryptography`'s Ed25519), not by the
engine: a bundle a third-party pipeline signs loads, and one altered after
signing does not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import agentriage

from conftest import REFERENCE_BUNDLE, decision_cases

PAYLOAD_TYPE = "application/vnd.agentriage.bundle-signature+json"


def bundle_files(root: Path) -> dict[str, bytes]:
    """Every non-hidden file, by `/`-separated path relative to the root."""
    files = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files[rel.as_posix()] = path.read_bytes()
    return dict(sorted(files.items(), key=lambda item: item[0].encode()))


def digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel, data in files.items():
        h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return "sha256:" + h.hexdigest()


def key_id(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign(root: Path, key: Ed25519PrivateKey, name: str = "a2a-supply-chain", revision: str = "2026.11.0") -> None:
    files = bundle_files(root)
    statement = {
        "format": "agentriage.bundle-signature",
        "version": 1,
        "name": name,
        "revision": revision,
        "digest": digest(files),
        "files": {rel: "sha256:" + hashlib.sha256(data).hexdigest() for rel, data in files.items()},
    }
    payload = json.dumps(statement).encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id(key), "sig": base64.b64encode(key.sign(pae)).decode()}],
    }
    (root / ".signature.json").write_text(json.dumps(envelope))


@pytest.fixture
def publisher() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signed(tmp_path: Path, publisher: Ed25519PrivateKey) -> Path:
    copy = tmp_path / "pack"
    shutil.copytree(REFERENCE_BUNDLE, copy)
    sign(copy, publisher)
    return copy


def signature_error(excinfo: pytest.ExceptionInfo[agentriage.BundleError]) -> agentriage.BundleError:
    assert excinfo.value.kind == "signature", excinfo.value
    return excinfo.value


def first_case() -> dict[str, Any]:
    return decision_cases()[0][1]


def test_a_signed_bundle_loads_with_its_key(signed: Path, publisher: Ed25519PrivateKey) -> None:
    engine = agentriage.Engine.from_bundle(signed, trusted_keys=[public_pem(publisher)])
    assert engine.requires_signature
    # The signature file is hidden: it does not change the bundle's digest.
    assert engine.bundle.digest == agentriage.Engine.from_bundle(REFERENCE_BUNDLE).bundle.digest
    assert engine.bundle.digest == digest(bundle_files(signed))
    assert engine.decide(first_case()).outcome is not None


def test_keys_may_be_text_bytes_or_paths(tmp_path: Path, signed: Path, publisher: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    pem_file = tmp_path / "publisher.pub.pem"
    pem_file.write_text(public_pem(publisher))
    for keys in ([pem_file], [public_pem(publisher).encode()], [public_pem(other), pem_file], (pem_file,)):
        assert agentriage.Engine.from_bundle(signed, trusted_keys=keys).requires_signature


def test_an_unsigned_bundle_is_refused(publisher: Ed25519PrivateKey) -> None:
    with pytest.raises(agentriage.BundleError) as excinfo:
        agentriage.Engine.from_bundle(REFERENCE_BUNDLE, trusted_keys=[public_pem(publisher)])
    e = signature_error(excinfo)
    assert "not signed" in str(e)
    assert e.file is not None and e.file.endswith(".signature.json")


def test_a_signature_by_another_key_is_refused(signed: Path) -> None:
    stranger = Ed25519PrivateKey.generate()
    with pytest.raises(agentriage.BundleError) as excinfo:
        agentriage.Engine.from_bundle(signed, trusted_keys=[public_pem(stranger)])
    assert "no signature by a trusted key" in str(signature_error(excinfo))


@pytest.mark.parametrize(
    "change, file, says",
    [
        (lambda root: (root / "data" / "pack.json").write_text("{}"), "data/pack.json", "changed"),
        (lambda root: (root / "rego" / "extra.rego").write_text("package x\n"), "rego/extra.rego", "added"),
        (lambda root: (root / "tests" / "r01.yaml").unlink(), "tests/r01.yaml", "removed"),
    ],
    ids=["changed", "added", "removed"],
)
def test_a_file_touched_after_signing_is_named(signed: Path, publisher: Ed25519PrivateKey, change: Any, file: str, says: str) -> None:
    change(signed)
    with pytest.raises(agentriage.BundleError) as excinfo:
        agentriage.Engine.from_bundle(signed, trusted_keys=[public_pem(publisher)])
    e = signature_error(excinfo)
    assert e.file is not None and Path(e.file).as_posix().endswith(file), e
    assert says in str(e)


def test_reload_keeps_the_live_bundle_when_the_new_one_is_not_signed(
    signed: Path, publisher: Ed25519PrivateKey
) -> None:
    engine = agentriage.Engine.from_bundle(signed, trusted_keys=[public_pem(publisher)])
    live = engine.bundle
    request = first_case()
    before = engine.decide(request).outcome

    manifest = signed / "bundle.toml"
    manifest.write_text(manifest.read_text().replace('revision = "2026.11.0"', 'revision = "2026.11.1"'))
    with pytest.raises(agentriage.BundleError) as excinfo:
        engine.reload(signed)
    assert "changed" in str(signature_error(excinfo))
    assert engine.bundle.digest == live.digest
    decision = engine.decide(request)
    assert decision.outcome is before
    assert decision.bundle.revision == "2026.11.0"
    assert "agentriage_reload_failures_total 1" in engine.metrics_text()

    # Signed by a key the engine does not trust: still refused.
    sign(signed, Ed25519PrivateKey.generate(), revision="2026.11.1")
    with pytest.raises(agentriage.BundleError):
        engine.reload(signed)
    assert engine.bundle.revision == "2026.11.0"

    # Signed by the publisher: swapped in.
    sign(signed, publisher, revision="2026.11.1")
    previous = engine.reload(signed)
    assert previous.digest == live.digest
    assert engine.bundle.revision == "2026.11.1"
    assert "agentriage_reload_failures_total 2" in engine.metrics_text()


def test_an_engine_without_trusted_keys_loads_unsigned_bundles() -> None:
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    assert not engine.requires_signature
    engine.reload(REFERENCE_BUNDLE)


def test_bad_trusted_keys_are_named(tmp_path: Path, signed: Path, publisher: Ed25519PrivateKey) -> None:
    with pytest.raises(ValueError, match=r"trusted_keys\[1\]"):
        agentriage.Engine.from_bundle(signed, trusted_keys=[public_pem(publisher), "not a key"])
    with pytest.raises(ValueError, match="empty"):
        agentriage.Engine.from_bundle(signed, trusted_keys=[])
    with pytest.raises(TypeError, match="list of public keys"):
        agentriage.Engine.from_bundle(signed, trusted_keys=public_pem(publisher))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"trusted_keys\[0\].*int"):
        agentriage.Engine.from_bundle(signed, trusted_keys=[42])  # type: ignore[list-item]
    with pytest.raises(OSError, match="missing.pem"):
        agentriage.Engine.from_bundle(signed, trusted_keys=[tmp_path / "missing.pem"])
    # A private key is not a public key.
    private = publisher.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ValueError, match=r"trusted_keys\[0\]"):
        agentriage.Engine.from_bundle(signed, trusted_keys=[private])
