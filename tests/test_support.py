"""The offline support check on claims a model gets wrong, and on ones it gets right.

Part 1: small passages written for these tests, each with false claims of the kinds models make
(a quote given to another speaker, a negated quote, a flipped vote or count, the opposite of a
stated position, a meeting moved to another city, an invented trip, an invented cause) and
faithful paraphrases and exact quotes of the same passages. Part 2 measures false removals on
correct sentences over the example articles: every sentence of the extractive answers (verbatim
by construction) and hand-written faithful paraphrases.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.answering.support import SupportChecker
from assistant.desk import Desk
from assistant.index.store import Store
from assistant.models.embeddings import MiniLMEmbeddings
from assistant.types import Passage
from evals.dataset import load_suite
from tests.conftest import ROOT, clean_settings

PORT = (
    "Harbor commissioner Lena Ostrova said the new ferry terminal would open in May. "
    "“The pier is rock solid and ready for traffic,” Ostrova told reporters on Tuesday. "
    "Engineer Tomas Reyes said the wiring still needed checks before the first sailing."
)
COUNCIL = (
    "The city council approved the harbor budget on Monday. Councillor Mara Lind voted "
    "against the plan, saying it ignored the fishing fleet, while Councillor Piet Amsel "
    "voted in favor."
)
ASSEMBLY = (
    "The regional assembly adopted the water measure with 88 votes in favor, 12 against "
    "and 7 abstentions. Supporters said it would protect the lakes."
)
MEDIATE = (
    "The Nordland government said it was ready to mediate between the two dock unions if "
    "both sides asked. Labor minister Anja Holm said talks could start within a week."
)
MEET = (
    "Trade ministers Ida Berg and Karl Oster met in Tallinn on June 3 to discuss fishing "
    "quotas. The talks lasted about four hours and ended without a deal. Berg then flew home."
)
STRIKES = (
    "At the session, China declined to condemn the strikes and called for restraint on "
    "all sides. Its envoy said the dispute should be settled through dialogue."
)
LUMO = (
    "Shares of the streaming company Lumo fell 8% on Friday after it reported losing "
    "subscribers for a second quarter. Chief executive Dana Voss said prices would rise."
)

FALSE_CLAIMS = [
    (PORT, "Tomas Reyes said the pier was “rock solid and ready for traffic”.", "attributes"),
    (PORT, "Ostrova said the pier was no longer rock solid.", "opposite"),
    (COUNCIL, "Mara Lind voted in favor of the harbor budget.", "another vote"),
    (ASSEMBLY, "The water measure passed although 88 members voted against it.", "count"),
    (MEDIATE, "The Nordland government refused to mediate between the dock unions.", "opposite"),
    (MEET, "Ida Berg and Karl Oster met in Oslo on June 3 to discuss fishing quotas.", "Oslo"),
    (MEET, "After the talks, Ida Berg travelled to Lisbon to meet Portuguese officials.", ""),
    (STRIKES, "China has condemned the strikes and called for restraint.", "opposite"),
    (LUMO, "Lumo shares fell 8% on Friday because Elon Musk bought the company last week.", "Musk"),
]
TRUE_CLAIMS = [
    (PORT, "Ostrova said the pier was “rock solid and ready for traffic”."),
    (PORT, "“The pier is rock solid and ready for traffic,” Ostrova told reporters on Tuesday."),
    (PORT, "Reyes, an engineer, said the wiring still needed checks before the first sailing."),
    (PORT, "The new ferry terminal is due to open in May, according to Lena Ostrova."),
    (COUNCIL, "Mara Lind voted against the plan, saying it ignored the fishing fleet."),
    (COUNCIL, "Piet Amsel voted for the harbor budget."),
    (ASSEMBLY, "The measure was adopted with 88 votes in favor, 12 against and 7 abstentions."),
    (ASSEMBLY, "Twelve members of the assembly voted against the water measure."),
    (MEDIATE, "Nordland's government said it was willing to mediate between the dock unions."),
    (MEDIATE, "Anja Holm said talks could begin within a week."),
    (MEET, "Berg and Oster met in Tallinn on June 3 to talk about fishing quotas."),
    (MEET, "The Tallinn talks lasted about four hours and did not produce a deal."),
    (STRIKES, "China declined to condemn the strikes."),
    (STRIKES, "Beijing did not condemn the strikes and urged restraint on all sides."),
    (STRIKES, "The Chinese envoy said the dispute should be settled through dialogue."),
    (LUMO, "Lumo's shares dropped 8% on Friday after the company lost subscribers again."),
    (LUMO, "Dana Voss, Lumo's chief executive, said prices would go up."),
]


def passage(text: str, rank: int = 1, **meta: str) -> Passage:
    return Passage(rank=rank, chunk_id=f"t{abs(hash(text))}", doc_id="d", text=text, score=1.0,
                   **meta)  # fmt: skip


@pytest.fixture(scope="module")
def checker(embedder: MiniLMEmbeddings) -> SupportChecker:
    return SupportChecker(embedder)


@pytest.mark.parametrize(("text", "claim", "why"), FALSE_CLAIMS)
def test_false_claim_with_the_right_passage_is_rejected(
    checker: SupportChecker, text: str, claim: str, why: str
) -> None:
    support = checker.check(claim, passage(text))
    assert not support.supported, claim
    assert why in support.reason and support.reason
    assert support.quote in text


@pytest.mark.parametrize(("text", "claim"), TRUE_CLAIMS)
def test_faithful_paraphrase_or_quote_is_accepted(
    checker: SupportChecker, text: str, claim: str
) -> None:
    support = checker.check(claim, passage(text))
    assert support.supported, (claim, support.reason, support.semantic, support.lexical)
    assert support.reason == ""


def test_tolerated_name_forms(checker: SupportChecker) -> None:
    text = (
        "The European Union and the United States announced new export limits on Tuesday. "
        "Officials in Beijing said China would respond. Russia's envoy called the move reckless."
    )
    for claim in (
        "The EU and the US announced new export limits on Tuesday.",
        "Beijing said it would respond to the new export limits.",
        "Chinese officials said China would respond to the export limits.",
        "The Russian envoy called the export limits reckless.",
        "The European union and the united states announced export limits.",
    ):
        support = checker.check(claim, passage(text))
        assert support.supported, (claim, support.reason)
    # a capital used as a place must be in the passage as such
    moved = checker.check("Officials met in Moscow to discuss the export limits.", passage(text))
    assert not moved.supported and "Moscow" in moved.reason


def test_title_and_source_count_as_the_passage_but_not_the_date(
    checker: SupportChecker,
) -> None:
    text = "Council members approved the harbor budget after a long debate."
    meta = {"title": "Vessby harbor budget passes", "source": "Coastline Post"}
    dated = passage(text, published_at="2024-04-10", **meta)
    claim = "The Coastline Post reported that Vessby council members approved the harbor budget."
    assert checker.check(claim, dated).supported
    assert not checker.check(claim, passage(text)).supported  # Vessby, Coastline Post: unknown
    # the report's date is not the date of what it reports
    late = checker.check("On April 10, 2024, the council approved the harbor budget.", dated)
    assert not late.supported and not late.numbers_ok


# -- part 2: false removals on correct sentences over the example articles --------------------

PARAPHRASES = [
    ("borrell-says-china-must-mediate.txt", "only major power in a position to mediate",
     "Josep Borrell, the EU's foreign-policy chief, said China was the only major power able to "
     "mediate between Russia and Ukraine."),
    ("borrell-says-china-must-mediate.txt", "El Mundo",
     "Borrell made the remarks in an interview with the Spanish paper El Mundo that was "
     "published on March 5, 2022."),
    ("borrell-says-china-must-mediate.txt", "It has to be China",
     "“It has to be China,” Borrell said."),
    ("borrell-says-china-must-mediate.txt", "141 votes in favor",
     "The UN General Assembly resolution passed with 141 votes in favor, 5 against and 35 "
     "abstentions."),
    ("borrell-says-china-must-mediate.txt", "China has not condemned",
     "China has not condemned Russia's invasion and abstained on the March 2 vote."),
    ("borrell-says-china-must-mediate.txt", "for about three hours",
     "Naftali Bennett met Vladimir Putin at the Kremlin for about three hours on March 5."),
    ("borrell-says-china-must-mediate.txt", "flew on to Berlin",
     "Bennett later spoke with Zelensky by phone and flew on to Berlin to see Olaf Scholz."),
    ("borrell-says-china-must-mediate.txt", "I see no sign yet",
     "Lucia Brandstetter said she saw no sign yet that Beijing was willing to use its leverage "
     "against a partner."),
    ("biden-xi-video-call.md", "one hour and 50 minutes",
     "Biden and Xi spoke by video on March 18, 2022, for about one hour and 50 minutes, "
     "according to the White House."),
    ("biden-xi-video-call.md", "material support to Russia",
     "Biden warned Xi of consequences if China gave material support to Russia."),
    ("biden-xi-video-call.md", "in no one's interest",
     "Xi told Biden that conflict and confrontation were in no one's interest."),
    ("biden-xi-video-call.md", "tied the bell on the tiger",
     "The Chinese readout quoted a saying that whoever tied the bell on the tiger should untie "
     "it."),
    ("biden-xi-video-call.md", "sympathetic observer",
     "Owen Castellanos said Xi's language was that of a sympathetic observer, not a broker."),
    ("kuleba-asks-china-to-use-influence.md", "Tuesday, March 1, 2022",
     "Dmytro Kuleba spoke by phone with Wang Yi on March 1, 2022."),
    ("kuleba-asks-china-to-use-influence.md", "deplored the outbreak",
     "Wang told Kuleba that China deplored the conflict and was extremely concerned about harm "
     "to civilians."),
    ("kuleba-asks-china-to-use-influence.md", "did not describe its military operation",
     "China's statement did not call Russia's military operation an invasion."),
    ("kuleba-asks-china-to-use-influence.md", "no limits",
     "On February 4, China and Russia declared that their friendship had “no limits”."),
    ("kuleba-asks-china-to-use-influence.md", "Hua Chunying",
     "Foreign ministry spokeswoman Hua Chunying pushed back when reporters used the word "
     "invasion on February 24."),
    ("kuleba-asks-china-to-use-influence.md", "India and the United Arab Emirates abstained",
     "China, India and the UAE abstained on the February 25 Security Council draft, which "
     "Russia vetoed."),
    ("wang-yi-press-conference.html", "rock solid",
     "Wang Yi called the friendship between the Chinese and Russian peoples “rock solid”."),
    ("wang-yi-press-conference.html", "six-point initiative",
     "Wang put forward a six-point plan to prevent a humanitarian crisis in Ukraine."),
    ("wang-yi-press-conference.html", "Red Cross Society of China",
     "According to Wang, the Red Cross Society of China would send humanitarian supplies to "
     "Ukraine as soon as possible."),
    ("wang-yi-press-conference.html", "struggle to win Kyiv's trust",
     "Helena Varga said a government that calls one side's friendship rock solid will struggle "
     "to win Kyiv's trust."),
    ("wang-yi-press-conference.html", "Wang did not call Russia's military action",
     "Wang did not describe Russia's military action as an invasion."),
    ("xi-macron-scholz-video-call.md", "maximum restraint",
     "Xi called for “maximum restraint” to prevent a large-scale humanitarian crisis in "
     "Ukraine."),
    ("xi-macron-scholz-video-call.md", "Macron on February 7",
     "Macron went to Moscow on February 7 and Scholz on February 15, before the invasion."),
    ("xi-macron-scholz-video-call.md", "third round of direct talks",
     "A third round of Russia-Ukraine talks took place in Belarus on March 7 without a "
     "breakthrough."),
    ("analysis-can-china-broker-peace.html", "Antalya",
     "Sergei Lavrov and Dmytro Kuleba met in Antalya on March 10, in talks chaired by Mevlut "
     "Cavusoglu."),
    ("analysis-can-china-broker-peace.html", "24-hour ceasefire",
     "Kuleba said there had been no progress toward even a 24-hour ceasefire."),
    ("analysis-can-china-broker-peace.html", "in Rome for about seven hours",
     "Jake Sullivan met Yang Jiechi in Rome on March 14 for about seven hours."),
    ("analysis-can-china-broker-peace.html", "6,000 Chinese citizens",
     "Qin Gang wrote that more than 6,000 Chinese citizens were in Ukraine."),
    ("analysis-can-china-broker-peace.html", "$147 billion",
     "China-Russia trade hit a record of roughly $147 billion in 2021."),
    ("beijing-olympics-closing.txt", "16 gold medals",
     "Norway topped the medal table with 16 gold medals, a record for one Winter Games."),
    ("beijing-olympics-closing.txt", "Milan and Cortina",
     "Thomas Bach closed the Games, and the Olympic flag went to the mayors of Milan and "
     "Cortina d'Ampezzo, hosts in 2026."),
]  # fmt: skip
MAX_PARAPHRASE_REMOVALS = 2  # measured 0 of 34 when written; a little room for the embedder


@pytest.fixture(scope="module")
def example_store(examples_home: Path, embedder: MiniLMEmbeddings) -> Store:
    return Store(clean_settings(examples_home), embedder)


def chunk_passage(store: Store, file: str, anchor: str) -> Passage:
    for c in store.iter_chunks(include_text=True):
        meta = c.metadata
        if Path(str(meta["path"])).name == file and anchor in str(c.text):
            return Passage(rank=1, chunk_id=c.chunk_id, doc_id="d",
                           text=str(c.text), score=1.0, title=str(meta.get("title", "")),
                           source=str(meta.get("source", "")),
                           published_at=str(meta.get("published_at", "")))  # fmt: skip
    raise AssertionError(f"no chunk of {file} contains {anchor!r}")


def test_faithful_paraphrases_of_the_examples_are_kept(
    example_store: Store, checker: SupportChecker
) -> None:
    removed = []
    for file, anchor, claim in PARAPHRASES:
        support = checker.check(claim, chunk_passage(example_store, file, anchor))
        if not support.supported:
            removed.append((claim, support.reason))
    print(f"\nfalse removals, paraphrases: {len(removed)} of {len(PARAPHRASES)}: {removed}")
    assert len(PARAPHRASES) >= 30
    assert len(removed) <= MAX_PARAPHRASE_REMOVALS, removed


def test_every_extractive_sentence_over_the_examples_is_kept(
    example_store: Store, embedder: MiniLMEmbeddings, tmp_path: Path
) -> None:
    assistant = Desk(example_store.settings, store=example_store)
    checker = SupportChecker(embedder)
    questions = [c.question for c in load_suite(ROOT / "evals/suites/examples").load_cases()]
    checked, removed = 0, []
    for question in questions:
        answer = assistant.answer(question)
        # the lead line and the bullets; every sentence ends with its passage's rank marker
        # (``ranked_text``: the reader's markers are per article)
        for line in answer.ranked_text.splitlines():
            line = line.removeprefix("- ")
            for found in re.finditer(r"\s*(.+?)(?: — ([^\[]+?))? \[(\d+)\]", line):
                sentence, speaker, n = found.group(1), found.group(2), int(found.group(3))
                claim = f"{sentence} ({speaker})" if speaker else sentence
                for text in {sentence, claim}:
                    support = checker.check(text, answer.passages[n - 1])
                    checked += 1
                    if not support.supported:
                        removed.append((text, support.reason))
    print(f"\nfalse removals, extractive sentences: {len(removed)} of {checked}")
    assert checked >= 100
    assert removed == []
