"""Shared fixtures: the repository's test data and the reference bundle.

Files are found relative to this file, never the current directory.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

import agentriage

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parents[2]
TESTDATA = REPO / "testdata"
REFERENCE_BUNDLE = REPO / "policies" / "a2a-supply-chain"
ECHO_BUNDLE = TESTS / "bundles" / "echo"
BROKEN_BUNDLE = TESTS / "bundles" / "broken"

# scripts/test-python.sh sets this so that a missing optional tool (mypy, the
# agent framework, the test hooks) fails the run instead of skipping tests.
STRICT = os.environ.get("AGENTRIAGE_PY_STRICT") == "1"


def require(module: str) -> Any:
    """Imports `module`, or skips the test (fails it under STRICT)."""
    if STRICT:
        return __import__(module)
    return pytest.importorskip(module)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: null deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def load_json(name: str) -> Any:
    return json.loads((TESTDATA / name).read_text(encoding="utf-8"))


DECISIONS = load_json("decisions.json")
INVALID = load_json("invalid-requests.json")


def decision_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, request, case) for every case of testdata/decisions.json."""
    bases = DECISIONS["bases"]
    return [
        (case["name"], merge_patch(bases[case["base"]], case["patch"]), case)
        for case in DECISIONS["cases"]
    ]


def sample_lines() -> list[str]:
    """The lines of testdata/requests.jsonl (valid requests and some that are not)."""
    text = (TESTDATA / "requests.jsonl").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def sample_requests() -> list[str]:
    """The lines of testdata/requests.jsonl that are valid requests."""
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE)
    valid = []
    for line in sample_lines():
        try:
            engine.decide(line)
        except agentriage.InvalidRequestError:
            continue
        valid.append(line)
    assert valid, "requests.jsonl holds no valid request"
    return valid


@pytest.fixture(scope="session")
def engine() -> agentriage.Engine:
    # The shared cases are decided many times (per entry point, per thread)
    # and each signed intent verifies once: no replay check here. Replays
    # are tested in test_intent.py.
    return agentriage.Engine.from_bundle(REPO / DECISIONS["bundle"], replay_check=False)


@pytest.fixture(scope="session")
def echo() -> agentriage.Engine:
    return agentriage.Engine.from_bundle(ECHO_BUNDLE)
