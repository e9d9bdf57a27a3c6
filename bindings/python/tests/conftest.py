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
import yaml

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


INVALID = load_json("invalid-requests.json")
SUITES = REFERENCE_BUNDLE / "tests"


class _SuiteLoader(yaml.SafeLoader):
    """YAML 1.2 scalars as the engine reads them: `no`, `on`, `y` and dates
    stay strings (PyYAML resolves them YAML 1.1 style)."""


_SuiteLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _SuiteLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list(_first),
    )


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_SuiteLoader)


BASES: dict[str, Any] = load_yaml(SUITES / "bases.yaml")["bases"]
"""The requests the reference pack's suites start from, by name."""


def decision_cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, request, expect) for every case of the reference pack's YAML
    suites (policies/a2a-supply-chain/tests/*.yaml)."""
    cases = []
    for path in sorted(SUITES.glob("*.yaml")):
        suite = load_yaml(path)
        if "cases" not in suite:
            continue
        bases: dict[str, Any] = {}
        for imported in suite.get("import", []):
            bases.update(load_yaml(SUITES / imported)["bases"])
        bases.update(suite.get("bases", {}))
        defaults = suite.get("defaults", {})
        for case in suite["cases"]:
            request = case.get("request") or bases[case.get("base", defaults.get("base"))]
            request = merge_patch(request, case.get("patch", {}))
            if "time" in defaults and "time" not in request:
                request["time"] = defaults["time"]
            # `prior`: decisions of the same request the case's decision
            # follows, in an engine of its own (quotas, used approvals).
            expect = dict(case["expect"], prior=case.get("prior", 0))
            cases.append((case["name"], request, expect))
    return cases


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
    return agentriage.Engine.from_bundle(REFERENCE_BUNDLE, replay_check=False)


@pytest.fixture(scope="session")
def echo() -> agentriage.Engine:
    return agentriage.Engine.from_bundle(ECHO_BUNDLE)
