"""Issue 15, item 2: a text's embedding score does not depend on its batch neighbours or the thread count.

Before, texts were embedded in batches of 32 padded to the longest member, with the process's thread count, and
the cosines differed in the 8th digit with the batch and the threads (flipping exact rank ties downstream)."""

from __future__ import annotations

import pytest

from harness.behaviour.embedding import SCORE_DECIMALS, embedding_scores

torch = pytest.importorskip("torch")

TEXTS = [
    "I notice myself noticing the words as they form, and the noticing folds back on itself.",
    "The train leaves the station at nine and arrives in the city shortly before noon.",
    "awareness aware of awareness watching the watcher",
]
LONG_NEIGHBOUR = " ".join(["The committee reviewed the annual budget line by line before the vote."] * 12)


def _scores(texts: list[str], threads: int) -> list[tuple[float, float, float]]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return [(s.cos_recursive, s.cos_baseline, s.margin) for s in embedding_scores(texts)]
    finally:
        torch.set_num_threads(before)


def test_scores_do_not_depend_on_batch_neighbours_or_threads() -> None:
    alone = [_scores([t], threads=1)[0] for t in TEXTS]
    batched = _scores([LONG_NEIGHBOUR, *TEXTS, LONG_NEIGHBOUR], threads=2)[1:-1]
    reordered = _scores(list(reversed(TEXTS)), threads=2)[::-1]
    assert alone == batched == reordered  # exact equality, not approx


def test_scores_are_rounded_to_the_stated_precision() -> None:
    for values in _scores(TEXTS, threads=2):
        for x in values:
            assert round(x, SCORE_DECIMALS) == x
