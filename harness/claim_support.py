"""Small helpers shared by the claim modules: prompt selection per the registry, seeds, report details."""

from __future__ import annotations

from typing import Any

import pytest

from harness.claims_registry import ClaimSpec
from harness.models import LoadedModel
from harness.prompts import Prompt, PromptBank


def require_groups(bank: PromptBank, spec: ClaimSpec, n_cap: int | None) -> dict[str, list[Prompt]]:
    """The prompts of each group the claim needs (capped at ``n_cap`` each, in id order).

    Skips the test, with the reason, when the bank lacks a group the claim needs (e.g. a user bank with
    only ``recursive`` and ``baseline``), or when a claim needs recursion levels and the bank has none.
    """
    missing = [g for g in spec.required_groups if g not in bank.groups]
    if missing:
        pytest.skip(f"{spec.id}: the prompt bank has no {', '.join(missing)} group (needs {', '.join(spec.required_groups)})")
    selected = {g: bank.group(g)[:n_cap] if n_cap else bank.group(g) for g in spec.required_groups}
    if spec.requires_levels and not any(p.level for p in selected.get("recursive", [])):
        pytest.skip(f"{spec.id}: recursive prompts in the bank carry no recursion level")
    return selected


def run_details(lm: LoadedModel, bank: PromptBank, **extra: Any) -> dict[str, Any]:
    """Provenance every claim record carries: model provenance, layers, prompt-bank hash."""
    return {
        "model_provenance": dict(lm.provenance),
        "layers": {"early": lm.layers.early, "late": lm.layers.late, "patch": list(lm.layers.patch_layers)},
        "prompt_bank_hash": bank.content_hash,
        **extra,
    }
