"""Cache-anatomy claims: shapes and bytes, re-injection, RoPE re-rotation, persona signatures.

Methods (details in :mod:`harness.anatomy.invariants` and :mod:`harness.anatomy.persona`; every cache operation
is in :mod:`harness.engine.kvcache`):

- cache_shapes_match_config: prefill each of the first 8 baseline prompts alone; count the (layer, K|V)
  entries whose shape ``(1, n_kv_heads, tokens, head_dim)`` or bytes per token differ from what the config
  implies (sliding layers keep ``min(n, window − 1)`` positions).
- cache_injection_equals_text: prefill all but the last token, export the cache to plain tensors, build a
  fresh cache from them, feed the last token; max |Δ logit| against one forward pass over the whole text. On a
  model with sliding-window layers one more prompt, baseline texts joined until the window + 64 tokens, makes
  the injected cache one whose oldest positions were evicted.
- rope_rerotation: move the prefix cache by Δ ∈ ``DELTAS`` positions (each layer's keys re-rotated with its
  own rotary base) and compare the next-token logits with a prefix encoded at positions shifted by Δ.
- persona_signature: the user turn's cached V at the late layer (mean over the positions after the system
  prompt, centred per user prompt) identifies the persona under a wording of its system prompt that the
  nearest-centroid readout never saw (trained on the other wordings and other user prompts), better than the
  same pipeline on random-weight copies of the model. Unit: the (persona, wording) cell; accuracy difference
  with a t interval over cells, p = the larger of two exact sign-flip tests over cells (above chance, above the
  copies). Chance, the copies' accuracy and a length-only baseline go into the details.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.anatomy import invariants, persona
from harness.claim.context import ClaimContext
from harness.claim.steps import require_float32, require_groups, run_details
from harness.foundation.seeds import derive_seed
from harness.prompts import Prompt

DELTAS = (1, 64, 256)
"""Shifts (positions) for rope_rerotation, fixed before any data: one step, a typical prompt length, and a
shift several times longer than the prompts."""
SHOWN = 20
"""At most this many mismatch lines go into a record."""
USERS_PER_CELL = 5
"""persona_signature: user prompts per (persona, wording) cell, the first by id. The unit of the test is the cell,
so more users per cell buy little; five keep the three passes (model and two copies) of both embedded models
within the CPU budget."""
RANDOM_COPIES = 2
"""persona_signature: random-weight copies of the model; their mean per-cell accuracy is the baseline."""


def _coverage(claim: ClaimContext) -> list[Prompt]:
    """The first planned-n baseline prompts (by id): the coverage the invariant's registry entry asks for."""
    return require_groups(claim)["baseline"][: claim.spec.planned_n]


@pytest.mark.claim("cache_shapes_match_config")
def test_cache_shapes_match_config(claim: ClaimContext) -> None:
    lm = claim.lm
    prompts = _coverage(claim)
    shapes = invariants.measure_cache_shapes(lm, prompts, store=claim.store)
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
    prompts = invariants.injection_prompts(lm, _coverage(claim), require_groups(claim, cap=False)["baseline"])
    injection = invariants.measure_injection(lm, prompts, store=claim.store)
    diffs = injection["max_abs_logit_diff"]
    result = claim.evaluate(
        estimate=max(diffs.values()), n=len(prompts),
        details=run_details(
            claim, max_abs_logit_diff_per_prompt=diffs, dtype=str(lm.model.dtype),
            bitwise_equal_caches=sum(injection["bitwise_equal"].values()), prompt_tokens=injection["tokens"],
            longest_prompt_tokens=max(injection["tokens"].values()), sliding_window=invariants.sliding_window(lm),
        ),
    )
    claim.conclude(result)


@pytest.mark.claim("rope_rerotation")
def test_rope_rerotation(claim: ClaimContext) -> None:
    lm = claim.lm
    require_float32(claim)
    prompts = _coverage(claim)
    checks = invariants.measure_rerotation(lm, prompts, DELTAS, store=claim.store)["checks"]
    result = claim.evaluate(
        estimate=max(c["max_abs_logit_diff"] for c in checks.values()), n=len(prompts),
        details=run_details(claim, deltas=list(DELTAS), layer_types=list(lm.shape.layer_types),
                            **invariants.rerotation_summary(checks, DELTAS, lm.shape.n_layers)),
    )
    claim.conclude(result)


@pytest.mark.claim("persona_signature")
def test_persona_signature(claim: ClaimContext) -> None:
    lm = claim.lm
    prompts = persona.persona_items(require_groups(claim, cap=False)["persona"],
                                    min(USERS_PER_CELL, claim.settings.n_cap or USERS_PER_CELL))
    late = lm.layers.late
    measured = persona.measure_persona_features(lm, prompts, late, store=claim.store)
    seeds = [derive_seed(claim.seed, "random-weights", i) for i in range(RANDOM_COPIES)]
    details = run_details(
        claim, layer=late, personas=sorted({p.persona or "" for p in prompts}), separator=persona.SYSTEM_SEPARATOR,
        system_tokens={f"{p.persona}/{p.wording}": n for p, n in zip(prompts, measured["system_tokens"])},
        evicted_positions=sum(measured["evicted"]), items=len(prompts), random_weights_seeds=seeds,
    )
    why = persona.persona_design_problem(prompts, measured["system_tokens"])
    if why is not None:
        cells = len({(p.persona, p.wording) for p in prompts})
        claim.conclude(claim.evaluate(estimate=None, n=cells, details=details, undefined_reason=why))
        return
    copies = [np.array(persona.measure_persona_features(lm, prompts, late, store=claim.store,
                                                        random_weights_seed=seed)["features"]) for seed in seeds]
    lengths = np.array([measured["system_tokens"], measured["user_tokens"]], dtype=np.float64).T
    signature = persona.persona_signature(
        np.array(measured["features"]), copies, lengths,
        [p.persona or "" for p in prompts], [p.wording for p in prompts], [p.text for p in prompts],
    )
    decision = persona.persona_decision(signature, claim.spec.ci_level or 0.95, rng=claim.seed)
    claim.conclude(claim.evaluate(
        estimate=decision.estimate, ci_low=decision.ci[0], ci_high=decision.ci[1], p_value=decision.p_value,
        n=len(signature.cells), details=details | decision.details,
    ))
