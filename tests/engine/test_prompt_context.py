"""Prompts longer than the model's context are rejected when the bank is handed to a claim, naming the prompt,
its token count and the model's max_position_embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.models import TOY_TOKENIZER_DIR, LoadedModel, context_length
from harness.prompts import PromptBankError, check_max_tokens, load_bank

ROOT = Path(__file__).resolve().parents[2]
LONG_TEXT = "Observe the observer observing this sentence. " * 200  # about 1,400 tokens, past toy-llama's 1024


def _bank(tmp_path: Path, long_text: str) -> Path:
    path = tmp_path / "bank.json"
    path.write_text(json.dumps([
        {"id": "r1", "group": "recursive", "text": "Observe the observer observing this sentence as it is read."},
        {"id": "b-long", "group": "baseline", "text": long_text},
    ]))
    return path


def test_prompt_past_the_context_is_named_with_both_numbers(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TOY_TOKENIZER_DIR))
    bank = load_bank(_bank(tmp_path, LONG_TEXT))
    n = len(tokenizer(next(p.text for p in bank.prompts if p.id == "b-long"))["input_ids"])
    with pytest.raises(PromptBankError) as err:
        check_max_tokens(bank, tokenizer, 1024, "toy-llama")
    message = str(err.value)
    assert "'b-long'" in message and f"{n} tokens" in message and "max_position_embeddings = 1024" in message
    assert "toy-llama" in message and "\n" not in message
    check_max_tokens(bank, tokenizer, n, "toy-llama")  # exactly the context: accepted
    check_max_tokens(bank, tokenizer, None, "toy-llama")  # no context length in the config: nothing checked


def test_context_length_reads_the_config(toy_llama: LoadedModel) -> None:
    assert context_length(toy_llama.model.config) == 1024


def test_a_prompt_past_the_context_is_a_usage_error_before_any_claim(pytester: pytest.Pytester) -> None:
    """Issue 28: a user bank is checked against every selected model's context at start (tokenizer and config only),
    so the run ends as a usage error (exit 4) in one line before any claim runs, not as an ERROR in each claim."""
    pytester.makeconftest(
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "pytest_plugins = ['harness.plugin', 'fixtures.models']\n"
    )
    pytester.makepyfile(test_claim_like=(
        "import pytest\n\n"
        "@pytest.mark.claim('rv_contraction')\n"
        "def test_rv_contraction(claim):\n"
        "    assert claim.bank is not None\n"
    ))
    result = pytester.runpytest_subprocess(
        "--model", "toy-llama", "--prompt-bank", str(_bank(pytester.path, LONG_TEXT)), "-p", "no:cacheprovider",
        "-W", "ignore::pytest.PytestUnknownMarkWarning",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and "passed" not in result.stdout.str()
    assert "prompt 'b-long': " in errors[0] and "tokens exceed the context of toy-llama (max_position_embeddings = 1024)" \
        in errors[0] and errors[0].startswith("ERROR: --prompt-bank: ")
