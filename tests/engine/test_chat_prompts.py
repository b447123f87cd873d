"""Issue 24: ``--model-args chat_template=true`` wraps every prompt in the tokenizer's chat template.

A tiny random-weight Llama is saved with the toy tokenizer and a ChatML template; loaded with ``chat_template=true``
every prompt is encoded as one templated user turn, positions are positions of the templated tokens, equal-length
pairs stay equal, and the template is recorded in the provenance and the model's identity (so in cache keys).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.engine.tokens import encode, special_ids
from harness.models import ModelArgs, ModelArgsError, load_model
from harness.models.chat_prompts import ChatTemplateError
from tests.engine.test_model_architectures import save_tiny

CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def instruct_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = save_tiny("llama", tmp_path_factory.mktemp("instruct"))
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = CHATML
    config_path.write_text(json.dumps(config))
    return directory


def test_prompts_are_templated_user_turns(instruct_dir: Path) -> None:
    raw = load_model(f"path:{instruct_dir}", device="cpu")
    chat = load_model(f"path:{instruct_dir}", device="cpu", model_args=ModelArgs(chat_template=True))
    text = "Observe the process of observing itself, and say what remains."
    plain, templated = encode(raw.tokenizer, text), encode(chat.tokenizer, text)
    head = encode(raw.tokenizer, "<|im_start|>user\n")
    tail = encode(raw.tokenizer, "<|im_end|>\n<|im_start|>assistant\n")
    assert templated == head + plain + tail
    assert chat.tokenizer.decode(templated).endswith("<|im_start|>assistant\n")
    assert special_ids(chat.tokenizer) == special_ids(raw.tokenizer)  # template markers stay out of V windows
    assert chat.tokenizer.decode(plain) == raw.tokenizer.decode(plain)  # decoding continuations is unchanged
    # the template adds the same tokens to every prompt: equal-length pairs stay equal
    other = "The river bends twice before it reaches the mill."
    assert (len(encode(chat.tokenizer, text)) - len(encode(chat.tokenizer, other))
            == len(encode(raw.tokenizer, text)) - len(encode(raw.tokenizer, other)))
    record = chat.provenance["chat_template"]
    assert len(record["sha256"]) == 64 and record["prompt_becomes"].startswith("<|im_start|>user\nPROMPT")
    assert chat.identity["model_args"] == {"chat_template": True} and "model_args" not in raw.identity


def test_a_tokenizer_without_a_template_is_one_line(tmp_path: Path) -> None:
    directory = save_tiny("llama", tmp_path / "base")
    with pytest.raises(ChatTemplateError) as err:
        load_model(f"path:{directory}", device="cpu", model_args=ModelArgs(chat_template=True))
    assert isinstance(err.value, ModelArgsError) and "\n" not in str(err.value)
    assert "its tokenizer has no chat template" in str(err.value)
