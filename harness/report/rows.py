"""From pytest phase reports to one row per claim × model, ordered and multiplicity-adjusted.

Rules (controller side, any ``-n``):

- call phase with a ``claim_result`` property → that record (whatever the test outcome: a FAIL or
  INCONCLUSIVE verdict fails the test but still makes its row);
- setup failed → ERROR row with the first error line; setup or call skipped → SKIPPED row with the reason;
- call failed or passed without a ``claim_result`` → ERROR row ("no result recorded"), except a call that stopped on
  numbers that are not finite (:class:`harness.foundation.nonfinite.NonFiniteError`) → INCONCLUSIVE row by data;
- teardown failed → an ERROR row if the test made none, else a ``teardown_error`` note in ``details``;
- a second row for the same claim × model from a different test → ERROR (one test per claim × model);
- a selected claim test (:meth:`RowCollector.expect`) that never reported → NOT RUN row (the session was
  interrupted or stopped before it ran).

Adjusted p-values: Holm (or the family's method) within each registry family, per model, over the
family's full registry size m (claims that did not run count as p = 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.claim.verdicts import PROPERTY_NAME, ClaimResult, Verdict
from harness.registry import CLAIMS, MULTIPLICITY_FAMILIES
from harness.report.identity import Identity, clean_nodeid, from_nodeid, from_properties
from harness.stats.multiplicity import adjust

DECIDED = (Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE)


@dataclass
class Row:
    """One report row: the claim result plus where and how long it ran (volatile fields live in ``run``)."""

    result: ClaimResult
    test: str
    worker: str
    durations_s: dict[str, float] = field(default_factory=dict)
    p_adjust_method: str | None = None

    def record(self) -> dict[str, Any]:
        """The JSON record: the result's builtin record plus family, test id and run info."""
        rec = self.result.to_record()
        spec = CLAIMS.get(self.result.claim)
        rec["family"] = spec.family if spec else None
        rec["p_adjust_method"] = self.p_adjust_method
        rec["test"] = self.test
        rec["run"] = {"worker": self.worker, "durations_s": {k: round(v, 6) for k, v in self.durations_s.items()}}
        return rec


def first_error_line(text: str, limit: int = 240) -> str:
    """The first ``E   `` line of a pytest failure text (the exception), else its last non-empty line."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    line = errors[0] if errors else (lines[-1] if lines else "unknown error")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def skip_reason(longrepr: Any) -> str:
    """The reason of a skip report (its longrepr is ``(path, lineno, reason)``)."""
    if isinstance(longrepr, tuple | list) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


NON_FINITE_PROPERTY = "kvclaims_non_finite"
"""User property of a claim test whose measurement stopped on numbers that are not finite
(:class:`harness.foundation.nonfinite.NonFiniteError`): its one-line message; the row is INCONCLUSIVE by data."""


def placeholder(identity: Identity, verdict: Verdict, explanation: str) -> ClaimResult:
    """A SKIPPED, ERROR or (numbers not finite) INCONCLUSIVE result carrying the registry's rule text but no numbers."""
    spec = CLAIMS.get(identity.claim)
    return ClaimResult(
        claim=identity.claim, version=spec.version if spec else 0, model=identity.model,
        estimate=None, ci_low=None, ci_high=None, ci_level=spec.ci_level if spec else None, p_value=None,
        n=None, planned_n=spec.planned_n if spec else None, alpha_test=spec.alpha_test if spec else None,
        rule=spec.rule_summary() if spec else "", verdict=verdict, explanation=f"{verdict.value}: {explanation}",
    )


class RowCollector:
    """Accumulates phase reports (objects with pytest ``TestReport`` attributes) into rows."""

    def __init__(self) -> None:
        self._rows: dict[Identity, Row] = {}
        self._by_node: dict[str, Identity] = {}
        self._durations: dict[str, dict[str, float]] = {}
        self._expected: dict[Identity, str] = {}

    def expect(self, identity: Identity, nodeid: str) -> None:
        """Note a selected claim test; if it never reports, :meth:`rows` gives it a NOT RUN row."""
        self._expected.setdefault(identity, clean_nodeid(nodeid))

    def not_run(self) -> list[Identity]:
        """Selected claim tests (claim × model) without a row so far, in the order they were selected."""
        reported = {row.test for row in self._rows.values()}  # a result may name another model than the param id
        return [identity for identity, nodeid in self._expected.items()
                if identity not in self._rows and nodeid not in reported]

    def add(self, report: Any) -> None:
        """Feed one phase report (setup, call, teardown, or xdist's crash report)."""
        nodeid = clean_nodeid(report.nodeid)
        props = list(getattr(report, "user_properties", None) or [])
        identity = from_properties(props) or self._by_node.get(nodeid)
        if identity is None and report.when == "???":  # xdist crash report: no properties travel with it
            identity = from_nodeid(nodeid, CLAIMS)
        record = next((value for name, value in props if name == PROPERTY_NAME), None)
        if identity is None and record is None:
            return  # not a claim test
        worker = _worker_of(report)
        when, outcome = report.when, report.outcome
        duration = float(getattr(report, "duration", 0.0) or 0.0)  # seconds for this phase

        non_finite = next((value for name, value in props if name == NON_FINITE_PROPERTY), None)
        if record is not None and when == "call":
            result = ClaimResult.from_record(record)
            identity = Identity(result.claim, result.model)
            self._put(identity, Row(result, nodeid, worker), nodeid)
        elif non_finite is not None and when == "call":
            result = dataclasses.replace(placeholder(identity, Verdict.INCONCLUSIVE, f"numbers not finite: {non_finite}"),
                                         inconclusive_reason="data")
            self._put(identity, Row(result, nodeid, worker), nodeid)
        elif when == "setup" and outcome == "failed":
            self._put(identity, Row(placeholder(identity, Verdict.ERROR, f"setup error: "
                                                f"{first_error_line(report.longreprtext)}"), nodeid, worker), nodeid)
        elif outcome == "skipped" and when in ("setup", "call"):
            self._put(identity, Row(placeholder(identity, Verdict.SKIPPED, skip_reason(report.longrepr)),
                                    nodeid, worker), nodeid)
        elif when in ("call", "???"):
            what = "failed" if outcome == "failed" else "passed"
            why = first_error_line(report.longreprtext) if outcome == "failed" else "the test did not record one"
            self._put(identity, Row(placeholder(identity, Verdict.ERROR, f"test {what} without a claim result: "
                                                f"{why}"), nodeid, worker), nodeid)
        elif when == "teardown" and outcome == "failed":
            existing = self._rows.get(identity)
            message = first_error_line(report.longreprtext)
            if existing is not None and existing.test == nodeid:
                existing.result.details["teardown_error"] = message
            else:
                self._put(identity, Row(placeholder(identity, Verdict.ERROR, f"teardown error: {message}"),
                                        nodeid, worker), nodeid)
        if identity is not None:
            self._by_node[nodeid] = identity
            self._durations.setdefault(nodeid, {})[when] = duration

    def _put(self, identity: Identity | None, row: Row, nodeid: str) -> None:
        if identity is None:
            return
        existing = self._rows.get(identity)
        if existing is not None and existing.test != nodeid:
            row = Row(placeholder(identity, Verdict.ERROR, f"more than one test reported this claim × model: "
                                  f"{existing.test}, {nodeid}"), nodeid, row.worker)
        self._rows[identity] = row

    def rows(self, model_order: Sequence[str] = (), not_run_reason: str = "the session ended before this test ran"
             ) -> list[Row]:
        """Rows in registry order × model order (``model_order`` first, then any others sorted), with a NOT RUN
        row (explanation ``not_run_reason``) for each selected claim test that never reported."""
        claim_rank = {cid: i for i, cid in enumerate(CLAIMS)}
        models = list(dict.fromkeys(model_order))
        model_rank = {m: i for i, m in enumerate(models)}

        def key(row: Row) -> tuple[int, str, int, str]:
            r = row.result
            return (claim_rank.get(r.claim, len(claim_rank)), r.claim, model_rank.get(r.model, len(models)), r.model)

        missing = [Row(placeholder(identity, Verdict.NOT_RUN, not_run_reason), self._expected[identity], "-")
                   for identity in self.not_run()]
        rows = sorted([*self._rows.values(), *missing], key=key)
        for row in rows:
            row.durations_s = dict(self._durations.get(row.test, {}))
        return rows


def _worker_of(report: Any) -> str:
    node = getattr(report, "node", None)
    gateway = getattr(node, "gateway", None)
    return str(getattr(gateway, "id", None) or getattr(report, "worker_id", None) or "main")


def apply_multiplicity(rows: Iterable[Row]) -> None:
    """Fill ``p_adjusted`` per model within each registry family (in place)."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        spec = CLAIMS.get(row.result.claim)
        p = row.result.p_value
        if spec is None or spec.family is None or row.result.verdict not in DECIDED:
            continue
        if p is None or not math.isfinite(p):
            continue
        groups[(row.result.model, spec.family)].append(row)
    for (_, family_name), members in groups.items():
        family = MULTIPLICITY_FAMILIES[family_name]
        adjusted = adjust([r.result.p_value for r in members], family.method, len(family.members))
        for row, p_adj in zip(members, adjusted):
            row.result.p_adjusted = float(p_adj)
            row.p_adjust_method = f"{family.method} (family '{family.name}', m = {len(family.members)})"
