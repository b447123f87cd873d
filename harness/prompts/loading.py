"""Prompt bank loading and validation: files, schema checks, recorded pairs, minimum lengths.

A bank is a set of :class:`~harness.prompts.bank.Prompt` records read from JSON or YAML files (one file or
a directory of them). The schema is documented in ``prompts/README.md``; in short, every prompt needs
``id``, ``group`` and ``text`` and may carry ``level`` (recursive prompts only, 1..5), ``pair`` (id of a
partner prompt), ``tags`` (list of strings) and ``system`` (a system prompt; required for the ``persona``
group). A file may also hold a ``pairs`` list: recorded prompt pairs with their per-model token counts.

Every problem is reported as a :class:`~harness.prompts.bank.PromptBankError` whose message names the file,
the prompt id (when there is one) and the problem.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from harness.prompts.bank import (
    GROUPS, LEVELS, PAIR_KINDS, PERSONA_TAG, Prompt, PromptBank, PromptBankError, PromptPair, Tokenizer,
    content_token_count,
)

_INSTALLED_BANK_DIR = Path(__file__).resolve().parent / "shipped"
DEFAULT_BANK_DIR: Path = (_INSTALLED_BANK_DIR if _INSTALLED_BANK_DIR.is_dir()
                          else Path(__file__).resolve().parents[2] / "prompts")
"""The bank shipped with the suite: ``prompts/`` at the repository root, which an installed kvclaims carries as
``harness/prompts/shipped/`` (pyproject.toml, ``[tool.setuptools] package-dir``)."""

_PROMPT_FIELDS = ("id", "group", "text", "level", "pair", "tags", "system")
_REQUIRED_FIELDS = ("id", "group", "text")
_PAIR_FIELDS = ("id", "kind", "first", "second", "token_counts")
_TOP_LEVEL_KEYS = ("prompts", "pairs", "description")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_SUFFIXES = (".json", ".yaml", ".yml")




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
    if group == "persona" and (system is None or sum(t.startswith(PERSONA_TAG) for t in tags) != 1):
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
    """All prompts of one persona and wording share one system prompt; different wordings of a persona differ."""
    systems: dict[tuple[str, str], tuple[str, str]] = {}
    for p in prompts.values():
        if p.group != "persona":
            continue
        key = (p.persona or "", p.wording)
        if key in systems and systems[key][0] != p.system:
            where = f"persona {key[0]!r}" + (f" wording {key[1]!r}" if key[1] else "")
            raise PromptBankError(
                origins[p.id], f"{where} has a different system prompt than {systems[key][1]!r}", p.id
            )
        systems.setdefault(key, (p.system or "", p.id))
    for (name, wording), (system, pid) in systems.items():
        for (other_name, other_wording), (other_system, other_id) in systems.items():
            if name == other_name and wording < other_wording and system == other_system:
                raise PromptBankError(
                    origins[other_id], f"persona {name!r}: wordings {wording!r} and {other_wording!r} have the "
                    f"same system prompt (as {pid!r}); a wording must be a different paraphrase", other_id
                )


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


def check_max_tokens(bank: PromptBank, tokenizer: Tokenizer, max_tokens: int | None, model: str) -> None:
    """Raise :class:`PromptBankError` for the first prompt longer than the model's context.

    The length counted is what the model is fed: the tokenizer's ids *with* its special tokens (BOS). A prompt
    past ``max_tokens`` (the config's ``max_position_embeddings``) would be run at positions the model never
    saw, so it is rejected when the bank is handed to a claim, not silently measured. ``None`` (a config without
    a context length) checks nothing.
    """
    if max_tokens is None:
        return
    for p in bank.prompts:
        n = len(tokenizer(p.text, add_special_tokens=True)["input_ids"])
        if n > max_tokens:
            raise PromptBankError(
                bank.origin(p.id),
                f"{n} tokens exceed the context of {model} (max_position_embeddings = {max_tokens}); "
                "shorten the prompt or use a model with a longer context",
                p.id,
            )
