"""Shared fixtures: an isolated data home per test, the real embedder loaded once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import Settings, load_settings
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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home")


def clean_settings(home: Path) -> Settings:
    """Settings for ``home`` as a fresh process would read them: no NEWSDESK_* or OpenAI
    variables of the developer's (for session and module fixtures, which run outside the
    per-test isolation)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in _ENV_KEYS + [k for k in os.environ if k.startswith("NEWSDESK_")]:
            mp.delenv(key, raising=False)
        return load_settings(home=home)


@pytest.fixture(scope="session")
def examples_home(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbeddings) -> Path:
    """The example articles, ingested once for the whole session. Tests only read it."""
    from assistant.index.store import Store
    from ingest.pipeline import ingest_paths

    home = tmp_path_factory.mktemp("examples") / "home"
    settings = clean_settings(home)
    report = ingest_paths([str(EXAMPLES)], settings, store=Store(settings, embedder))
    assert not report.skipped, report.skipped
    return home


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def seed_article() -> Path:
    if not SEED.is_file():
        pytest.skip(f"seed article not present at {SEED}")
    return SEED
