"""Cache-anatomy claims: shapes and bytes, re-injection, RoPE re-rotation, persona signatures.

Methods (details in :mod:`harness.anatomy`; every cache operation is in :mod:`harness.kvcache`):

- cache_shapes_match_config: prefill each of the first 8 baseline prompts alone; count the (layer, K|V)
  entries whose shape ``(1, n_kv_heads, tokens, head_dim)`` or bytes per token differ from what the config
  implies (sliding layers keep ``min(n, window − 1)`` positions).
- cache_injection_equals_text: prefill all but the last token, export the cache to plain tensors, build a
  fresh cache from them, feed the last token; max |Δ logit| against one forward pass over the whole text.
- rope_rerotation: move the prefix cache by Δ ∈ ``DELTAS`` positions (each layer's keys re-rotated with its
  own rotary base) and compare the next-token logits with a prefix encoded at positions shifted by Δ.
- persona_signature: the user turn's cached V at the late layer (mean over the positions after the system
  prompt) identifies the persona: leave-one-user-prompt-out nearest-centroid accuracy, Wilson CI, exact
  binomial p against chance 1/k.
"""

from __future__ import annotations

import pytest

from harness import anatomy
from harness.claim_context import ClaimContext
from harness.claim_support import capped, require_float32, require_groups, run_details
from harness.prompts import Prompt
from harness.stats import binomial_test, proportion_ci

DELTAS = (1, 64, 256)
"""Shifts (positions) for rope_rerotation, fixed before any data: one step, a typical prompt length, and a
shift several times longer than the prompts."""
SHOWN = 20
"""At most this many mismatch lines go into a record."""


def _coverage(claim: ClaimContext) -> list[Prompt]:
    """The first planned-n baseline prompts (by id): the coverage the invariant's registry entry asks for."""
    return require_groups(claim)["baseline"][: claim.spec.planned_n]


@pytest.mark.claim("cache_shapes_match_config")
def test_cache_shapes_match_config(claim: ClaimContext) -> None:
    lm = claim.lm
    prompts = _coverage(claim)
    shapes = anatomy.measure_cache_shapes(lm, prompts, cache=claim.cache)
    result = claim.evaluate(
        estimate=len(shapes["mismatches"]), n=len(prompts),
        details=run_details(
            claim, mismatches=shapes["mismatches"][:SHOWN], mismatches_per_prompt=shapes["per_prompt"],
            kv_bytes_per_token=shapes["kv_bytes_per_token"], config_kv_bytes_per_token=shapes["config_kv_bytes_per_token"],
            sliding_layers=shapes["sliding_layers"], sliding_window=shapes["sliding_window"],
        ),
    )
    claim.conclude(result)


@pytest.mark.claim("cache_injection_equals_text")
def test_cache_injection_equals_text(claim: ClaimContext) -> None:
    lm = claim.lm
    require_float32(claim)
    prompts = _coverage(claim)
    injection = anatomy.measure_injection(lm, prompts, cache=claim.cache)
    diffs = injection["max_abs_logit_diff"]
    result = claim.evaluate(
        estimate=max(diffs.values()), n=len(prompts),
        details=run_details(
            claim, max_abs_logit_diff_per_prompt=diffs, dtype=str(lm.model.dtype),
            bitwise_equal_caches=sum(injection["bitwise_equal"].values()),
        ),
    )
    claim.conclude(result)


@pytest.mark.claim("rope_rerotation")
def test_rope_rerotation(claim: ClaimContext) -> None:
    lm = claim.lm
    require_float32(claim)
    prompts = _coverage(claim)
    checks = anatomy.measure_rerotation(lm, prompts, DELTAS, cache=claim.cache)["checks"]
    per_delta = {d: [c for key, c in checks.items() if key.endswith(f"|{d}")] for d in DELTAS}
    result = claim.evaluate(
        estimate=max(c["max_abs_logit_diff"] for c in checks.values()), n=len(prompts),
        details=run_details(
            claim, deltas=list(DELTAS), layer_types=list(lm.shape.layer_types),
            max_abs_logit_diff_by_delta={d: max(c["max_abs_logit_diff"] for c in cs) for d, cs in per_delta.items()},
            wrong_delta_control={
                "what": "keys re-rotated by Δ + 1 while decoding at the positions of a move by Δ, against the same "
                        "reference; min over prompts of max |Δ logit|",
                "min_abs_logit_diff_by_delta": {d: min(c["wrong_delta_logit_diff"] for c in cs)
                                                for d, cs in per_delta.items()},
            },
            max_key_diff_per_layer=[max(c["key_diff_per_layer"][i] for c in checks.values())
                                    for i in range(lm.shape.n_layers)],
            max_value_diff_per_layer=[max(c["value_diff_per_layer"][i] for c in checks.values())
                                      for i in range(lm.shape.n_layers)],
        ),
    )
    claim.conclude(result)


@pytest.mark.claim("persona_signature")
def test_persona_signature(claim: ClaimContext) -> None:
    lm = claim.lm
    require_groups(claim, cap=False)
    by_persona = {name: capped(ps, claim.settings.n_cap)
                  for name, ps in claim.bank.personas().items()}
    prompts = [p for ps in by_persona.values() for p in ps]
    late = lm.layers.late
    measured = anatomy.measure_persona_features(lm, prompts, late, cache=claim.cache)
    system_tokens = {p.persona: n for p, n in zip(prompts, measured["system_tokens"])}
    details = run_details(claim, layer=late, personas=sorted(by_persona), system_tokens=system_tokens,
                          separator=anatomy.SYSTEM_SEPARATOR, evicted_positions=sum(measured["evicted"]))

    k = len(by_persona)
    if k < 2 or len(set(system_tokens.values())) != 1:
        why = (f"{k} persona(s); identity needs two or more" if k < 2 else
               f"system prompts differ in token count under this tokenizer ({system_tokens}), so length alone "
               "could identify the persona")
        result = claim.evaluate(estimate=None, n=len(prompts), details=details, undefined_reason=why)
    else:
        labels = [p.persona for p in prompts]
        predicted = anatomy.nearest_centroid_loo(measured["features"], labels, [p.text for p in prompts])
        correct = sum(a == b for a, b in zip(predicted, labels))
        low, high = proportion_ci(correct, len(prompts), level=claim.spec.ci_level, method="wilson")
        details |= {"chance": 1 / k, "correct": correct,
                    "confusion": {f"{a}->{b}": sum(x == a and y == b for x, y in zip(labels, predicted))
                                  for a in sorted(by_persona) for b in sorted(by_persona)}}
        result = claim.evaluate(
            estimate=correct / len(prompts), ci_low=low, ci_high=high,
                          p_value=binomial_test(correct, len(prompts), 1 / k, "greater").p_value,
                          n=len(prompts), details=details)
    claim.conclude(result)
