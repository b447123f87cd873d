"""Run-level provenance for claims.json / claims.md: what ran, where, with which code and data.

Nothing here touches CUDA (the controller must not); package versions come from installed metadata. Model and
prompt-bank provenance come from the records' ``details`` (filled on the workers that loaded them) or from the config
stash key :data:`PROMPT_BANK_HASH_KEY`. The bank's group counts (``prompt_bank`` in the header, for methods.md) are
read on the controller by :func:`prompt_bank_summary` when the harness's ``--prompt-bank`` option exists (loading
the bank imports :mod:`harness.prompts`, and with it torch, which the harness's own plugin has imported already).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

PACKAGES = ("torch", "transformers", "accelerate", "gguf", "numpy", "scipy", "statsmodels", "pandas",
            "matplotlib", "pytest", "pytest-xdist", "hypothesis", "sentence-transformers")

BANK_HASH_KEYS = ("prompt_bank_sha256", "prompt_bank_hash")
"""``details`` keys read for the prompt bank's content hash."""

PROMPT_BANK_HASH_KEY = pytest.StashKey[str]()
"""A plugin that loads the prompt bank on the controller may put its content hash here."""


def utc_now() -> dt.datetime:
    """The current time in UTC (timezone-aware)."""
    return dt.datetime.now(dt.timezone.utc)


def git_info(root: Path) -> dict[str, Any]:
    """``{"sha", "short", "dirty"}`` for the repository at ``root`` (values None outside git)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "short": sha[:7] if sha else None, "dirty": bool(status) if status is not None else None}


def run_id(now: dt.datetime, short_sha: str | None) -> str:
    """``YYYYmmddTHHMMSSZ-<short sha>`` (``nogit`` outside a repository)."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{short_sha or 'nogit'}"


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions (None when a package is absent), plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _distinct(values: Iterable[Any]) -> Any:
    seen = []
    for v in values:
        if v is not None and v not in seen:
            seen.append(v)
    if not seen:
        return None
    return seen[0] if len(seen) == 1 else seen


def run_header(
    *,
    config: pytest.Config,
    records: Sequence[dict[str, Any]],
    started: dt.datetime,
    finished: dt.datetime,
    git: dict[str, Any],
    workers: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The run header of claims.json (see :mod:`harness.report` for the meaning of each key)."""
    models: dict[str, Any] = {}
    for rec in records:
        prov = (rec.get("details") or {}).get("model_provenance")
        if prov is not None:
            models.setdefault(rec["model"], [])
            if prov not in models[rec["model"]]:
                models[rec["model"]].append(prov)
    bank = _distinct([(rec.get("details") or {}).get(key) for rec in records for key in BANK_HASH_KEYS]
                     + [config.stash.get(PROMPT_BANK_HASH_KEY, None)])
    return {
        "run_id": run_id(started, git.get("short")),
        "synthetic": any((rec.get("details") or {}).get("synthetic") for rec in records),
        "git": git,
        "date_utc": started.isoformat(timespec="seconds"),
        "command": command_line(sys.argv),
        "invocation_args": list(config.invocation_params.args),
        "seed": _option(config, "seed"),
        "options": {name: _option(config, name) for name in ("model", "device", "dtype", "model_args", "gpus_per_worker", "prompt_bank",
                                                         "n_cap", "window", "claims_cache", "decode_path",
                                                         "executor")},
        "prompt_bank_sha256": bank,
        "prompt_bank": prompt_bank_summary(config, bank),
        "models": {name: (provs[0] if len(provs) == 1 else provs) for name, provs in models.items()},
        "device": _distinct([((rec.get("details") or {}).get("model_provenance") or {}).get("device")
                             for rec in records]) or _option(config, "device"),
        "packages": package_versions(),
        "platform": platform.platform(),
        "threads": thread_facts(),
        "workers": workers,
        "timings": {"started_utc": started.isoformat(timespec="seconds"),
                    "finished_utc": finished.isoformat(timespec="seconds"),
                    "wall_s": round((finished - started).total_seconds(), 3)},
    }


def thread_facts() -> dict[str, Any]:
    """CPU threading of the controller process: torch's intra-op thread count, the OpenMP/MKL environment and the
    core count (each worker's own torch thread count is in ``workers``). Measured numbers do not depend on them
    (scores are computed on one thread, see :mod:`harness.behaviour.embedding`); they are recorded for timings."""
    torch = sys.modules.get("torch")
    return {
        "torch_intra_op": int(torch.get_num_threads()) if torch is not None else None,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
    }


def prompt_bank_summary(config: pytest.Config, recorded_sha: Any) -> dict[str, Any] | None:
    """The bank of ``--prompt-bank`` (the shipped one when unset): its hash, source, prompts per group, recursive
    prompts per level and recorded pairs per kind, with a ``note`` when its hash is not the one the records carry.

    None when the option does not exist (the report plugin used without the harness's plugin); ``{"error": ...}``
    when the bank cannot be read (the report is still written)."""
    try:
        path = config.getoption("prompt_bank")
    except ValueError:
        return None
    try:
        from harness.prompts import LEVELS, PAIR_KINDS, load_bank

        bank = load_bank(path)
    except Exception as exc:  # noqa: BLE001 - a report must not fail on its methods text
        return {"error": f"{type(exc).__name__}: {exc}"}
    groups = {g: len(bank.group(g)) for g in sorted(bank.groups)}
    summary: dict[str, Any] = {
        "sha256": bank.content_hash,
        "source": str(path) if path else "prompts/ (the bank shipped with the suite)",
        "groups": groups,
        "recursive_levels": {f"L{lv}": len(bank.group("recursive", level=lv)) for lv in LEVELS}
        if groups.get("recursive") else {},
        "recorded_pairs": {kind: len(bank.pairs(kind)) for kind in PAIR_KINDS},
    }
    if recorded_sha is not None and recorded_sha != bank.content_hash:
        summary["note"] = (f"The records carry bank hash {recorded_sha}, not this bank's {bank.content_hash}: the counts "
                           "describe the bank found at the end of the run.")
    return summary


def command_line(argv: Sequence[str]) -> str:
    """The command as typed: ``pytest ...`` for the console script, ``python -m pytest ...`` for the module."""
    program = Path(argv[0]).name if argv else "pytest"
    if program in ("__main__.py", "pytest.py"):
        program = "python -m pytest"
    return " ".join([program, *argv[1:]])


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name, default=None)
    if isinstance(value, Path):
        return str(value)
    return value
