"""claims.md renders the contrasts of a contrasts_above rule (reverse_patch_necessity) in the claim's section."""

from __future__ import annotations

from harness.report.markdown import claim_section, contrast_table


def test_contrast_rows_appear_in_the_claim_section():
    rec = {"claim": "reverse_patch_necessity", "model": "m", "verdict": "FAIL", "estimate": 1.1, "ci_low": 0.9,
           "ci_high": 1.3, "ci_level": 0.95, "n": 30, "planned_n": 28, "explanation": "FAIL: contrasts",
           "details": {"contrast_cis": {"recursive_donor": [0.0, 0.0], "random_kv": [0.1, 0.4]},
                       "contrasts": {"recursive_donor": {"condition": "reverse_recursive_donor", "estimate": 0.0,
                                                         "ci_level": 0.95}}}}
    lines = contrast_table([rec])
    assert any("`recursive_donor`" in line and "reverse_recursive_donor" in line for line in lines)
    assert any("`random_kv`" in line and "[0.100, 0.400]" in line for line in lines)
    section = "\n".join(claim_section("reverse_patch_necessity", [rec], []))
    assert "Contrasts (each must lie above the rule's bound)" in section and "every registered contrast" in section
    assert contrast_table([{**rec, "details": {}}]) == []
