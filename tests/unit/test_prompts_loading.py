"""Prompt bank schema, loading, validation errors and content hash (no tokenizer needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.prompts import (
    DEFAULT_BANK_DIR,
    GROUPS,
    Prompt,
    PromptBank,
    PromptBankError,
    PromptPair,
    equal_length_pairs,
    load_bank,
)

BANKS = Path(__file__).resolve().parents[1] / "data" / "banks"


@pytest.fixture(scope="module")
def bank() -> PromptBank:
    return load_bank()


def test_default_bank_loads_with_required_groups(bank: PromptBank) -> None:
    assert {"recursive", "baseline"} <= bank.groups <= GROUPS
    assert len(bank.group("recursive")) >= 20
    assert len(bank.group("baseline")) >= 20
    assert all(p.level in (1, 2, 3, 4, 5) for p in bank.group("recursive"))
    assert str(DEFAULT_BANK_DIR) in bank.source[0]


def test_default_bank_has_the_planned_group_sizes(bank: PromptBank) -> None:
    levels = {lvl: len(bank.group("recursive", level=lvl)) for lvl in (1, 2, 3, 4, 5)}
    assert levels[1] >= 12 and levels[2] >= 12 and min(levels[3], levels[4], levels[5]) >= 20, levels
    sizes = {g: len(bank.group(g)) for g in GROUPS}
    assert sizes["baseline"] >= 60
    assert min(sizes["long_control"], sizes["repetitive"], sizes["about_recursion"]) >= 20, sizes
    assert min(sizes["grounded"], sizes["confabulation"]) >= 20, sizes
    assert bank.groups == GROUPS


def test_default_pairs_cover_each_prompt_once(bank: PromptBank) -> None:
    pairs = bank.pairs("recursive_baseline")
    assert sorted(p.first for p in pairs) == sorted(p.id for p in bank.group("recursive"))
    assert sorted(p.second for p in pairs) == sorted(p.id for p in bank.group("baseline"))
    confab = bank.pairs("grounded_confabulation")
    assert len(confab) == len(bank.group("confabulation")) >= 20


def test_group_is_sorted_by_id_and_filters_level(bank: PromptBank) -> None:
    recursive = bank.group("recursive")
    assert [p.id for p in recursive] == sorted(p.id for p in recursive)
    level5 = bank.group("recursive", level=5)
    assert level5 and all(p.level == 5 for p in level5)


def test_unknown_group_name_in_api_is_an_error(bank: PromptBank) -> None:
    with pytest.raises(ValueError, match="unknown prompt group 'recursve'"):
        bank.group("recursve")


def test_get_returns_prompt_and_names_missing_id(bank: PromptBank) -> None:
    first = bank.prompts[0]
    assert bank.get(first.id) is first
    with pytest.raises(KeyError, match="no-such-id"):
        bank.get("no-such-id")


def test_content_hash_is_stable_and_sensitive_to_text(bank: PromptBank) -> None:
    assert len(bank.content_hash) == 64
    assert load_bank().content_hash == bank.content_hash
    changed = [p if i else Prompt(p.id, p.group, p.text + " Extra.", p.level) for i, p in enumerate(bank.prompts)]
    assert PromptBank(changed).content_hash != PromptBank(bank.prompts).content_hash


def test_content_hash_ignores_file_layout(tmp_path: Path) -> None:
    records = [
        {"id": "b1", "group": "baseline", "text": "Explain how a refrigerator keeps food cold."},
        {"id": "r1", "group": "recursive", "text": "Observe the observer observing this sentence."},
    ]
    (tmp_path / "one.json").write_text(json.dumps(records))
    split = tmp_path / "split"
    split.mkdir()
    (split / "a.json").write_text(json.dumps(records[1:]))
    (split / "b.yaml").write_text(json.dumps(records[:1]))  # JSON is valid YAML
    assert load_bank(tmp_path / "one.json").content_hash == load_bank(split).content_hash


def test_minimal_user_file_needs_only_id_group_text() -> None:
    bank = load_bank(BANKS / "minimal.json")
    assert bank.groups == {"recursive", "baseline"}
    r1 = bank.get("r1")
    assert (r1.level, r1.pair, r1.tags, r1.system) == (None, None, (), None)
    assert bank.source == (str(BANKS / "minimal.json"),)


def test_yaml_text_whitespace_is_stripped(tmp_path: Path) -> None:
    f = tmp_path / "b.yaml"
    f.write_text("- id: b1\n  group: baseline\n  text: |\n    Explain how tides work.\n")
    assert load_bank(f).get("b1").text == "Explain how tides work."


@pytest.mark.parametrize(
    ("name", "prompt_id", "problem"),
    [
        ("duplicate_id.yaml", "p1", "duplicate id"),
        ("unknown_group.yaml", "p1", "unknown group 'baselin'"),
        ("empty_text.json", "p1", "empty text"),
        ("missing_text.yaml", "p1", "missing field 'text'"),
        ("missing_group.json", "p7", "missing field 'group'"),
        ("missing_id.yaml", None, "missing field 'id'"),
        ("bad_level.yaml", "r1", "bad level 7"),
        ("level_string.yaml", "r1", "bad level '3'"),
        ("level_on_baseline.yaml", "b1", "bad level 2"),
        ("unparseable.json", None, "unparseable file"),
        ("unparseable.yaml", None, "unparseable file"),
        ("unknown_field.yaml", "p1", "unknown field(s) ['lvl']"),
        ("persona_without_system.yaml", "u1", "needs a 'system' prompt"),
        ("pair_unknown.yaml", "r1", "unknown prompt id 'b9'"),
    ],
)
def test_malformed_bank_error_names_file_id_and_problem(name: str, prompt_id: str | None, problem: str) -> None:
    path = BANKS / name
    with pytest.raises(PromptBankError) as info:
        load_bank(path)
    err = info.value
    message = str(err)
    assert str(path) in message and err.file == str(path)
    assert problem in message
    assert err.prompt_id == prompt_id
    if prompt_id is not None:
        assert f"prompt {prompt_id!r}" in message


def test_duplicate_id_across_files_names_both_files() -> None:
    with pytest.raises(PromptBankError) as info:
        load_bank(BANKS / "dup_across")
    message = str(info.value)
    assert "duplicate id" in message and "'shared'" in message
    assert "a.yaml" in message and "b.json" in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"prompt": []}', "unknown top-level key(s) ['prompt']"),
        ('"just a string"', "top level must be a list"),
        ('{"prompts": {"id": "x"}}', "'prompts' must be a list"),
        ('["not a mapping"]', "each prompt must be a mapping"),
        ('[{"id": "has space", "group": "baseline", "text": "Some text."}]', "bad id 'has space'"),
        ('[{"id": "x", "group": "baseline", "text": 42}]', "'text' must be a string"),
        ('[{"id": "x", "group": "baseline", "text": "Some text.", "tags": "a"}]', "'tags' must be a list"),
        ('[{"id": "x", "group": "recursive", "level": true, "text": "Some text."}]', "bad level True"),
        ('[]', "the bank contains no prompts"),
    ],
)
def test_structural_errors(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bank.json"
    path.write_text(content)
    with pytest.raises(PromptBankError, match="bank.json") as info:
        load_bank(path)
    assert problem in str(info.value)


def test_missing_path_and_wrong_suffix_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(PromptBankError, match="no such file"):
        load_bank(tmp_path / "nope.yaml")
    txt = tmp_path / "bank.txt"
    txt.write_text("x")
    with pytest.raises(PromptBankError, match="unsupported file type '.txt'"):
        load_bank(txt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PromptBankError, match="directory has no prompt files"):
        load_bank(empty)


def _pair_bank(tmp_path: Path, pairs: list[dict], extra: list[dict] | None = None) -> Path:
    prompts = [
        {"id": "r1", "group": "recursive", "text": "Observe the observer observing this sentence."},
        {"id": "r2", "group": "recursive", "text": "Notice the noticing that is noticing this."},
        {"id": "b1", "group": "baseline", "text": "Explain how a refrigerator keeps food cold."},
        {"id": "b2", "group": "baseline", "text": "Describe how a river forms a large delta."},
    ] + (extra or [])
    path = tmp_path / "bank.json"
    path.write_text(json.dumps({"prompts": prompts, "pairs": pairs}))
    return path


def test_pairs_section_is_parsed_with_counts(tmp_path: Path) -> None:
    pair = {"id": "p1", "kind": "recursive_baseline", "first": "r1", "second": "b1", "token_counts": {"m": [9, 9]}}
    bank = load_bank(_pair_bank(tmp_path, [pair]))
    (got,) = bank.pairs("recursive_baseline")
    assert (got.first, got.second, got.counts("m"), got.counts("other")) == ("r1", "b1", (9, 9), None)


def test_inline_pair_field_creates_a_pair(tmp_path: Path) -> None:
    extra = [
        {"id": "r3", "group": "recursive", "pair": "b3", "text": "Watch the watcher."},
        {"id": "b3", "group": "baseline", "text": "Describe how bees dance."},
    ]
    bank = load_bank(_pair_bank(tmp_path, [], extra))
    assert [(p.first, p.second) for p in bank.pairs()] == [("r3", "b3")]


@pytest.mark.parametrize(
    ("pairs", "problem", "prompt_id"),
    [
        (
            [{"id": "p1", "kind": "recursive_baseline", "first": "b1", "second": "r1"}],
            "first must be in group 'recursive'",
            "b1",
        ),
        ([{"id": "p1", "kind": "recursive_baseline", "first": "r1", "second": "zz"}], "unknown prompt id", "zz"),
        ([{"id": "p1", "kind": "swap", "first": "r1", "second": "b1"}], "unknown pair kind 'swap'", None),
        (
            [
                {"id": "p1", "kind": "recursive_baseline", "first": "r1", "second": "b1"},
                {"id": "p2", "kind": "recursive_baseline", "first": "r1", "second": "b2"},
            ],
            "is in two recursive_baseline pairs",
            "r1",
        ),
        (
            [{"id": "p1", "kind": "recursive_baseline", "first": "r1", "second": "b1", "token_counts": {"m": [0, 3]}}],
            "'token_counts' must map",
            None,
        ),
    ],
)
def test_bad_pairs(tmp_path: Path, pairs: list[dict], problem: str, prompt_id: str | None) -> None:
    with pytest.raises(PromptBankError) as info:
        load_bank(_pair_bank(tmp_path, pairs))
    assert problem in str(info.value)
    assert info.value.prompt_id == prompt_id


class WordTokenizer:
    """A whitespace tokenizer standing in for a Hugging Face tokenizer."""

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [hash(w) % 1000 for w in text.split()]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


def test_equal_length_pairs_keeps_exact_pairs_and_rematches(tmp_path: Path) -> None:
    pairs = [
        {"id": "p1", "kind": "recursive_baseline", "first": "r1", "second": "b1"},  # 6 vs 7 words
        {"id": "p2", "kind": "recursive_baseline", "first": "r2", "second": "b2"},  # 7 vs 8 words
    ]
    extra = [{"id": "b3", "group": "baseline", "text": "One two three four five six."}]
    bank = load_bank(_pair_bank(tmp_path, pairs, extra))
    tok = WordTokenizer()
    assert equal_length_pairs(bank, tok) == []
    rematched = equal_length_pairs(bank, tok, rematch=True)
    assert [(p.first, p.second) for p in rematched] == [("r1", "b3"), ("r2", "b1")]
    assert rematched[0].counts("live") == (6, 6)


def test_prompt_pair_equality_ignores_counts() -> None:
    a = PromptPair("p", "recursive_baseline", "r", "b", {"m": (3, 3)})
    assert a == PromptPair("p", "recursive_baseline", "r", "b")


def test_pair_errors_name_the_pairs_file(tmp_path: Path) -> None:
    prompts = [
        {"id": "r1", "group": "recursive", "text": "Observe the observer observing this sentence."},
        {"id": "b1", "group": "baseline", "text": "Explain how a refrigerator keeps food cold."},
    ]
    (tmp_path / "a_prompts.json").write_text(json.dumps(prompts))
    pair = {"id": "p1", "kind": "recursive_baseline", "first": "r1", "second": "b1"}
    (tmp_path / "pairs.json").write_text(json.dumps({"pairs": [pair, pair]}))
    with pytest.raises(PromptBankError) as info:
        load_bank(tmp_path)
    assert info.value.file == str(tmp_path / "pairs.json")
    assert "duplicate pair id 'p1'" in str(info.value)


def test_bank_built_in_memory_rejects_duplicate_ids() -> None:
    p = Prompt("x", "baseline", "Explain how tides work.")
    with pytest.raises(PromptBankError, match=r"duplicate id\(s\) \['x'\]"):
        PromptBank([p, p])


def _persona(pid: str, persona: str, wording: str | None, system: str) -> dict:
    tags = [f"persona:{persona}"] + ([f"wording:{wording}"] if wording else [])
    return {"id": pid, "group": "persona", "tags": tags, "system": system, "text": "How do tides work?"}


def test_persona_wordings_each_have_one_system_prompt(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps([_persona("a1", "x", "w1", "S1"), _persona("a2", "x", "w2", "S2"),
                                _persona("a3", "x", None, "S3")]))
    bank = load_bank(path)
    assert [p.wording for p in bank.group("persona")] == ["w1", "w2", ""]
    path.write_text(json.dumps([_persona("a1", "x", "w1", "S1"), _persona("a2", "x", "w1", "S2")]))
    with pytest.raises(PromptBankError, match="persona 'x' wording 'w1' has a different system prompt"):
        load_bank(path)
    path.write_text(json.dumps([_persona("a1", "x", "w1", "S1"), _persona("a2", "x", "w2", "S1")]))
    with pytest.raises(PromptBankError, match="wordings 'w1' and 'w2' have the same system prompt"):
        load_bank(path)


def test_shipped_personas_have_three_wordings_of_ten_users(bank: PromptBank) -> None:
    for users in bank.personas().values():
        wordings = {p.wording for p in users}
        assert wordings == {"w1", "w2", "w3"}
        assert all(len({p.system for p in users if p.wording == w}) == 1 for w in wordings)
        assert all(sum(p.wording == w for p in users) == 10 for w in wordings)
