#!/usr/bin/env python3
"""Differential suite: agentriage against OPA (Go) and Cedar (cedarpy).

For every Rego module of `fidelity/rego/` and every Cedar policy set of
`fidelity/cedar/`, the runner generates requests deterministically from the
module's spec (`<module>.json` / `spec.json`), decides each with agentriage
(one bundle per Rego evaluator: the default, `vm`, `interpreter`) and with the
reference engine, maps the reference's answer to an outcome with agentriage's
combination rule, and compares outcomes and the sets of fired reasons.

    python fidelity/run.py                       # full run: 1000 requests per module
    python fidelity/run.py --count 200 --only a_binding,thresholds
    python fidelity/run.py --json out.json --markdown out.md

Needs, in the same Python: `agentriage` (pip install ./bindings/python),
`opa_bindings` (PyPI `opa-golib-python-bindings`) and `cedarpy`.
See docs/fidelity.md.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REGO_DIR = ROOT / "rego"
CEDAR_DIR = ROOT / "cedar"
EVALUATORS = ("default", "vm", "interpreter")
RANK = {"execute": 0, "escalate": 1, "reject": 2}
PACKAGE = "agentriage"
BASE_TIME = "2026-11-21T14:05:00Z"
CATEGORIES = ("agree", "permissive", "stricter", "reasons", "messages")
EXAMPLES_KEPT = 5

MISSING = object()

# Value pools of the generator kinds (see `gen_value`).
INTS = [0, 1, -1, 2, 7, 99, 100, 101, 999, 1000, 1001, 2**31, 2**53 + 1, 2**63 - 1, -(2**63)]
FLOATS = [0.1, 0.5, -0.0, 0.3, 1.5, 99.99, 100.0, 100.01, 500.01, 1e300, 2.5e-8, 1e21]
BIGS = [2**63, 2**64, 2**64 + 1, 2**70 + 1, 10**30, -(2**65)]
STRS = ["", "a", "abc", "ADMIN", "1_000", "12", "0x1F", " 7 ", "ünïcødé", "\U0001d518", "true", "null",
        "a\u0000b", "\u202etxt", "日本語", "x" * 300]


# ---- request generation ------------------------------------------------------


def gen_value(rng: random.Random, spec: dict, depth: int = 0) -> Any:
    """One value for a field spec `{"kinds": [...], "values": [...], ...}`."""
    kind = rng.choice(spec.get("kinds", ["value"]))
    if kind == "missing":
        return MISSING
    if kind == "null":
        return None
    if kind == "bool":
        return rng.choice([True, False])
    if kind == "int":
        return rng.choice(INTS)
    if kind == "float":
        return rng.choice(FLOATS)
    if kind == "big":
        return rng.choice(BIGS)
    if kind == "str":
        return rng.choice(STRS)
    if kind == "value":
        return rng.choice(spec["values"])
    if kind == "list":
        n = rng.randint(0, spec.get("max", 3))
        out = []
        for _ in range(n):
            if "item" in spec:
                out.append(gen_object(rng, spec["item"], depth + 1))
            elif "scalar" in spec:
                v = gen_value(rng, spec["scalar"], depth + 1)
                if v is not MISSING:
                    out.append(v)
            else:
                out.append(rng.choice(INTS + STRS))
        return out
    if kind == "obj":
        if "fields" in spec:
            return gen_object(rng, spec["fields"], depth + 1)
        return {"k": rng.choice(INTS)}
    raise ValueError(f"unknown generator kind `{kind}`")


def gen_object(rng: random.Random, fields: dict, depth: int) -> dict:
    out = {}
    for name, spec in fields.items():
        v = gen_value(rng, spec, depth)
        if v is not MISSING:
            out[name] = v
    return out


def set_path(obj: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    for p in parts[:-1]:
        obj = obj.setdefault(p, {})
    obj[parts[-1]] = value


def gen_request(rng: random.Random, spec: dict) -> dict:
    req: dict = {
        "principal": {"id": "spiffe://acme.example/ns/ops/sa/agent-1"},
        "action": {"name": rng.choice(spec.get("actions", ["shipment.reroute"]))},
        "resource": {"type": "shipment", "id": "SH-1001", "attributes": {}},
        "context": {},
        "time": rng.choice(spec.get("times", [BASE_TIME])),
    }
    for path, fspec in spec["fields"].items():
        v = gen_value(rng, fspec)
        if v is not MISSING:
            set_path(req, path, v)
    return req


# ---- the input agentriage gives Rego (core/src/rego.rs `fn input`) ---------


def parse_time(text: str) -> tuple[int, int]:
    """(unix seconds, nanoseconds) of a `...Z` timestamp as the generator writes them."""
    import datetime as dt

    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", text)
    if not m:
        raise ValueError(f"generator times must be canonical UTC: `{text}`")
    base = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    frac = (m.group(2) or "").ljust(9, "0")
    return int(base.timestamp()), int(frac or 0)


def rego_input(req: dict) -> dict:
    p = req["principal"]
    principal = {"id": p["id"]}
    for key in ("type", "trust_zone"):
        if key in p:
            principal[key] = p[key]
    principal["roles"] = p.get("roles", [])
    principal["delegation"] = p.get("delegation", [])
    principal["attributes"] = p.get("attributes", {})
    doc: dict = {
        "principal": principal,
        "action": {"name": req["action"]["name"], "attributes": req["action"].get("attributes", {})},
        "context": req.get("context", {}),
    }
    if "resource" in req:
        r = req["resource"]
        doc["resource"] = {"type": r["type"], "attributes": r.get("attributes", {})}
        if "id" in r:
            doc["resource"]["id"] = r["id"]
    time = req["time"]
    secs, nanos = parse_time(time)
    doc["time"] = time
    doc["facts"] = {
        "time": time,
        "time_unix": secs if nanos == 0 else (secs * 1_000_000_000 + nanos) / 1e9,
        "hour_utc": (secs // 3600) % 24,
        "risk_class": "unknown",
        "intent": {"status": "absent"},
    }
    return doc


# ---- outcomes ------------------------------------------------------------------


@dataclass
class Result:
    outcome: str
    reasons: frozenset  # of (effect, policy)
    messages: frozenset | None  # of (effect, policy, message); None: not compared
    note: str = ""

    def to_json(self) -> dict:
        out = {"outcome": self.outcome, "reasons": sorted(f"{e}:{p}" for e, p in self.reasons)}
        if self.note:
            out["note"] = self.note
        return out


def combine(reasons: list[tuple[str, str, str]], permitted: bool, note: str = "") -> Result:
    """agentriage's rule: any reject, else any escalate, else permit, else `no_permit` (reject)."""
    if any(e == "reject" for e, _, _ in reasons):
        outcome = "reject"
    elif reasons:
        outcome = "escalate"
    elif permitted:
        outcome = "execute"
    else:
        outcome = "reject"
        reasons = [("reject", "default", "")]
    return Result(
        outcome,
        frozenset((e, p) for e, p, _ in reasons),
        frozenset((e, p, m) for e, p, m in reasons if p not in ("default", "error")),
        note,
    )


def error_result(note: str) -> Result:
    return Result("reject", frozenset({("reject", "error")}), frozenset(), note)


def agentriage_result(engine, text: str) -> Result | None:
    import agentriage

    try:
        d = engine.decide(text)
    except agentriage.InvalidRequestError:
        return None
    outcome = str(d.outcome.value if hasattr(d.outcome, "value") else d.outcome)
    reasons = [(r.effect, r.policy, r.message) for r in d.reasons if r.effect != "permit"]
    notes = [r.message for r in d.reasons if r.policy in ("error", "default") or r.engine == "agentriage"]
    if outcome == "execute":
        return Result("execute", frozenset(), frozenset(), "")
    pairs = frozenset((e, p) for e, p, _ in reasons)
    msgs = frozenset((e, p, m) for e, p, m in reasons if p not in ("default", "error"))
    return Result(outcome, pairs, msgs, "; ".join(notes)[:300])


def classify(ours: Result, ref: Result) -> str:
    if RANK[ours.outcome] < RANK[ref.outcome]:
        return "permissive"
    if RANK[ours.outcome] > RANK[ref.outcome]:
        return "stricter"
    if ours.reasons != ref.reasons:
        return "reasons"
    if ours.messages is not None and ref.messages is not None and ours.messages != ref.messages:
        return "messages"
    return "agree"


# ---- Rego: OPA as the reference --------------------------------------------


def defined_rules(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^(reject|escalate|obligations|allow)\b", text, re.M)}


def wrapper_module(rules: set[str]) -> str:
    """The same entry point agentriage compiles (core/src/rego.rs `wrapper_module`)."""

    def s(name: str) -> str:
        return f"data.{PACKAGE}.{name}" if name in rules else "set()"

    allow = f"allow if data.{PACKAGE}.allow == true\n" if "allow" in rules else ""
    return (
        "package __agentriage\nimport rego.v1\ndefault allow := false\n"
        f"{allow}decision := {{\n\"reject\": {s('reject')},\n\"escalate\": {s('escalate')},\n"
        f"\"obligations\": {s('obligations')},\n\"allow\": allow,\n}}\n"
    )


def rego_reason(item: Any, rule: str) -> tuple[str, str]:
    default = f"{PACKAGE}.{rule}"
    if isinstance(item, str):
        return default, item
    if isinstance(item, dict):
        pid = item.get("id") if isinstance(item.get("id"), str) else default
        msg = item.get("message", item.get("msg"))
        return pid, msg if isinstance(msg, str) else json.dumps(item, sort_keys=True)
    return default, json.dumps(item)


class OpaReference:
    def __init__(self, name: str, text: str):
        from opa_bindings import OpaEngine

        self.engine = OpaEngine()
        self.engine.add_policy(f"{name}.rego", text)
        self.engine.add_policy("__agentriage.rego", wrapper_module(defined_rules(text)))

    def decide(self, req: dict) -> Result:
        from opa_bindings import OpaError

        try:
            doc = self.engine.eval_document("__agentriage.decision", input=rego_input(req))
        except OpaError as e:
            return error_result(f"opa {e.code}: {e.message}"[:300])
        reasons = []
        for rule, effect in (("reject", "reject"), ("escalate", "escalate")):
            for item in doc.get(rule) or []:
                pid, msg = rego_reason(item, rule)
                reasons.append((effect, pid, msg))
        return combine(reasons, doc.get("allow") is True)


# ---- Cedar: cedarpy as the reference --------------------------------------


class Unrepresentable(Exception):
    pass


def cedar_json(v: Any, depth: int = 0) -> Any:
    """A request value as Cedar JSON, exactly, or `Unrepresentable`; `MISSING` for null."""
    if depth > 64:
        raise Unrepresentable("nests too deep")
    if v is None:
        return MISSING
    if isinstance(v, bool) or isinstance(v, str):
        return v
    if isinstance(v, int):
        if -(2**63) <= v < 2**63:
            return v
        raise Unrepresentable(f"integer {v} is beyond Cedar's Long")
    if isinstance(v, (float, Decimal)):
        # The request's number text, read exactly (`parse_float=Decimal`): a
        # whole number is a Long, one with at most four fraction digits a
        # decimal; anything else has no Cedar counterpart.
        exact = Decimal(v)
        if not exact.is_finite():
            raise Unrepresentable(f"number {v} is not finite")
        if exact == exact.to_integral_value():
            if -(2**63) <= exact < 2**63:
                return int(exact)
            raise Unrepresentable(f"number {v} is beyond Cedar's Long")
        if abs(exact) < Decimal("922337203685477") and exact == exact.quantize(Decimal("0.0001")):
            return {"__extn": {"fn": "decimal", "arg": f"{exact:.4f}"}}
        raise Unrepresentable(f"number {v} is not exactly a Cedar decimal")
    if isinstance(v, list):
        return [x for x in (cedar_json(i, depth + 1) for i in v) if x is not MISSING]
    if isinstance(v, dict):
        return {k: x for k, x in ((k, cedar_json(i, depth + 1)) for k, i in v.items()) if x is not MISSING}
    raise Unrepresentable(f"unexpected value {v!r}")


def _block_keys(text: str, start: int) -> list[str]:
    """Top-level keys of the `{ … }` record type opening at text[start]."""
    depth, keys, item = 0, [], ""
    for ch in text[start:]:
        if ch in "{<[":
            depth += 1
            if depth == 1:
                continue
        elif ch in "}>]":
            depth -= 1
            if depth == 0:
                break
        if depth == 1 and ch == ",":
            keys.append(item)
            item = ""
        else:
            item += ch
    keys.append(item)
    out = []
    for k in keys:
        if ":" in k:
            out.append(k.split(":", 1)[0].strip().rstrip("?").strip().strip('"'))
    return out


def declared_attributes(schema: str) -> dict:
    """What a Cedar schema declares, as agentriage reads it: the top-level
    attributes of `Agent` and `Resource`, and each action's context fields.
    agentriage leaves undeclared request attributes out of what Cedar sees
    (strictly validated policies cannot refer to them; docs/fidelity.md), so
    the reference is given the same request."""
    schema = re.sub(r"//[^\n]*", "", schema)
    types = {}
    for m in re.finditer(r"\btype\s+(\w+)\s*=\s*\{", schema):
        types[m.group(1)] = _block_keys(schema, m.end() - 1)
    entities = {}
    for m in re.finditer(r"\bentity\s+([\w, ]+?)(?:\s+in\s+\[[^\]]*\])?\s*(\{|;)", schema):
        keys = _block_keys(schema, m.end() - 1) if m.group(2) == "{" else []
        for name in m.group(1).split(","):
            entities[name.strip()] = set(keys)
    contexts = {}
    for m in re.finditer(r"\baction\s+(.+?)\s+appliesTo\s*\{", schema, re.S):
        names = re.findall(r'"([^"]+)"', m.group(1)) or [m.group(1).strip()]
        body_start = m.end() - 1
        body = schema[body_start: schema.find("};", body_start) + 1]
        cm = re.search(r"context\s*:\s*(\{|\w+)", body)
        if cm is None:
            keys = set()
        elif cm.group(1) == "{":
            keys = set(_block_keys(body, cm.end() - 1))
        else:
            keys = set(types.get(cm.group(1), []))
        for n in names:
            contexts[n] = keys
    return {"entities": entities, "contexts": contexts}


class CedarReference:
    def __init__(self, directory: Path):
        self.policies = (directory / "policies.cedar").read_text()
        self.schema = (directory / "schema.cedarschema").read_text()
        self.declared = declared_attributes(self.schema)
        self.entities = json.loads((directory / "entities.json").read_text())
        self.static = {(e["uid"]["type"], e["uid"]["id"]) for e in self.entities}
        chunks = self.policies.split('@id("')[1:]
        count = len(re.findall(r"^\s*(permit|forbid)\s*\(", self.policies, re.M))
        if len(chunks) != count:
            raise ValueError(f"{directory}: every policy needs an `@id` written first")
        self.meta = []  # index -> (id, effect of a match)
        for chunk in chunks:
            pid = chunk.split('")', 1)[0]
            outcome = re.search(r'@outcome\("(\w+)"\)', chunk)
            forbid = re.search(r"^\s*forbid\s*\(", chunk, re.M) is not None
            effect = "permit" if not forbid else (outcome.group(1) if outcome else "reject")
            self.meta.append((pid, effect))

    def _policy(self, name: str) -> tuple[str, str]:
        m = re.fullmatch(r"policy(\d+)", name)
        if not m or int(m.group(1)) >= len(self.meta):
            return name, "reject"
        return self.meta[int(m.group(1))]

    def decide(self, req: dict) -> Result:
        import cedarpy

        try:
            request, entities = self._request(req)
        except Unrepresentable as e:
            return error_result(f"reference: {e}")
        r = cedarpy.is_authorized(request, self.policies, entities, schema=self.schema)
        reasons = []
        for err in r.diagnostics.errors:
            m = re.search(r"policy `?(policy\d+)`?", err)
            if m is None:
                return error_result(f"cedar: {err}"[:300])
            reasons.append(("reject", self._policy(m.group(1))[0], ""))
        allowed = r.decision == cedarpy.Decision.Allow
        for name in r.diagnostics.reasons:
            pid, effect = self._policy(name)
            if effect != "permit":
                reasons.append((effect, pid, ""))
        if r.decision == cedarpy.Decision.NoDecision and not reasons:
            return error_result("cedar: no decision")
        # Messages come from agentriage's `@reason` annotations, not from
        # Cedar: only outcomes and policy ids are compared.
        result = combine(reasons, allowed)
        result.messages = None
        return result

    def _request(self, req: dict) -> tuple[dict, list]:
        entities = list(self.entities)
        p = req["principal"]
        agent = self.declared["entities"].get("Agent", set())
        resource = self.declared["entities"].get("Resource", set())
        context_keys = self.declared["contexts"].get(req["action"]["name"])
        if ("Agent", p["id"]) not in self.static:
            attrs = cedar_json({k: v for k, v in p.get("attributes", {}).items() if k in agent})
            for key in ("type", "trust_zone"):
                if key in p and key in agent:
                    attrs[key] = p[key]
            entities.append({"uid": {"type": "Agent", "id": p["id"]}, "attrs": attrs, "parents": []})
        res = req.get("resource")
        rid = res.get("id", "") if res else ""
        if res is not None and ("Resource", rid) not in self.static:
            attrs = cedar_json({k: v for k, v in res.get("attributes", {}).items() if k in resource})
            if "type" in resource:
                attrs["type"] = res["type"]
            if "id" in resource:
                attrs["id"] = rid
            entities.append({"uid": {"type": "Resource", "id": rid}, "attrs": attrs, "parents": []})
        context = req.get("context", {})
        if context_keys is not None:
            context = {k: v for k, v in context.items() if k in context_keys}
        context = cedar_json(context)
        context["delegation"] = list(p.get("delegation", []))
        secs, nanos = parse_time(req["time"])
        millis = nanos // 1_000_000
        base = req["time"].split(".")[0].rstrip("Z")
        context["facts"] = {
            "time": {"__extn": {"fn": "datetime", "arg": f"{base}.{millis:03}Z" if millis else f"{base}Z"}},
            "time_unix": secs,
            "hour_utc": (secs // 3600) % 24,
            "risk_class": "unknown",
            "intent": {"status": "absent"},
        }
        request = {
            "principal": {"type": "Agent", "id": p["id"]},
            "action": {"type": "Action", "id": req["action"]["name"]},
            "resource": {"type": "Resource", "id": rid},
            "context": context,
        }
        return request, entities


# ---- bundles -------------------------------------------------------------------


def rego_bundle(tmp: Path, name: str, text: str, evaluator: str) -> Path:
    d = tmp / f"rego-{name}-{evaluator}"
    d.mkdir()
    (d / "policy.rego").write_text(text)
    line = "" if evaluator == "default" else f'evaluator = "{evaluator}"\n'
    (d / "bundle.toml").write_text(
        f'name = "fidelity-{name}"\nrevision = "1"\n[rego]\nmodules = ["policy.rego"]\n{line}'
    )
    return d


def cedar_bundle(tmp: Path, name: str, src: Path) -> Path:
    d = tmp / f"cedar-{name}"
    d.mkdir()
    for f in ("policies.cedar", "schema.cedarschema", "entities.json"):
        (d / f).write_text((src / f).read_text())
    (d / "bundle.toml").write_text(
        f'name = "fidelity-{name}"\nrevision = "1"\n[cedar]\npolicies = ["policies.cedar"]\n'
        'schema = "schema.cedarschema"\nentities = ["entities.json"]\n'
    )
    return d


# ---- the run -------------------------------------------------------------------


@dataclass
class Tally:
    module: str
    engine: str
    evaluator: str
    classes: list
    requests: int = 0
    invalid: int = 0
    load_error: str = ""
    counts: dict = field(default_factory=lambda: {c: 0 for c in CATEGORIES})
    examples: dict = field(default_factory=dict)  # category -> [(size, example)]

    def add(self, category: str, text: str, ours: Result, ref: Result) -> None:
        self.requests += 1
        self.counts[category] += 1
        if category == "agree":
            return
        kept = self.examples.setdefault(category, [])
        example = {
            "request": json.loads(text),
            "agentriage": ours.to_json(),
            "reference": ref.to_json(),
        }
        kept.append((len(text), text, example))
        kept.sort(key=lambda x: (x[0], x[1]))
        # Keep distinct outcome pairs first, then the smallest.
        seen, unique = set(), []
        for item in kept:
            key = (json.dumps(item[2]["agentriage"], sort_keys=True), json.dumps(item[2]["reference"], sort_keys=True))
            if key not in seen:
                seen.add(key)
                unique.append(item)
        rest = [i for i in kept if i not in unique]
        self.examples[category] = (unique + rest)[:EXAMPLES_KEPT]

    def to_json(self) -> dict:
        return {
            "module": self.module,
            "engine": self.engine,
            "evaluator": self.evaluator,
            "classes": self.classes,
            "requests": self.requests,
            "invalid_requests": self.invalid,
            "load_error": self.load_error,
            "counts": self.counts,
            "examples": {c: [e for _, _, e in v] for c, v in self.examples.items()},
        }


def modules(only: set[str] | None) -> tuple[list[str], list[str]]:
    rego = sorted(p.stem for p in REGO_DIR.glob("*.rego"))
    cedar = sorted(p.name for p in CEDAR_DIR.iterdir() if (p / "policies.cedar").is_file())
    if only:
        unknown = only - set(rego) - set(cedar)
        if unknown:
            raise SystemExit(f"unknown modules: {', '.join(sorted(unknown))}")
        rego = [m for m in rego if m in only]
        cedar = [m for m in cedar if m in only]
    return rego, cedar


def run(count: int = 1000, seed: int = 20261202, only: set[str] | None = None,
        evaluators: tuple[str, ...] = EVALUATORS) -> list[Tally]:
    import agentriage

    rego_names, cedar_names = modules(only)
    tallies: list[Tally] = []
    with tempfile.TemporaryDirectory(prefix="agentriage-fidelity-") as tmp_name:
        tmp = Path(tmp_name)
        for name in rego_names:
            text = (REGO_DIR / f"{name}.rego").read_text()
            spec = json.loads((REGO_DIR / f"{name}.json").read_text())
            reference = OpaReference(name, text)
            mine = {ev: Tally(name, "rego", ev, spec["classes"]) for ev in evaluators}
            try:
                engines = {ev: agentriage.Engine.from_bundle(rego_bundle(tmp, name, text, ev)) for ev in evaluators}
            except agentriage.BundleError as e:
                # Refused at load: strict, nothing to compare; reported as such.
                for t in mine.values():
                    t.load_error = str(e)
                tallies.extend(mine.values())
                continue
            rng = random.Random(f"{seed}:{name}")
            for _ in range(count):
                req = gen_request(rng, spec)
                text_req = json.dumps(req, ensure_ascii=False)
                ref = None
                for ev in evaluators:
                    ours = agentriage_result(engines[ev], text_req)
                    if ours is None:
                        mine[ev].invalid += 1
                        continue
                    if ref is None:
                        ref = reference.decide(json.loads(text_req))
                    mine[ev].add(classify(ours, ref), text_req, ours, ref)
            tallies.extend(mine.values())
        for name in cedar_names:
            src = CEDAR_DIR / name
            spec = json.loads((src / "spec.json").read_text())
            reference = CedarReference(src)
            engine = agentriage.Engine.from_bundle(cedar_bundle(tmp, name, src))
            tally = Tally(name, "cedar", "cedar", spec["classes"])
            rng = random.Random(f"{seed}:{name}")
            for _ in range(count):
                req = gen_request(rng, spec)
                text_req = json.dumps(req, ensure_ascii=False)
                ours = agentriage_result(engine, text_req)
                if ours is None:
                    tally.invalid += 1
                    continue
                ref = reference.decide(json.loads(text_req, parse_float=Decimal))
                tally.add(classify(ours, ref), text_req, ours, ref)
            tallies.append(tally)
    return tallies


def pct(n: int, d: int) -> str:
    return "—" if d == 0 else f"{100 * n / d:.1f} %"


def _cell(counts: dict, n: int) -> str:
    if n == 0:
        return "—"
    extra = [f"{counts[c]} {label}" for c, label in
             (("permissive", "**more permissive**"), ("stricter", "stricter"),
              ("reasons", "other reasons"), ("messages", "other messages")) if counts[c]]
    return pct(counts["agree"], n) + ("" if not extra else " · " + ", ".join(extra))


def markdown(tallies: list[Tally], count: int, seed: int) -> str:
    """Two tables: per module and per class; a cell is the agreement and each kind of divergence."""
    columns = ["default", "vm", "interpreter", "cedar"]
    lines = [
        f"{count} generated requests per module (seed {seed}); a cell reads: requests on which "
        "outcome and fired reasons agree, then the count of each divergence.",
        "",
        "| module | classes | default | vm | interpreter | cedar |",
        "|---|---|---|---|---|---|",
    ]
    by_module: dict = {}
    for t in tallies:
        by_module.setdefault(t.module, {"classes": t.classes})[t.evaluator] = t
    for module, row in by_module.items():
        cells = []
        for ev in columns:
            t = row.get(ev)
            if t is None:
                cells.append("")
            elif t.load_error:
                cells.append("refused at load")
            else:
                cells.append(_cell(t.counts, t.requests))
        lines.append(f"| {module} | {', '.join(row['classes'])} | " + " | ".join(cells) + " |")
    per_class: dict = {}
    for t in tallies:
        for cls in t.classes:
            agg = per_class.setdefault(cls, {}).setdefault(t.evaluator, {c: 0 for c in CATEGORIES} | {"n": 0})
            agg["n"] += t.requests
            for c in CATEGORIES:
                agg[c] += t.counts[c]
    lines += ["", "| class | default | vm | interpreter | cedar |", "|---|---|---|---|---|"]
    for cls, row in per_class.items():
        cells = [_cell(row[ev], row[ev]["n"]) if ev in row else "" for ev in columns]
        lines.append(f"| {cls} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def permissive(tallies: list[Tally], evaluator: str) -> dict[str, list]:
    """Module → the smallest more-permissive examples, for one evaluator (`cedar` for Cedar sets)."""
    return {t.module: [e for _, _, e in t.examples.get("permissive", [])]
            for t in tallies if t.evaluator == evaluator and t.counts["permissive"]}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="requests per module (default 1000)")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--only", help="comma-separated module / policy-set names")
    ap.add_argument("--json", type=Path, help="write the full report (counts, smallest examples) here")
    ap.add_argument("--markdown", type=Path, help="write the agreement tables here")
    ap.add_argument("--examples", action="store_true", help="print the smallest example of each divergence")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    tallies = run(args.count, args.seed, only)
    table = markdown(tallies, args.count, args.seed)
    print(table)
    if args.examples:
        for t in tallies:
            for cat, items in t.examples.items():
                for _, _, e in items[:2]:
                    print(f"{t.module} [{t.evaluator}] {cat}: {json.dumps(e, ensure_ascii=False)}")
    if args.json:
        report = {"count": args.count, "seed": args.seed, "results": [t.to_json() for t in tallies]}
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    worst = permissive(tallies, "default") | permissive(tallies, "cedar")
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
