"""A real Chroma server (``chroma run``) on loopback for the tests, and a header-checking proxy.

``chroma_server`` is session-scoped: one server for the whole run, each test in a collection
of its own (:meth:`ChromaServer.new_collection`), so tests never see each other's chunks. A
test that stops the server starts its own :class:`ChromaServer` instead.

The open-source ``chroma run`` (Chroma's Rust server) has no setting that makes it check a
token, so :class:`HeaderProxy` stands in for an authenticating gateway: it refuses a request
without the expected header (401) and forwards the others to the real server, optionally under
a path prefix (a server behind a reverse proxy at ``https://host/chroma``).
"""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """A real ``chroma run`` on loopback that a test can stop and start again."""

    def __init__(self, tmp_path: Path) -> None:
        self.exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
        self.tmp_path = tmp_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def available(self) -> bool:
        return Path(self.exe).exists()

    def start(self) -> None:
        log = (self.tmp_path / "chroma.log").open("a")
        self.proc = subprocess.Popen(
            [self.exe, "run", "--path", str(self.tmp_path / "server-data"), "--host",
             "127.0.0.1", "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.tmp_path / "chroma.log").read_text()[-2000:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def new_collection(self) -> dict[str, str]:
        """Settings overrides for a collection of this server that no other test uses."""
        return {"chroma_url": self.url, "collection": f"t-{uuid.uuid4().hex[:16]}"}


def running_server(tmp_path: Path) -> ChromaServer:
    server = ChromaServer(tmp_path)
    if not server.available:
        pytest.skip("the chroma CLI is not installed")
    server.start()
    return server


@pytest.fixture(scope="session", name="chroma_server")
def chroma_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """One ``chroma run`` for the whole session (started by the first test that needs it)."""
    server = running_server(tmp_path_factory.mktemp("chroma-server"))
    try:
        yield server
    finally:
        server.stop()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class HeaderProxy:
    """Loopback HTTP proxy to ``upstream`` that only lets through requests carrying
    ``expect = (header, value)`` and serves the upstream under ``prefix``."""

    def __init__(self, upstream_port: int, expect: tuple[str, str], prefix: str = "") -> None:
        self.upstream_port = upstream_port
        self.expect = expect
        self.prefix = prefix.rstrip("/")
        self.passed = 0  # requests forwarded
        self.refused: list[str] = []  # "METHOD path" of the requests refused
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                name, value = proxy.expect
                if self.headers.get(name) != value:
                    proxy.refused.append(f"{self.command} {self.path}")
                    error = b'{"error": "AuthError", "message": "missing or wrong token"}'
                    self._reply(401, [("Content-Type", "application/json")], error)
                    return
                if not self.path.startswith(proxy.prefix + "/"):
                    self._reply(404, [("Content-Type", "text/plain")], b"not under the prefix")
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                try:
                    forward = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    if body:
                        forward["Content-Length"] = str(len(body))
                    path = self.path[len(proxy.prefix) :]
                    upstream.request(self.command, path, body=body or None, headers=forward)
                    response = upstream.getresponse()
                    data = response.read()
                    headers = [
                        (k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                    ]
                finally:
                    upstream.close()
                proxy.passed += 1
                self._reply(response.status, headers, data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def __enter__(self) -> HeaderProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
