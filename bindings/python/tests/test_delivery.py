"""Bundle delivery from Python: `Engine.from_source` and `bundle_status`.

The archives here are written by Python's own `tarfile` (ustar, gzip), not
by the engine: an archive a third-party pipeline builds loads, with the
digest of the directory it was built from.
"""

from __future__ import annotations

import http.server
import io
import shutil
import ssl
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import agentriage

from conftest import REFERENCE_BUNDLE, TESTDATA

TLS = TESTDATA / "tls"

REROUTE = {
    "time": "2026-11-21T14:05:00Z",
    "principal": {"id": "spiffe://acme.example/ns/logistics/sa/router"},
    "action": {"name": "shipment.read"},
}


def archive(root: Path, revision: str) -> bytes:
    """The bundle in `root` with another revision, as a ustar .tar.gz."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            data = path.read_bytes()
            if rel == "bundle.toml":
                data = data.replace(b'revision = "2026.11.0"', f'revision = "{revision}"'.encode())
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Served:
    body: bytes = b""
    status: int = 200


def serve(state: Served, cert: str | None = None) -> tuple[str, Callable[[], None]]:
    """Serves `state` on 127.0.0.1; over TLS with certificate `cert` of testdata/tls."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if state.status != 200:
                self.send_response(state.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if cert is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(TLS / f"{cert}.pem", TLS / f"{cert}.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"{scheme}://{host}:{port}/bundle.tar.gz", stop


def eventually(what: str, done: Callable[[], bool]) -> None:
    """A generous watchdog against hangs, not a speed check."""
    deadline = time.monotonic() + 20
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def test_http_source_loads_follows_and_keeps_the_live_bundle_on_failures(tmp_path: Path) -> None:
    state = Served()
    state.body = archive(REFERENCE_BUNDLE, "py-1")
    url, stop = serve(state)
    try:
        engine = agentriage.Engine.from_source(url, interval_seconds=0.03)
        status = engine.bundle_status()
        assert status["revision"] == "py-1"
        assert status["source"] == url
        # The digest is the directory's: it is computed over the files.
        same = tmp_path / "py-1"
        shutil.copytree(REFERENCE_BUNDLE, same)
        manifest = same / "bundle.toml"
        manifest.write_bytes(
            manifest.read_bytes().replace(b'revision = "2026.11.0"', b'revision = "py-1"')
        )
        assert status["digest"] == agentriage.Engine.from_bundle(same).bundle.digest
        decision = engine.decide(REROUTE)
        assert decision.bundle.revision == "py-1"

        state.body = archive(REFERENCE_BUNDLE, "py-2")
        eventually("py-2 live", lambda: engine.bundle_status()["revision"] == "py-2")
        assert engine.decide(REROUTE).bundle.revision == "py-2"
        assert engine.bundle_status()["updates"] == 1

        state.status = 500
        eventually("failure recorded", lambda: engine.bundle_status()["failures"] >= 1)
        status = engine.bundle_status()
        assert status["revision"] == "py-2"
        assert "HTTP 500" in status["last_error"]
        assert "agentriage_bundle_fetch_failures_total" in engine.metrics_text()

        state.status = 200
        state.body = b"not an archive"
        failures = engine.bundle_status()["failures"]
        eventually("bad archive refused", lambda: engine.bundle_status()["failures"] > failures)
        assert engine.bundle_status()["revision"] == "py-2"
        engine.stop_following()
    finally:
        stop()


def test_source_errors_are_typed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ftp://"):
        agentriage.Engine.from_source("ftp://example/b.tar.gz")
    with pytest.raises(agentriage.BundleError):
        agentriage.Engine.from_source(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="interval_seconds"):
        agentriage.Engine.from_source(str(REFERENCE_BUNDLE), interval_seconds=-1)
    # Nothing listens on this port: no engine, a ConnectionError.
    url, stop = serve(Served())
    stop()
    with pytest.raises(ConnectionError):
        agentriage.Engine.from_source(url, startup_timeout_seconds=0.3, timeout_seconds=0.2)


def test_watched_directory_follows_an_archive_file(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar.gz"
    path.write_bytes(archive(REFERENCE_BUNDLE, "file-1"))
    engine = agentriage.Engine.from_source(str(path), interval_seconds=0.02)
    assert engine.bundle_status()["revision"] == "file-1"
    assert engine.bundle_status()["source"] == str(path)
    tmp = tmp_path / "next.tar.gz"
    tmp.write_bytes(archive(REFERENCE_BUNDLE, "file-2"))
    tmp.replace(path)
    eventually("file-2 live", lambda: engine.bundle_status()["revision"] == "file-2")


def test_https_source_trusts_the_given_certificate_authority_only() -> None:
    state = Served()
    state.body = archive(REFERENCE_BUNDLE, "tls-1")
    url, stop = serve(state, "server")
    wrong_url, stop_wrong = serve(state, "wrong-name")
    try:
        assert url.startswith("https://127.0.0.1:")
        engine = agentriage.Engine.from_source(url, ca_file=TLS / "ca.pem", interval_seconds=0.05)
        assert engine.bundle_status()["revision"] == "tls-1"
        state.body = archive(REFERENCE_BUNDLE, "tls-2")
        eventually("tls-2 live", lambda: engine.bundle_status()["revision"] == "tls-2")
        engine.stop_following()
        # The Mozilla roots do not know the test authority.
        with pytest.raises(ConnectionError, match="UnknownIssuer"):
            agentriage.Engine.from_source(url, startup_timeout_seconds=0.3)
        with pytest.raises(ConnectionError, match="not valid for name"):
            agentriage.Engine.from_source(
                wrong_url, ca_file=TLS / "ca.pem", startup_timeout_seconds=0.3
            )
        with pytest.raises(OSError, match="ca_file"):
            agentriage.Engine.from_source(url, ca_file=TLS / "missing.pem")
    finally:
        stop()
        stop_wrong()
