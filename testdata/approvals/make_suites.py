"""Writes the reference pack's approval, waiver and quota suites
(policies/a2a-supply-chain/tests/{approvals,waivers,quotas}.yaml) with their
signed approvals and intents, made with the test-only keys of
testdata/approvals/keys/ and testdata/intents/keys/ at each case's fixed time.

    python testdata/approvals/make_suites.py   # needs pyjwt and cryptography

The action digest is computed here independently of the engine (RFC 8785
over string and integer values is sorted keys, no whitespace, raw UTF-8),
so the suites also check that the engine digests what this contract says.
"""

import copy
import hashlib
import json
import pathlib
from datetime import datetime, timezone

import jwt
from cryptography.hazmat.primitives import serialization

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTS = ROOT / "policies/a2a-supply-chain/tests"
AUD = "spiffe://acme.example/ns/platform/sa/agentriage"
CUSTOMS = "spiffe://acme.example/ns/compliance/sa/customs"
PAYMENTS = "spiffe://acme.example/ns/finance/sa/payments"


def key(path):
    return serialization.load_pem_private_key((ROOT / path).read_bytes(), None)


APPROVERS = {
    "dana": (key("testdata/approvals/keys/dana-finance.pem"), "EdDSA", "dana-2026-11", "mailto:dana.okafor@acme.example"),
    "lee": (key("testdata/approvals/keys/lee-logistics.pem"), "ES256", "lee-2026-11", "mailto:lee.brandt@acme.example"),
    "sam": (key("testdata/approvals/keys/sam-analyst.pem"), "EdDSA", "sam-2026-11", "mailto:sam.ito@acme.example"),
}
AGENTS = {
    "payments": (key("testdata/intents/keys/payments.pem"), "EdDSA", "payments-2026-11", PAYMENTS),
    "customs": (key("testdata/intents/keys/customs.pem"), "ES256", "customs-2026-11", CUSTOMS),
}


def unix(t):
    return int(datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(timezone.utc).timestamp())


def digest(request, context_fields=("workflow_id",)):
    r = request.get("resource")
    action = {
        "principal": request["principal"]["id"],
        "action": request["action"]["name"],
        "resource": None if r is None else {
            "type": r["type"], "id": r.get("id"), "attributes": r.get("attributes") or {},
        },
        "context": {f: request.get("context", {}).get(f) for f in context_fields},
    }
    text = json.dumps(action, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def approval(who, request, reasons, iat, lifetime=900, jti=None, **extra):
    k, alg, kid, iss = APPROVERS[who]
    claims = {"iss": iss, "aud": AUD, "jti": jti or f"approval-{who}-{iat}-{len(reasons)}",
              "iat": unix(iat), "exp": unix(iat) + lifetime,
              "action_digest": digest(request), "reasons": reasons, **extra}
    return jwt.encode(claims, k, algorithm=alg, headers={"kid": kid, "typ": "approval+jwt"})


def intent(agent, request, jti):
    k, alg, kid, iss = AGENTS[agent]
    t = unix(request["time"])
    r = request["resource"]
    claims = {"iss": iss, "aud": AUD, "jti": jti, "iat": t, "exp": t + 600,
              "act": request["action"]["name"], "res": f"{r['type']}:{r['id']}", "purpose": f"test case {jti}"}
    return jwt.encode(claims, k, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def load_bases():
    import yaml
    return yaml.safe_load((TESTS / "bases.yaml").read_text())["bases"]


def merge(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def flow(obj):
    return json.dumps(obj, ensure_ascii=False)


def case(name, patch, expect, base=None, prior=None):
    lines = [f"  - name: {json.dumps(name)}"]
    if base:
        lines.append(f"    base: {base}")
    if prior:
        lines.append(f"    prior: {prior}")
    lines.append(f"    patch: {flow(patch)}")
    lines.append(f"    expect: {flow(expect)}")
    return "\n".join(lines)


def write(name, header, cases):
    text = header + "cases:\n" + "\n".join(cases) + "\n"
    (TESTS / name).write_text(text)


def main():
    bases = load_bases()
    R9 = "R9.value_threshold"

    # ---- approvals -------------------------------------------------------
    big = {"resource": {"attributes": {"value_usd": 250000}}}
    reroute = merge(bases["reroute"], big)
    lee = approval("lee", reroute, [R9], "2026-11-21T14:06:00Z")
    cases = [
        case("R9 escalation without approval escalates", big, {"outcome": "escalate", "reasons": [R9]}),
        case("R9 escalation approved by a logistics supervisor executes",
             {**big, "approval": lee}, {"outcome": "execute", "reasons": ["agentriage.allow", "approval"]}),
        case("an approval used once is refused the second time",
             {**big, "approval": lee}, {"outcome": "reject", "reasons": ["approval.reused"]}, prior=1),
        case("an approval of 250000 does not approve 250001",
             {"resource": {"attributes": {"value_usd": 250001}}, "approval": lee},
             {"outcome": "reject", "reasons": ["approval.action_mismatch", R9]}),
        case("an approval for another workflow is refused",
             {**big, "context": {"workflow_id": "wf-2"}, "approval": lee},
             {"outcome": "reject", "reasons": ["approval.action_mismatch", R9]}),
        case("an approval expired with the clock skew passed is refused",
             {**big, "approval": approval("lee", reroute, [R9], "2026-11-21T13:49:00Z", 900)},
             {"outcome": "reject", "reasons": ["approval.expired", R9]}),
        case("an approval one second short of expiry with the skew executes",
             {**big, "approval": approval("lee", reroute, [R9], "2026-11-21T13:49:01Z", 900)},
             {"outcome": "execute", "reasons": ["agentriage.allow", "approval"]}),
        case("an approval living longer than the bundle allows is refused",
             {**big, "approval": approval("lee", reroute, [R9], "2026-11-21T14:00:00Z", 3601)},
             {"outcome": "reject", "reasons": ["approval.lifetime", R9]}),
        case("an approval living exactly the longest the bundle allows executes",
             {**big, "approval": approval("lee", reroute, [R9], "2026-11-21T14:00:00Z", 3600)},
             {"outcome": "execute", "reasons": ["agentriage.allow", "approval"]}),
        case("an approver without a role for R9 is refused",
             {**big, "approval": approval("sam", reroute, [R9], "2026-11-21T14:06:00Z")},
             {"outcome": "reject", "reasons": ["approval.role", R9]}),
        case("an approval naming another reason is refused",
             {**big, "approval": approval("lee", reroute, ["R13.outside_business_hours"], "2026-11-21T14:06:00Z")},
             {"outcome": "reject", "reasons": ["approval.reasons", R9]}),
        case("an approval signed after its request expired is refused",
             {**big, "approval": approval("lee", reroute, [R9], "2026-11-21T14:06:00Z", request_exp=unix("2026-11-21T14:05:59Z"))},
             {"outcome": "reject", "reasons": ["approval.request_expired", R9]}),
        case("an approval signed before its request expired executes",
             {**big, "approval": approval("lee", reroute, [R9], "2026-11-21T14:06:00Z", jti="in-time", request_exp=unix("2026-11-21T14:06:00Z"))},
             {"outcome": "execute", "reasons": ["agentriage.allow", "approval"]}),
    ]
    over = {"resource": {"attributes": {"amount_usd": 10000.5}}}
    payment = merge(bases["payment"], over)
    for n, (who, expect) in enumerate([
        ("lee", {"outcome": "reject", "reasons": ["approval.role", R9]}),
        ("dana", {"outcome": "execute", "reasons": ["agentriage.allow", "approval"]}),
    ]):
        p = {**over, "intent": intent("payments", payment, f"case-approval-{n}")}
        p["approval"] = approval(who, payment, [R9], "2026-11-21T14:05:00Z")
        label = "a logistics supervisor may not approve a payment" if who == "lee" else "finance approves a payment over R9's limit"
        cases.append(case(label, p, expect, base="payment"))
    write("approvals.yaml",
          "# Approvals of escalations (bundle.toml [approvals]): bound to the action's\n"
          "# digest, by an approver holding a role for every reason, used once.\n"
          "# Generated by testdata/approvals/make_suites.py (signed tokens).\n"
          "name: approvals\nimport: [bases.yaml]\ndefaults:\n  base: reroute\n  match: exact\n", cases)

    # ---- waivers ---------------------------------------------------------
    def customs_at(t, cred, att):
        return {"time": t, "principal": {"id": CUSTOMS, "credential": {"expires_at": cred}, "attestation": {"verified_at": att}},
                "action": {"name": "customs.declare"}, "resource": {"type": "declaration", "id": "CD-7", "attributes": None}}
    cases = []
    for label, t, cred, att, expect in [
        ("W-2026-031 lets customs declare at night",
         "2026-11-21T02:00:00Z", "2026-11-21T02:10:00Z", "2026-11-21T01:30:00Z",
         {"outcome": "execute", "reasons": ["agentriage.allow", "waiver.W-2026-031"]}),
        ("W-2026-031 applies one second before it expires",
         "2027-01-30T23:59:59Z", "2027-01-31T00:10:00Z", "2027-01-30T23:30:00Z",
         {"outcome": "execute", "reasons": ["agentriage.allow", "waiver.W-2026-031"]}),
        ("W-2026-031 is inert once expired",
         "2027-01-31T00:00:00Z", "2027-01-31T00:10:00Z", "2027-01-30T23:30:00Z",
         {"outcome": "escalate", "reasons": ["R13.outside_business_hours"]}),
    ]:
        p = customs_at(t, cred, att)
        full = merge(bases["reroute"], p)
        p["intent"] = intent("customs", full, f"case-waiver-{unix(t)}")
        cases.append(case(label, p, expect))
    night = {"time": "2026-11-21T02:00:00Z", "principal": {"credential": {"expires_at": "2026-11-21T02:10:00Z"}, "attestation": {"verified_at": "2026-11-21T01:30:00Z"}}}
    full = merge(bases["payment"], night)
    night["intent"] = intent("payments", full, "case-waiver-payments")
    cases.append(case("W-2026-031 does not cover the payments agent", night,
                      {"outcome": "escalate", "reasons": ["R13.outside_business_hours"]}, base="payment"))
    write("waivers.yaml",
          "# Waivers (bundle.toml [waivers]): named rules out for named actions and\n"
          "# principals until the waiver expires; every waived decision names it.\n"
          "# Generated by testdata/approvals/make_suites.py (signed intents).\n"
          "name: waivers\nimport: [bases.yaml]\ndefaults:\n  base: reroute\n  match: exact\n", cases)

    # ---- quotas ----------------------------------------------------------
    Q = "Q1.purchase_usd_per_agent_hour"
    half = {"resource": {"attributes": {"amount_usd": 50000}}}
    cases = [
        case("the third 50000 order of the hour reaches the quota exactly and executes", half, {"outcome": "execute"}, prior=2),
        case("the fourth 50000 order of the hour escalates", half, {"outcome": "escalate", "reasons": [Q]}, prior=3),
        case("four orders of 37500 reach the quota exactly and execute",
             {"resource": {"attributes": {"amount_usd": 37500}}}, {"outcome": "execute"}, prior=3),
        case("four orders of 37500.01 exceed the quota by four cents",
             {"resource": {"attributes": {"amount_usd": 37500.01}}}, {"outcome": "escalate", "reasons": [Q]}, prior=3),
        case("an order without an amount cannot be counted",
             {"resource": {"attributes": {"amount_usd": None}}}, {"outcome": "escalate", "reasons": [Q]}),
        case("escalated orders are not counted",
             {"resource": {"attributes": {"amount_usd": 60000}}}, {"outcome": "escalate", "reasons": [R9]}, prior=5),
    ]
    write("quotas.yaml",
          "# Quotas (bundle.toml [[quotas]]): executed actions counted per window.\n"
          "# `prior: N` decides the case's request N times first, in the case's own state.\n"
          "name: quotas\nimport: [bases.yaml]\ndefaults:\n  base: purchase\n  match: exact\n", cases)


if __name__ == "__main__":
    main()
