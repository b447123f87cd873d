"""Whether a claim's rule can come out both ways (DESIGN §5; issue 23): synthetic measurements written from the claim's
*statement*, one set that satisfies it and one that contradicts it, go through :func:`harness.claim.verdicts.evaluate`
at the planned n. The first must give PASS, the second FAIL, and the first with n one below the plan INCONCLUSIVE
("underpowered"). A rule that cannot fail (or cannot pass) is a defect, whoever wrote it: the built-in registry is held
to this by ``tests/unit/test_rules_both_ways.py``, a user claim by its own ``both_ways`` cases when it is registered.

A case is a mapping of :func:`~harness.claim.verdicts.evaluate`'s measured numbers: ``estimate``, ``ci_low``,
``ci_high``, ``p_value``, and for the rules that read them ``step_cis`` and ``contrast_cis``, in the units of the
claim's estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.claim.verdicts import Verdict, evaluate
from harness.registry import ClaimSpec

__all__ = ["both_ways_violations"]


def both_ways_violations(spec: ClaimSpec, satisfied: Mapping[str, Any], contradicted: Mapping[str, Any]) -> list[str]:
    """What is wrong with ``spec``'s rule against the two cases: empty when PASS, FAIL and underpowered INCONCLUSIVE
    come out as they must; otherwise one line per failed expectation, with the verdict's explanation."""

    def verdict(case: Mapping[str, Any], n: int) -> Any:
        return evaluate(spec, model="synthetic", n=n, **case)

    out = []
    if (r := verdict(satisfied, spec.planned_n)).verdict is not Verdict.PASS:
        out.append(f"statement satisfied → {r.verdict.value}: {r.explanation}")
    if (r := verdict(contradicted, spec.planned_n)).verdict is not Verdict.FAIL:
        out.append(f"statement contradicted → {r.verdict.value}: {r.explanation}")
    if spec.planned_n > 1:
        r = verdict(satisfied, spec.planned_n - 1)
        if r.verdict is not Verdict.INCONCLUSIVE or r.inconclusive_reason != "underpowered":
            out.append(f"n below plan → {r.verdict.value} ({r.inconclusive_reason})")
    return out
