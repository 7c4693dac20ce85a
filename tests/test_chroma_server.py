"""The path beyond one machine: a real Chroma server (``chroma run``) on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.desk import Desk
from assistant.errors import StoreError
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import load_settings
from ingest.pipeline import ingest_paths
from tests.conftest import EXAMPLES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """A real ``chroma run`` on loopback that a test can stop and start again."""

    def __init__(self, tmp_path: Path) -> None:
        self.exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
        self.tmp_path = tmp_path
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

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
                url = f"http://127.0.0.1:{self.port}/api/v2/heartbeat"
                urllib.request.urlopen(url, timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.tmp_path / "chroma.log").read_text()[-2000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    running = ChromaServer(tmp_path)
    if not Path(running.exe).exists():
        pytest.skip("the chroma CLI is not installed")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def chroma_server(server: ChromaServer) -> int:
    return server.port


def test_ingest_and_answer_through_a_chroma_server(
    chroma_server: int, tmp_path: Path, embedder: MiniLMEmbeddings
) -> None:
    settings = load_settings(
        home=tmp_path / "home", chroma_host="127.0.0.1", chroma_port=chroma_server
    )
    store = Store(settings, embedder)
    report = ingest_paths([str(EXAMPLES / "wire.jsonl")], settings, store=store)
    assert report.added == 3 and store.count() == report.chunks
    assert not (tmp_path / "home" / "chroma").exists()  # vectors live on the server

    # a second client (another machine, in real life) sees the same collection
    other = Store(settings, embedder)
    assert other.count() == report.chunks
    again = ingest_paths([str(EXAMPLES / "wire.jsonl")], settings, store=other)
    assert again.unchanged == 3 and again.chunks == 0

    answer = Desk(settings, store=other).answer("When did the Fed raise interest rates?")
    assert not answer.abstained
    assert answer.citations[0].passage.doc_id == "wire-fed-2022-03-16"


def test_a_server_that_goes_away_is_one_line_and_the_next_call_recovers(
    server: ChromaServer, tmp_path: Path, embedder: MiniLMEmbeddings
) -> None:
    settings = load_settings(
        home=tmp_path / "home", chroma_host="127.0.0.1", chroma_port=server.port
    )
    ingest_paths([str(EXAMPLES / "wire.jsonl")], settings, store=Store(settings, embedder))
    desk = Desk(settings, store=Store(settings, embedder))
    before = [p.chunk_id for p in desk.search("Fed interest rates")]
    assert before

    server.stop()
    with pytest.raises(StoreError) as info:
        desk.search("Fed interest rates")
    message = str(info.value)
    assert "\n" not in message and f"127.0.0.1:{server.port}" in message

    server.start()
    assert [p.chunk_id for p in desk.search("Fed interest rates")] == before
    assert not desk.answer("When did the Fed raise interest rates?").abstained
