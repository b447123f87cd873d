"""The registered behaviour score: the frozen classifier, its corpus, its decision on disruption-like text, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.behaviour import BEHAVIOUR_SCORE, THRESHOLD, score_continuations
from harness.behaviour.classifier import ARTEFACT_PATH, load_classifier, train_classifier
from harness.behaviour.corpus import CORPUS_PATH, CorpusItem, corpus_sha256, read_corpus, split_of
from harness.behaviour.features import FEATURE_NAMES
from harness.behaviour.negatives import synthetic_items, token_gibberish, word_salad
from harness.behaviour.text import words

REPO = Path(__file__).resolve().parents[2]

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


def test_artefact_matches_the_committed_corpus_and_features() -> None:
    clf = load_classifier()
    assert clf.corpus_sha256 == corpus_sha256(CORPUS_PATH)
    assert clf.threshold == THRESHOLD == 0.5
    data = json.loads(ARTEFACT_PATH.read_text())
    assert data["features"] == list(FEATURE_NAMES)
    assert len(clf.coef) == len(clf.mean) == len(clf.scale) == len(FEATURE_NAMES)
    assert BEHAVIOUR_SCORE == "classifier_gated"


def test_corpus_splits_follow_the_hash_and_items_are_unique(corpus: list[CorpusItem]) -> None:
    assert len({i.id for i in corpus}) == len(corpus)
    assert all(i.split == split_of(i.unit) for i in corpus)
    for split in ("train", "heldout"):
        assert {i.label for i in corpus if i.split == split} == {0, 1}
    train_units = {i.unit for i in corpus if i.split == "train"}
    assert not train_units & {i.unit for i in corpus if i.split == "heldout"}


def test_retraining_on_the_corpus_reproduces_the_artefact(corpus: list[CorpusItem]) -> None:
    retrained = train_classifier(corpus, corpus_sha=corpus_sha256(CORPUS_PATH))
    frozen = json.loads(ARTEFACT_PATH.read_text())
    np.testing.assert_allclose(retrained["coef"], frozen["coef"], atol=1e-6)
    assert retrained["intercept"] == pytest.approx(frozen["intercept"], abs=1e-6)
    assert retrained["training"]["n_items"] == frozen["training"]["n_items"]


def test_training_never_reads_heldout_items(corpus: list[CorpusItem]) -> None:
    """Replacing every held-out text by nonsense leaves the fitted model unchanged."""
    small = [i for i in corpus if i.model == "smollm2-135m" and i.source in ("natural_recursive", "natural_baseline")]
    changed = [CorpusItem(i.id, "zzz" if i.split == "heldout" else i.text, i.label, i.source, i.model, i.unit, i.split)
               for i in small]
    assert train_classifier(small, corpus_sha="x")["coef"] == train_classifier(changed, corpus_sha="x")["coef"]


def test_word_salad_and_gibberish_are_not_called_recursive(corpus: list[CorpusItem]) -> None:
    """Fresh disruption-like texts (a seed the corpus did not use) from held-out recursive continuations, and
    hand-written gibberish: the registered decision calls none of the hand-written ones recursive and at most 5 %
    of the generated ones."""
    sources = [(i.unit, i.text) for i in corpus if i.source == "natural_recursive" and i.split == "heldout"]
    rng = np.random.default_rng(20261205)
    pool = [w for _, t in sources for w in words(t)]
    made = [word_salad(pool, rng) for _ in range(40)] + [token_gibberish([t for _, t in sources], rng) for _ in range(40)]
    made += [text for kind, _, text in synthetic_items(sources, seed=7) if kind in ("word_salad", "shuffled_recursive",
                                                                                   "token_gibberish")]
    assert not any(s.recursive for s in score_continuations(list(HANDWRITTEN_GIBBERISH)))
    called = [s.recursive for s in score_continuations(made)]
    assert np.mean(called) <= 0.05, f"{sum(called)} of {len(called)} disruption-like texts called recursive"


def test_heldout_random_kv_outputs_are_not_called_recursive(corpus: list[CorpusItem]) -> None:
    """Real random-KV-patched continuations of held-out prompts (both models): none is called recursive."""
    held = [i.text for i in corpus if i.source == "random_kv_patch" and i.split == "heldout"]
    assert len(held) >= 40
    assert not any(s.recursive for s in score_continuations(held))


def test_heldout_natural_texts_are_separated(corpus: list[CorpusItem]) -> None:
    """On held-out natural continuations of both models, recursive ones score higher than baseline ones (AUROC ≥ 0.8)."""
    from harness.behaviour.validation import auroc

    held = [i for i in corpus if i.split == "heldout" and i.source in ("natural_recursive", "natural_baseline")]
    scores = [s.classifier_gated for s in score_continuations([i.text for i in held])]
    assert auroc(scores, [i.label for i in held]) >= 0.8


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
    assert [json.loads(line)["score"] for line in second.stdout.splitlines()] == [r["score"] for r in rows]


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
