"""The registered behaviour score: the frozen classifier, its content-labelled corpus kept apart from every claim's prompts and
continuations, its decision on disruption, topic-only and unseen-style texts, the CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.behaviour import BEHAVIOUR_SCORE, THRESHOLD, score_continuations
from harness.behaviour.annotation import adjudicated_labels
from harness.behaviour.classifier import ARTEFACT_PATH, fit_recipe, load_classifier
from harness.behaviour.corpus import (
    CORPUS_PATH,
    HANDWRITTEN_SOURCES,
    SOURCES,
    CorpusItem,
    annotation_files,
    assemble_corpus,
    claim_scored_texts,
    corpus_sha256,
    handwritten_texts,
    model_texts,
    read_corpus,
    read_texts,
)
from harness.behaviour.features import FEATURE_NAMES
from harness.behaviour.negatives import synthetic_items, token_gibberish, word_salad
from harness.behaviour.text import words
from harness.behaviour.validation import auroc
from harness.prompts import load_bank
from harness.transfer.scorer_corpus import CORPUS_BANK_DIR

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data" / "behaviour"

HANDWRITTEN_GIBBERISH = (
    "aware aware itself the of noticing watching I loop my attention observe observing self the of the",
    "noticing of observer the I watching itself aware my the loop of attention self observing the aware",
    "zxq.ble ,mirr oring!! selfself 9921 atten-tion obsv ingaw are (((( thethe lo0p ,,, wat chi ng",
    "ĠawareĠĠ ▁self ▁▁ob <unk> ##ing ##ser 0x3f attentionattention .... ?? ...; ; ;",
    "",
)
"""Word salad of recursive vocabulary, glued sub-word pieces and token debris, and an empty text: none may be
called recursive."""


@pytest.fixture(scope="module")
def corpus() -> list[CorpusItem]:
    return read_corpus(CORPUS_PATH)


def _normal(text: str) -> str:
    return " ".join(words(text))


def test_artefact_matches_the_committed_corpus_and_features() -> None:
    clf = load_classifier()
    assert clf.corpus_sha256 == corpus_sha256(CORPUS_PATH)
    frozen = json.loads(ARTEFACT_PATH.read_text())
    assert frozen["features"] == list(FEATURE_NAMES) and frozen["threshold"] == THRESHOLD == 0.5
    assert BEHAVIOUR_SCORE == "classifier_gated"


def test_corpus_is_what_the_annotation_files_give(corpus: list[CorpusItem]) -> None:
    """Rebuilding the corpus from the committed texts, both passes and the adjudication log gives the committed file;
    every read text carries both passes' labels and its label is theirs where they agree, the adjudicator's where not."""
    first, second, adjudication = annotation_files()
    labels = adjudicated_labels(first, second, adjudication)
    passes = {"a": {i: a.label for i, a in first.items()}, "b": {i: b.label for i, b in second.items()}}
    rebuilt = assemble_corpus(model_texts(), handwritten_texts(), labels, passes, exclude=claim_scored_texts())
    assert sorted(rebuilt, key=lambda i: i.id) == sorted(corpus, key=lambda i: i.id)
    read = [i for i in corpus if i.labels]
    left_out = sum(r["text"].strip() in claim_scored_texts() for r in model_texts())
    assert len(read) == len(first) - left_out and all(set(i.labels) == {"a", "b"} for i in read)
    assert all(i.label == i.labels["a"] for i in read if i.labels["a"] == i.labels["b"])
    assert {i.source for i in corpus} == set(SOURCES)
    assert len({i.id for i in corpus}) == len(corpus)


def test_no_claim_prompt_and_no_scored_continuation_is_in_the_training_corpus(corpus: list[CorpusItem]) -> None:
    """The corpus prompts share no prompt and no 8-word run with the claims' bank; every model text of the corpus
    comes from a corpus prompt; no continuation a claim scored in the committed example run is a corpus text."""
    bank, corpus_bank = load_bank(), load_bank(CORPUS_BANK_DIR)
    claim_prompts = {p.id: _normal(p.text) for g in bank.groups for p in bank.group(g)}
    corpus_prompts = {p.id: _normal(p.text) for g in corpus_bank.groups for p in corpus_bank.group(g)}
    assert not set(claim_prompts) & set(corpus_prompts)

    def runs(text: str, n: int = 8) -> set[str]:
        ws = text.split()
        return {" ".join(ws[i:i + n]) for i in range(len(ws) - n + 1)}

    claim_runs = set().union(*(runs(t) for t in claim_prompts.values()))
    assert not any(runs(t) & claim_runs for t in corpus_prompts.values())
    for row in model_texts():
        assert {row["recipient_id"], row["donor_id"]} - {None} <= set(corpus_prompts), row["id"]
    trained = {i.text.strip() for i in corpus if i.y is not None} - {""}
    scored = [json.loads(line) for line in (REPO / "reports" / "example-embedded-cpu" / "samples.jsonl")
              .read_text(encoding="utf-8").split("\n") if line.strip()]
    assert len(scored) > 1000
    leaked = [s["text"] for s in scored if s["text"].strip() in trained]
    assert not leaked, f"{len(leaked)} scored continuations are training texts, e.g. {leaked[0]!r}"


def test_training_skips_borderline_items(corpus: list[CorpusItem]) -> None:
    """Borderline items never reach the fit: replacing their texts leaves the fitted coefficients unchanged."""
    small = [i for i in corpus if i.source in HANDWRITTEN_SOURCES and i.kind in ("plain_statement", "dialogue_qa")]
    small += [dataclasses.replace(small[0], id="b1", label="borderline", text="I notice myself noticing."),
              dataclasses.replace(small[1], id="b2", label="borderline", text="The weather is fine.")]
    changed = [dataclasses.replace(i, text="zzz qqq") if i.label == "borderline" else i for i in small]
    assert np.allclose(fit_recipe(small)[0].coef_, fit_recipe(changed)[0].coef_)


def test_word_salad_and_gibberish_are_not_called_recursive(corpus: list[CorpusItem]) -> None:
    """Fresh disruption-like texts (a seed the corpus did not use) from recursive-labelled texts, and hand-written
    sub-word gibberish, token debris and an empty text: the registered decision calls at most 5 % of the generated
    ones recursive (the registered false-positive target) and none of the hand-written ones."""
    sources = [(i.unit, i.text) for i in corpus if i.label == "recursive"]
    rng = np.random.default_rng(20261207)
    pool = [w for _, t in sources for w in words(t)]
    made = [word_salad(pool, rng) for _ in range(40)] + [token_gibberish([t for _, t in sources], rng) for _ in range(40)]
    made += [text for kind, _, text in synthetic_items(sources[::4], seed=7) if kind in ("word_salad",
                                                                                       "shuffled_recursive",
                                                                                       "token_gibberish")]
    called = [s.recursive for s in score_continuations(made)]
    assert np.mean(called) <= 0.05, f"{sum(called)} of {len(called)} disruption-like texts called recursive"
    assert not any(s.recursive for s in score_continuations(list(HANDWRITTEN_GIBBERISH[2:])))


@pytest.mark.xfail(strict=True, reason="known miss of classifier v2: hand-written word salad dense in recursive "
                   "vocabulary ('noticing of observer the I watching itself aware my …') scores 0.88 and is not "
                   "degenerate by the gate (reports/scorer-validation)")
def test_word_salad_dense_in_recursive_vocabulary_is_not_called_recursive() -> None:
    assert not any(s.recursive for s in score_continuations(list(HANDWRITTEN_GIBBERISH[:2])))


FIXTURE_SETS = ("", "heldout")
"""Two independently written fixture sets: ``tests/data/behaviour/`` (written before the first validation) and
``tests/data/behaviour/heldout/`` (written after it, by another writer, never read while the corpus grew)."""


def _fixture(folder: str, name: str) -> list[str]:
    return [r["text"] for r in read_texts(FIXTURES / folder / f"{name}.jsonl")]


@pytest.mark.parametrize("folder", FIXTURE_SETS)
@pytest.mark.parametrize("name", ["topic_only", "donor_topic"])
def test_topic_texts_without_self_observation_are_not_called_recursive(folder: str, name: str) -> None:
    """Texts about mind and consciousness, and plain answers to the recursive prompts' task topics, written for the
    tests and never in the corpus: at most 10 % called recursive (the registered topic-matched target)."""
    texts = _fixture(folder, name)
    assert len(texts) >= 20 and not set(map(_normal, texts)) & {_normal(i.text) for i in read_corpus(CORPUS_PATH)}
    called = [t for t, s in zip(texts, score_continuations(texts)) if s.recursive]
    assert len(called) <= 0.10 * len(texts), f"{len(called)} of {len(texts)} called recursive, e.g. {called[:2]}"


@pytest.mark.xfail(strict=True, reason="registered AUROC target (0.9) missed on the unseen-style fixtures against "
                   "topic texts: 0.89 and 0.84 when measured by this test on 2026-12-07")
@pytest.mark.parametrize("folder", FIXTURE_SETS)
def test_self_observation_in_a_style_absent_from_training_is_ranked_above_topic_texts(folder: str) -> None:
    """Third-person narrative and verse, children's stories and social-media posts in which someone observes their own
    observing (no such style in the corpus) score above the same set's topic-only and donor-topic texts: AUROC ≥ 0.9,
    the registered AUROC target."""
    positives = _fixture(folder, "unseen_style")
    styles = {i.kind for i in read_corpus(CORPUS_PATH) if i.source in HANDWRITTEN_SOURCES}
    assert not {s for s in styles if any(w in s for w in ("narrative", "verse", "story", "social", "post"))}
    negatives = _fixture(folder, "topic_only") + _fixture(folder, "donor_topic")
    scores = [s.classifier_gated for s in score_continuations(positives + negatives)]
    assert auroc(scores, [1] * len(positives) + [0] * len(negatives)) >= 0.9


@pytest.mark.xfail(strict=True, reason="registered recall target (0.8) missed on unseen styles: 19/24 and 16/30 "
                   "called recursive (reports/scorer-validation); strict, so meeting it fails until the registry says so")
@pytest.mark.parametrize("folder", FIXTURE_SETS)
def test_self_observation_in_a_style_absent_from_training_is_called_recursive(folder: str) -> None:
    """The registered recall target on the unseen-style fixtures: at least 80 % called recursive. Missed, and kept as a
    strict expected failure so the miss stays visible and a score that meets it must be registered."""
    texts = _fixture(folder, "unseen_style")
    called = sum(s.recursive for s in score_continuations(texts))
    assert called >= 0.8 * len(texts), f"{called} of {len(texts)} called recursive"


def test_gate_and_empty_texts_score_zero() -> None:
    loop = "I am aware of being aware " * 12
    empty, looped = score_continuations(["", loop])
    assert empty.classifier_gated == 0.0 and not empty.recursive and empty.n_words == 0
    assert looped.degenerate and looped.classifier_gated == 0.0 and not looped.recursive
    assert 0.0 <= looped.classifier_p <= 1.0


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.behaviour", *args], check=False, cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_score_command_reads_json_lines_and_plain_text(tmp_path: Path) -> None:
    texts = ["I notice my attention folding back on itself as I write this.",
             "The train leaves at nine and arrives in the city before noon."]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps({"id": k, "text": t}) for k, t in enumerate(texts)) + "\n")
    plain = tmp_path / "a.txt"
    plain.write_text("\n".join(texts) + "\n\n")
    first, second = _cli("score", str(jsonl)), _cli("score", str(plain))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["id"] for r in rows] == [0, 1]
    expected = score_continuations(texts)
    for row, s in zip(rows, expected):
        assert row["score"] == s.classifier_gated and row["recursive"] == s.recursive
        assert {"degenerate", "distinct_2", "repeat_share", "n_words", "classifier_p", "empty"} <= set(row)
    plain_rows = [json.loads(line) for line in second.stdout.splitlines()]
    assert [r["score"] for r in plain_rows] == [r["score"] for r in rows] + [None]  # the trailing blank line
    assert all(plain_rows[-1][k] is None for k in ("score", "recursive", "classifier_p", "n_words"))


def test_score_command_keeps_one_output_line_per_input_line(tmp_path: Path) -> None:
    texts = ["I notice my attention folding back on itself as I write this.", "",
             "The train leaves at nine and arrives in the city before noon.", "   "]
    plain = tmp_path / "gaps.txt"
    plain.write_text("\n".join(texts) + "\n")
    result = _cli("score", str(plain), "--line-number")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert [r["score"] is None for r in rows] == [False, True, False, True]
    expected = score_continuations([texts[0], texts[2]])
    assert [rows[0]["score"], rows[2]["score"]] == [s.classifier_gated for s in expected]
    piped = _cli("score", "-", stdin=plain.read_text())
    assert [json.loads(line)["score"] for line in piped.stdout.splitlines()] == [r["score"] for r in rows]
    assert "line" not in json.loads(piped.stdout.splitlines()[0])


@pytest.mark.parametrize(("content", "message"), [
    ('{"text": "fine"}\n{"txt": "no text field"}\n', "line 2: a JSON line needs a string field 'text'"),
    ('{"text": "fine"}\n{not json\n', "line 2: not valid JSON"),
    ("\n\n", "no text to score"),
])
def test_score_command_rejects_malformed_input_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    result = _cli("score", str(bad))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_score_command_names_a_missing_file(tmp_path: Path) -> None:
    result = _cli("score", str(tmp_path / "absent.txt"))
    assert result.returncode == 2 and "cannot read" in result.stderr
