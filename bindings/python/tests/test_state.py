"""The shared state store through Python: two engines and two processes
sharing a real ``redis-server`` refuse a replayed intent; bad ``state`` URLs
are ``ValueError``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import jwt
import pytest

import agentriage

from conftest import REFERENCE_BUNDLE
from test_intent import payment_request, private_key, pyjwt_claims


def _redis_server() -> str | None:
    binary = os.environ.get("AGENTRIAGE_REDIS_SERVER", "redis-server")
    if shutil.which(binary):
        return binary
    why = f"`{binary}` not found: install the Debian package redis-server"
    if os.environ.get("AGENTRIAGE_REQUIRE_SERVERS") == "1":
        pytest.fail(f"{why} (AGENTRIAGE_REQUIRE_SERVERS=1)")
    pytest.skip(why)
    return None


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.settimeout(0.5)
            s.sendall(b"PING\r\n")
            return s.recv(7) == b"+PONG\r\n"
    except OSError:
        return False


@pytest.fixture
def redis_url() -> Iterator[str]:
    binary = _redis_server()
    assert binary is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20  # a watchdog: it answers in milliseconds
        while not _answers(port):
            assert server.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server never answered"
            time.sleep(0.005)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.kill()
        server.wait()


def _request(jti: str) -> dict:
    token = jwt.encode(
        pyjwt_claims(jti), private_key("payments"), algorithm="EdDSA", headers={"kid": "payments-2026-11"}
    )
    return payment_request(token)


def test_two_engines_sharing_redis_refuse_a_replayed_intent(redis_url: str) -> None:
    url = f"{redis_url}?namespace=py-engines:"
    a = agentriage.Engine.from_bundle(REFERENCE_BUNDLE, state=url)
    b = agentriage.Engine.from_bundle(REFERENCE_BUNDLE, state=url)
    request = _request("py-shared-1")
    assert a.decide(request).outcome == "execute"
    again = b.decide(request)
    assert again.outcome == "reject"
    assert "`replay`" in again.reasons[0].message
    # An engine on its own in-memory store knows nothing of it.
    alone = agentriage.Engine.from_bundle(REFERENCE_BUNDLE, state="memory")
    assert alone.decide(request).outcome == "execute"


def test_another_process_refuses_the_intent_this_one_used(redis_url: str) -> None:
    url = f"{redis_url}?namespace=py-procs:"
    request = _request("py-proc-1")
    engine = agentriage.Engine.from_bundle(REFERENCE_BUNDLE, state=url)
    assert engine.decide(request).outcome == "execute"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, agentriage\n"
            "e = agentriage.Engine.from_bundle(sys.argv[1], state=sys.argv[2])\n"
            "d = e.decide(json.loads(sys.stdin.read()))\n"
            "print(d.outcome, d.reasons[0].message if d.reasons else '')\n",
            str(REFERENCE_BUNDLE),
            url,
        ],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert child.stdout.startswith("reject"), child.stdout + child.stderr
    assert "`replay`" in child.stdout


def test_an_unreachable_redis_fails_closed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = agentriage.Engine.from_bundle(
        REFERENCE_BUNDLE, state=f"redis://127.0.0.1:{port}/0?timeout_ms=100"
    )
    d = engine.decide(_request("py-down-1"))
    assert d.outcome == "reject"
    assert "`replay_store`" in d.reasons[0].message


@pytest.mark.parametrize(
    ("url", "match"),
    [("memory:0", "`0`"), ("redis://h:1?bogus=1", "`bogus`"), ("rediss://h:1", "TLS"), ("", "empty")],
)
def test_bad_state_urls_are_value_errors(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        agentriage.Engine.from_bundle(REFERENCE_BUNDLE, state=url)
