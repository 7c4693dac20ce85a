"""The long-lived core: one ``Desk`` kept alive while other processes ingest, shared by threads.

Writers run as real child processes (``python -m assistant.surfaces.cli ingest``) into the same
data home as the reader in this process, with the real embedder and a real Chroma store.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from assistant.desk import Desk
from assistant.index.lexical_store import LexicalStore
from assistant.index.locks import writer_lock
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.settings import Settings, load_settings
from assistant.types import Final, PassagesFound
from tests.conftest import ROOT, StoreAt, on_both_stores

HARBOUR = """---
title: Port of Calverin opens a new ferry terminal
source: Coastline Courier
published_at: 2024-05-02
---
The port authority of Calverin opened its new ferry terminal on Thursday morning.
The terminal has four berths and a waiting hall for six hundred passengers.
Harbour master Ilse Varga said the first crossing to Dunmore left at 7:15.
The old terminal will close at the end of the month and become a fish market.
"""
LIBRARY = """---
title: Calverin library extends its opening hours
source: Coastline Courier
published_at: 2024-05-03
---
The public library of Calverin will stay open until ten in the evening from June.
Head librarian Tomas Brenner said students had asked for longer hours before exams.
The council approved the extra staff budget of 90,000 euros on Tuesday.
"""
ORCHARD = """---
title: Quintaflux orchards report a record plum harvest
source: Valley Times
published_at: 2024-05-04
---
Growers in the Quintaflux valley picked a record 3,400 tonnes of plums this season.
Cooperative chair Aino Lund said warm nights in April had helped the fruit set.
Exports to the capital rose by a quarter compared with last year.
"""


def _ingest_child(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSDESK_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "assistant.surfaces.cli", "ingest", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def town(tmp_path: Path) -> Path:
    folder = tmp_path / "town"
    folder.mkdir()
    (folder / "harbour.md").write_text(HARBOUR)
    (folder / "library.md").write_text(LIBRARY)
    return folder


def _desk(home: Path, embedder: MiniLMEmbeddings, **overrides: Any) -> Desk:
    settings = load_settings(home=home, **overrides)
    return Desk(settings, store=Store(settings, embedder))


def test_desk_alive_across_a_reingest_quotes_the_new_sentences_whole(
    tmp_path: Path, town: Path, embedder: MiniLMEmbeddings
) -> None:
    home = tmp_path / "home"
    assert _ingest_child(home, str(town)).returncode == 0
    # two articles are too few for the calibrated abstention; this test is about freshness
    desk = _desk(home, embedder, abstain_min_score=0.8)
    question = "When did the first ferry crossing to Dunmore leave?"
    before = desk.answer(question)
    assert not before.abstained
    assert any("7:15" in c.quote for c in before.citations)

    # same number of sentences and chunks; the crossing sentence grows and moves the others
    changed = HARBOUR.replace(
        "Harbour master Ilse Varga said the first crossing to Dunmore left at 7:15.",
        "Harbour master Ilse Varga said the first crossing to Dunmore, delayed by fog over "
        "the estuary, left at 8:40.",
    )
    (town / "harbour.md").write_text(changed)
    assert _ingest_child(home, str(town)).returncode == 0

    after = desk.answer(question)
    assert not after.abstained
    body = changed.split("---\n", 2)[2]
    cited = [c for c in after.citations if "Dunmore" in c.quote]
    assert cited, after.text
    for c in after.citations:
        for piece in c.quote.split(" … "):
            assert piece in c.passage.text
            if c.passage.title.startswith("Port of Calverin"):
                assert piece in body, piece  # the new text, whole sentences
    assert any("8:40" in c.quote for c in cited)
    assert "7:15" not in after.text


def _search_ids(desk: Desk, query: str) -> list[str]:
    return [p.doc_id for p in desk.search(query, k=5)]


def test_reader_keeps_answering_while_another_process_ingests_updates_and_prunes(
    tmp_path: Path, town: Path, embedder: MiniLMEmbeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    assert _ingest_child(home, str(town)).returncode == 0
    desk = _desk(home, embedder)
    builds: list[str] = []
    real_writer = LexicalStore.writer

    def counting_writer(self: LexicalStore) -> Any:
        builds.append(str(self.path))  # only writers may change it; this process only reads
        return real_writer(self)

    monkeypatch.setattr(LexicalStore, "writer", counting_writer)
    questions = ["When did the ferry terminal open?", "How late will the library stay open?"]
    errors: list[str] = []
    answered = 0

    def while_writing(*args: str) -> None:
        nonlocal answered
        env = {**os.environ, "NEWSDESK_HOME": str(home)}
        child = subprocess.Popen(
            [sys.executable, "-m", "assistant.surfaces.cli", "ingest", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        while child.poll() is None:
            try:
                answer = desk.answer(questions[answered % 2])
                assert answer.citations or answer.abstained
                answered += 1
            except Exception as exc:  # any error in the reader fails the test below
                errors.append(f"{type(exc).__name__}: {exc}")
        assert child.returncode == 0, child.stderr.read() if child.stderr else ""

    # 1. a new article
    (town / "orchard.md").write_text(ORCHARD)
    while_writing(str(town))
    orchard = desk.search("Quintaflux plum harvest tonnes", k=3)
    assert orchard and orchard[0].title.startswith("Quintaflux orchards")
    # 2. an update that keeps the chunk count (one short article, one chunk either way)
    store = Store(load_settings(home=home), embedder)
    count = store.count()
    (town / "library.md").write_text(LIBRARY.replace("ten in the evening", "eleven at night"))
    while_writing(str(town))
    assert store.count() == count
    late = desk.search("library open until eleven at night", k=3)
    assert "eleven at night" in late[0].text
    assert all("ten in the evening" not in p.text for p in late)
    # 3. a prune
    (town / "orchard.md").unlink()
    while_writing("--prune", str(town))
    assert all(not p.title.startswith("Quintaflux") for p in desk.search("Quintaflux plums", k=5))

    assert errors == []
    assert answered > 0
    assert builds == []
    assert desk.index.refreshes == 3


def _plain(answer: Any) -> dict[str, Any]:
    data = answer.as_json()
    data.pop("timings")
    return data


QUESTIONS = [
    "Will China mediate between Russia and Ukraine?",
    "What did Josep Borrell say about China?",
    "What did Kuleba ask Wang Yi to do?",
    "When did the Fed raise interest rates?",
    "Who won the most gold medals at the Beijing Winter Olympics?",
    "What did Biden tell Xi in their video call?",
    "What did Macron and Scholz discuss with Xi?",
    "Who won the 2022 FIFA World Cup final?",
    "How did China vote on the UN resolution?",
    "What did Wang Yi say about relations with Russia?",
]


def test_sixteen_threads_give_exactly_the_single_threaded_answers(
    examples_home: Path, embedder: MiniLMEmbeddings
) -> None:
    asked = [QUESTIONS[i % len(QUESTIONS)] for i in range(100)]
    alone = _desk(examples_home, embedder)
    expected = {q: _plain(alone.answer(q)) for q in QUESTIONS}

    shared = _desk(examples_home, embedder)  # a cold cache, filled by 16 threads at once
    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(lambda q: _plain(shared.answer(q)), asked))
    assert got == [expected[q] for q in asked]

    async def all_at_once() -> list[dict[str, Any]]:
        desk = _desk(examples_home, embedder)
        answers = await asyncio.gather(*(desk.aanswer(q) for q in asked))
        return [_plain(a) for a in answers]

    assert asyncio.run(all_at_once()) == [expected[q] for q in asked]


def test_async_stream_gives_the_same_events(
    examples_home: Path, embedder: MiniLMEmbeddings
) -> None:
    desk = _desk(examples_home, embedder)
    question = QUESTIONS[0]
    sync_events = list(desk.stream(question))

    async def collect() -> list[Any]:
        return [event async for event in desk.astream(question)]

    async_events = asyncio.run(collect())
    assert [type(e) for e in async_events] == [type(e) for e in sync_events]
    assert isinstance(async_events[0], PassagesFound)
    assert isinstance(async_events[-1], Final)
    assert _plain(async_events[-1].answer) == _plain(sync_events[-1].answer)


def test_retriever_is_a_langchain_retriever_that_composes(
    examples_home: Path, embedder: MiniLMEmbeddings
) -> None:
    desk = _desk(examples_home, embedder)
    docs = desk.retriever.invoke("Borrell China mediator")
    assert docs and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["rank"] == 1 and docs[0].id
    assert [d.id for d in docs] == [p.chunk_id for p in desk.search("Borrell China mediator")]
    chain = desk.retriever | RunnableLambda(lambda ds: [d.metadata["source"] for d in ds])
    assert "Continental Ledger" in chain.invoke("Borrell China mediator")


@on_both_stores("examples_store")
def test_stats_and_sources_come_from_the_desk(
    examples_store: StoreAt, embedder: MiniLMEmbeddings
) -> None:
    settings = examples_store.settings()
    desk = Desk(settings, store=Store(settings, embedder))
    stats = desk.stats()
    assert stats.documents >= 10 and stats.chunks >= stats.documents and stats.generation == 1
    assert stats.store == settings.describe_store()
    sources = desk.sources()
    assert sum(s.articles for s in sources) == stats.documents
    ledger = next(s for s in sources if s.source == "Continental Ledger")
    assert ledger.first_published and ledger.first_published <= (ledger.last_published or "")


def test_two_ingests_at_once_one_waits_and_the_store_is_as_after_one(
    tmp_path: Path, town: Path, embedder: MiniLMEmbeddings
) -> None:
    home = tmp_path / "home"
    settings: Settings = load_settings(home=home)
    env = {**os.environ, "NEWSDESK_HOME": str(home)}
    logs = [tmp_path / f"ingest-{i}.err" for i in range(2)]
    with writer_lock(settings, settings.collection):  # both children must wait for this
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "assistant.surfaces.cli", "ingest", str(town)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log.open("w"),
            )
            for log in logs
        ]
        deadline = time.monotonic() + 120
        while not all("another ingest is running" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            assert all(c.poll() is None for c in children)
            time.sleep(0.2)
        assert f"pid {os.getpid()}" in logs[0].read_text()  # names who holds the lock
    assert [c.wait(timeout=180) for c in children] == [0, 0]

    single = tmp_path / "single"
    assert _ingest_child(single, str(town)).returncode == 0
    both = Store(settings, embedder)
    one = Store(load_settings(home=single), embedder)
    assert both.count() == one.count() > 0
    assert sorted(both.doc_states()) == sorted(one.doc_states())
    assert both.generation() == one.generation() == 1  # the second ingest changed nothing


def test_embedder_release_waits_for_calls_in_flight(embedder: MiniLMEmbeddings) -> None:
    local = MiniLMEmbeddings(workers=2)
    texts = [f"sentence number {i} about ferries and libraries" for i in range(64)]
    expected = local.embed_array(texts)
    failures: list[BaseException] = []
    stop = threading.Event()

    def embed_loop() -> None:
        while not stop.is_set():
            try:
                got = local.embed_array(texts)
                assert abs(got - expected).max() < 1e-5
            except BaseException as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=embed_loop) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(10):
        local.release()
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize("damage", ["drop-state", "old-generation", "drop-meta", "old-format"])
def test_a_damaged_lexical_snapshot_is_rebuilt_once_and_said_so(
    tmp_path: Path, town: Path, embedder: MiniLMEmbeddings, damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    home = tmp_path / "home"
    assert _ingest_child(home, str(town)).returncode == 0
    settings = load_settings(home=home)
    store = Store(settings, embedder)
    lexical = LexicalStore.beside(settings, store)
    state = json.loads(lexical.state_path.read_text())
    if damage == "drop-state":
        lexical.state_path.unlink()
    elif damage == "old-generation":  # as if another machine had ingested since
        lexical.state_path.write_text(json.dumps({**state, "generation": 0}))
    elif damage == "drop-meta":
        (lexical.path / "meta.json").unlink()
    else:  # an index from an older newsdesk: bm25s snapshots, no tantivy directory
        shutil.rmtree(lexical.path)
        (settings.home / "bm25" / "news" / "gen-1").mkdir(parents=True)
    desk = _desk(home, embedder, abstain_min_score=0.8)
    with caplog.at_level("WARNING"):
        hits = desk.search("ferry terminal berths", k=2)
        again = desk.search("library opening hours", k=2)
    assert hits[0].title.startswith("Port of Calverin")
    assert again[0].title.startswith("Calverin library")
    repairs = [r for r in caplog.records if "bringing the BM25 index level" in r.getMessage()]
    assert len(repairs) == 1


def test_one_sentence_cache_serves_extraction_and_checks(
    examples_home: Path, embedder: MiniLMEmbeddings
) -> None:
    desk = _desk(examples_home, embedder)
    assert desk.checker.sentences is desk.sentences
    desk.answer(QUESTIONS[0])
    assert len(desk.sentences) > 0
