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

from harness.foundation.decoding import DecodingMode, DecodingRegime
from harness.registry.multiplicity import MULTIPLICITY_FAMILIES
from harness.registry.power_plans import POWER, RANK_TEST_INFLATION, PowerPlan, alpha_ci
from harness.registry.rules import P_BELOW, Kind, ci, ci_differs, contrasts_above, steps_at_least
from harness.registry.spec import ClaimSpec
from harness.stats.power import part

__all__ = ["EXCHANGE_CLAIMS", "PARTIAL_DECODING", "PARTIAL_FRACTIONS"]

# ------------------------------------------------------------------------------------------ packets
PACKET_KL_BOUND = 0.01
"""compressed_packet_fidelity's bound on the mean KL(original ‖ int8 packet), nats; registered 2026-12-05 before any
packet of an embedded model existed. Reason: llama.cpp measured a mean KL of 0.00098 nats for a K and V cache stored
as q8_0 (int8 with one fp16 scale per 32 elements; f16 weights, WikiText; ggml-org/llama.cpp PR #7412, 2024), and
int8 KV caches are reported lossless in perplexity (KIVI, KVQuant). The bound leaves a factor of 10 above that figure
for a coarser scale (one per channel over the whole packet) and for 135M–270M-parameter models, and it lies two orders
of magnitude below the KL between the next-token distributions of two different prompts (assumed ≥ 1 nat; the run
reports it beside the estimate), so a packet within it carries the same context, not another one."""
PACKET_ASSUMED_KL = 0.005
"""Power assumption (not data): true mean KL at half the bound, the design's margin."""
PACKET_ASSUMED_SD = 0.01
"""Power assumption (not data): per-prompt SD of the KL, twice its mean (KL per prompt is right-skewed)."""

PACKET_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="compressed_packet_fidelity", version=1, title="int8 cache packets keep the next-token distribution",
        statement="A prompt's KV cache sent as an int8 packet (symmetric, one scale per channel) and read back gives "
                  "the receiver nearly the next-token distribution of the original cache: mean KL(original ‖ int8) "
                  f"below {PACKET_KL_BOUND:g} nats.",
        estimator="prompts: baseline and recursive alternately (id order), the first planned n. Per prompt: prefill "
                  "tokens 0…n−2 (one row), write the whole cache as an int8 packet file (harness.exchange.packets), "
                  "read it into a fresh cache, feed token n−1; KL(softmax(logits from the original cache) ‖ "
                  "softmax(logits from the packet)) in nats, float64. Estimate: mean over prompts; CI: 95% BCa "
                  "bootstrap over prompts. Details (never deciding): the same KL for float16 and bfloat16 packets, "
                  "greedy next-token agreement per format, the uncompressed round trip's max |Δ logit| (0 expected), "
                  "bytes per token per format (measured files and config numbers, GPU-tier models from their "
                  "configs), and the KL between consecutive prompts' original distributions as a scale reference.",
        effect_type="mean_kl_nats", kind=Kind.NON_SUPERIORITY,
        criteria=(ci("<", PACKET_KL_BOUND),),
        ci_level=0.95, significance_level=None, family=None,
        power=PowerPlan(
            assumptions=f"true mean KL = {PACKET_ASSUMED_KL:g} nats (half the bound), per-prompt SD "
                        f"{PACKET_ASSUMED_SD:g} nats (assumed; KL is right-skewed, SD twice the mean); one-sample t "
                        "approximating the bootstrap CI",
            parts=(part(f"95% CI upper bound below {PACKET_KL_BOUND:g}", "one-sample-t",
                        (PACKET_KL_BOUND - PACKET_ASSUMED_KL) / PACKET_ASSUMED_SD, alpha_ci(0.95), POWER),),
        ),
        n_unit="prompts", required_groups=("baseline", "recursive"),
    ),
)
"""Registered 2026-12-05 before any packet of an embedded model existed (issue 14, item 2b)."""

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
        ci_level=None, significance_level=0.01, family="exchange", delta=PARTIAL_STEP_DELTA,
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
PROJECTOR_BASELINES: tuple[str, ...] = ("shuffled_sharer", "random_sharer", "mismatched_pairs")
"""The projector claim's registered contrasts (each L_baseline − L_projected, nats/token), see the claim's estimator."""

PROJECTOR_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="projector_transfers_context", version=1, title="A projected sharer cache carries the context",
        statement="The receiver model, continuing a held-out text from the cache of its context that a small "
                  "trained projector built from another model's (the sharer's) cache, predicts the continuation "
                  "better than with no context, and better than the same projector fed a different text's sharer "
                  "cache or norm-matched random sharer K/V, and better than a projector trained on mismatched "
                  "(context, continuation) pairs. Smoke scale: sharer and receiver are the two embedded models.",
        estimator="Per held-out text: L_X = mean NLL (nats/token) of the receiver's continuation tokens 2…m (the "
                  "first is fed, not scored) under condition X of the cache before them: none (only the receiver's "
                  "own special-token prefix), own (the receiver's own context cache), projected (projector_l of the "
                  "sharer's context K/V, aligned by character spans), shuffled_sharer (the projected cache of another "
                  "held-out text's context, a fixed derangement), random_sharer (sharer K/V replaced by Gaussian "
                  "vectors with their norms per layer, head and position, then projected), mismatched_pairs (a "
                  "projector trained with every sharer context paired with another text's continuation). Estimate: "
                  "mean over texts of L_none − L_projected, 95% BCa bootstrap CI over texts. Contrasts: mean of "
                  "L_X − L_projected for each baseline X, 95% BCa bootstrap CI over texts. Reported beside it, never "
                  "deciding: the gap closed (L_none − L_projected)/(L_none − L_own) per text, mean with its CI.",
        effect_type="continuation_nll_reduction", kind=Kind.SUPERIORITY,
        # Bound 0 on the estimate and on every contrast: the claim is only that the projected cache helps at all
        # and helps more than each baseline (no minimum size is claimed at this smoke scale); 95% CIs as in the
        # rest of the registry. No p criterion: the CIs decide, so no multiplicity family.
        criteria=(ci(">", 0.0), contrasts_above(0.0, PROJECTOR_BASELINES)),
        ci_level=0.95, significance_level=None, family=None,
        # Planned n, a priori: the assumed true reduction 0.15 nats/token (about a tenth of the own-cache gain
        # that a 30-word context gives a small LM on its continuation, a modest share for a smoke-scale projector)
        # with a per-text SD of 0.30 nats/token (continuation NLL differences of 12-token continuations spread
        # about twice their mean), i.e. d = 0.5; each contrast assumed the same size, the three contrast CIs
        # jointly at power 0.8 (each at 0.8^(1/3)).
        power=PowerPlan(
            assumptions="true L_none − L_projected = 0.15 nats/token with per-text SD 0.30 (assumed, no pilot); each "
                        "contrast L_baseline − L_projected the same; the three contrast CIs jointly at power 0.8",
            parts=(
                part("95% CI above 0", "one-sample-t", 0.5, alpha_ci(0.95), POWER),
                part("each contrast 95% CI above 0", "one-sample-t", 0.5, alpha_ci(0.95), POWER ** (1.0 / 3.0)),
            ),
        ),
        n_unit="held-out texts", required_groups=(),
        notes="Needs both embedded models: the receiver is the model under test, the sharer the other one.",
    ),
)

# --------------------------------------------------------------------------------- confabulation
# Registered 2026-12-05 before any cache statistic of a grounding prompt was measured on any model. The numbers:
# - margin ±0.5 g_adj: half a within-group SD of R_V across prompts, Cohen's "medium" effect and the suite's existing
#   bound for a meaningful geometry difference (attention_entropy_differs); rv_contraction claims |g| ≥ 1, so a
#   shift under half of that is what this claim calls "no difference".
# - CI 90%: the two one-sided tests of TOST at α = 0.05 (as v_patch_null); "differ" is decided by the p criterion
#   (two-sided t, α_test of the 'exchange' family, 0.01 / m), which is stricter than the 90% CI excluding 0.
# - planned n: per-pair SD of the paired difference assumed equal to s_w, i.e. a within-pair correlation of 0.5 (pair
#   members share the question's frame but not its entity; no pilot exists). Version 1 estimated the difference at
#   Δtokens = Δzipf = 0 (an OLS intercept, variance factor 4.06 on this bank), which extrapolated every pair to no
#   invented entity and so adjusted away the manipulation; version 2 estimates the paired difference as designed.
# - assumed true effect for the "differ" part: g = 0.8 (Cohen's "large"), the smallest signature a cache-level
#   confabulation detector could use on single prompts.
CONFAB_MARGIN = 0.5
"""Equivalence band ±0.5 g_adj (pooled within-group SD units of the statistic)."""

CONFABULATION_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="confabulation_signature", version=2, title="Confabulation signature in the V cache",
        statement="R_V of the prompt's V cache differs between grounded-fact prompts and their confabulation-"
                  "inducing rewrites (the same question about an invented entity).",
        estimator="g = J(2n − 2) · mean ΔR_V / s_w over the bank's grounded/confabulation pairs (harness.exchange."
                  "confabulation.paired_contrast): ΔR_V = R_V(confabulation) − R_V(grounded) per pair, the "
                  "manipulation as designed; s_w = pooled within-group SD of R_V over prompts. R_V = PR(V at the late "
                  "layer) / PR(V at the early layer) over the last W = 16 content tokens, eigenvalue PR, uncentred. "
                  "CI: 90% BCa bootstrap resampling pairs. p: two-sided paired t-test, n − 1 df. Reported beside, "
                  "never deciding: the mean Δ content tokens and Δ mean word Zipf frequency that the invented entities "
                  "bring, and g_adj, the difference extrapolated to Δtokens = Δzipf = 0 by OLS over pairs (a "
                  "sensitivity analysis: it adjusts away part of the manipulation itself).",
        effect_type="hedges_g", kind=Kind.SUPERIORITY,
        criteria=(ci_differs(-CONFAB_MARGIN, CONFAB_MARGIN), P_BELOW),
        ci_level=0.90, significance_level=0.01, family="exchange",
        power=PowerPlan(
            assumptions=f"per-pair SD of the paired difference = s_w (within-pair correlation 0.5); FAIL part at "
                        f"true g = 0 (both TOST bounds, joint power ≥ {POWER:g}); PASS part at true g = 0.8",
            parts=(
                part(f"90% CI inside ±{CONFAB_MARGIN:g}", "one-sample-t", CONFAB_MARGIN, alpha_ci(0.90),
                     1.0 - (1.0 - POWER) / 2.0),
                part("two-sided t p < alpha_test", "one-sample-t", 0.8,
                     MULTIPLICITY_FAMILIES["exchange"].alpha_per_test / 2.0, POWER),
            ),
        ),
        n_unit="prompt pairs", required_groups=("grounded", "confabulation"),
        notes="primary statistic R_V chosen a priori: V is what the cache stores for every layer (v_proj output, no "
              "RoPE), and R_V is the suite's registered V-geometry measure, shared with rv_contraction's cache",
    ),
)

EXCHANGE_CLAIMS: tuple[ClaimSpec, ...] = (*PACKET_CLAIMS, *PARTIAL_CLAIMS, *PROJECTOR_CLAIMS, *CONFABULATION_CLAIMS)
"""The cache-exchange table, in the order above."""
