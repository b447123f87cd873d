"""Tokenisation and left-padded batching with explicit position ids.

Every batched forward in the harness goes through ``left_pad`` so padding semantics are defined once:
pad tokens sit on the left, ``attention_mask`` is 0 on them, and ``position_ids = cumsum(mask) - 1``
(clamped at 0 on padding), so a padded row sees exactly the positions it would see alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` with the tokenizer's own special tokens (e.g. Gemma's BOS; SmolLM2 adds none)."""
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])


def special_ids(tokenizer: Any) -> frozenset[int]:
    """Ids the tokenizer declares special (BOS, EOS, PAD, UNK, chat markers); excluded from V windows."""
    return frozenset(int(i) for i in tokenizer.all_special_ids)


def pad_id(tokenizer: Any) -> int:
    """Id used for left padding: the tokenizer's pad token, else its EOS token."""
    pid = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pid is None:
        raise ValueError("tokenizer has neither a pad nor an EOS token to pad with")
    return int(pid)


@dataclass(frozen=True)
class Batch:
    """A left-padded batch. ``offsets[i]`` = number of pad tokens in front of row i."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    offsets: tuple[int, ...]

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(
            self.input_ids.to(device), self.attention_mask.to(device), self.position_ids.to(device), self.offsets
        )


def left_pad(sequences: Sequence[Sequence[int]], pad_token_id: int) -> Batch:
    """Left-pad token id lists into one batch with attention mask and explicit position ids."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("left_pad needs at least one non-empty sequence")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    offsets = []
    for row, seq in enumerate(sequences):
        start = width - len(seq)
        ids[row, start:] = torch.as_tensor(list(seq), dtype=torch.long)
        mask[row, start:] = 1
        offsets.append(start)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return Batch(ids, mask, positions, tuple(offsets))
