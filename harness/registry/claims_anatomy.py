"""Cache-anatomy claims: deterministic invariants of the KV cache (shapes, injection, RoPE re-rotation) and
the persona signature (the 'anatomy' multiplicity family)."""

from __future__ import annotations

from harness.registry.multiplicity import FAMILIES
from harness.registry.power_plans import POWER, PowerPlan, alpha_ci, coverage_plan
from harness.registry.rules import P_BELOW, Kind, ci, value
from harness.registry.spec import ClaimSpec
from harness.stats.power import part, proportion_effect

__all__ = ["ANATOMY_CLAIMS"]

ANATOMY_CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec(
        id="cache_shapes_match_config", version=1, title="Cache shapes and bytes per token",
        statement="Every layer's K and V cache has the shape and bytes per token that the model config implies.",
        estimator="number of (layer, K|V) entries whose shape (batch, n_kv_heads, tokens, head_dim) or bytes "
                  "per token differ from the config (sliding-window layers: tokens capped at the window).",
        effect_type="mismatch_count", kind=Kind.INVARIANT,
        criteria=(value("<=", 0),),
        ci_level=None, alpha=None, family=None, power=coverage_plan(8, "prompts checked"),
        n_unit="prompts", required_groups=("baseline",),
    ),
    ClaimSpec(
        id="cache_injection_equals_text", version=1, title="Injected cache equals fed text",
        statement="Decoding from an injected (copied) cache gives the same next-token logits as feeding the text.",
        estimator="max |Δ logit| over prompts and vocabulary between decoding from a cloned, re-injected cache "
                  "and a fresh forward pass over the full text (fp32).",
        effect_type="max_abs_logit_diff", kind=Kind.INVARIANT,
        criteria=(value("<=", 1e-4),),
        ci_level=None, alpha=None, family=None, power=coverage_plan(8, "prompts checked"),
        n_unit="prompts", required_groups=("baseline",),
        notes="tolerance is for float32; a bf16/fp16 run needs a new version with a dtype tolerance",
    ),
    ClaimSpec(
        id="rope_rerotation", version=1, title="RoPE re-rotation moves a cache",
        statement="Re-rotating cached keys by Δ positions gives the cache that encoding at the shifted "
                  "positions would give.",
        estimator="max |Δ logit| between decoding from the re-rotated cache and from a cache computed with "
                  "position ids shifted by Δ (fp32).",
        effect_type="max_abs_logit_diff", kind=Kind.INVARIANT,
        criteria=(value("<=", 1e-3),),
        ci_level=None, alpha=None, family=None, power=coverage_plan(8, "prompts checked"),
        n_unit="prompts", required_groups=("baseline",),
    ),
    ClaimSpec(
        id="persona_signature", version=1, title="Persona signature in the cache",
        statement="The KV cache of the user turn identifies which persona system prompt preceded it, with "
                  "all persona system prompts of equal token length.",
        estimator="leave-one-user-prompt-out nearest-centroid accuracy of persona identity from the user "
                  "turn's cached V (late layer, mean over positions after the system prompt). CI: 95% Wilson. "
                  "p: exact binomial test against chance 1/k, one-sided.",
        effect_type="accuracy", kind=Kind.SUPERIORITY,
        criteria=(ci(">", 0.50), P_BELOW),
        ci_level=0.95, alpha=0.01, family="anatomy",
        power=PowerPlan(
            assumptions="true accuracy 0.80; chance 0.25 (4 personas)",
            parts=(
                part("95% CI above 0.50", "one-proportion-z", proportion_effect(0.80, 0.50), alpha_ci(0.95), POWER),
                part("binomial p < alpha_test", "one-proportion-z", proportion_effect(0.80, 0.25),
                     FAMILIES["anatomy"].alpha_per_test, POWER),
            ),
        ),
        n_unit="persona × user-prompt items", required_groups=("persona",),
    ),
)
