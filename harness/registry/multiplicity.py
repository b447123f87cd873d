"""Multiplicity families: claims whose p criteria share a familywise α (docs/METHODS.md §10).

Each member's p criterion is decided at ``alpha_test`` = α / m, m the number of members (Bonferroni: a
decision each test can make alone). Holm-adjusted p-values over the family (``method``) are reported beside
it by :mod:`harness.report` and are never larger, so a PASS stays a PASS under Holm.
(Not to be confused with :mod:`harness.models.architectures`, the table of model architecture families.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MULTIPLICITY_FAMILIES", "MultiplicityFamily"]


@dataclass(frozen=True)
class MultiplicityFamily:
    """A multiplicity family: claims whose p criteria share the familywise α (``familywise_alpha``).

    ``method`` names the adjustment the report applies to the members' p-values ("holm" or "bh").
    """

    name: str
    familywise_alpha: float
    method: Literal["holm", "bh"]
    members: tuple[str, ...]

    @property
    def alpha_per_test(self) -> float:
        """Bonferroni α/m used by each member's p criterion."""
        return self.familywise_alpha / len(self.members)


MULTIPLICITY_FAMILIES: dict[str, MultiplicityFamily] = {
    f.name: f
    for f in (
        MultiplicityFamily("geometry", 0.01, "holm", (
            "rv_contraction", "rv_survives_long_control", "rv_survives_repetition",
            "rv_survives_about_recursion", "rv_gap_fades_in_generation", "attention_entropy_differs",
            "level_rv_trend", "geometry_transfers",
        )),
        MultiplicityFamily("kv_transfer", 0.01, "holm", ("kv_transfer", "kv_transfer_specific")),
        MultiplicityFamily("alpha_monotone", 0.01, "holm", ("alpha_monotone",)),
        MultiplicityFamily("behaviour", 0.01, "holm", (
            "reverse_patch_necessity", "rv_behaviour_correlation", "token_quarter_localisation",
            "level_behaviour_trend", "donor_level_transfer_trend", "donor_pr_predicts_transfer",
        )),
        MultiplicityFamily("anatomy", 0.01, "holm", ("persona_signature",)),
        MultiplicityFamily("exchange", 0.01, "holm", ("partial_layer_fidelity", "confabulation_signature")),
    )
}
"""The registry's multiplicity families by name."""
