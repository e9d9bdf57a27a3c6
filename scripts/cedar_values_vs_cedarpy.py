"""Decide the same requests with Cedar (cedarpy) and with `agentriage eval`, side by side.

Checks the JSON -> Cedar value mapping of docs/policy-authoring.md against Cedar itself:
schema-typed extension strings, numbers Cedar cannot hold exactly, and the same requests
without a schema. Run by hand (not part of scripts/test.sh):

    pip install cedarpy
    cargo build -p agentriage-cli
    python scripts/cedar_values_vs_cedarpy.py target/debug/agentriage
"""
import json, os, subprocess, sys, tempfile
import cedarpy

AGENTRIAGE = sys.argv[1]
SCHEMA = '''
type Ctx = { when?: datetime, ttl?: duration, source?: ipaddr };
entity Agent;
entity Resource { "type": String, id: String, price?: decimal };
action "buy" appliesTo { principal: Agent, resource: Resource, context: Ctx };
'''
POLICIES = '''
@id("allow") permit (principal, action, resource);
@id("expensive") forbid (principal, action, resource)
when { resource has price && resource.price.greaterThan(decimal("1000.0")) };
@id("late") forbid (principal, action, resource)
when { context has when && context.when > datetime("2026-12-01T00:00:00Z") };
@id("long_ttl") forbid (principal, action, resource)
when { context has ttl && context.ttl > duration("1h") };
@id("outside") forbid (principal, action, resource)
when { context has source && !context.source.isInRange(ip("10.0.0.0/8")) };
'''
CASES = [
    ({"price": "1000.0001"}, {}), ({"price": "999.9999"}, {}), ({"price": "1000.00004"}, {}),
    ({"price": "1000.1"}, {}), ({"price": "cheap"}, {}),
    ({"price": 1000.00004}, {}), ({"price": 1000.5}, {}), ({"price": 1001}, {}), ({"price": 999}, {}),
    ({}, {"when": "2026-12-01T00:00:01Z"}), ({}, {"when": "2026-11-30"}), ({}, {"when": "tomorrow"}),
    ({}, {"ttl": "2h"}), ({}, {"ttl": "30m"}), ({}, {"ttl": "2 hours"}), ({}, {"ttl": 3600}),
    ({}, {"source": "192.168.0.1"}), ({}, {"source": "10.0.0.1"}), ({}, {"source": "10.0.0.256"}),
]

def cedar(attrs, ctx, schema):
    resource = {"uid": {"type": "Resource", "id": "i1"},
                "attrs": {"type": "item", "id": "i1", **attrs}, "parents": []}
    principal = {"uid": {"type": "Agent", "id": "alice"}, "attrs": {}, "parents": []}
    req = {"principal": 'Agent::"alice"', "action": 'Action::"buy"', "resource": 'Resource::"i1"',
           "context": ctx}
    try:
        r = cedarpy.is_authorized(req, POLICIES, [principal, resource], schema=schema)
        errs = [str(e) for e in (r.diagnostics.errors or [])]
        return f"{r.decision.value}{' (errors)' if errs else ''} {sorted(r.diagnostics.reasons)}"
    except Exception as e:  # request refused before evaluation
        return f"error: {str(e)[:60]}"

def ours(cases, schema):
    d = tempfile.mkdtemp()
    manifest = 'name = "cmp"\nrevision = "1"\n[cedar]\npolicies = ["p.cedar"]\n'
    if schema:
        manifest += 'schema = "s.cedarschema"\n'
        open(os.path.join(d, "s.cedarschema"), "w").write(SCHEMA)
    open(os.path.join(d, "bundle.toml"), "w").write(manifest)
    open(os.path.join(d, "p.cedar"), "w").write(POLICIES)
    lines = [json.dumps({"principal": {"id": "alice"}, "action": {"name": "buy"},
                         "resource": {"type": "item", "id": "i1", "attributes": a}, "context": c})
             for a, c in cases]
    out = subprocess.run([AGENTRIAGE, "eval", "--bundle", d], input="\n".join(lines),
                         capture_output=True, text=True, check=True).stdout
    return [f'{x["outcome"]} {[r["policy"] for r in x["reasons"]]}' for x in map(json.loads, out.splitlines())]

for schema in (SCHEMA, None):
    print("with schema" if schema else "without schema")
    for (a, c), mine in zip(CASES, ours(CASES, schema)):
        print(f"  {json.dumps({**a, **c}):38} cedarpy: {cedar(a, c, schema):48} agentriage: {mine}")
