"""Scorer validation: how well does each behaviour scorer separate recursive from baseline outputs?

:func:`validate_scorers` takes generated continuations with labels (1 = continuation of a recursive
prompt, 0 = of a baseline prompt) and returns, per scorer, the AUROC (probability that a random
recursive continuation scores higher than a random baseline one, ties counting one half) with a
stratified percentile-bootstrap CI, plus the share of outputs the degeneration gate marks degenerate.

:func:`run_validation` is the real run for one embedded model: greedy continuations (64 new tokens,
raw prompt text, no chat template) for every recursive and baseline prompt, scored, and AUROCs
reported separately on the two halves of a split fixed in advance by a hash of the prompt id
(:func:`split_of`). Only the ``tune`` half may be looked at when changing scorers; the ``heldout``
half gives the reported numbers. ``python -m harness.scorer_validation --model smollm2-135m`` writes
the record to ``reports/scorer-validation/<model>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from harness.behaviour import BehaviourScore, decode_continuation, score_continuations, words
from harness.models import EMBEDDED_MODELS
from harness.prompts import PromptBank, load_bank

__all__ = [
    "SCORERS",
    "ScorerAUROC",
    "ValidationResult",
    "auroc",
    "bootstrap_auroc_ci",
    "embedded_gguf",
    "generate_bank_continuations",
    "generate_continuations",
    "load_embedded_lm",
    "prompt_echo",
    "run_validation",
    "split_of",
    "validate_scorers",
]

SCORERS: tuple[str, ...] = ("lexicon_raw", "lexicon_gated", "embedding_raw", "embedding_gated", "embedding_margin")
"""BehaviourScore fields whose AUROC is reported."""

_SPLIT_SALT = "scorer-validation-v1:"


def split_of(prompt_id: str) -> str:
    """``"tune"`` or ``"heldout"``, from the parity of sha256(salt + id): fixed before any output exists."""
    digest = hashlib.sha256((_SPLIT_SALT + prompt_id).encode("utf-8")).digest()
    return "tune" if digest[0] % 2 == 0 else "heldout"


def prompt_echo(prompt: str, continuation: str, n: int = 4) -> float:
    """Share of the continuation's word n-grams that also occur in its prompt (0.0 with fewer than n words).

    A diagnostic of the validation run only (scorers never see prompts): a model that repeats its prompt
    produces "recursive" text after a recursive prompt without any recursive behaviour of its own.
    """
    cont = words(continuation)
    grams = [tuple(cont[i : i + n]) for i in range(len(cont) - n + 1)]
    if not grams:
        return 0.0
    src = words(prompt)
    prompt_grams = {tuple(src[i : i + n]) for i in range(len(src) - n + 1)}
    return sum(g in prompt_grams for g in grams) / len(grams)


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """AUROC of ``scores`` for ``labels`` (1 positive, 0 negative): P(pos > neg) + P(pos = neg) / 2."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {s.shape} and {y.shape}")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError(f"labels must be 0/1, got values {sorted(set(np.unique(y)))}")
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"need both classes, got {len(pos)} positives and {len(neg)} negatives")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def bootstrap_auroc_ci(
    scores: Sequence[float], labels: Sequence[int], n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of :func:`auroc`, resampling positives and negatives separately."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    pos, neg = s[y == 1], s[y == 0]
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    ones, zeros = np.ones(len(pos), dtype=int), np.zeros(len(neg), dtype=int)
    labels_b = np.concatenate([ones, zeros])
    for b in range(n_boot):
        sample = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        stats[b] = auroc(sample, labels_b)
    alpha = (1 - level) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class ScorerAUROC:
    """AUROC of one scorer with its bootstrap CI and class sizes."""

    scorer: str
    auroc: float
    ci_low: float
    ci_high: float
    n_recursive: int
    n_baseline: int


@dataclass(frozen=True)
class ValidationResult:
    """Per-scorer AUROCs and the degenerate share (overall and per class, as fractions in [0, 1])."""

    aurocs: dict[str, ScorerAUROC]
    degenerate_share: float
    degenerate_share_recursive: float
    degenerate_share_baseline: float


def validate_scorers(
    continuations: Sequence[str],
    labels: Sequence[int],
    scores: Sequence[BehaviourScore] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> ValidationResult:
    """AUROC (with bootstrap CI) of every scorer in :data:`SCORERS` and the degenerate shares.

    ``labels``: 1 for a continuation of a recursive prompt, 0 for a baseline prompt. ``scores`` may be
    passed when already computed for these continuations (same order).
    """
    if len(continuations) != len(labels):
        raise ValueError(f"{len(continuations)} continuations but {len(labels)} labels")
    scored = list(scores) if scores is not None else score_continuations(continuations)
    y = np.asarray(labels)
    aurocs = {}
    for name in SCORERS:
        values = [getattr(s, name) for s in scored]
        low, high = bootstrap_auroc_ci(values, y, n_boot=n_boot, seed=seed)
        aurocs[name] = ScorerAUROC(name, auroc(values, y), low, high, int((y == 1).sum()), int((y == 0).sum()))
    degenerate = np.array([s.degenerate for s in scored])
    return ValidationResult(
        aurocs=aurocs,
        degenerate_share=float(degenerate.mean()),
        degenerate_share_recursive=float(degenerate[y == 1].mean()),
        degenerate_share_baseline=float(degenerate[y == 0].mean()),
    )


# --------------------------------------------------------------------------------------------------
# The real run on an embedded model


def embedded_gguf(name: str) -> Path:
    """Path of an embedded model's GGUF file (from its PyPI package; see ``harness.models.package_gguf``)."""
    from harness.models import package_gguf, resolve_spec

    if name not in EMBEDDED_MODELS:
        raise ValueError(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED_MODELS)}")
    return package_gguf(resolve_spec(name))


def load_embedded_lm(name: str) -> tuple[Any, Any]:
    """(model, tokenizer) of an embedded model: fp32, eager attention, eval mode, from the model loader's
    converted copy (logit-identical to loading the GGUF directly; tests/engine/test_models.py)."""
    from harness.models import load_model

    lm = load_model(name, device="cpu")
    return lm.model, lm.tokenizer


def generate_continuations(
    model: Any, tokenizer: Any, texts: Sequence[str], max_new_tokens: int = 64, batch_size: int = 16
) -> list[str]:
    """Greedy continuations of raw prompt texts (left-padded batches); only generated tokens are decoded.

    Left padding with an attention mask lets ``generate`` derive positions per row; batched greedy
    decoding can differ from one-at-a-time decoding only through floating-point noise. Sets the
    tokenizer's padding side to ``left`` (and its pad token to EOS when it has none).
    """
    import torch

    tokenizer.padding_side = "left"
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start : start + batch_size]), return_tensors="pt", padding=True)
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_id)
            width = enc["input_ids"].shape[1]
            out.extend(decode_continuation(tokenizer, row.tolist(), width) for row in ids)
    return out


def _summary(result: ValidationResult) -> dict[str, Any]:
    return {
        "aurocs": {k: asdict(v) for k, v in result.aurocs.items()},
        "degenerate_share": result.degenerate_share,
        "degenerate_share_recursive": result.degenerate_share_recursive,
        "degenerate_share_baseline": result.degenerate_share_baseline,
    }


def generate_bank_continuations(
    model_name: str, bank: PromptBank, max_new_tokens: int = 64
) -> tuple[dict[str, str], float]:
    """Greedy continuations of every recursive and baseline prompt: ({prompt id: text}, wall seconds)."""
    prompts = bank.group("recursive") + bank.group("baseline")
    started = time.perf_counter()
    model, tokenizer = load_embedded_lm(model_name)
    texts = generate_continuations(model, tokenizer, [p.text for p in prompts], max_new_tokens)
    return {p.id: t for p, t in zip(prompts, texts)}, time.perf_counter() - started


def run_validation(
    model_name: str,
    bank: PromptBank | None = None,
    max_new_tokens: int = 64,
    out_dir: str | Path | None = None,
    continuations: Mapping[str, str] | None = None,
    generation_seconds: float | None = None,
) -> dict[str, Any]:
    """Generate (unless ``continuations`` are given), score and summarise for one embedded model.

    Returns (and with ``out_dir`` writes to ``<out_dir>/<model>.json``) a record with every continuation,
    its scores and split, and AUROC summaries for the ``heldout`` half (the reported numbers), the
    held-out L3–L5 subset, and the ``tune`` half. Passing the ``continuations`` of an earlier record
    re-scores it without generating again (``generation_seconds`` then records how long they took).
    """
    import torch
    import transformers

    bank = bank or load_bank()
    prompts = bank.group("recursive") + bank.group("baseline")
    seconds = generation_seconds
    if continuations is None:
        continuations, seconds = generate_bank_continuations(model_name, bank, max_new_tokens)
    missing = [p.id for p in prompts if p.id not in continuations]
    if missing:
        raise ValueError(f"no continuation for {len(missing)} prompts, e.g. {missing[:3]}")
    texts = [continuations[p.id] for p in prompts]
    scores = score_continuations(texts)
    rows = [
        {
            "id": p.id,
            "group": p.group,
            "level": p.level,
            "split": split_of(p.id),
            "continuation": c,
            "prompt_echo": prompt_echo(p.text, c),
            **asdict(s),
        }
        for p, c, s in zip(prompts, texts, scores)
    ]

    def summarise(keep: Any) -> dict[str, Any]:
        chosen = [i for i, r in enumerate(rows) if keep(r)]
        labels = [int(rows[i]["group"] == "recursive") for i in chosen]
        result = validate_scorers([texts[i] for i in chosen], labels, scores=[scores[i] for i in chosen])
        echo = {
            group: float(np.mean([rows[i]["prompt_echo"] for i in chosen if rows[i]["group"] == group]))
            for group in ("recursive", "baseline")
        }
        return {**_summary(result), "mean_prompt_echo": echo}

    record = {
        "model": model_name,
        "gguf_file": embedded_gguf(model_name).name,
        "decoding": {
            "strategy": "greedy",
            "max_new_tokens": max_new_tokens,
            "prompt_format": "raw prompt text, no chat template",
        },
        "bank_content_hash": bank.content_hash,
        "split": f"sha256('{_SPLIT_SALT}' + id), first byte even -> tune, odd -> heldout",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "generation_seconds": None if seconds is None else round(seconds, 1),
        "heldout": summarise(lambda r: r["split"] == "heldout"),
        "heldout_levels_3_to_5": summarise(
            lambda r: r["split"] == "heldout" and (r["group"] == "baseline" or r["level"] >= 3)
        ),
        "tune": summarise(lambda r: r["split"] == "tune"),
        "outputs": rows,
    }
    if out_dir is not None:
        path = Path(out_dir) / f"{model_name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m harness.scorer_validation --model NAME [--out DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(EMBEDDED_MODELS))
    parser.add_argument("--out", default="reports/scorer-validation")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args(argv)
    record = run_validation(args.model, max_new_tokens=args.max_new_tokens, out_dir=args.out)
    held = record["heldout"]
    for name, a in held["aurocs"].items():
        print(f"{args.model} heldout {name}: AUROC {a['auroc']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}]")
    print(f"{args.model} heldout degenerate share: {held['degenerate_share']:.3f}")


if __name__ == "__main__":
    main()
