"""The cache-exchange claims (issue 14), as data: what a KV cache carries when it leaves its model.

One section per claim, each registered before any of its data existed:

- **Packets**: compressed cache packets keep the receiver's next-token distribution (``compressed_packet_fidelity``).
- **Partial transfer**: fidelity of a cache with only a fraction of its layers transferred
  (``partial_layer_fidelity``).
- **Cross-model projector**: a sharer model's cache, projected into a receiver model, carries the context
  (``projector_transfers_context``).
- **Confabulation signature**: cache statistics of grounded-fact vs confabulation-inducing prompts after
  length and token-frequency control (``confabulation_signature``).

Rule language, planned n and families: :mod:`harness.registry.rules`, :mod:`harness.registry.power_plans`,
:mod:`harness.registry.multiplicity`.
"""

from __future__ import annotations

from harness.decoding import DecodingMode, DecodingRegime
from harness.registry.multiplicity import MULTIPLICITY_FAMILIES
from harness.registry.power_plans import POWER, RANK_TEST_INFLATION, PowerPlan, alpha_ci
from harness.registry.rules import P_BELOW, Kind, steps_at_least
from harness.registry.spec import ClaimSpec
from harness.stats.power import part

__all__ = ["EXCHANGE_CLAIMS", "PARTIAL_DECODING", "PARTIAL_FRACTIONS"]

# ------------------------------------------------------------------------------------------ packets
PACKET_CLAIMS: tuple[ClaimSpec, ...] = ()

# --------------------------------------------------------------------------------- partial transfer
PARTIAL_FRACTIONS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Shares of the layer stack transferred from the donor (⌈f·L⌉ layers, from the first or from the last layer):
0 is the receiver's own cache (the floor), 1 the full donor cache (the reference). Fixed by issue 14."""

PARTIAL_DECODING = DecodingRegime(DecodingMode.GREEDY, max_new_tokens=32, stop_at_eos=False)
"""Registered 2026-12-05 before any partial-transfer data: plain greedy (no repetition penalty: the claim is about
the cache, not behaviour, and a penalty would make later tokens depend on the earlier ones twice), 32 tokens (issue
14), EOS does not end a row, so every continuation has exactly 32 tokens and agreement always has the same
denominator."""

PARTIAL_STEP_DELTA = 0.10
"""δ of the step rule, in floor-KL units: a step may fall by at most a tenth of the floor-to-full distance. The
same a-priori tolerance as alpha_monotone (a dip smaller than a tenth of the whole effect is not a reversal worth
reporting); fixed before any data."""

PARTIAL_STEP_SD = 0.35
"""Assumed per-pair SD of one adjacent step in floor-KL units (no pilot exists for a partial-layer transfer):
1.4 × the assumed +0.25 step, i.e. pairs are assumed to differ in what a quarter of the layers carries by more than
the step itself. A design assumption, not data."""

PARTIAL_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="partial_layer_fidelity", version=1, title="Partial-layer transfer fidelity",
        statement="A receiver continuing from a donor cache of which only the first (or only the last) ⌈f·L⌉ layers "
                  "were transferred, the other layers being the receiver's own cache, comes monotonically closer "
                  "to continuing from the full donor cache as f rises over 0, 25, 50, 75 and 100 %.",
        estimator="per exact-length pair (donor D = the recursive prompt, receiver R = the baseline prompt of the "
                  "same token length), each layer order (first layers, last layers) and f ∈ {0, .25, .5, .75, 1}: "
                  "KL(full ‖ partial) in nats of the next-token distribution after feeding R's last token to the "
                  "partial cache of tokens 0…n−2 (KV patch at α = 1, all positions, of the chosen layers into R's "
                  "cache), the full cache being D's own (f = 1). p: Page's L over pairs × f on −KL (ordered "
                  "increasing), per layer order; the claim's p is the larger of the two (intersection–union: both "
                  "orders must rise). Steps: mean(KL(f_k) − KL(f_k+1)) / mean(KL(0)), in units of the floor KL "
                  "(0 = the receiver's own cache, 1 = the full donor cache), 95% BCa bootstrap over pairs, four per "
                  "layer order. Estimate: mean within-pair Spearman ρ(f, −KL), the smaller of the two layer "
                  "orders. Greedy agreement over 32 tokens with the full-cache continuation and the first-half vs "
                  "last-half contrast are reported, never deciding.",
        effect_type="mean_block_spearman", kind=Kind.TREND,
        criteria=(P_BELOW, steps_at_least(-PARTIAL_STEP_DELTA)),
        ci_level=None, alpha=0.01, family="exchange", delta=PARTIAL_STEP_DELTA,
        power=PowerPlan(
            assumptions="Page's L approximated by a one-sample t on each pair's linear fraction contrast with "
                        "standardized mean 0.8, as alpha_monotone (n inflated by π/3 for a rank test), both layer "
                        "orders jointly at power 0.8; steps: true step +0.25 floor units (KL falling linearly from "
                        f"the floor to 0), per-pair step SD {PARTIAL_STEP_SD:g} (assumed, no pilot), all eight "
                        "steps jointly at power 0.8. CI main-job budget ≈ 90 s per model on CPU (8 decoded "
                        "conditions × n pairs × 32 tokens) was checked to fit the n this gives.",
            parts=(
                part("Page's L p < alpha_test, both layer orders", "one-sample-t", 0.8,
                     MULTIPLICITY_FAMILIES["exchange"].alpha_per_test, POWER ** 0.5, RANK_TEST_INFLATION),
                part(f"each step CI ≥ −{PARTIAL_STEP_DELTA:g}", "one-sample-t",
                     (0.25 + PARTIAL_STEP_DELTA) / PARTIAL_STEP_SD, alpha_ci(0.95), POWER ** (1 / 8)),
            ),
        ),
        n_unit="prompt pairs", required_groups=("recursive", "baseline"),
        notes=f"decoding for the reported agreement: {PARTIAL_DECODING.describe()}",
    ),
)

# ---------------------------------------------------------------------------------------- projector
PROJECTOR_CLAIMS: tuple[ClaimSpec, ...] = ()

# --------------------------------------------------------------------------------- confabulation
CONFABULATION_CLAIMS: tuple[ClaimSpec, ...] = ()

EXCHANGE_CLAIMS: tuple[ClaimSpec, ...] = (*PACKET_CLAIMS, *PARTIAL_CLAIMS, *PROJECTOR_CLAIMS, *CONFABULATION_CLAIMS)
"""The cache-exchange table, in the order above."""
