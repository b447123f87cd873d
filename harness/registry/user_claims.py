"""User claims: a claim declared in the user's own repository, in a ``<name>.claim.yaml`` file beside its test
(docs/WRITING_CLAIMS.md), validated exactly like the built-in ones and then added to the registry.

A file holds one claim: the :class:`~harness.registry.spec.ClaimSpec` fields (``rule`` for the criteria, in a few
words each), a ``power`` plan (a power calculation or a stated n with its reason) and a ``history`` (one entry per
version above 1). The checks are the built-in registry's own: :class:`ClaimSpec` (rule, CI level, family α),
:func:`~harness.registry.history.version_history_problem` and family membership. User claims may form their own
multiplicity families (every user claim naming the family is a member, its α is their ``significance_level``);
they can never join a built-in family, which would change the α_test of registered claims.

:func:`register_user_claims` is all or nothing: any problem in any file raises :class:`UserClaimError` (one line:
the file and the problem) before the registry changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.foundation.behavioural_regime import BEHAVIOUR_DECODING, BEHAVIOUR_SCORE
from harness.registry import CLAIMS, MULTIPLICITY_FAMILIES, VERSION_HISTORY
from harness.registry.history import VersionChange, version_history_problem
from harness.registry.multiplicity import MultiplicityFamily
from harness.registry.power_plans import (
    PowerPlan,
    correlation_plan,
    equivalence_plan,
    g_plan,
    paired_plan,
    stated_plan,
)
from harness.registry import rules
from harness.registry.rules import Criterion, Kind
from harness.registry.spec import ClaimSpec

__all__ = [
    "USER_CLAIM_SOURCES", "USER_CLAIM_SUFFIX", "UserClaim", "UserClaimError", "parse_rule", "read_user_claim",
    "register_user_claims",
]

USER_CLAIM_SUFFIX = ".claim.yaml"
"""How a user claim file's name ends."""

USER_CLAIM_SOURCES: dict[str, Path] = {}
"""The file each registered user claim came from, by claim id."""

REQUIRED_KEYS = ("id", "version", "title", "statement", "estimator", "effect_type", "kind", "rule", "n_unit",
                 "required_groups", "power", "both_ways")
OPTIONAL_KEYS = ("ci_level", "significance_level", "family", "history", "delta", "behavioural", "requires_levels",
                 "notes")
POWER_PLANS = ("g", "paired", "correlation", "equivalence", "stated")
"""The ``power.plan`` forms: a power calculation (:mod:`harness.registry.power_plans`) or ``stated``."""
_OPS = ("<", "<=", ">", ">=")
BOTH_WAYS_CASES = ("holds", "contradicted")
"""The two synthetic cases a user claim carries (``both_ways: {holds: …, contradicted: …}``): measurements written from
its statement, one satisfying it and one contradicting it (:mod:`harness.claim.both_ways` checks the rule with them)."""
CASE_FIELDS = ("estimate", "ci_low", "ci_high", "p_value", "step_cis", "contrast_cis")


class UserClaimError(ValueError):
    """A user claim file that cannot be registered; the message is one line: ``<file>: <problem>``."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class UserClaim:
    """A user claim file as read, before its spec is built: the file, its mapping and its version history."""

    path: Path
    data: dict[str, Any]
    history: tuple[VersionChange, ...]

    @property
    def both_ways(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the measurements that satisfy the statement, those that contradict it), as the file gives them."""
        cases = self.data["both_ways"]
        return dict(cases["holds"]), dict(cases["contradicted"])

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def family(self) -> str | None:
        return self.data.get("family")


def _number(word: str, where: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise ValueError(f"{where}: {word!r} is not a number") from None


def parse_rule(text: str) -> Criterion:
    """One criterion from its words: ``ci < -0.5``, ``value <= 0``, ``p_below``, ``ci_within -0.1 0.1``,
    ``ci_outside -0.5 0.5``, ``ci_differs -0.5 0.5``, ``steps_at_least -0.1`` or ``contrasts_above 0 name ...``.

    Raises:
        ValueError: naming the words and the forms allowed.
    """
    words = str(text).split()
    head, rest = (words[0], words[1:]) if words else ("", [])
    where = f"rule {text!r}"
    if head == "p_below" and not rest:
        return rules.P_BELOW
    if head in ("ci", "value") and len(rest) == 2 and rest[0] in _OPS:
        return (rules.ci if head == "ci" else rules.value)(rest[0], _number(rest[1], where))  # type: ignore[arg-type]
    if head in ("ci_within", "ci_outside", "ci_differs") and len(rest) == 2:
        low, high = (_number(w, where) for w in rest)
        interval = {"ci_within": rules.ci_within, "ci_outside": rules.ci_outside, "ci_differs": rules.ci_differs}
        return interval[head](low, high)
    if head == "steps_at_least" and len(rest) == 1:
        return rules.steps_at_least(_number(rest[0], where))
    if head == "contrasts_above" and len(rest) >= 2:
        return rules.contrasts_above(_number(rest[0], where), tuple(rest[1:]))
    raise ValueError(f"{where} is not a criterion; write one of 'ci <op> <bound>', 'value <op> <bound>', 'p_below', "
                     "'ci_within|ci_outside|ci_differs <low> <high>', 'steps_at_least <bound>', "
                     "'contrasts_above <bound> <name>...' (op: < <= > >=)")


def _power_plan(power: Any, family: str | None, ci_level: float | None) -> PowerPlan:
    """The plan of a ``power`` mapping (see :data:`POWER_PLANS`)."""
    if not isinstance(power, dict) or power.get("plan") not in POWER_PLANS:
        raise ValueError(f"power: a mapping with plan: one of {', '.join(POWER_PLANS)}")
    kind, args = power["plan"], {k: v for k, v in power.items() if k != "plan"}
    allowed = {"g": ("assumed", "threshold"), "paired": ("assumed", "threshold", "sd", "what", "p_dz"),
               "correlation": ("assumed", "threshold"), "equivalence": ("margin", "sd"),
               "stated": ("planned_n", "reason")}[kind]
    missing = [k for k in allowed if k not in args and k not in ("what", "p_dz")]
    unknown = sorted(set(args) - set(allowed))
    if missing or unknown:
        raise ValueError(f"power plan {kind!r} takes {', '.join(allowed)}"
                         + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    if kind == "stated":
        return stated_plan(int(args["planned_n"]), str(args["reason"]))
    if kind in ("g", "correlation") and family is None:
        raise ValueError(f"power plan {kind!r} solves a p part too: the claim needs a family and a p_below rule")
    if kind in ("paired", "equivalence") and ci_level is None:
        raise ValueError(f"power plan {kind!r} needs ci_level")
    if kind == "g":
        return g_plan(float(args["assumed"]), float(args["threshold"]), str(family))
    if kind == "correlation":
        return correlation_plan(float(args["assumed"]), float(args["threshold"]), str(family))
    if kind == "equivalence":
        return equivalence_plan(float(args["margin"]), float(args["sd"]), float(ci_level))  # type: ignore[arg-type]
    return paired_plan(float(args["assumed"]), float(args["threshold"]), float(args["sd"]), float(ci_level),  # type: ignore[arg-type]
                       str(args.get("what", "effect")), family, float(args.get("p_dz", 0.8)))


def _history(entries: Any) -> tuple[VersionChange, ...]:
    """The ``history`` list: one ``{version, date, reason}`` mapping per version above 1, oldest first."""
    if entries is None:
        return ()
    if not isinstance(entries, list) or not all(isinstance(e, dict) and set(e) == {"version", "date", "reason"}
                                                 for e in entries):
        raise ValueError("history: a list of {version, date, reason} mappings, one per version above 1")
    return tuple(VersionChange(int(e["version"]), str(e["date"]), str(e["reason"])) for e in entries)


def read_user_claim(path: Path) -> UserClaim:
    """Read and shape-check one ``*.claim.yaml`` file (keys, types of id and version, history).

    Raises:
        UserClaimError: the file and the problem, in one line.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserClaimError(path, f"cannot read: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UserClaimError(path, "a user claim file is a mapping of ClaimSpec fields")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    unknown = sorted(set(data) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if missing or unknown:
        raise UserClaimError(path, ("missing " + ", ".join(missing) if missing else "")
                             + ("; " if missing and unknown else "")
                             + (f"unknown key(s) {', '.join(unknown)} (allowed: "
                                f"{', '.join(REQUIRED_KEYS + OPTIONAL_KEYS)})" if unknown else ""))
    if not isinstance(data["id"], str) or not data["id"].isidentifier():
        raise UserClaimError(path, f"id {data['id']!r} must be a word of letters, digits and underscores")
    if not isinstance(data["version"], int):
        raise UserClaimError(path, f"version {data['version']!r} must be an integer")
    try:
        history = _history(data.get("history"))
        _check_both_ways_shape(data["both_ways"])
    except (ValueError, TypeError) as exc:
        raise UserClaimError(path, str(exc)) from None
    return UserClaim(path, data, history)


def _check_both_ways_shape(cases: Any) -> None:
    """``both_ways`` is ``{holds: case, contradicted: case}``, each case a mapping of :data:`CASE_FIELDS` with an
    estimate; numbers are numbers (or null)."""
    if not isinstance(cases, dict) or set(cases) != set(BOTH_WAYS_CASES):
        raise ValueError("both_ways: a mapping with holds (measurements that satisfy the statement) and contradicted "
                         "(measurements that contradict it), each of estimate, ci_low, ci_high, p_value")
    for name, case in cases.items():
        if not isinstance(case, dict) or "estimate" not in case or set(case) - set(CASE_FIELDS):
            raise ValueError(f"both_ways.{name}: a mapping of {', '.join(CASE_FIELDS)} (estimate required)")
        for field in ("estimate", "ci_low", "ci_high", "p_value"):
            if case.get(field) is not None and (isinstance(case[field], bool)
                                                or not isinstance(case[field], (int, float))):
                raise ValueError(f"both_ways.{name}.{field}: {case[field]!r} is not a number")


def build_spec(claim: UserClaim) -> ClaimSpec:
    """The :class:`ClaimSpec` of a read user claim (its family, if any, already registered).

    Raises:
        UserClaimError: any problem the built-in registry would reject, in one line.
    """
    data = claim.data
    try:
        kind = Kind(data["kind"])
    except ValueError:
        raise UserClaimError(claim.path, f"kind {data['kind']!r}: one of {', '.join(k.value for k in Kind)}") from None
    rules = data["rule"] if isinstance(data["rule"], list) else [data["rule"]]
    groups = data["required_groups"]
    try:
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError("required_groups: a list of prompt-bank group names")
        criteria = tuple(parse_rule(r) for r in rules)
        behavioural = bool(data.get("behavioural", False))
        spec = ClaimSpec(
            id=claim.id, version=data["version"], title=str(data["title"]), statement=str(data["statement"]),
            estimator=str(data["estimator"]), effect_type=str(data["effect_type"]), kind=kind, criteria=criteria,
            ci_level=data.get("ci_level"), significance_level=data.get("significance_level"), family=claim.family,
            power=_power_plan(data["power"], claim.family, data.get("ci_level")), n_unit=str(data["n_unit"]),
            required_groups=tuple(groups), requires_levels=bool(data.get("requires_levels", False)),
            delta=data.get("delta"), decoding=BEHAVIOUR_DECODING if behavioural else None,
            behaviour_score=BEHAVIOUR_SCORE if behavioural else None, notes=str(data.get("notes", "")),
        )
        spec.planned_n  # solve the plan now: an impossible plan is a problem of the file, not of a later run
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise UserClaimError(claim.path, " ".join(str(exc).split())) from None
    problem = version_history_problem(spec.version, claim.history)
    if problem is not None:
        raise UserClaimError(claim.path, f"{problem}; add a history entry (version, date, reason) for each")
    return spec


def _families(claims: list[UserClaim]) -> dict[str, MultiplicityFamily]:
    """The user multiplicity families: every user claim naming one is a member; α is their significance level."""
    families: dict[str, MultiplicityFamily] = {}
    for claim in claims:
        name = claim.family
        if name is None:
            continue
        if name in MULTIPLICITY_FAMILIES:
            raise UserClaimError(claim.path, f"family {name!r} is already registered; user claims name a family of "
                                             "their own (joining one would change the α_test of registered claims)")
        alpha = claim.data.get("significance_level")
        if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
            raise UserClaimError(claim.path, f"family {name!r} needs significance_level (the familywise α, 0 < α < 1)")
        earlier = families.get(name)
        if earlier is not None and earlier.familywise_alpha != alpha:
            raise UserClaimError(claim.path, f"family {name!r}: significance_level {alpha} differs from "
                                             f"{earlier.familywise_alpha} of its other members")
        members = (*earlier.members, claim.id) if earlier else (claim.id,)
        families[name] = MultiplicityFamily(name, float(alpha), "holm", members)
    return families


def register_user_claims(paths: list[Path],
                         check: Callable[[UserClaim, ClaimSpec], str | None] | None = None) -> list[ClaimSpec]:
    """Read, validate and register the user claims of ``paths`` (all or nothing); a file registered before is not
    read again. ``check`` (the claims layer's both-ways check, :mod:`harness.claim.both_ways`) gets each claim and its
    spec before anything is registered and returns a problem or None. Returns the specs of the newly registered
    claims.

    Raises:
        UserClaimError: one line naming the file and the problem (an id the registry already has, a rule the
            registry would reject, a version without its history, a family problem, a failed ``check``).
    """
    new = [read_user_claim(p) for p in dict.fromkeys(Path(p).resolve() for p in paths)
           if Path(p).resolve() not in USER_CLAIM_SOURCES.values()]
    seen: dict[str, Path] = {}
    for claim in new:
        if claim.id in CLAIMS or claim.id in seen:
            where = USER_CLAIM_SOURCES.get(claim.id) or seen.get(claim.id) or "the built-in registry"
            raise UserClaimError(claim.path, f"claim id {claim.id!r} is already registered (by {where})")
        seen[claim.id] = claim.path
    families = _families(new)
    saved = dict(MULTIPLICITY_FAMILIES)
    MULTIPLICITY_FAMILIES.update(families)  # ClaimSpec checks its family against the registry's families
    try:
        specs = [build_spec(claim) for claim in new]
        for claim, spec in zip(new, specs):
            problem = check(claim, spec) if check is not None else None
            if problem is not None:
                raise UserClaimError(claim.path, problem)
    except UserClaimError:
        MULTIPLICITY_FAMILIES.clear()
        MULTIPLICITY_FAMILIES.update(saved)
        raise
    for claim, spec in zip(new, specs):
        CLAIMS[spec.id] = spec
        USER_CLAIM_SOURCES[spec.id] = claim.path
        if claim.history:
            VERSION_HISTORY[spec.id] = claim.history
    return specs
