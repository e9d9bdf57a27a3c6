#!/usr/bin/env python3
"""Side by side, in one Python process: the agentriage module against other engines.

Not a test: a benchmark (bench/compare/README.md). On the reference pack
(policies/a2a-supply-chain) and its typical request — the `baseline reroute
executes` case of the pack's suites: both halves run, it executes — it times,
in one run, one call at a time:

- `agentriage.Engine.decide(dict)`: the whole decision (facts, Rego half,
  Cedar half, combination);
- `floor`: plain Python implementing the pack's rules (R1-R15, both halves)
  for this request class — derived facts from the request, the registry
  look-ups, every rule's condition — with nothing general: a lower bound of
  what a hand-written check costs in Python;
- `opa`: OPA's Go engine in-process (`opa-golib-python-bindings`), the pack's
  Rego half (its modules and data) on the input agentriage gives Rego, with
  the derived facts precomputed once (OPA's advantage);
- `cedarpy`: the pack's Cedar half (policies, schema) on the Cedar request
  agentriage builds (entities, context with the facts), precomputed once;
- `regorus_vm`, `regorus`: regorus's Python binding on the Rego half, same
  input as OPA: its VM (program compiled once, run to completion) and its
  interpreter. PyPI has no `regorus` package; the binding comes from
  `gordon-to-regorus` (a published build of microsoft/regorus's binding,
  importable as `regorus`).

Before timing, each peer must give the answer agentriage gives (execute; no
reject or escalate reason from its half); a disagreement stops the script.
It prints p50 and p99 per call, each peer's p50 over agentriage's, and the
load average (`os.getloadavg()`). A peer that is not installed is reported
as missing; `--require-all` makes that an error (exit status 1).

    target/venv-python/bin/python bench/compare/compare.py [--n 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "policies" / "a2a-supply-chain"
CASE = "baseline reroute executes"


# ---- the request -----------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the pack's suites apply a case's `patch` to its base."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def typical_request() -> dict[str, Any]:
    """The request of the suite case `baseline reroute executes`."""
    import yaml

    suite = yaml.safe_load((PACK / "tests" / "baseline.yaml").read_text(encoding="utf-8"))
    bases = yaml.safe_load((PACK / "tests" / "bases.yaml").read_text(encoding="utf-8"))["bases"]
    case = next(c for c in suite["cases"] if c["name"] == CASE)
    base = case.get("base", suite.get("defaults", {}).get("base"))
    assert case["expect"]["outcome"] == "execute", case
    return merge_patch(bases[base], case.get("patch", {}))


def load_fidelity() -> Any:
    """fidelity/run.py: the entry point and the Cedar conversion the differential suite uses."""
    spec = importlib.util.spec_from_file_location("agentriage_fidelity", REPO / "fidelity" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def manifest() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((PACK / "bundle.toml").read_text(encoding="utf-8"))


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def risk_class(action: str, classes: dict[str, list[str]]) -> str:
    for name, actions in classes.items():
        if action in actions:
            return name
    return "unknown"


def rego_input(req: dict[str, Any], classes: dict[str, list[str]]) -> dict[str, Any]:
    """The input agentriage gives Rego (docs/policy-authoring.md, "What the
    policies see"): the request normalised, plus `facts`. Written for the
    fields the typical request has (no intent, no subject)."""
    p = req["principal"]
    principal: dict[str, Any] = {"id": p["id"]}
    for key in ("type", "trust_zone", "credential", "attestation"):
        if key in p:
            principal[key] = p[key]
    principal["roles"] = p.get("roles", [])
    principal["delegation"] = p.get("delegation", [])
    principal["attributes"] = p.get("attributes", {})
    now = instant(req["time"])
    facts: dict[str, Any] = {
        "time": req["time"],
        "time_unix": int(now.timestamp()),
        "hour_utc": now.hour,
        "risk_class": risk_class(req["action"]["name"], classes),
        "intent": {"status": "absent"},
    }
    if "expires_at" in p.get("credential", {}):
        facts["credential_ttl_s"] = int((instant(p["credential"]["expires_at"]) - now).total_seconds())
    if "verified_at" in p.get("attestation", {}):
        facts["attestation_age_s"] = int((now - instant(p["attestation"]["verified_at"])).total_seconds())
    if "score" in req.get("anomaly", {}):
        facts["anomaly_score"] = req["anomaly"]["score"]
    doc: dict[str, Any] = {
        "time": req["time"],
        "principal": principal,
        "action": {"name": req["action"]["name"], "attributes": req["action"].get("attributes", {})},
        "resource": {
            "type": req["resource"]["type"],
            "id": req["resource"]["id"],
            "attributes": req["resource"].get("attributes", {}),
        },
        "context": req.get("context", {}),
        "facts": facts,
    }
    for key in ("trace_id", "anomaly"):
        if key in req:
            doc[key] = req[key]
    assert "intent" not in req and "on_behalf_of" not in p, "written for requests without intent or subject"
    return doc


def cedar_request(fid: Any, req: dict[str, Any], schema: str, facts: dict[str, Any]) -> tuple[dict, list]:
    """The Cedar request agentriage builds (docs/policy-authoring.md, "Cedar's
    request"): undeclared attributes left out, the facts with Cedar's types."""
    declared = fid.declared_attributes(schema)
    p, res = req["principal"], req["resource"]
    agent_attrs = fid.cedar_json({k: v for k, v in p.get("attributes", {}).items() if k in declared["entities"]["Agent"]})
    for key in ("type", "trust_zone"):
        if key in p and key in declared["entities"]["Agent"]:
            agent_attrs[key] = p[key]
    resource_decl = declared["entities"]["Resource"]
    res_attrs = fid.cedar_json({k: v for k, v in res.get("attributes", {}).items() if k in resource_decl})
    res_attrs["type"], res_attrs["id"] = res["type"], res["id"]
    entities = [
        {"uid": {"type": "Agent", "id": p["id"]}, "attrs": agent_attrs, "parents": []},
        {"uid": {"type": "Resource", "id": res["id"]}, "attrs": res_attrs, "parents": []},
    ]
    keys = declared["contexts"][req["action"]["name"]]
    context = fid.cedar_json({k: v for k, v in req.get("context", {}).items() if k in keys})
    context["delegation"] = list(p.get("delegation", []))
    score = Decimal(str(facts["anomaly_score"])).quantize(Decimal("0.0001"), rounding=ROUND_CEILING)
    context["facts"] = {
        "time": {"__extn": {"fn": "datetime", "arg": facts["time"]}},
        "time_unix": facts["time_unix"],
        "hour_utc": facts["hour_utc"],
        "risk_class": facts["risk_class"],
        "credential_ttl_s": facts["credential_ttl_s"],
        "attestation_age_s": facts["attestation_age_s"],
        "anomaly_score": {"__extn": {"fn": "decimal", "arg": f"{score:.4f}"}},
        "intent": {"status": "absent"},
    }
    request = {
        "principal": {"type": "Agent", "id": p["id"]},
        "action": {"type": "Action", "id": req["action"]["name"]},
        "resource": {"type": "Resource", "id": res["id"]},
        "context": context,
    }
    return request, entities


# ---- the plain-Python floor -------------------------------------------------


def make_floor(data: dict[str, Any], classes: dict[str, list[str]]) -> Callable[[dict[str, Any]], tuple[str, list[str]]]:
    """The pack's rules in plain Python: (outcome, reason ids)."""
    pack = data["pack"]
    agents, roles, thresholds = pack["agents"], pack["roles"], pack["value_thresholds"]
    risk_of = {a: c for c, actions in classes.items() for a in actions}
    max_age, max_delegators = pack["attestation_max_age_s"], pack["max_delegators"]
    hours = pack["regulated_hours_utc"]
    parse = dt.datetime.fromisoformat

    def permits(agent_id: str, action: str) -> bool:
        agent = agents.get(agent_id)
        return agent is not None and any(action in roles.get(r, ()) for r in agent["roles"])

    def decide(req: dict[str, Any]) -> tuple[str, list[str]]:
        p, action = req["principal"], req["action"]["name"]
        res_attrs = req.get("resource", {}).get("attributes", {})
        ctx = req.get("context", {})
        now = parse(req["time"])
        risk = risk_of.get(action, "unknown")
        reject: list[str] = []
        escalate: list[str] = []
        # Rego half.
        registered = p["id"] in agents
        if not registered:
            reject.append("R1.unregistered_principal")
        if risk == "unknown":
            reject.append("R2.unknown_action")
        allowed = permits(p["id"], action)
        if registered and not allowed:
            reject.append("R3.role_not_permitted")
        delegation = p.get("delegation", [])
        for d in delegation:
            if d not in agents:
                reject.append("R12.unregistered_delegator")
            elif not permits(d, action):
                reject.append("R12.delegator_not_permitted")
        if len(delegation) > max_delegators:
            escalate.append("R12.long_delegation_chain")
        expires = p.get("credential", {}).get("expires_at")
        if expires is not None and (parse(expires) - now).total_seconds() <= 0:
            reject.append("R4.credential_expired")
        att = p.get("attestation")
        status = att.get("status") if att else None
        if status is not None and status != "verified":
            (reject if risk in ("transactional", "regulated") else escalate).append("R5.attestation_not_verified")
        if status is None and risk in ("transactional", "regulated"):
            (reject if risk == "regulated" else escalate).append("R5.attestation_missing")
        if status == "verified":
            verified = att.get("verified_at")
            if verified is None or (now - parse(verified)).total_seconds() > max_age:
                if risk in ("transactional", "regulated"):
                    (reject if risk == "regulated" else escalate).append("R5.attestation_stale")
        if risk == "regulated" and not hours["from"] <= now.hour < hours["until"]:
            escalate.append("R13.outside_business_hours")
        threshold = thresholds.get(action)
        if threshold is not None and threshold["attribute"] in res_attrs:
            v = res_attrs[threshold["attribute"]]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v > threshold["max"]:
                escalate.append("R9.value_threshold")
        if "intent" not in req and risk == "regulated":
            escalate.append("R14.intent_missing")
        if "intent" in req or "on_behalf_of" in p:
            raise ValueError("the floor is written for requests without intent or subject")
        # Cedar half.
        if ctx.get("incident_mode") is True and risk != "read_only":
            escalate.append("R6.incident_mode")
        if ctx.get("site") == "edge-site-13" and risk != "read_only":
            reject.append("R7.quarantined_site")
        state = res_attrs.get("state")
        if action in ("shipment.reroute", "shipment.hold") and req["resource"]["type"] == "shipment" \
                and state in ("delivered", "closed", "cancelled"):
            reject.append("R8.shipment_closed")
        score = req.get("anomaly", {}).get("score")
        if score is not None:
            if score >= 0.9 and risk in ("transactional", "regulated"):
                reject.append("R10.anomaly_reject")
            elif score >= 0.7:
                escalate.append("R10.anomaly_escalate")
        if action == "device.firmware.update":
            reject.append("R11.kill_switch")
        if reject:
            return "reject", reject + escalate
        if escalate:
            return "escalate", escalate
        return ("execute", []) if allowed else ("reject", ["default"])

    return decide


# ---- timing ------------------------------------------------------------------


def time_calls(call: Callable[[], object], n: int) -> list[int]:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        call()
        samples.append(clock() - t0)
    return samples


def percentiles(samples: list[int]) -> tuple[float, float]:
    s = sorted(samples)
    return s[len(s) // 2] / 1000, s[min(len(s) - 1, len(s) * 99 // 100)] / 1000


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} CPUs)"


# ---- peers -------------------------------------------------------------------


class Missing(Exception):
    """A peer package is not installed."""


def opa_peer(fid: Any, m: dict[str, Any], doc: dict[str, Any]) -> Callable[[], Any]:
    try:
        from opa_bindings import OpaEngine
    except ImportError as e:
        raise Missing("opa-golib-python-bindings") from e
    opa = OpaEngine()
    texts = [(PACK / name).read_text(encoding="utf-8") for name in m["rego"]["modules"]]
    for name, text in zip(m["rego"]["modules"], texts):
        opa.add_policy(name, text)
    for name in m["rego"]["data"]:
        opa.add_data(json.loads((PACK / name).read_text(encoding="utf-8")))
    rules = set().union(*(fid.defined_rules(t) for t in texts))
    opa.add_policy("__agentriage.rego", fid.wrapper_module(rules))
    return lambda: opa.eval_document("__agentriage.decision", input=doc)


def regorus_modules(fid: Any, m: dict[str, Any]) -> list[tuple[str, str]]:
    """The pack's Rego modules and the entry point agentriage compiles."""
    modules = [(name, (PACK / name).read_text(encoding="utf-8")) for name in m["rego"]["modules"]]
    rules = set().union(*(fid.defined_rules(text) for _, text in modules))
    return modules + [("__agentriage.rego", fid.wrapper_module(rules))]


def import_regorus() -> Any:
    try:
        import regorus
    except ImportError as e:
        raise Missing("gordon-to-regorus") from e
    return regorus


def regorus_peer(fid: Any, m: dict[str, Any], doc: dict[str, Any]) -> Callable[[], Any]:
    """regorus's interpreter (`Engine.eval_rule`), input given as JSON text per call."""
    regorus = import_regorus()
    engine = regorus.Engine()
    for name, text in regorus_modules(fid, m):
        engine.add_policy(name, text)
    for name in m["rego"]["data"]:
        engine.add_data_json((PACK / name).read_text(encoding="utf-8"))
    text = json.dumps(doc)

    def call() -> Any:
        engine.set_input_json(text)
        return json.loads(engine.eval_rule_as_json("data.__agentriage.decision"))

    return call


def regorus_vm_peer(fid: Any, m: dict[str, Any], doc: dict[str, Any]) -> Callable[[], Any]:
    """regorus's VM (`Program` compiled once, `Rvm` run to completion), input as JSON text per call."""
    regorus = import_regorus()
    data = (PACK / m["rego"]["data"][0]).read_text(encoding="utf-8")
    assert len(m["rego"]["data"]) == 1, "written for one data file"
    program = regorus.Program.compile_from_modules(data, regorus_modules(fid, m), ["data.__agentriage.decision"])
    vm = regorus.Rvm()
    vm.load_program(program)
    vm.set_data_json(data)
    vm.set_execution_mode(0)
    text = json.dumps(doc)

    def call() -> Any:
        vm.set_input_json(text)
        return json.loads(vm.execute())

    return call


def cedarpy_peer(fid: Any, m: dict[str, Any], req: dict[str, Any], facts: dict[str, Any]) -> Callable[[], Any]:
    try:
        import cedarpy
    except ImportError as e:
        raise Missing("cedarpy") from e
    policies = "\n".join((PACK / name).read_text(encoding="utf-8") for name in m["cedar"]["policies"])
    schema = (PACK / m["cedar"]["schema"]).read_text(encoding="utf-8")
    request, entities = cedar_request(fid, req, schema, facts)
    return lambda: cedarpy.is_authorized(request, policies, entities, schema=schema)


def rego_answer(doc: Any) -> tuple[bool, list, list]:
    return doc.get("allow") is True, list(doc.get("reject") or []), list(doc.get("escalate") or [])


# ---- main ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="timed calls per engine (warm-up: n/10)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--require-all", action="store_true", help="a missing peer is an error")
    args = parser.parse_args(argv)

    import agentriage

    fid = load_fidelity()
    m = manifest()
    classes = m["risk_classes"]
    data = json.loads((PACK / m["rego"]["data"][0]).read_text(encoding="utf-8"))
    req = typical_request()
    doc = rego_input(req, classes)

    engine = agentriage.Engine.from_bundle(PACK, replay_check=False)
    ours = engine.decide(req)
    assert ours.outcome == agentriage.Outcome.EXECUTE, ours
    our_rejects = [r for r in ours.to_dict()["reasons"] if r.get("effect") in ("reject", "escalate")]
    assert not our_rejects, our_rejects

    print(f"# agentriage {agentriage.__version__}, Python {platform.python_version()} ({platform.machine()})")
    print(f"# pack {PACK.name}, request: suite case `{CASE}`; {args.n} timed calls each")
    print(f"# load average at start: {load()}")

    peers: dict[str, tuple[str, Callable[[], Any]]] = {}
    missing: list[str] = []
    floor = make_floor(data, classes)
    outcome, reasons = floor(req)
    if (outcome, reasons) != ("execute", []):
        print(f"error: the floor disagrees with agentriage: {outcome} {reasons}", file=sys.stderr)
        return 2
    answers: dict[str, Any] = {
        "agentriage": {"outcome": ours.outcome.value, "policy_ids": list(ours.policy_ids)},
        "floor": {"outcome": outcome, "reasons": reasons},
    }
    peers["floor"] = ("plain Python, the pack's rules (both halves)", lambda: floor(req))

    for name, what, build in (
        ("opa", "OPA (Go, in-process), Rego half", lambda: opa_peer(fid, m, doc)),
        ("regorus_vm", "regorus VM (PyPI gordon-to-regorus), Rego half", lambda: regorus_vm_peer(fid, m, doc)),
        ("regorus", "regorus interpreter (same package), Rego half", lambda: regorus_peer(fid, m, doc)),
        ("cedarpy", "cedarpy, Cedar half", lambda: cedarpy_peer(fid, m, req, doc["facts"])),
    ):
        try:
            call = build()
        except Missing as e:
            missing.append(str(e))
            print(f"# {name}: package `{e}` not installed")
            continue
        answer = call()
        if name == "cedarpy":
            # The pack's Cedar half only forbids: agreeing means no policy
            # matched (no reason from this half), no error, and so no permit.
            summary = {
                "decision": str(answer.decision.value if hasattr(answer.decision, "value") else answer.decision),
                "reasons": list(answer.diagnostics.reasons),
                "errors": list(answer.diagnostics.errors),
            }
            agrees = summary["decision"].lower() == "deny" and not summary["reasons"] and not summary["errors"]
        else:
            allowed, rejects, escalates = rego_answer(answer)
            summary = {"allow": allowed, "reject": rejects, "escalate": escalates}
            agrees = allowed and not rejects and not escalates
        if not agrees:
            print(f"error: {name} disagrees with agentriage: {summary}", file=sys.stderr)
            return 2
        answers[name] = summary
        peers[name] = (what, call)

    results: dict[str, dict[str, float]] = {}
    runs: list[tuple[str, str, Callable[[], Any]]] = [("agentriage", "agentriage Engine.decide(dict), whole decision", lambda: engine.decide(req))]
    runs += [(k, w, c) for k, (w, c) in peers.items()]
    for key, what, call in runs:
        time_calls(call, max(1, args.n // 10))
        p50, p99 = percentiles(time_calls(call, args.n))
        results[key] = {"p50_us": p50, "p99_us": p99}
        print(f"{what:<52} p50 {p50:9.2f} µs   p99 {p99:9.2f} µs")

    base = results["agentriage"]["p50_us"]
    print("\n# p50 of each over agentriage's (> 1: agentriage is faster)")
    for key in results:
        if key != "agentriage":
            ratio = results[key]["p50_us"] / base
            results[key]["ratio_p50"] = ratio
            print(f"{key:<12} {ratio:8.2f}x")
    print(f"# agreement: every engine gave agentriage's answer (execute, no reason from its half)")
    print(f"# load average at end: {load()}")
    if args.json:
        args.json.write_text(
            json.dumps({"load": os.getloadavg(), "missing": missing, "answers": answers, "results": results}, indent=2)
        )
    if missing and args.require_all:
        print(f"error: peers not installed: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
