"""News is dated: as-of dates, relative dates read into windows, the recency prior, copies of
one story grouped at ingest, timelines (issue 13)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from assistant.answering.timeline import LLM_INSTRUCTION, published, wants_timeline
from assistant.answering.when import resolve
from assistant.desk import Desk
from assistant.index.recency import RecencyPrior, fit_bins
from assistant.index.retriever import diversify
from assistant.index.schema import NO_TIMESTAMP
from assistant.index.store import Store
from assistant.index.stories import StoryIndex, sketch
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.surfaces.cli import main
from assistant.types import Filters, Passage
from ingest.pipeline import ingest_paths
from tests.conftest import EXAMPLES, clean_settings
from tests.fake_openai import FakeOpenAI

D = date.fromisoformat

# -- relative dates ------------------------------------------------------------------------
# (question, as-of date, expected window or None): a named day runs to the as-of date (its
# news comes that day or later), a named period two reporting days past its end; never past
# the as-of date
TABLE = [
    ("What did Wang Yi say this week?", "2022-03-19", ("2022-03-13", "2022-03-19")),
    ("What happened this week?", "2022-03-01", ("2022-02-23", "2022-03-01")),  # month edge
    ("What happened last week?", "2022-03-14", ("2022-03-07", "2022-03-14")),  # a Monday
    ("What happened last week?", "2022-03-20", ("2022-03-07", "2022-03-15")),  # a Sunday
    ("What did the Fed do last month?", "2022-03-19", ("2022-02-01", "2022-03-02")),
    ("What did the Fed do last month?", "2022-01-05", ("2021-12-01", "2022-01-02")),  # year
    ("What happened this month?", "2022-03-19", ("2022-03-01", "2022-03-19")),
    ("What did he say yesterday?", "2022-03-19", ("2022-03-18", "2022-03-19")),
    ("What did he say today?", "2022-03-19", ("2022-03-19", "2022-03-19")),
    ("What did Biden say on Tuesday?", "2022-03-19", ("2022-03-15", "2022-03-19")),
    ("What did Biden say last Saturday?", "2022-03-19", ("2022-03-12", "2022-03-19")),
    ("What was said in the past 3 days?", "2022-03-19", ("2022-03-17", "2022-03-19")),
    ("What happened in March?", "2022-03-19", ("2022-03-01", "2022-03-19")),
    ("What happened in December?", "2022-03-19", ("2021-12-01", "2022-01-02")),
    ("What happened on 7 March 2022?", "2022-03-19", ("2022-03-07", "2022-03-19")),
    ("What changed since March 1?", "2022-03-19", ("2022-03-01", "2022-03-19")),
    ("How has it changed since February?", "2022-03-19", ("2022-02-01", "2022-03-19")),
    ("Who won the election in 2020?", "2022-03-19", ("2020-01-01", "2021-01-02")),
    # not dates
    ("Will China mediate?", "2022-03-19", None),
    ("What did May say about Brexit?", "2022-03-19", None),
    ("What did Theresa May say?", "2022-03-19", None),
    ("When did the March on Rome begin?", "2022-03-19", None),
    ("Who came second in the race?", "2022-03-19", None),
    ("Which country announced 5 new sanctions?", "2022-03-19", None),
    ("What will happen in May 2022?", "2022-03-19", None),  # after the as-of date
]


@pytest.mark.parametrize(("question", "as_of", "window"), TABLE)
def test_relative_dates(question: str, as_of: str, window: tuple[str, str] | None) -> None:
    found = resolve(question, D(as_of))
    if window is None:
        assert found is None, found
    else:
        assert found is not None and (found.since, found.until) == (D(window[0]), D(window[1]))
        assert found.until <= D(as_of)


def test_window_label() -> None:
    found = resolve("What did Wang Yi say this week?", D("2022-03-19"))
    assert found is not None and found.label == "13–19 March 2022"
    found = resolve("What happened this week?", D("2022-03-01"))
    assert found is not None and found.label == "23 February – 1 March 2022"


# -- recency prior -------------------------------------------------------------------------
def test_prior_bins_and_flat_prior_keeps_order() -> None:
    prior = RecencyPrior((1, 7, 30), (2.0, 1.0, 0.0, -1.0), undated=-0.5, weight=1.0, window_days=7)
    as_of = 100 * 86_400
    stamps = np.array([as_of - 3600, as_of - 3 * 86_400, as_of - 10 * 86_400, 0, NO_TIMESTAMP])
    assert prior.log_prior(stamps, as_of).tolist() == [2.0, 1.0, 0.0, -1.0, -0.5]
    assert np.allclose(RecencyPrior.flat().factors(stamps, as_of), 1.0)
    ratios, undated = fit_bins([0.5, 0.5, 3.0, None], [0.5, 3.0, 3.0, 50.0, 50.0, None], (1, 7))
    assert ratios[0] > ratios[1] > ratios[2] and len(ratios) == 3  # gold is recent
    assert isinstance(undated, float)


# -- same-story grouping -------------------------------------------------------------------
def _wire_text() -> str:
    line = (EXAMPLES / "wire.jsonl").read_text(encoding="utf-8").splitlines()[0]
    return str(json.loads(line)["text"])


def _article(title: str, source: str, day: str | None, body: str) -> str:
    head = ["---", f"title: {title}", f"source: {source}"]
    head += [f"published_at: {day}"] if day else []
    return "\n".join([*head, "---", "", body, ""])


def _copies(folder: Path) -> Path:
    """An original wire story, a reprint with another outlet's boilerplate and its last
    paragraph cut, a different report on the same event, and an undated, unrelated piece."""
    wire = _wire_text()
    paragraphs = wire.split("\n\n")
    reprint = "\n\n".join(
        [
            "Harbor Line News | Markets | Subscribe today for unlimited access to every story.",
            "This article is republished from Atlas Wire under a syndication agreement.",
            *paragraphs[:-1],
            "© 2022 Harbor Line News. All rights reserved. Sign up for our morning newsletter "
            "to get the day's top business headlines in your inbox. Follow us on social media.",
        ]
    )
    own = (
        "Borrowing costs in the United States are going up. Officials at the central bank in "
        "Washington agreed to lift their main rate by a quarter of a percentage point, the "
        "first such move in more than three years, and Chair Jerome Powell told reporters that "
        "further steps were likely as prices keep climbing faster than wages for many families. "
        "Economists at several banks said the decision had been widely expected by markets."
    )
    folder.mkdir(parents=True)
    (folder / "wire-copy-atlas.md").write_text(
        _article("Fed raises rates", "Atlas Wire", "2022-03-16", wire), encoding="utf-8"
    )
    (folder / "wire-copy-harbor.md").write_text(
        _article("Fed lifts rates, more to come", "Harbor Line News", "2022-03-17", reprint),
        encoding="utf-8",
    )
    (folder / "fed-own-report.md").write_text(
        _article("Borrowing costs rise", "Ledger Daily", "2022-03-25", own), encoding="utf-8"
    )
    undated = "The city council met to discuss the new tram line and its budget. " * 8
    (folder / "council-undated.md").write_text(
        _article("Tram line debated", "Town Crier", None, undated), encoding="utf-8"
    )
    return folder


@pytest.fixture(scope="module")
def stories_home(tmp_path_factory: pytest.TempPathFactory, embedder: MiniLMEmbeddings) -> Path:
    home = tmp_path_factory.mktemp("stories") / "home"
    folder = _copies(home.parent / "articles")
    settings = clean_settings(home)
    report = ingest_paths([str(folder)], settings, store=Store(settings, embedder))
    assert not report.skipped and report.added == 4
    return home


def _desk(home: Path, embedder: MiniLMEmbeddings) -> Desk:
    settings = clean_settings(home)
    return Desk(settings, store=Store(settings, embedder))


def test_copies_with_other_boilerplate_share_a_story(
    stories_home: Path, embedder: MiniLMEmbeddings
) -> None:
    desk = _desk(stories_home, embedder)
    chunks = [c for c in desk.store.iter_chunks()]
    story = {c.meta.doc_id: c.meta.story for c in chunks}  # type: ignore[union-attr]
    by_source = {c.meta.source: c.meta.story for c in chunks}  # type: ignore[union-attr]
    assert len(set(story.values())) == 3
    lexical = desk.index.current()
    members = lexical.story_members(story.values())
    assert sorted(len(m) for m in members.values()) == [1, 1, 2]
    assert desk.stats().documents == 4 and desk.stats().stories == 3
    atlas, harbor = by_source["Atlas Wire"], by_source["Harbor Line News"]
    own = by_source["Ledger Daily"]
    assert atlas == harbor != own


def test_sketch_containment_survives_boilerplate() -> None:
    wire = _wire_text()
    a, size_a = sketch(wire)
    b, size_b = sketch("Subscribe now! Read more at Harbor Line.\n" + wire + "\n© 2022 Harbor")
    assert a.jaccard(b) > 0.8 and size_b > size_a


def test_a_later_copy_joins_the_story_and_is_cited_as_also_reported(
    stories_home: Path, embedder: MiniLMEmbeddings, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(stories_home, home)
    later = tmp_path / "later"
    later.mkdir()
    body = "Reporting by Atlas Wire staff.\n\n" + _wire_text() + "\n\nMore on our website."
    (later / "wire-copy-gazette.md").write_text(
        _article("Fed moves on rates", "Valley Gazette", "2022-03-18", body), encoding="utf-8"
    )
    settings = clean_settings(home)
    report = ingest_paths([str(later)], settings, store=Store(settings, embedder))
    assert report.added == 1
    desk = _desk(home, embedder)
    assert desk.stats().stories == 3 and desk.stats().documents == 5
    answer = desk.answer(
        "By how much did the Federal Reserve raise interest rates?", extractive=True, k=6
    )
    assert not answer.abstained
    wire_cites = [c for c in answer.citations if c.passage.source == "Atlas Wire"]
    assert wire_cites, answer.citations
    assert set(wire_cites[0].also_reported_by) == {"Harbor Line News", "Valley Gazette"}
    # retrieval diversifies by story: at most two chunks of the three copies in the top 4
    top = desk.search("Federal Reserve raises interest rates quarter point", k=4)
    stories = [p.story_id for p in top]
    assert max(stories.count(s) for s in stories) <= 2


def test_a_store_from_before_stories_is_grouped_once(
    stories_home: Path, embedder: MiniLMEmbeddings, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(stories_home, home)
    settings = clean_settings(home)
    store = Store(settings, embedder)
    # as an older newsdesk left it: no story ids in the chunks, no sketches
    chunks = [c for c in store.iter_chunks()]
    metas = [{k: v for k, v in c.metadata.items() if k != "story_id"} for c in chunks]  # type: ignore[union-attr]
    store.collection.delete(ids=[c.chunk_id for c in chunks])  # type: ignore[union-attr]
    store.collection.add(
        ids=[c.chunk_id for c in chunks],  # type: ignore[union-attr]
        metadatas=metas,
        documents=[c.text for c in chunks],  # type: ignore[union-attr]
        embeddings=[embedder.embed_query(c.text) for c in chunks],  # type: ignore[union-attr]
    )
    StoryIndex.beside(settings, store).path.unlink()
    assert all("story_id" not in c.metadata for c in store.iter_chunks())  # type: ignore[union-attr]
    report = ingest_paths([str(home.parent / "nothing-new")], settings, store=store)
    assert report.added == 0
    assert _desk(home, embedder).stats().stories == 3


def test_diversify_caps_a_story_not_only_an_article() -> None:
    def p(doc: str, story: str, i: int) -> Passage:
        return Passage(rank=0, chunk_id=f"{doc}:{i}", doc_id=doc, text="x", score=1.0,
                       story_id=story)  # fmt: skip

    ranked = [p("a", "s", 0), p("b", "s", 0), p("c", "s", 0), p("d", "d", 0)]
    top = diversify(ranked, 3, per_article=2)
    assert [x.doc_id for x in top] == ["a", "b", "d"]


# -- as of ---------------------------------------------------------------------------------
def test_as_of_leaves_out_later_articles_and_keeps_undated(
    stories_home: Path, embedder: MiniLMEmbeddings
) -> None:
    desk = _desk(stories_home, embedder)
    everything = desk.search("Federal Reserve rates council tram", k=10)
    assert any(p.published_at >= "2022-03-17" for p in everything)
    found = desk.search("Federal Reserve rates council tram", k=10, as_of=D("2022-03-16"))
    assert found and all(p.published_at <= "2022-03-16" for p in found if p.published_at)
    assert any(not p.published_at for p in found)  # undated: not known to be later
    answer = desk.answer(
        "By how much did the Federal Reserve raise rates?",
        filters=Filters(as_of=D("2022-03-16")),
        extractive=True,
    )
    assert answer.as_of == D("2022-03-16")
    assert all(p.published_at <= "2022-03-16" for p in answer.passages if p.published_at)


def test_as_of_at_the_cli(
    capsys: pytest.CaptureFixture[str], stories_home: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("NEWSDESK_HOME", str(stories_home))
    code = main(["ask", "How much did the Fed raise rates?", "--as-of", "2022-03-16", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["as_of"] == "2022-03-16"
    assert all(p["published_at"] <= "2022-03-16" for p in data["passages"] if p["published_at"])
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "a", "question": "What did the Fed do this week?", "as_of": "2022-03-17"})
        + "\n"
        + json.dumps({"id": "b", "question": "Fed rates?", "as_of": "17 March"})
        + "\n",
        encoding="utf-8",
    )
    code = main(["ask", "--file", str(questions), "--json", "--extractive"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 2  # the batch finished, but line "b" failed (README: exit codes)
    first = next(x for x in lines if x["id"] == "a")
    assert first["timeframe"]["label"] == "11–17 March 2022" and first["as_of"] == "2022-03-17"
    assert "Articles from 11–17 March 2022." in first["notice"]
    bad = next(x for x in lines if x["id"] == "b")
    assert "as_of" in bad["error"] and "'17 March'" in bad["error"]
    code = main(["search", "Fed", "--as-of", "2022-03-32"])
    err = capsys.readouterr().err
    assert code == 1 and "'2022-03-32' is not a date" in err


# -- timeline ------------------------------------------------------------------------------
def test_timeline_questions() -> None:
    assert wants_timeline("How has China's position on mediation changed?")
    assert wants_timeline("How did the talks develop over the past month?")
    assert wants_timeline("Give me a timeline of the Fed's decisions")
    assert not wants_timeline("How much did the Fed raise rates?")
    assert not wants_timeline("Will China mediate?")


def test_timeline_orders_evidence_by_date(examples_home: Path, embedder: MiniLMEmbeddings) -> None:
    desk = _desk(examples_home, embedder)
    answer = desk.answer("How has China's position on mediation changed?", extractive=True)
    assert not answer.abstained
    lines = [x for x in answer.text.splitlines() if x.startswith("- ")]
    assert len(lines) >= 3
    shown = [datetime.strptime(x[2:].split(" (")[0], "%d %B %Y").date() for x in lines]
    assert shown == sorted(shown)
    cited = {c.n: published(c.passage) for c in answer.citations}
    for line, day in zip(lines, shown, strict=True):
        n = int(line.rsplit("[", 1)[1].rstrip("]"))
        assert cited[n] == day  # each line's date is its cited article's
    assert "The evidence spans" in answer.notice
    plain = desk.answer("Will China mediate?", extractive=True, timeline=True)
    days = [
        datetime.strptime(x[2:].split(" (")[0], "%d %B %Y").date() for x in plain.text.splitlines()
    ]
    assert days == sorted(days)


def test_llm_timeline_sends_passages_oldest_first(
    examples_home: Path, embedder: MiniLMEmbeddings, fake_openai: FakeOpenAI
) -> None:
    settings = clean_settings(examples_home).model_copy(
        update={"llm_base_url": fake_openai.base_url, "llm_model": "fake-model"}
    )
    fake_openai.script("China offered to mediate when needed [1].")
    desk = Desk(settings, store=Store(settings, embedder))
    desk.answer("How has China's position on mediation changed?")
    sent = "\n".join(str(m.get("content", "")) for m in fake_openai.requests[-1]["messages"])
    assert LLM_INSTRUCTION in sent
    days = re.findall(r'<passage n="\d+"[^>]* date="([\d-]+)"', sent)
    assert len(days) >= 3 and days == sorted(days)
