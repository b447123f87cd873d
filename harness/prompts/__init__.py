"""The prompt bank: types (:mod:`~harness.prompts.bank`), loading and validation
(:mod:`~harness.prompts.loading`) and pairing (:mod:`~harness.prompts.pairing`, the only place pairs are made).
The public names are re-exported here.
"""

from harness.prompts.bank import (
    GROUPS, LEVELS, PAIR_KINDS, PERSONA_TAG, Prompt, PromptBank, PromptBankError, PromptPair, Tokenizer,
    content_token_count,
)
from harness.prompts.loading import DEFAULT_BANK_DIR, check_max_tokens, check_min_tokens, load_bank
from harness.prompts.pairing import PairRole, TransferPair, equal_length_pairs, make_pair, select_pairs, transfer_pairs

__all__ = [
    "DEFAULT_BANK_DIR", "GROUPS", "LEVELS", "PAIR_KINDS", "PERSONA_TAG", "PairRole", "Prompt", "PromptBank",
    "PromptBankError", "PromptPair", "Tokenizer", "TransferPair", "check_max_tokens", "check_min_tokens",
    "content_token_count", "equal_length_pairs", "load_bank", "make_pair", "select_pairs", "transfer_pairs",
]
