"""What the claim ``projector_transfers_context`` runs, as data and one function per step: the registered training
settings of its two projectors, the sharer each receiver is paired with, and where a missing projector comes from.
"""

from __future__ import annotations

from harness.exchange.projector.texts import TextSet
from harness.exchange.projector.training import TrainedProjector, TrainingSettings, obtain_projector
from harness.models import LoadedModel

__all__ = ["PROJECTOR_SETTINGS", "SHARER_OF", "projectors_for", "train_command"]

PROJECTOR_SETTINGS: dict[str, TrainingSettings] = {
    "projected": TrainingSettings(pairing="matched"),
    "mismatched_pairs": TrainingSettings(pairing="mismatched"),
}
"""The claim's two projectors: the same settings but the pairing (fixed before any real-model run)."""

SHARER_OF: dict[str, str] = {"smollm2-135m": "gemma3-270m", "gemma3-270m": "smollm2-135m"}
"""Receiver (the model under test) → sharer: each embedded model reads the other's cache."""

def train_command(sharer: str, receiver: str) -> str:
    """The command that trains and stores the projectors of one direction."""
    return f"python -m harness.exchange.projector.cli train --sharer {sharer} --receiver {receiver}"

def projectors_for(sharer: LoadedModel, receiver: LoadedModel, text_set: TextSet, *,
                   train: bool) -> dict[str, TrainedProjector | None]:
    """``{"projected": …, "mismatched_pairs": …}``: each stored projector, trained and stored first when ``train``
    (None when it is not stored and ``train`` is False)."""
    return {name: obtain_projector(sharer, receiver, text_set, settings, train=train)
            for name, settings in PROJECTOR_SETTINGS.items()}
