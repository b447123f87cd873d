"""``chat_template=true``: each prompt wrapped in the tokenizer's chat template, for instruct models.

Every prompt of the suite reaches the model through :func:`harness.engine.tokens.encode`, which calls the tokenizer on
the prompt's text. :class:`ChatPromptTokenizer` wraps the model's tokenizer so that this call returns the ids of the
text as one user turn with the assistant's turn opened (``apply_chat_template(..., add_generation_prompt=True)``), and
leaves every other use of the tokenizer (decoding continuations, special ids, padding) to the tokenizer itself. So every
position the claims refer to (the R_V window, patch positions and spans, the equal lengths of a pair) is a position of
the templated tokens: the template adds the same tokens to every prompt, so equal-length pairs stay equal, and the
template's special tokens are left out of V windows like any special token. The default is raw text, as registered.
"""

from __future__ import annotations

import hashlib
from typing import Any

from harness.models.model_args import ModelArgsError

__all__ = ["ChatPromptTokenizer", "ChatTemplateError", "chat_prompt_tokenizer"]


class ChatTemplateError(ModelArgsError):
    """``chat_template=true`` for a tokenizer without a chat template (one line)."""


class ChatPromptTokenizer:
    """A tokenizer whose call on one string returns the ids of that string as a templated user turn; everything else
    is the wrapped tokenizer's (attribute access falls through)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    @property
    def wrapped(self) -> Any:
        """The tokenizer underneath."""
        return self._tokenizer

    def template_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` as one user turn followed by the opened assistant turn."""
        ids = self._tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                                  tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # a BatchEncoding on some releases
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    def __call__(self, text: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(text, str):
            return {"input_ids": self.template_ids(text)}
        return self._tokenizer(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def __len__(self) -> int:
        return len(self._tokenizer)


def chat_prompt_tokenizer(tokenizer: Any, model_name: str) -> tuple[ChatPromptTokenizer, dict[str, Any]]:
    """The wrapped tokenizer and its provenance record (``chat_template``: the template's sha256 and an example of
    what a prompt becomes).

    Raises:
        ChatTemplateError: the tokenizer has no chat template (a base model's), in one line.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise ChatTemplateError(f"{model_name}: --model-args chat_template=true, but its tokenizer has no chat template "
                                "(a base model's?); leave chat_template out to run on raw text")
    wrapped = ChatPromptTokenizer(tokenizer)
    example = tokenizer.decode(wrapped.template_ids("PROMPT"))
    record = {"chat_template": {"sha256": hashlib.sha256(str(template).encode("utf-8")).hexdigest(),
                                "prompt_becomes": example}}
    return wrapped, record
