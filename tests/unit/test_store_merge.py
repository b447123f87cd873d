"""harness.store.merge: the measurement stores of several machines into one, every entry verified, identical
duplicates kept once, a conflict or a corrupt entry refused in one line before anything is written, a second merge
changing nothing, and ``python -m harness.store merge`` exiting 2 with one ``error:`` line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.runtime.measurement_store import MeasurementStore
from harness.store.__main__ import main
from harness.store.merge import MergeError, merge_stores

REPO = Path(__file__).resolve().parents[2]

Unit = tuple[str, dict[str, Any], Any]
"""One measurement: kind, the parts of its key and its value."""

SHARD_A: list[Unit] = [("transfer_outcome", {"pair": i}, {"tokens": [i, i + 1], "text": f"a{i}"}) for i in range(3)]
SHARD_B: list[Unit] = [("transfer_outcome", {"pair": 2}, {"tokens": [2, 3], "text": "a2"}),  # also computed by A
                       ("donor_cache_pr", {"prompt": "p1"}, 0.75)]
SHARD_C: list[Unit] = [("first_step_kl", {"pair": i}, [0.5 * i, None]) for i in range(2)]


def _fill(root: Path, units: list[Unit]) -> Path:
    """A store at ``root`` filled through the store itself (so its lock files lie beside the entries), plus the
    other things a store folder may hold: a temporary file, an entry moved aside into ``corrupt/`` and a JSON file
    whose name is not a key."""
    store = MeasurementStore(root=root, mode="readwrite")
    for kind, parts, value in units:
        assert store.get_or_compute(kind, parts, lambda v=value: v) == value
    kind_dir = next(p for p in root.iterdir() if p.is_dir())
    (kind_dir / "tmp1234.tmp").write_text('{"half')
    (kind_dir / "notes.json").write_text("{}")
    (kind_dir / "corrupt").mkdir(exist_ok=True)
    (kind_dir / "corrupt" / f"{'0' * 64}.20240101T000000Z.json").write_text("")
    return root


def _entry_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*.json") if p.name != "notes.json")


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and mtime (an entry rewritten with the same bytes shows too)."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_three_stores_merge_into_one_store_that_reads_every_value(tmp_path: Path) -> None:
    a, b, c = _fill(tmp_path / "a", SHARD_A), _fill(tmp_path / "b", SHARD_B), _fill(tmp_path / "c", SHARD_C)
    dst = tmp_path / "merged"
    summary = merge_stores([a, b, c], dst)
    assert (summary.entries, summary.stores, summary.copied, summary.present, summary.shared) == (6, 3, 6, 0, 1)
    assert summary.line() == (f"merged 6 entries from 3 stores into {dst}: 6 copied, 0 already present "
                              "(1 held by more than one source)")
    merged = MeasurementStore(root=dst, mode="read")
    for kind, parts, value in SHARD_A + SHARD_B + SHARD_C:
        missing = f"{kind} {parts} is not in the merged store"
        assert merged.get_or_compute(kind, parts, lambda m=missing: pytest.fail(m)) == value
    copied = {p.relative_to(dst): p.read_bytes() for p in _entry_files(dst)}
    sources = {p.relative_to(root): p.read_bytes() for root in (a, b, c) for p in _entry_files(root)}
    assert copied == sources  # byte for byte, each kind/key once
    leftovers = [p for p in dst.rglob("*") if p.is_file() and p.suffix not in (".json", ".lock")]
    assert not leftovers and not list(dst.glob("*/corrupt")) and not list(dst.glob("*/notes.json")), \
        "only entries are merged: no temporary, corrupt or other files"


def test_identical_duplicates_in_two_stores_are_kept_once(tmp_path: Path) -> None:
    same = [("transfer_outcome", {"pair": 7}, {"text": "same"})]
    a, b = _fill(tmp_path / "a", same), _fill(tmp_path / "b", same)
    summary = merge_stores([a, b], tmp_path / "dst")
    assert (summary.entries, summary.copied, summary.shared) == (1, 1, 1)
    assert len(_entry_files(tmp_path / "dst")) == 1


def test_a_conflict_between_sources_is_refused_in_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    a = _fill(tmp_path / "a", SHARD_A)
    b = _fill(tmp_path / "b", [("transfer_outcome", {"pair": 1}, {"tokens": [9], "text": "other"})])
    dst = _fill(tmp_path / "dst", SHARD_C)  # an existing store: it must stay exactly as it is
    before = _tree(dst)
    with pytest.raises(MergeError) as refused:
        merge_stores([a, b], dst)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("conflicting entry transfer_outcome/") and f"{a} and {b} hold different values" in message
    assert message.endswith("nothing merged")
    assert _tree(dst) == before


def test_a_conflict_with_the_destination_names_it_and_leaves_it_untouched(tmp_path: Path) -> None:
    a = _fill(tmp_path / "a", SHARD_A)
    dst = _fill(tmp_path / "dst", [("transfer_outcome", {"pair": 0}, {"tokens": [0, 1], "text": "rewritten"})])
    before = _tree(dst)
    with pytest.raises(MergeError, match=f"{a} and {dst} hold different values"):
        merge_stores([a], dst)
    assert _tree(dst) == before


def test_a_corrupt_source_entry_refuses_the_whole_merge(tmp_path: Path) -> None:
    a, b = _fill(tmp_path / "a", SHARD_A), _fill(tmp_path / "b", SHARD_B)
    broken = _entry_files(b)[0]
    broken.write_bytes(broken.read_bytes()[:20])  # truncated, as by a crash mid-write
    dst = tmp_path / "dst"
    with pytest.raises(MergeError) as refused:
        merge_stores([a, b], dst)
    assert str(refused.value).startswith(f"corrupt entry {broken}: not JSON")
    assert "\n" not in str(refused.value)
    assert not dst.exists(), "the entries of the sound store a must not have been copied either"


def test_a_second_merge_copies_nothing_and_changes_nothing(tmp_path: Path) -> None:
    sources = [_fill(tmp_path / "a", SHARD_A), _fill(tmp_path / "b", SHARD_B)]
    dst = tmp_path / "dst"
    first = merge_stores(sources, dst)
    assert (first.copied, first.present) == (4, 0)
    before = _tree(dst)
    again = merge_stores(sources, dst)
    assert (again.entries, again.copied, again.present) == (4, 0, 4)
    assert _tree(dst) == before


def test_a_missing_or_empty_source_or_the_destination_as_a_source_exits_2_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _fill(tmp_path / "a", SHARD_A)
    (tmp_path / "empty" / "measurements").mkdir(parents=True)
    cases = {
        "missing": ([str(a), str(tmp_path / "typo")], tmp_path / "dst", f"error: {tmp_path / 'typo'} does not exist"),
        "empty": ([str(tmp_path / "empty")], tmp_path / "dst",
                  f"error: {tmp_path / 'empty'} holds no measurement store entries"),
        "dst is a source": ([str(a)], a, f"error: the destination {a} is also a source"),
    }
    for name, (sources, dst, expected) in cases.items():
        before = _tree(tmp_path / "dst")
        assert main(["merge", *sources, "--into", str(dst)]) == 2, name
        out, err = capsys.readouterr()
        assert err.startswith(expected) and err.count("\n") == 1 and not out, (name, err)
        assert _tree(tmp_path / "dst") == before == {}, name
    main(["merge", str(tmp_path / "empty"), "--into", str(tmp_path / "dst")])  # a cache root given for its store
    assert f"did you mean {tmp_path / 'empty' / 'measurements'}?" in capsys.readouterr().err


def test_the_command_line_exits_0_then_2_on_a_conflict_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    a = _fill(tmp_path / "a", SHARD_A)
    b = _fill(tmp_path / "b", [("transfer_outcome", {"pair": 1}, {"tokens": [9], "text": "other"})])
    dst = tmp_path / "dst"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

    def cli(*args: Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "harness.store", "merge", *map(str, args[:-1]), "--into", str(args[-1])]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
                              check=False)

    done = cli(a, dst)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"merged 3 entries from 1 stores into {dst}: 3 copied, 0 already present\n"
    refused = cli(a, b, dst)
    assert refused.returncode == 2 and not refused.stdout
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: conflicting entry transfer_outcome/")
    assert f"{a} and {b} hold different values (sha256 " in refused.stderr
