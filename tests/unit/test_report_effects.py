"""Effect types in the registry: every estimate names its statistic, units and expected direction; engine checks
are marked; registry text cites docs/METHODS.md sections that exist; behavioural records carry every sample."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from harness.behaviour import BehaviourScore
from harness.claim.steps import _sample_rows
from harness.registry import CLAIMS
from harness.registry.effects import EFFECT_TYPES
from harness.transfer.outcomes import Continuation, PairOutcome

REPO = Path(__file__).resolve().parents[2]


def test_every_claim_names_a_known_effect_type_with_a_direction() -> None:
    for spec in CLAIMS.values():
        assert spec.effect_type in EFFECT_TYPES, spec.id
        fields = spec.effect_fields()
        assert fields["effect_label"] and fields["effect_units"]
        assert fields["effect_direction"] in ("less", "greater", "within", "outside", "differs", "increasing")
    assert CLAIMS["rv_contraction"].effect_direction == "less" and CLAIMS["rv_contraction"].expected == "g < -1"
    assert CLAIMS["v_patch_null"].effect_direction == "within"
    assert CLAIMS["attention_entropy_differs"].effect_direction == "outside"
    assert CLAIMS["persona_signature"].expected == "Δacc > 0"


def test_engine_checks_are_exactly_the_deterministic_invariants() -> None:
    checks = {cid for cid, spec in CLAIMS.items() if spec.is_engine_check}
    assert checks == {"cache_shapes_match_config", "cache_injection_equals_text", "rope_rerotation"}


def test_alpha_monotone_label_agrees_with_the_estimate_its_test_computes() -> None:
    spec = CLAIMS["alpha_monotone"]
    code = (REPO / "claims" / "test_alpha_monotone.py").read_text()
    # version 5: the weakest adjacent step ΔT with its CI, the statistic the steps criterion tests (issue 23)
    assert "estimate=steps[weakest].estimate, ci_low=steps[weakest].low, ci_high=steps[weakest].high" in code
    assert spec.effect_type == "transfer_difference" and "the reported estimate is the weakest step" in spec.estimator


def test_registry_text_cites_methods_sections_that_exist() -> None:
    headings = set(re.findall(r"^## (§\d+) ", (REPO / "docs" / "METHODS.md").read_text(), flags=re.MULTILINE))
    cited = set()
    for spec in CLAIMS.values():
        text = f"{spec.title} {spec.statement} {spec.estimator} {spec.notes} {spec.decision_text()}"
        assert "DESIGN" not in text, spec.id
        cited |= set(re.findall(r"docs/METHODS\.md (§\d+)", text))
    assert cited and cited <= headings


def _score(n_words: int, gated: float) -> BehaviourScore:
    return BehaviourScore(classifier_p=gated, classifier_gated=gated, recursive=gated >= 0.5,
                          lexicon_raw=0.0, lexicon_gated=0.0, embedding_raw=gated, embedding_gated=gated,
                          embedding_margin=0.1, distinct_2=1.0, repeat_share=0.0, degenerate=False, n_words=n_words)


def test_behavioural_details_carry_every_continuation() -> None:
    outcomes = tuple(
        PairOutcome(pair_id=f"p{i}", condition="kv_main", recipient_id=f"b{i}", donor_id=f"a{i}", first_position=0,
                    samples=(Continuation(0, text, ids, not text, 0.5, _score(len(text.split()), s)),))
        for i, (text, ids, s) in enumerate([("", (2,), 0.0), ("I watch myself", (5, 6, 7), 0.3)]))
    rows = _sample_rows(SimpleNamespace(outcomes=outcomes), "embedding_gated")
    assert [r["pair"] for r in rows] == ["p0", "p1"]
    assert rows[0]["empty"] is True and rows[0]["n_tokens"] == 1 and rows[0]["stopped_at_eos"] is True
    assert rows[1] | {"scores": None} == {"pair": "p1", "recipient": "b1", "donor": "a1", "sample": 0,
                                          "text": "I watch myself", "n_tokens": 3, "stopped_at_eos": False,
                                          "empty": False, "degenerate": False, "score": 0.3, "scores": None}
    assert rows[1]["scores"]["embedding_margin"] == 0.1 and rows[1]["scores"]["n_words"] == 3
