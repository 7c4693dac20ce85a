"""Unit tests of the text helpers: sentences, numbers and dates, content words, speakers."""

from __future__ import annotations

import pytest

from assistant.answering.extractive import speaker_of
from assistant.text import (
    content_terms,
    numbers_and_dates,
    numbers_supported,
    overlap,
    sentence_spans,
    split_sentences,
)


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


# -- sentence_spans ---------------------------------------------------------------------------


def test_abbreviations_do_not_end_sentences() -> None:
    text = "Mr. Wang met U.S. officials in Jan. 2022 in Washington. Talks went on."
    assert sentences(text) == [
        "Mr. Wang met U.S. officials in Jan. 2022 in Washington.",
        "Talks went on.",
    ]


def test_initials_titles_and_times_do_not_end_sentences() -> None:
    text = "John F. Kennedy was president. Dr. Smith came at 3 p.m. on Friday. It rose."
    assert sentences(text) == [
        "John F. Kennedy was president.",
        "Dr. Smith came at 3 p.m. on Friday.",
        "It rose.",
    ]


def test_quotes_stay_with_their_sentence() -> None:
    text = '"We are ready," Wang said. "Talks must continue." Then he left.'
    assert sentences(text) == [
        '"We are ready," Wang said.',
        '"Talks must continue."',
        "Then he left.",
    ]


def test_curly_quotes_and_question_marks() -> None:
    text = "“Is it over?” she asked. “No!” He left."
    assert sentences(text) == ["“Is it over?” she asked.", "“No!”", "He left."]


def test_paragraph_breaks_and_bullets_end_sentences() -> None:
    text = "Headline without a stop\n\nBody starts here. Second one!\n\nIntro:\n- first\n- second"
    assert sentences(text) == [
        "Headline without a stop",
        "Body starts here.",
        "Second one!",
        "Intro:",
        "- first",
        "- second",
    ]


def test_decimals_and_sentences_starting_with_digits() -> None:
    text = "Rates rose to 0.25% today. 2022 was a record year. Next?"
    assert sentences(text) == ["Rates rose to 0.25% today.", "2022 was a record year.", "Next?"]


def test_spans_are_offsets_into_the_original_text_trimmed() -> None:
    text = "  First one.   Second one.  \n"
    spans = sentence_spans(text)
    assert spans == [(2, 12), (15, 26)]
    assert split_sentences(text) == ["First one.", "Second one."]
    # a window of the text: offsets stay absolute
    assert sentence_spans(text, 15) == [(15, 26)]
    assert sentence_spans(text, 0, 12) == [(2, 12)]
    assert sentence_spans("") == [] and sentence_spans("   \n\n ") == []


def test_cjk_sentence_ends_need_no_space() -> None:
    text = "外交部发言人说，中方愿意斡旋。他没有说何时！会谈会继续吗？「会的。」记者问道。Done."
    assert sentences(text) == [
        "外交部发言人说，中方愿意斡旋。",
        "他没有说何时！",
        "会谈会继续吗？",
        "「会的。」",
        "记者问道。",
        "Done.",
    ]


@pytest.mark.parametrize("mark", ["!", ".", "?", "…", "。", "！"])
def test_runs_of_stops_are_split_in_linear_time(mark: str) -> None:
    """A run of stops used to be re-scanned from each of its marks (20,000 took 15 s)."""
    import time

    started = time.perf_counter()
    assert sentences(mark * 400_000 + " Next one.") in (
        [mark * 400_000, "Next one."],
        [mark * 400_000 + " Next one."],
    )
    assert time.perf_counter() - started < 5


# -- numbers and dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("more than 6,000 citizens", {"6000"}),
        ("on March 7, 2022", {"mar 7", "2022"}),
        ("on Feb. 24 the war began", {"feb 24"}),
        ("on february 24", {"feb 24"}),
        ("to between 0.25% and 0.50%", {"0.25", "0.50"}),
        ("a record $147 billion", {"147"}),
        ("since March 2020", {"2020"}),  # a year after a month is not a day
        ("the G7 summit", set()),
        ("no numbers here", set()),
    ],
)
def test_numbers_and_dates(text: str, expected: set[str]) -> None:
    assert numbers_and_dates(text) == expected


def test_sept_abbreviation_is_a_date() -> None:
    assert numbers_and_dates("on Sept. 3") == {"sep 3"}
    assert numbers_supported("It happened on September 3.", "It happened on Sept. 3, 2022.")


def test_ordinal_dates_are_checked() -> None:
    passage = "Wang Yi spoke on March 7, 2022."
    assert numbers_and_dates("on March 9th") == {"mar 9"}
    assert not numbers_supported("Wang Yi spoke on March 9th.", passage)


def test_numbers_supported() -> None:
    passage = "Wang Yi spoke on March 7, 2022, and said more than 6,000 citizens were there."
    assert numbers_supported("Wang Yi spoke on March 7.", passage)
    assert numbers_supported("More than 6000 citizens were there.", passage)  # normalised
    assert numbers_supported("It happened in 2022.", passage)
    assert numbers_supported("Wang Yi said China was ready.", passage)  # nothing to check
    assert not numbers_supported("Wang Yi spoke on March 8.", passage)
    assert not numbers_supported("More than 8,000 citizens were there.", passage)
    assert not numbers_supported("Wang Yi spoke on March 7, 2021.", passage)


# -- content terms ----------------------------------------------------------------------------


def test_content_terms_are_stemmed_without_stopwords() -> None:
    assert content_terms("China is mediating the talks") == ["china", "mediat", "talk"]
    assert content_terms("China mediates") == content_terms("china mediating")
    # curly apostrophes are normalised; "said" and other stopwords go
    assert content_terms("China’s ministers said they were ready") == content_terms(
        "China's ministers were ready"
    )
    assert "said" not in content_terms("Borrell said so")
    # single letters go, digits stay
    assert content_terms("a b 7 I x") == ["7"]
    assert content_terms("") == [] and content_terms("the of and") == []


def test_overlap_is_share_of_distinct_query_terms() -> None:
    assert overlap(["a", "b", "b"], ["b", "c"]) == 0.5
    assert overlap([], ["a"]) == 0.0
    assert overlap(["a"], []) == 0.0


# -- speaker_of -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "speaker"),
    [
        ('"We are ready," Wang said.', "Wang"),
        ("“We are ready,” Wang said.", "Wang"),
        ('"It has to be China," said Josep Borrell.', "Josep Borrell"),
        ('"It has to be China," Borrell said, adding that he was convinced of it.', "Borrell"),
        ("Josep Borrell said China must mediate.", "Josep Borrell"),
        ("EU foreign-policy chief Josep Borrell said China must mediate.", "Josep Borrell"),
        ("China is ready to help, according to Wang Yi.", "Wang Yi"),
        (
            '"Xi blamed NATO for it," said Owen Castellanos of the Caldmoor Institute.',
            "Owen Castellanos",
        ),
        ('"We are ready," he said.', ""),
        ("He said China was ready.", ""),
        ("The talks ended without progress.", ""),
    ],
)
def test_speaker_of(sentence: str, speaker: str) -> None:
    assert speaker_of(sentence) == speaker


def test_speaker_of_looks_at_the_next_sentence_only_for_quotes() -> None:
    assert speaker_of('"It has to be China."', "Borrell said he was convinced of it.") == "Borrell"
    assert speaker_of("It has to be China.", "Borrell said he was convinced of it.") == ""
    assert speaker_of('"It has to be China."', "He said he was convinced of it.") == ""
