"""Claim partial_layer_fidelity: a receiver comes monotonically closer to the full donor cache as more of the donor's
layers are transferred (issue 14, item 2a).

Method: for each exact-length pair (donor D = the recursive prompt, receiver R = the baseline prompt of the same
token length), tokens 0…n−2 of each are prefilled; the partial cache at fraction f takes the first (or the last)
⌈f·L⌉ layers' K and V from D and keeps R's own cache in the others (a KV patch at α = 1, all positions); decoding
feeds R's last token, greedy, 32 tokens (the registered regime). f = 1 is D's own cache (the reference), f = 0 R's
own cache (the floor). Measures per pair: KL(full ‖ partial) of the first next-token distribution (nats) and greedy
agreement with the full-cache continuation. Decision (the registry): Page's L on −KL over f ∈ {0, .25, .5, .75, 1}
for each layer end, the larger p deciding, and every adjacent step in floor-KL units at or above −δ (95 % BCa CIs
over pairs). Reported beside it, never deciding: the same statistics on agreement, and which half carries more
(last − first 50 %, in −KL and in agreement, with CIs). Harness: :mod:`harness.exchange.partial`.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import claim_pairs, run_details
from harness.exchange.partial import LayerEnd, fidelity_trend, half_contrast, mean_curve, measure_partial_fidelity
from harness.foundation.seeds import derive_seed
from harness.prompts.pairing import pairing_summary
from harness.registry.exchange_claims import PARTIAL_DECODING, PARTIAL_FRACTIONS
from harness.transfer.runner import unit_pairs

pytestmark = pytest.mark.claim("partial_layer_fidelity")
LEVEL = 0.95


def test_partial_layer_fidelity(claim: ClaimContext) -> None:
    lm = claim.lm
    selection = claim_pairs(claim, keep=lambda p: len(p.recursive_ids) == len(p.baseline_ids))
    pairs = selection.pairs
    batch = unit_pairs(claim.settings.batch_size, PARTIAL_DECODING)
    started = time.perf_counter()
    fid = measure_partial_fidelity(lm, pairs, decoding=PARTIAL_DECODING, fractions=PARTIAL_FRACTIONS,
                                   batch_size=batch, run_seed=claim.settings.seed, store=claim.store)
    measure_s = time.perf_counter() - started
    half = PARTIAL_FRACTIONS.index(0.5)
    kl_trend = fidelity_trend({end: -fid.kl[end] for end in LayerEnd}, level=LEVEL, rng=claim.seed)
    agreement_trend = fidelity_trend(fid.agreement, level=LEVEL, rng=derive_seed(claim.seed, "agreement"))

    def curves(values: dict[LayerEnd, np.ndarray], what: str) -> dict[str, dict[str, list[float]]]:
        return {end.value: mean_curve(values[end], level=LEVEL, rng=derive_seed(claim.seed, what, end.value))
                for end in LayerEnd}

    contrast = {
        "kl": half_contrast(-fid.kl[LayerEnd.FIRST][:, half], -fid.kl[LayerEnd.LAST][:, half], level=LEVEL,
                            rng=derive_seed(claim.seed, "half", "kl")),
        "agreement": half_contrast(fid.agreement[LayerEnd.FIRST][:, half], fid.agreement[LayerEnd.LAST][:, half],
                                   level=LEVEL, rng=derive_seed(claim.seed, "half", "agreement")),
        "orientation": "last-half minus first-half fidelity at f = 0.5 (kl row: −KL in nats, so > 0 means the last "
                       "layers' KL is lower; agreement row: share of tokens); > 0 = the last half carries more",
    }
    result = claim.evaluate(
        estimate=kl_trend.estimate,
        p_value=kl_trend.p_value,
        step_cis=kl_trend.step_cis,
        n=len(pairs),
        details=run_details(
            claim,
            decoding=PARTIAL_DECODING.describe(),
            design="donor D = recursive prompt, receiver R = baseline prompt of the same token length; the partial "
                   "cache takes the chosen layers from D's prefix cache (α = 1, all positions), the rest from R's; "
                   "decoding feeds R's last token",
            pairs=list(fid.pair_ids),
            pairing=pairing_summary(selection),
            fractions=list(fid.fractions),
            layers_transferred={end.value: [list(s) for s in fid.layers[end]] for end in LayerEnd},
            trend_on_kl=kl_trend.per_end,
            trend_on_agreement={"estimate": agreement_trend.estimate, "p_value": agreement_trend.p_value,
                                "per_end": agreement_trend.per_end, "deciding": False},
            fidelity_curves={
                "fractions": list(fid.fractions), "n_layers": fid.n_layers, "ci_level": LEVEL,
                "kl": curves(fid.kl, "kl"), "agreement": curves(fid.agreement, "agreement"),
                "half_contrast": contrast,
            },
            half_contrast=contrast,
            per_pair={"kl_nats": {end.value: fid.kl[end].tolist() for end in LayerEnd},
                      "agreement": {end.value: fid.agreement[end].tolist() for end in LayerEnd}},
            sliding_not_applicable_runs=fid.not_applicable_rows,
            batch_size=batch,
            timings={"model_load_s": lm.provenance.get("load_seconds"), "measure_s": measure_s},
        ),
    )
    claim.conclude(result)
