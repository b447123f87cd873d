"""Finding the user claims of a run: every ``*.claim.yaml`` under the directories named on the command line (and
beside each test file named), registered before collection by :func:`load_user_claims`
(:mod:`harness.registry.user_claims` validates them). A directory pytest would not recurse into
(``norecursedirs``: hidden folders, virtual environments, build output) is not searched either.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

from harness.claim.both_ways import both_ways_violations
from harness.registry import ClaimSpec
from harness.registry.user_claims import USER_CLAIM_SUFFIX, UserClaim, UserClaimError, register_user_claims

__all__ = ["claim_files", "load_user_claims", "rule_comes_out_both_ways"]


def _searched_dirs(args: list[str], invocation_dir: Path) -> list[tuple[Path, bool]]:
    """(directory, recursive) for each path argument: a directory and all below it, or a test file's directory."""
    out: list[tuple[Path, bool]] = []
    for arg in args:
        if arg.startswith("-"):
            continue
        path = invocation_dir / arg.split("::", 1)[0]
        if path.is_dir():
            out.append((path, True))
        elif path.is_file():
            out.append((path.parent, False))
    return out


def claim_files(args: list[str], invocation_dir: Path, skip_dirs: list[str]) -> list[Path]:
    """The user claim files of a run, sorted and without repeats: ``*.claim.yaml`` under each directory in ``args``
    (skipping folders matching a ``skip_dirs`` pattern) and beside each test file in ``args``."""
    found: set[Path] = set()
    for root, recursive in _searched_dirs(args, invocation_dir):
        if not recursive:
            found.update(p for p in root.glob(f"*{USER_CLAIM_SUFFIX}") if p.is_file())
            continue
        for here, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, pattern) for pattern in skip_dirs)
                       and not (Path(here, d) / "pyvenv.cfg").exists()]
            found.update(Path(here, f) for f in files if f.endswith(USER_CLAIM_SUFFIX))
    return sorted(p.resolve() for p in found)


def rule_comes_out_both_ways(claim: UserClaim, spec: ClaimSpec) -> str | None:
    """The problem when the claim's rule does not give PASS on its ``both_ways.holds`` case, FAIL on its
    ``contradicted`` case and INCONCLUSIVE (underpowered) one below the planned n (None when it does): a rule that
    cannot come out both ways is refused, as the built-in registry's are by its tests."""
    violations = both_ways_violations(spec, *claim.both_ways)
    if not violations:
        return None
    return "the rule cannot come out both ways on its both_ways cases: " + "; ".join(violations)


def load_user_claims(config: pytest.Config) -> list[ClaimSpec]:
    """Register the run's user claims (once per process; a file registered before is skipped).

    Raises:
        pytest.UsageError: ``user claim <file>: <problem>``, one line, before anything is collected.
    """
    files = claim_files(list(config.args), config.invocation_params.dir, list(config.getini("norecursedirs")))
    try:
        return register_user_claims(files, check=rule_comes_out_both_ways)
    except UserClaimError as exc:
        raise pytest.UsageError(f"user claim {exc}") from None
