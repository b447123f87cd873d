"""Prompt bank: schema, loading, validation, content hash and length-matched pairing.

A bank is a set of :class:`Prompt` records read from JSON or YAML files (one file or a directory of
them). The schema is documented in ``prompts/README.md``; in short, every prompt needs ``id``, ``group``
and ``text`` and may carry ``level`` (recursive prompts only, 1..5), ``pair`` (id of a partner prompt),
``tags`` (list of strings) and ``system`` (a system prompt; required for the ``persona`` group).
A file may also hold a ``pairs`` list: recorded prompt pairs with their per-model token counts.

Every problem is reported as a :class:`PromptBankError` whose message names the file, the prompt id
(when there is one) and the problem. The bank's :attr:`PromptBank.content_hash` is the sha256 of a
canonical JSON of all prompts and pairs; it goes into every result so a number can be traced to the
exact prompt texts that produced it.

Token counts here are *content* token counts: the ids a tokenizer produces for the text with
``add_special_tokens=False`` (no BOS/EOS), the same tokens the V window of DESIGN §4.1 is drawn from.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import yaml

__all__ = [
    "DEFAULT_BANK_DIR",
    "GROUPS",
    "LEVELS",
    "PAIR_KINDS",
    "Prompt",
    "PromptBank",
    "PromptBankError",
    "PromptPair",
    "check_min_tokens",
    "content_token_count",
    "equal_length_pairs",
    "load_bank",
]

DEFAULT_BANK_DIR: Path = Path(__file__).resolve().parent.parent / "prompts"
"""The bank shipped with the suite (``prompts/`` at the repository root)."""

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

_PROMPT_FIELDS = ("id", "group", "text", "level", "pair", "tags", "system")
_REQUIRED_FIELDS = ("id", "group", "text")
_PAIR_FIELDS = ("id", "kind", "first", "second", "token_counts")
_TOP_LEVEL_KEYS = ("prompts", "pairs", "description")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_SUFFIXES = (".json", ".yaml", ".yml")
_PERSONA_TAG = "persona:"


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
    ``persona`` prompt; the persona's name is the tag ``persona:<name>``.
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
            if tag.startswith(_PERSONA_TAG):
                return tag[len(_PERSONA_TAG) :]
        return None

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


# --------------------------------------------------------------------------------------------------
# Loading and validation


def load_bank(path: str | Path | None = None) -> PromptBank:
    """Load and validate a prompt bank.

    ``path`` is a ``.json``/``.yaml``/``.yml`` file or a directory whose top-level files with those
    suffixes are all read (sorted by name); ``None`` loads the bank shipped in ``prompts/``.
    Raises :class:`PromptBankError` for any malformed content.
    """
    root = Path(path) if path is not None else DEFAULT_BANK_DIR
    files = _bank_files(root)
    prompts: dict[str, Prompt] = {}
    origins: dict[str, str] = {}
    raw_pairs: list[tuple[str, Mapping[str, Any]]] = []
    for file in files:
        data = _read_file(file)
        prompt_records, pair_records = _split_top_level(file, data)
        for record in prompt_records:
            prompt = _parse_prompt(file, record)
            if prompt.id in prompts:
                raise PromptBankError(file, f"duplicate id (first defined in {origins[prompt.id]})", prompt.id)
            prompts[prompt.id] = prompt
            origins[prompt.id] = str(file)
        raw_pairs.extend((str(file), r) for r in pair_records)
    if not prompts:
        raise PromptBankError(root, "the bank contains no prompts")
    _check_personas(prompts, origins)
    pairs = _build_pairs(prompts, origins, raw_pairs)
    return PromptBank(prompts.values(), pairs, source=[str(f) for f in files], origins=origins)


def _bank_files(root: Path) -> list[Path]:
    if root.is_dir():
        files = sorted(f for f in root.iterdir() if f.is_file() and f.suffix.lower() in _SUFFIXES)
        if not files:
            raise PromptBankError(root, f"directory has no prompt files ({', '.join(_SUFFIXES)})")
        return files
    if not root.exists():
        raise PromptBankError(root, "no such file or directory")
    if root.suffix.lower() not in _SUFFIXES:
        raise PromptBankError(root, f"unsupported file type {root.suffix!r}; use one of {', '.join(_SUFFIXES)}")
    return [root]


def _read_file(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptBankError(file, f"cannot read file: {exc}") from exc
    try:
        if file.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        problem = " ".join(str(exc).split())
        raise PromptBankError(file, f"unparseable file: {problem}") from exc


def _split_top_level(file: Path, data: Any) -> tuple[list[Any], list[Any]]:
    """A file is a list of prompts, or a mapping with ``prompts`` and/or ``pairs`` lists."""
    if isinstance(data, list):
        return data, []
    if not isinstance(data, dict):
        raise PromptBankError(file, "top level must be a list of prompts or a mapping with a 'prompts' list")
    unknown = sorted(set(data) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise PromptBankError(file, f"unknown top-level key(s) {unknown}; allowed: {list(_TOP_LEVEL_KEYS)}")
    prompts, pairs = data.get("prompts", []), data.get("pairs", [])
    for key, value in (("prompts", prompts), ("pairs", pairs)):
        if not isinstance(value, list):
            raise PromptBankError(file, f"'{key}' must be a list")
    return prompts, pairs


def _parse_prompt(file: Path, record: Any) -> Prompt:
    if not isinstance(record, dict):
        raise PromptBankError(file, f"each prompt must be a mapping, got {type(record).__name__}: {record!r:.60}")
    raw_id = record.get("id")
    pid = raw_id if isinstance(raw_id, str) else None
    for name in _REQUIRED_FIELDS:
        if name not in record or record[name] is None:
            raise PromptBankError(file, f"missing field {name!r}", pid)
    if pid is None or not _ID_PATTERN.match(pid):
        raise PromptBankError(file, f"bad id {raw_id!r}: must be a string of letters, digits and _ . : -", pid)
    unknown = sorted(set(record) - set(_PROMPT_FIELDS))
    if unknown:
        raise PromptBankError(file, f"unknown field(s) {unknown}; allowed: {list(_PROMPT_FIELDS)}", pid)
    group = record["group"]
    if group not in GROUPS:
        raise PromptBankError(file, f"unknown group {group!r}; known groups: {', '.join(sorted(GROUPS))}", pid)
    text = _nonempty_text(file, pid, "text", record["text"])
    level = _parse_level(file, pid, group, record.get("level"))
    pair = record.get("pair")
    if pair is not None and (not isinstance(pair, str) or not pair):
        raise PromptBankError(file, f"'pair' must be a prompt id string, got {pair!r}", pid)
    tags = _parse_tags(file, pid, record.get("tags", []))
    system = record.get("system")
    if system is not None:
        system = _nonempty_text(file, pid, "system", system)
    if group == "persona" and (system is None or sum(t.startswith(_PERSONA_TAG) for t in tags) != 1):
        raise PromptBankError(file, "a persona prompt needs a 'system' prompt and exactly one 'persona:<name>' tag", pid)
    return Prompt(id=pid, group=group, text=text, level=level, pair=pair, tags=tags, system=system)


def _nonempty_text(file: Path, pid: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise PromptBankError(file, f"'{name}' must be a string, got {type(value).__name__}", pid)
    if not value.strip():
        raise PromptBankError(file, f"empty {name}", pid)
    return value.strip()


def _parse_level(file: Path, pid: str, group: str, level: Any) -> int | None:
    if level is None:
        return None
    if group != "recursive":
        raise PromptBankError(file, f"bad level {level!r}: 'level' is only allowed in group 'recursive'", pid)
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise PromptBankError(file, f"bad level {level!r}: must be an integer in {LEVELS[0]}..{LEVELS[-1]}", pid)
    return level


def _parse_tags(file: Path, pid: str, tags: Any) -> tuple[str, ...]:
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise PromptBankError(file, f"'tags' must be a list of non-empty strings, got {tags!r}", pid)
    return tuple(tags)


def _check_personas(prompts: Mapping[str, Prompt], origins: Mapping[str, str]) -> None:
    """All prompts of one persona must share the same system prompt."""
    systems: dict[str, tuple[str, str]] = {}
    for p in prompts.values():
        if p.group != "persona":
            continue
        name = p.persona or ""
        if name in systems and systems[name][0] != p.system:
            raise PromptBankError(
                origins[p.id], f"persona {name!r} has a different system prompt than {systems[name][1]!r}", p.id
            )
        systems.setdefault(name, (p.system or "", p.id))


def _build_pairs(
    prompts: Mapping[str, Prompt],
    origins: Mapping[str, str],
    raw_pairs: Sequence[tuple[str, Mapping[str, Any]]],
) -> list[PromptPair]:
    """Pairs from ``pairs`` sections plus those declared inline with ``pair``; each with its file."""
    located = [(file, _parse_pair(file, record, prompts)) for file, record in raw_pairs]
    declared = {(p.kind, p.first, p.second) for _, p in located}
    for p in prompts.values():
        if p.pair is None:
            continue
        if p.pair not in prompts:
            raise PromptBankError(origins[p.id], f"'pair' names unknown prompt id {p.pair!r}", p.id)
        partner = prompts[p.pair]
        kind = _kind_of(p.group, partner.group)
        if kind is None:
            raise PromptBankError(
                origins[p.id],
                f"cannot pair group {p.group!r} with {partner.group!r} ({p.pair!r}); pair kinds: {dict(PAIR_KINDS)}",
                p.id,
            )
        first, second = (p.id, partner.id) if PAIR_KINDS[kind][0] == p.group else (partner.id, p.id)
        if (kind, first, second) not in declared:
            declared.add((kind, first, second))
            located.append((origins[p.id], PromptPair(id=f"{first}~{second}", kind=kind, first=first, second=second)))
    _check_pairs_unique(located)
    return [pair for _, pair in located]


def _kind_of(group_a: str, group_b: str) -> str | None:
    for kind, groups in PAIR_KINDS.items():
        if set(groups) == {group_a, group_b} and group_a != group_b:
            return kind
    return None


def _parse_pair(file: str, record: Any, prompts: Mapping[str, Prompt]) -> PromptPair:
    if not isinstance(record, dict):
        raise PromptBankError(file, f"each pair must be a mapping, got {type(record).__name__}")
    pair_id = record.get("id") if isinstance(record.get("id"), str) else None
    label = f"pair {pair_id!r}"
    unknown = sorted(set(record) - set(_PAIR_FIELDS))
    if unknown:
        raise PromptBankError(file, f"{label}: unknown field(s) {unknown}; allowed: {list(_PAIR_FIELDS)}")
    for name in ("id", "kind", "first", "second"):
        if not isinstance(record.get(name), str) or not record[name]:
            raise PromptBankError(file, f"{label}: missing or non-string field {name!r}")
    kind = record["kind"]
    if kind not in PAIR_KINDS:
        raise PromptBankError(file, f"{label}: unknown pair kind {kind!r}; known kinds: {sorted(PAIR_KINDS)}")
    for slot, group in zip(("first", "second"), PAIR_KINDS[kind]):
        member = record[slot]
        if member not in prompts:
            raise PromptBankError(file, f"{label}: {slot} names unknown prompt id", member)
        if prompts[member].group != group:
            raise PromptBankError(
                file, f"{label}: {slot} must be in group {group!r}, is in {prompts[member].group!r}", member
            )
    counts = record.get("token_counts", {})
    if not isinstance(counts, dict) or not all(
        isinstance(m, str)
        and isinstance(c, list)
        and len(c) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in c)
        for m, c in counts.items()
    ):
        raise PromptBankError(file, f"{label}: 'token_counts' must map model name -> [first, second] positive ints")
    return PromptPair(
        id=record["id"],
        kind=kind,
        first=record["first"],
        second=record["second"],
        token_counts={m: (c[0], c[1]) for m, c in counts.items()},
    )


def _check_pairs_unique(located: Sequence[tuple[str, PromptPair]]) -> None:
    """Within one kind, a pair id and each prompt may occur once (no pseudo-replication)."""
    seen_ids: set[tuple[str, str]] = set()
    seen_members: dict[tuple[str, str], str] = {}
    for file, pair in located:
        if (pair.kind, pair.id) in seen_ids:
            raise PromptBankError(file, f"duplicate pair id {pair.id!r}")
        seen_ids.add((pair.kind, pair.id))
        for member in (pair.first, pair.second):
            if (pair.kind, member) in seen_members:
                raise PromptBankError(
                    file,
                    f"prompt is in two {pair.kind} pairs ({seen_members[(pair.kind, member)]!r} and {pair.id!r});"
                    " each prompt may be paired once",
                    member,
                )
            seen_members[(pair.kind, member)] = pair.id


# --------------------------------------------------------------------------------------------------
# Token-length checks and exact-length pairing


def content_token_count(text: str, tokenizer: Tokenizer) -> int:
    """Number of content tokens of ``text``: the tokenizer's ids without special tokens (no BOS/EOS)."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def check_min_tokens(bank: PromptBank, tokenizer: Tokenizer, window: int = 16) -> None:
    """Raise :class:`PromptBankError` for the first prompt with fewer than ``window + 1`` content tokens.

    The V window (DESIGN §4.1) takes the last ``window`` content tokens and needs one more before it;
    shorter prompts are rejected here, at load time, instead of failing mid-run.
    """
    for p in bank.prompts:
        n = content_token_count(p.text, tokenizer)
        if n < window + 1:
            raise PromptBankError(
                bank.origin(p.id), f"too short for the window: {n} content tokens < W + 1 = {window + 1}", p.id
            )


def equal_length_pairs(
    bank: PromptBank,
    tokenizer: Tokenizer,
    kind: str = "recursive_baseline",
    rematch: bool = False,
) -> list[PromptPair]:
    """Pairs of ``kind`` whose two prompts have exactly equal content-token counts under ``tokenizer``.

    First the recorded pairs that are exactly equal under this tokenizer (in id order). With
    ``rematch=True`` the prompts of the two groups that are in no such pair are then matched by exact
    token count (within each count, in id order: a maximum matching, since equal count is an
    equivalence); those pairs get ids ``auto:<first>~<second>`` and their counts under the key ``"live"``.
    Each prompt occurs at most once in the result.
    """
    counts = {p.id: content_token_count(p.text, tokenizer) for p in bank.prompts}
    exact = [p for p in bank.pairs(kind) if counts[p.first] == counts[p.second]]
    if not rematch:
        return exact
    used = {m for p in exact for m in (p.first, p.second)}
    group_first, group_second = PAIR_KINDS[kind]
    buckets: dict[int, list[str]] = defaultdict(list)
    for p in bank.group(group_second):
        if p.id not in used:
            buckets[counts[p.id]].append(p.id)
    extra = []
    for p in bank.group(group_first):
        if p.id in used or not buckets.get(counts[p.id]):
            continue
        partner = buckets[counts[p.id]].pop(0)
        n = counts[p.id]
        extra.append(
            PromptPair(id=f"auto:{p.id}~{partner}", kind=kind, first=p.id, second=partner, token_counts={"live": (n, n)})
        )
    return exact + extra
