"""The hand-written stubs match the module (mypy.stubtest) and type-check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import require

PACKAGE = Path(__file__).resolve().parents[1]


def test_stubtest_is_clean() -> None:
    require("mypy")
    done = subprocess.run(
        [
            sys.executable, "-m", "mypy.stubtest", "agentriage",
            "--allowlist", str(PACKAGE / "stubtest-allowlist.txt"),
            "--ignore-unused-allowlist",
        ],
        capture_output=True, text=True, timeout=300, cwd=PACKAGE / "tests",
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_and_bench_type_check() -> None:
    require("mypy")
    done = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports",
            str(PACKAGE / "examples"), str(PACKAGE / "bench"),
        ],
        capture_output=True, text=True, timeout=300, cwd=PACKAGE / "tests",
    )
    assert done.returncode == 0, done.stdout + done.stderr
