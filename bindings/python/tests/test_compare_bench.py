"""The side-by-side benchmark (bench/compare/compare.py) runs, with a tiny
number of calls, and every engine in it gives agentriage's answer on the
reference pack's typical request. Figures are not asserted (they are a
benchmark's, docs/performance.md); that the script runs and compares the
same answers is.

Every peer must be installed (scripts/test-python.sh installs them): a
missing one skips this test, or fails it under AGENTRIAGE_PY_STRICT=1.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from conftest import REPO, require

SCRIPT = REPO / "bench" / "compare" / "compare.py"


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("agentriage_compare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_engine_agrees_and_the_script_reports_figures(tmp_path: Path, capsys: Any) -> None:
    for module in ("tomllib", "yaml", "opa_bindings", "cedarpy", "regorus"):
        require(module)
    out = tmp_path / "compare.json"
    status = _script().main(["--n", "30", "--json", str(out), "--require-all"])
    printed = capsys.readouterr()
    assert status == 0, printed.out + printed.err
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["missing"] == []
    peers = {"floor", "opa", "regorus_vm", "regorus", "cedarpy"}
    assert set(report["results"]) == peers | {"agentriage"}
    for name, figures in report["results"].items():
        assert 0 < figures["p50_us"] <= figures["p99_us"], (name, figures)
        if name != "agentriage":
            assert figures["ratio_p50"] > 0, name
    answers = report["answers"]
    assert answers["agentriage"]["outcome"] == "execute"
    assert answers["floor"] == {"outcome": "execute", "reasons": []}
    for rego in ("opa", "regorus_vm", "regorus"):
        assert answers[rego] == {"allow": True, "reject": [], "escalate": []}, rego
    assert answers["cedarpy"]["decision"].lower() == "deny"
    assert answers["cedarpy"]["reasons"] == [] and answers["cedarpy"]["errors"] == []
    assert "load average" in printed.out


def test_a_disagreeing_engine_stops_the_script(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    """The agreement check can fail: a floor that escalates is refused before timing."""
    require("tomllib")
    require("yaml")
    script = _script()
    real = script.make_floor

    def escalating(*args: Any) -> Any:
        decide = real(*args)
        del decide
        return lambda req: ("escalate", ["R9.value_threshold"])

    monkeypatch.setattr(script, "make_floor", escalating)
    status = script.main(["--n", "5", "--json", str(tmp_path / "x.json")])
    assert status == 2
    assert "the floor disagrees" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
