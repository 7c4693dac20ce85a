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
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import load_settings
from ingest.pipeline import ingest_paths
from tests.conftest import EXAMPLES


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(exe).exists():
        pytest.skip("the chroma CLI is not installed")
    port = _free_port()
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "chroma.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


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
