"""Prompt bank types: prompts, recorded pairs, the bank and its content hash, groups, levels and pair kinds.

The bank's :attr:`PromptBank.content_hash` is the sha256 of a canonical JSON of all prompts and pairs; it
goes into every result so a number can be traced to the exact prompt texts that produced it.

Token counts here are *content* token counts: the ids a tokenizer produces for the text with
``add_special_tokens=False`` (no BOS/EOS), the same tokens the V window of DESIGN §4.1 is drawn from.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

GROUPS: frozenset[str] = frozenset(
    {
        "recursive",  # self-observation prompts, levels 1 (hint) .. 5 (maximal)
        "baseline",  # ordinary factual requests, diverse topics
        "long_control",  # non-recursive prompts as long as recursive L4/L5
        "repetitive",  # confound: repetitive structure, no self-reference
        "about_recursion",  # confound: third-person talk about recursion/consciousness
        "persona",  # a user prompt under one of several equal-length system prompts
        "grounded",  # questions with well-established factual answers
        "confabulation",  # questions about things that do not exist (invite made-up answers)
    }
)
"""Every group name a bank may use."""

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Recursion levels of the ``recursive`` group: 1 = a hint of self-observation, 5 = maximal."""

PAIR_KINDS: Mapping[str, tuple[str, str]] = {
    "recursive_baseline": ("recursive", "baseline"),
    "grounded_confabulation": ("grounded", "confabulation"),
}
"""Pair kind -> (group of ``first``, group of ``second``)."""

PERSONA_TAG = "persona:"
"""Tag prefix naming a ``persona`` prompt's persona: ``persona:<name>``."""
WORDING_TAG = "wording:"
"""Tag prefix naming which wording (paraphrase) of its persona's system prompt a ``persona`` prompt carries:
``wording:<name>``; a persona prompt without one has the wording ``""``."""


class PromptBankError(ValueError):
    """A prompt bank file is malformed. The message names the file, the prompt id and the problem."""

    def __init__(self, file: str | Path, problem: str, prompt_id: str | None = None) -> None:
        self.file = str(file)
        self.prompt_id = prompt_id
        self.problem = problem
        where = f"{self.file}: prompt {prompt_id!r}" if prompt_id is not None else self.file
        super().__init__(f"{where}: {problem}")


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer this module uses."""

    def __call__(self, text: str, add_special_tokens: bool = ...) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Prompt:
    """One prompt of the bank.

    ``text`` is the user text exactly as fed to the model (surrounding whitespace stripped at load).
    ``level`` is the recursion level (1..5) for ``recursive`` prompts, else ``None``. ``pair`` is the id
    of a partner prompt (for user files that declare pairs inline). ``system`` is the system prompt of a
    ``persona`` prompt; the persona's name is the tag ``persona:<name>``, the wording of its system prompt the
    optional tag ``wording:<name>``.
    """

    id: str
    group: str
    text: str
    level: int | None = None
    pair: str | None = None
    tags: tuple[str, ...] = ()
    system: str | None = None

    @property
    def persona(self) -> str | None:
        """Name of the persona (from the ``persona:<name>`` tag), or ``None``."""
        for tag in self.tags:
            if tag.startswith(PERSONA_TAG):
                return tag[len(PERSONA_TAG) :]
        return None

    @property
    def wording(self) -> str:
        """Name of the system prompt's wording (from the ``wording:<name>`` tag), or ``""`` without one."""
        for tag in self.tags:
            if tag.startswith(WORDING_TAG):
                return tag[len(WORDING_TAG) :]
        return ""

    def canonical(self) -> dict[str, Any]:
        """The prompt as a JSON-ready dict (used for the content hash)."""
        record = asdict(self)
        record["tags"] = list(self.tags)
        return record


@dataclass(frozen=True)
class PromptPair:
    """Two prompts matched for patching: ``first`` from one group, ``second`` from the other.

    For kind ``recursive_baseline`` ``first`` is the recursive prompt and ``second`` the baseline prompt.
    ``token_counts`` maps a model (tokenizer) name to the content-token counts ``(first, second)``
    recorded when the pair was built; empty for pairs declared without counts.
    """

    id: str
    kind: str
    first: str
    second: str
    token_counts: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False, hash=False)

    def counts(self, model: str) -> tuple[int, int] | None:
        """Recorded ``(first, second)`` content-token counts under ``model``'s tokenizer, if any."""
        return self.token_counts.get(model)

    def canonical(self) -> dict[str, Any]:
        """The pair as a JSON-ready dict (used for the content hash)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "first": self.first,
            "second": self.second,
            "token_counts": {m: list(c) for m, c in sorted(self.token_counts.items())},
        }


class PromptBank:
    """A validated, immutable set of prompts (and recorded pairs) with a content hash."""

    def __init__(
        self,
        prompts: Iterable[Prompt],
        pairs: Iterable[PromptPair] = (),
        source: Sequence[str | Path] = (),
        origins: Mapping[str, str] | None = None,
    ) -> None:
        self.prompts: tuple[Prompt, ...] = tuple(sorted(prompts, key=lambda p: p.id))
        self._pairs: tuple[PromptPair, ...] = tuple(sorted(pairs, key=lambda p: (p.kind, p.id)))
        self.source: tuple[str, ...] = tuple(str(s) for s in source)
        self._by_id = {p.id: p for p in self.prompts}
        if len(self._by_id) != len(self.prompts):
            dupes = sorted(i for i, count in Counter(p.id for p in self.prompts).items() if count > 1)
            raise PromptBankError("<memory>", f"duplicate id(s) {dupes}")
        self._origins = dict(origins or {})
        self.content_hash: str = _hash_canonical(self.prompts, self._pairs)

    def __len__(self) -> int:
        return len(self.prompts)

    def __repr__(self) -> str:
        return f"PromptBank({len(self)} prompts, groups={sorted(self.groups)}, hash={self.content_hash[:12]})"

    @property
    def groups(self) -> set[str]:
        """Names of the groups present in this bank."""
        return {p.group for p in self.prompts}

    def get(self, prompt_id: str) -> Prompt:
        """The prompt with this id (``KeyError`` naming the id if absent)."""
        try:
            return self._by_id[prompt_id]
        except KeyError:
            raise KeyError(f"no prompt with id {prompt_id!r} in the bank ({', '.join(self.source)})") from None

    def origin(self, prompt_id: str) -> str:
        """The file a prompt was read from."""
        self.get(prompt_id)
        return self._origins.get(prompt_id, "<memory>")

    def group(self, name: str, level: int | None = None) -> list[Prompt]:
        """Prompts of one group (optionally one recursion level), sorted by id.

        A known group that this bank does not contain gives ``[]``; an unknown name is a ``ValueError``.
        """
        if name not in GROUPS:
            raise ValueError(f"unknown prompt group {name!r}; known groups: {', '.join(sorted(GROUPS))}")
        return [p for p in self.prompts if p.group == name and (level is None or p.level == level)]

    def personas(self) -> dict[str, list[Prompt]]:
        """``persona`` prompts by persona name, each list sorted by id."""
        out: dict[str, list[Prompt]] = defaultdict(list)
        for p in self.group("persona"):
            out[p.persona or ""].append(p)
        return dict(sorted(out.items()))

    def pairs(self, kind: str = "recursive_baseline") -> list[PromptPair]:
        """Recorded pairs of one kind (from ``pairs`` sections and inline ``pair`` fields), sorted by id."""
        if kind not in PAIR_KINDS:
            raise ValueError(f"unknown pair kind {kind!r}; known kinds: {', '.join(sorted(PAIR_KINDS))}")
        return [p for p in self._pairs if p.kind == kind]

    def canonical_json(self) -> str:
        """The canonical JSON the content hash is computed from."""
        return _canonical_json(self.prompts, self._pairs)


def _canonical_json(prompts: Sequence[Prompt], pairs: Sequence[PromptPair]) -> str:
    payload: dict[str, Any] = {"prompts": [p.canonical() for p in prompts]}
    if pairs:
        payload["pairs"] = [p.canonical() for p in pairs]
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _hash_canonical(prompts: Sequence[Prompt], pairs: Sequence[PromptPair]) -> str:
    return hashlib.sha256(_canonical_json(prompts, pairs).encode("utf-8")).hexdigest()


def content_token_count(text: str, tokenizer: Tokenizer) -> int:
    """Number of content tokens of ``text``: the tokenizer's ids without special tokens (no BOS/EOS)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
