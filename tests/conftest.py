"""Shared fixtures: an isolated data home per test, the real embedder loaded once, and the
store on either backend: the embedded Chroma store or a real Chroma server (``chroma run``).

A test runs on both with ``@on_both_stores("settings")`` (or ``"examples_store"``, or any
fixture that reads :func:`backend`): the fixture gives the embedded store's version or a
collection of its own on the session's Chroma server (tests/chroma_server.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import Settings, load_settings
from tests.chroma_server import ChromaServer, chroma_server_fixture  # noqa: F401 (fixture)
from tests.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "articles"
SEED = ROOT.parent / "shared" / "seed" / "china-mediation-article.txt"

_ENV_KEYS = [k for k in os.environ if k.startswith("NEWSDESK_")] + [
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's keys, config or data."""
    for key in _ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NEWSDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbeddings:
    return MiniLMEmbeddings()


class RememberingMiniLM(MiniLMEmbeddings):
    """The session's MiniLM, remembering each text's vector: a second ingest of the same
    articles (another store, another backend) runs the whole pipeline without a second
    embedding run. Misses go to the real embedder in one call, as the writer made it."""

    def __init__(self, real: MiniLMEmbeddings) -> None:
        super().__init__()
        self.real = real
        self.memo: dict[str, np.ndarray] = {}

    def _embed(self, texts: Sequence[str]) -> np.ndarray:  # under embed_array/_documents/_query
        missing = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if missing:
            self.memo.update(zip(missing, self.real.embed_array(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack([self.memo[t] for t in texts])

    def release(self) -> None:
        self.real.release()


@pytest.fixture(scope="session")
def remembering_embedder(embedder: MiniLMEmbeddings) -> RememberingMiniLM:
    """For the session fixtures that ingest the example articles (once per store)."""
    return RememberingMiniLM(embedder)


BACKENDS = ("embedded", "server")


def on_both_stores(fixture: str) -> pytest.MarkDecorator:
    """Run the test once per backend; ``fixture`` picks its store with :func:`backend`."""
    return pytest.mark.parametrize(fixture, BACKENDS, indirect=True)


def backend(request: pytest.FixtureRequest) -> str:
    """The backend a fixture was asked for (``embedded`` unless parametrised)."""
    return str(getattr(request, "param", "embedded"))


@dataclass(frozen=True)
class StoreAt:
    """Where a store is: a data home, plus the Chroma server settings when it is on one."""

    home: Path
    overrides: dict[str, Any] = field(default_factory=dict)

    def settings(self, **more: Any) -> Settings:
        return load_settings(home=self.home, **{**self.overrides, **more})


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if backend(request) == "server":
        server: ChromaServer = request.getfixturevalue("chroma_server")
        return load_settings(home=tmp_path / "home", **server.new_collection())
    return load_settings(home=tmp_path / "home")


def clean_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for ``home`` as a fresh process would read them: no NEWSDESK_* or OpenAI
    variables of the developer's (for session and module fixtures, which run outside the
    per-test isolation)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in _ENV_KEYS + [k for k in os.environ if k.startswith("NEWSDESK_")]:
            mp.delenv(key, raising=False)
        return load_settings(home=home, **overrides)


@pytest.fixture(scope="session")
def examples_home(
    tmp_path_factory: pytest.TempPathFactory, remembering_embedder: RememberingMiniLM
) -> Path:
    """The example articles, ingested once for the whole session. Tests only read it."""
    from assistant.index.store import Store
    from ingest.pipeline import ingest_paths

    home = tmp_path_factory.mktemp("examples") / "home"
    settings = clean_settings(home)
    store = Store(settings, remembering_embedder)
    report = ingest_paths([str(EXAMPLES)], settings, store=store)
    assert not report.skipped, report.skipped
    return home


@dataclass(frozen=True)
class ServerExamples:
    at: StoreAt
    report: Any  # ingest.pipeline.IngestReport


@pytest.fixture(scope="session")
def examples_on_server(
    tmp_path_factory: pytest.TempPathFactory,
    remembering_embedder: RememberingMiniLM,
    examples_home: Path,  # first: it fills the embedder's memory with the examples' vectors
    chroma_server: ChromaServer,
) -> ServerExamples:
    """The example articles, ingested once into a collection of the session's Chroma server.
    Tests only read it (a re-ingest of the unchanged files changes nothing)."""
    from assistant.index.store import Store
    from ingest.pipeline import ingest_paths

    embedder = remembering_embedder

    at = StoreAt(
        tmp_path_factory.mktemp("examples-server") / "home", chroma_server.new_collection()
    )
    settings = clean_settings(at.home, **at.overrides)
    report = ingest_paths([str(EXAMPLES)], settings, store=Store(settings, embedder))
    assert not report.skipped, report.skipped
    return ServerExamples(at, report)


@pytest.fixture
def examples_store(request: pytest.FixtureRequest) -> StoreAt:
    """The ingested example articles, embedded (``examples_home``) or on the server."""
    if backend(request) == "server":
        return request.getfixturevalue("examples_on_server").at  # type: ignore[no-any-return]
    return StoreAt(request.getfixturevalue("examples_home"))


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def seed_article() -> Path:
    if not SEED.is_file():
        pytest.skip(f"seed article not present at {SEED}")
    return SEED
