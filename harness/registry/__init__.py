"""The pre-registered claims (docs/METHODS.md §9–11) as frozen data, decided before any data were seen.

Each :class:`ClaimSpec` fixes what is estimated, the decision rule (machine-evaluable :class:`Criterion` s,
from which every rule text is generated), α, the multiplicity family, the planned n with the power
calculation behind it, the prompt groups it needs and, for behavioural claims, the decoding regime and the
behaviour score. Changing anything that can move a verdict requires bumping the claim's ``version``.

Rooms: :mod:`~harness.registry.rules` (the rule language and its semantics),
:mod:`~harness.registry.multiplicity` (families and the Bonferroni α_test), :mod:`~harness.registry.power_plans`
(planned n, solved lazily), :mod:`~harness.registry.spec` (:class:`ClaimSpec`) and :mod:`~harness.registry.claims`
(the claim rows, one table per family, and the behavioural decoding regime), :mod:`~harness.registry.exchange_claims`
(the cache-exchange table) and
:mod:`~harness.registry.history` (why each version moved).

Conventions used by every claim:

- **Verdicts** (evaluated by :func:`harness.claim.verdicts.evaluate`): PASS when all criteria are true, FAIL when any
  is false, INCONCLUSIVE otherwise, and INCONCLUSIVE whenever n < planned n or the estimate is undefined.
- **p criteria** are decided at ``alpha_test = family α / m`` (Bonferroni); Holm-adjusted p-values are reported
  beside them. p-values are one-sided in the claimed direction unless stated.
- **Transfer** T follows docs/METHODS.md §7; its CIs are BCa bootstrap over pairs, clustered by prompt where a prompt
  recurs.
- **Behaviour score**: the degeneration-gated classifier probability P(recursive | text),
  :data:`harness.behaviour.BEHAVIOUR_SCORE` (docs/METHODS.md §6), on generated tokens only; the other scores are
  reported beside it but never decide.
- **Power**: the assumed true effects are design assumptions (what a claim is built to detect), not data.
"""

from __future__ import annotations

from harness.registry.claims import (
    ANATOMY_CLAIMS,
    BEHAVIOUR_CLAIMS,
    BEHAVIOUR_DECODING,
    GEOMETRY_CLAIMS,
    HEADLINE_CLAIMS,
)
from harness.registry.exchange_claims import EXCHANGE_CLAIMS
from harness.registry.history import VERSION_HISTORY, VersionChange, changes_of, version_history_problem
from harness.registry.multiplicity import MULTIPLICITY_FAMILIES, MultiplicityFamily
from harness.registry.power_plans import PowerPlan
from harness.registry.rules import (
    P_BELOW,
    Criterion,
    Kind,
    ci,
    ci_differs,
    ci_outside,
    ci_within,
    contrasts_above,
    steps_at_least,
    value,
)
from harness.registry.spec import ClaimSpec

__all__ = [
    "BEHAVIOUR_DECODING", "CLAIMS", "MULTIPLICITY_FAMILIES", "P_BELOW", "ClaimSpec", "Criterion", "Kind", "MultiplicityFamily",
    "PowerPlan", "VERSION_HISTORY", "VersionChange", "changes_of", "ci", "ci_differs", "ci_outside", "ci_within", "contrasts_above",
    "family_of", "get_claim", "steps_at_least", "value",
]


def _build(*tables: tuple[ClaimSpec, ...]) -> dict[str, ClaimSpec]:
    """The registry by id, in table order; raises ValueError for a duplicate id or an inconsistent family."""
    specs = [spec for table in tables for spec in table]
    claims = {spec.id: spec for spec in specs}
    if len(claims) != len(specs):
        raise ValueError("claims registry: duplicate claim ids")
    for spec in specs:
        problem = version_history_problem(spec.version, changes_of(spec.id))
        if problem is not None:
            raise ValueError(f"claim {spec.id}: {problem} (harness.registry.history)")
    unknown = set(VERSION_HISTORY) - set(claims)
    if unknown:
        raise ValueError(f"harness.registry.history names unregistered claims: {sorted(unknown)}")
    for fam in MULTIPLICITY_FAMILIES.values():
        for member in fam.members:
            spec = claims.get(member)
            if spec is None or spec.family != fam.name:
                raise ValueError(f"family {fam.name}: member {member!r} is not a registered claim of this family")
    return claims


CLAIMS: dict[str, ClaimSpec] = _build(
    HEADLINE_CLAIMS, GEOMETRY_CLAIMS, BEHAVIOUR_CLAIMS, ANATOMY_CLAIMS, EXCHANGE_CLAIMS,
)
"""Every registered claim by id: the headline five, then the geometry, behaviour, anatomy and cache-exchange tables."""


def get_claim(claim_id: str) -> ClaimSpec:
    """The registered spec for ``claim_id``; raises KeyError naming the known ids."""
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim {claim_id!r}; registered claims: {', '.join(CLAIMS)}") from None


def family_of(claim_id: str) -> MultiplicityFamily | None:
    """The multiplicity family of a claim (None for claims decided without a p-value)."""
    spec = get_claim(claim_id)
    return MULTIPLICITY_FAMILIES[spec.family] if spec.family else None
