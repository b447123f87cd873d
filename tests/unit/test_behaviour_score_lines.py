"""``python -m harness.behaviour score``'s input side: one record per input line, blank lines kept, line numbers as
an editor counts them (no model is loaded here; the scoring itself is tested in test_behaviour_classifier.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.behaviour.__main__ import InputError, read_texts, split_lines

PLAIN = st.text(st.characters(blacklist_characters="{\n\r"), max_size=30)
"""A plain-text line (no line break; no ``{``, which would make a first line read as JSON)."""
NO_BREAK = st.text(st.characters(blacklist_characters="\n\r"), max_size=10)


@given(st.lists(st.one_of(st.just(""), st.just("  \t"), PLAIN), min_size=1, max_size=20).filter(
    lambda lines: any(line.strip() for line in lines)))
def test_every_plain_line_gives_one_row_in_order(lines: list[str]) -> None:
    rows = read_texts(split_lines("".join(line + "\n" for line in lines)), "t")
    assert [r.line for r in rows] == list(range(1, len(lines) + 1))
    assert [r.text for r in rows] == [line if line.strip() else None for line in lines]


@given(st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=1, max_size=15).filter(
    lambda texts: any(t is not None for t in texts)))
def test_json_lines_keep_blank_lines_as_empty_rows(texts: list[str | None]) -> None:
    lines = ["" if t is None else json.dumps({"id": i, "text": t}) for i, t in enumerate(texts)]
    rows = read_texts(split_lines("".join(line + "\r\n" for line in lines)), "t")
    assert [r.text for r in rows] == texts
    assert [r.id for r in rows] == [None if t is None else i for i, t in enumerate(texts)]


@given(st.lists(NO_BREAK, max_size=10))
def test_split_lines_counts_line_feeds_only(lines: list[str]) -> None:
    assert split_lines("".join(line + "\n" for line in lines)) == lines
    if lines and lines[-1]:
        assert split_lines("\n".join(lines)) == lines  # no final line feed: the last line still counts


def test_a_form_feed_inside_a_text_does_not_start_a_new_line() -> None:
    assert split_lines("one\x0cstill one\u2028and still\ntwo\n") == ["one\x0cstill one\u2028and still", "two"]


def test_an_error_names_the_line_counted_with_blank_lines() -> None:
    with pytest.raises(InputError, match="t, line 3: not valid JSON"):
        read_texts(split_lines('{"text": "a"}\n\n{oops\n'), "t")
