#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target to fuzz/seeds/<target>/ from
the repository's test data. Run from anywhere; rerun when testdata/ or the
reference pack changes. (fuzz/seeds/log_verify/ holds a real decision log
made once with `agentriage eval --log-dir` and is not regenerated here.)"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "fuzz" / "seeds"
PACK = ROOT / "policies" / "a2a-supply-chain"

# The files BUNDLE_FILES in fuzz/src/lib.rs may replace (the signature aside);
# core/tests/fuzz_targets.rs fails when one has no up-to-date seed.
BUNDLE_FILES = [
    "bundle.toml",
    "rego/identity.rego",
    "rego/runtime.rego",
    "rego/thresholds.rego",
    "rego/intents.rego",
    "data/pack.json",
    "data/intent-keys.json",
    "data/approver-keys.json",
    "cedar/pack.cedar",
    "cedar/pack.cedarschema",
]


def write(target: str, name: str, data: bytes) -> None:
    out = SEEDS / target
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_bytes(data)


def main() -> None:
    for i, line in enumerate((ROOT / "testdata" / "requests.jsonl").read_text().splitlines()):
        write("request", f"valid-{i:02}", line.encode())
    invalid = json.loads((ROOT / "testdata" / "invalid-requests.json").read_text())["cases"]
    for i, case in enumerate(invalid):
        text = case["text"] if "text" in case else json.dumps(case["request"])
        write("request", f"invalid-{i:02}", text.encode())

    vectors = json.loads((ROOT / "testdata" / "intents" / "vectors.json").read_text())
    for i, v in enumerate(vectors["valid"] + vectors["invalid"]):
        write("intent", f"token-{i:02}", b"\x00" + v["token"].encode())
    # Edits of the target's own valid token: (offset lo, offset hi, byte).
    write("intent", "edit-none", b"\x01")
    write("intent", "edit-signature", b"\x01\xf0\x00A")
    write("intent", "edit-header", b"\x01\x05\x00x")
    write("intent", "keys", b"\x02" + (PACK / "data" / "intent-keys.json").read_bytes())

    for name in BUNDLE_FILES:
        write("bundle", name.replace("/", "-"), name.encode() + b"\n" + (PACK / name).read_bytes())
    write("bundle", "signature", b'.signature.json\n{"payloadType":"","payload":"","signatures":[]}')

    # policy_text: a byte k, a Rego module, NUL, Cedar policies. `valid-`
    # seeds load; `hostile-` ones are the load-limit attacks (k without
    # 0x40), refused before any parser runs.
    small_rego = (
        b"package agentriage\n\nreject contains r if {\n\tinput.action.name == \"x\"\n"
        b"\tr := {\"id\": \"R1\", \"message\": [1, {\"a\": (2 + 3)}]}\n}\n"
    )
    small_cedar = (
        b'@id("C1")\nforbid (principal, action, resource) when { context has a && (true || [1, 2].contains(1)) };\n'
    )
    write("policy_text", "valid-small", b"\x00" + small_rego + b"\x00" + small_cedar)
    write("policy_text", "valid-rego", b"\x00" + small_rego)
    write("policy_text", "valid-cedar", b"\x00\x00" + small_cedar)
    write("policy_text", "valid-pack-cedar", b"\x00\x00" + (PACK / "cedar" / "pack.cedar").read_bytes())
    write("policy_text", "valid-pack-runtime", b"\x00" + (PACK / "rego" / "runtime.rego").read_bytes())
    write("policy_text", "nesting-8", b"\x48" + small_rego + b"\x00" + small_cedar)
    write("policy_text", "nesting-63", b"\x7f" + small_rego + b"\x00" + small_cedar)
    write(
        "policy_text",
        "hostile-cedar-parens",
        b"\x00\x00permit (principal, action, resource) when { " + b"(" * 1000 + b"true" + b")" * 1000 + b" };\n",
    )
    write(
        "policy_text",
        "hostile-cedar-chain",
        b"\x00\x00permit (principal, action, resource) when { context" + b".a" * 50000 + b" };\n",
    )
    write(
        "policy_text",
        "hostile-rego-array",
        b"\x00package agentriage\n\nx := " + b"[" * 5000 + b"1" + b"]" * 5000 + b"\n",
    )
    wide = b"".join(b"x%d := " % i + b"[" * 12 + b"1" + b"]" * 12 + b"\n" for i in range(2000))
    write("policy_text", "hostile-rego-wide", b"\x00package agentriage\n\n" + wide)

    for name in ["tiny.json"]:
        assert (SEEDS / "anomaly_model" / name).exists()
    write(
        "anomaly_model",
        "anomaly-bundle-model.json",
        (ROOT / "testdata" / "anomaly" / "bundle" / "anomaly" / "model.json").read_bytes(),
    )


if __name__ == "__main__":
    main()
