#!/usr/bin/env python3
"""Single Rego rules decided by agentriage (VM, interpreter) and by OPA.

    python fidelity/probes.py

Prints one line per probe: the rule, the request's context, and each
engine's outcome. docs/fidelity.md quotes the results.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402

PROBES = [
    ('reject contains "moved" if abs(500.01 - 500) > 0.01', {}),
    ('reject contains "moved" if abs(input.context.p - 500) > 0.01', {"p": 500.01}),
    ('reject contains "moved" if abs(input.context.cents - 50000) > 1', {"cents": 50001}),
    ('reject contains "moved" if abs(input.context.cents - 50000) > 1', {"cents": 50002}),
    ('reject contains "eq" if 0.1 + 0.2 == 0.3', {}),
    ('S := {"a"}\nreject contains "r" if not input.context.x in S', {}),
    ('f(v) if v == "a"\nreject contains "r" if not f(input.context.x)', {}),
    ('reject contains "r" if not is_string(input.context.x)', {}),
    ('reject contains "r" if to_number("1_000") == 1000', {}),
    ('reject contains "r" if to_number(" 7") == 7', {}),
    ('reject contains "r" if input.context.n == 18446744073709551617', {"n": 18446744073709551617}),
]


def label(result: run.Result) -> str:
    return result.outcome + (" (error)" if ("reject", "error") in result.reasons else "")


def main() -> int:
    import agentriage

    with tempfile.TemporaryDirectory() as tmp:
        for i, (rules, context) in enumerate(PROBES):
            text = f"package agentriage\nimport rego.v1\nallow if true\n{rules}\n"
            request = {"principal": {"id": "a"}, "action": {"name": "x"}, "context": context, "time": run.BASE_TIME}
            body = json.dumps(request)
            out = {}
            for ev in ("vm", "interpreter"):
                engine = agentriage.Engine.from_bundle(run.rego_bundle(Path(tmp), f"p{i}", text, ev))
                decided = run.agentriage_result(engine, body)
                out[ev] = "invalid request" if decided is None else label(decided)
            out["opa"] = label(run.OpaReference(f"p{i}", text).decide(json.loads(body)))
            print(f"{rules.splitlines()[-1]}  context={json.dumps(context)}  " + "  ".join(f"{k}={v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
