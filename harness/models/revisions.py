"""Revision series: checkpoints of one training run named together with ``--model``, read as training dynamics.

How a series is recognised (from the ``--model`` names alone, no file is read):

- ``hf:ORG/NAME@REV``: two or more names with the same ``ORG/NAME`` and different revisions form the series
  ``hf:ORG/NAME`` (``--model hf:EleutherAI/pythia-160m@step1000,hf:EleutherAI/pythia-160m@step8000``);
- ``path:DIR``: two or more directories with the same parent whose own name holds a training step form the series
  ``path:PARENT`` (``--model path:/ckpts/step1000,path:/ckpts/step8000``). A directory name without a step is a
  model of its own, never a series member: two unrelated models kept in one folder are not a training run.

Every other name (a registry name, a single revision, a lone checkpoint) is a model of its own. Each checkpoint
stays its own model: its ``--model`` name is the report row's key and its own xdist group.

Training step: the number in ``step<N>`` (also ``step-N``, ``step_N``, and HF Trainer's ``checkpoint-N``) in the
revision or directory name, the last one when several occur; a series none of whose members names a step (e.g.
``@main`` and ``@v2``) is ordered as given and numbered 1, 2, … (``step_source`` ``order``).

Malformed input is one line (:class:`~harness.models.errors.ModelReferenceError`): an ``hf:`` reference with an
empty or invalid revision, a series whose members mix named steps and none, two members with the same step.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.models.errors import ModelReferenceError

HF_REFERENCE = re.compile(r"^hf:(?P<id>[\w.\-]+/[\w.\-]+)(?:@(?P<rev>[\w.\-/]+))?$")
"""``hf:<org/name>[@revision]``: a Hub id and an optional branch, tag, commit or checkpoint revision."""
STEP_IN_NAME = re.compile(r"(?:step|checkpoint)[-_]?(?P<step>\d+)", re.IGNORECASE)
"""A training step written in a revision or directory name: ``step1000``, ``global_step-20``, ``checkpoint-500``."""

StepSource = Literal["name", "order"]


@dataclass(frozen=True)
class Checkpoint:
    """One ``--model`` name read as a checkpoint of a training run.

    Attributes:
        model: the ``--model`` name (the report row's model key).
        series: the run it belongs to if it is part of a series: ``hf:ORG/NAME`` or ``path:PARENT``.
        label: the revision or directory name (``step1000``, ``main``).
        step: the training step written in ``label`` (optimizer steps), or None when it names none.
    """

    model: str
    series: str
    label: str
    step: int | None


@dataclass(frozen=True)
class SeriesMember:
    """A checkpoint placed in its series: ``step`` is the training step, or its 1-based position in the order given
    when the series names no steps (see :attr:`RevisionSeries.step_source`)."""

    model: str
    label: str
    step: int


@dataclass(frozen=True)
class RevisionSeries:
    """Two or more checkpoints of one run, ordered by step.

    Attributes:
        name: ``hf:ORG/NAME`` or ``path:PARENT``.
        members: the checkpoints by increasing step.
        step_source: ``name`` (steps read from the names) or ``order`` (positions 1, 2, … in the order given).
    """

    name: str
    members: tuple[SeriesMember, ...]
    step_source: StepSource

    @property
    def models(self) -> tuple[str, ...]:
        """The members' ``--model`` names by increasing step."""
        return tuple(m.model for m in self.members)


def parse_hf_reference(name: str) -> tuple[str, str | None] | None:
    """``(hub id, revision or None)`` of an ``hf:`` reference; None for a name that does not start with ``hf:``.

    Raises:
        ModelReferenceError: an ``hf:`` name with a malformed id or an empty or invalid revision.
    """
    if not name.startswith("hf:"):
        return None
    match = HF_REFERENCE.match(name)
    if match:
        return match["id"], match["rev"]
    if name.endswith("@"):
        raise ModelReferenceError(f"model {name!r}: empty revision after '@' (write hf:<org/name>@<revision>, e.g. "
                                  "hf:EleutherAI/pythia-160m@step1000, or leave '@' out for the default branch)")
    raise ModelReferenceError(f"model {name!r} is not hf:<org/name>[@revision] (one '/', one optional '@'; letters, "
                              "digits, '.', '-', '_' and '/' in the revision)")


def step_in_name(label: str) -> int | None:
    """The training step written in a revision or directory name (the last ``step<N>``/``checkpoint-N``), or None."""
    found = STEP_IN_NAME.findall(label)
    return int(found[-1]) if found else None


def checkpoint_of(name: str) -> Checkpoint | None:
    """``name`` read as a possible series member: an ``hf:`` reference with a revision, or a ``path:`` directory
    whose name holds a step; None for anything else.

    Raises:
        ModelReferenceError: a malformed ``hf:`` reference (see :func:`parse_hf_reference`).
    """
    hf = parse_hf_reference(name)
    if hf is not None:
        hub_id, revision = hf
        if revision is None:
            return None
        return Checkpoint(name, f"hf:{hub_id}", revision, step_in_name(revision))
    if name.startswith("path:") and len(name) > len("path:"):
        directory = posixpath.normpath(name[len("path:"):])
        parent, label = posixpath.split(directory)
        step = step_in_name(label)
        if step is None:
            return None
        return Checkpoint(name, f"path:{parent}", label, step)
    return None


def find_series(names: Sequence[str]) -> tuple[list[RevisionSeries], list[str]]:
    """The revision series among ``names`` (in the order given) and a one-line problem per malformed series.

    A series with a problem is left out of the first list. ``hf:`` names are expected to be well formed (a
    malformed one raises, see :func:`parse_hf_reference`).
    """
    groups: dict[str, list[Checkpoint]] = {}
    for name in dict.fromkeys(names):
        point = checkpoint_of(name)
        if point is not None:
            groups.setdefault(point.series, []).append(point)
    found: list[RevisionSeries] = []
    problems: list[str] = []
    for series_name, points in groups.items():
        if len(points) < 2:
            continue
        series, problem = _place(series_name, points)
        if series is not None:
            found.append(series)
        else:
            problems.append(problem)
    return found, problems


def _place(series_name: str, points: list[Checkpoint]) -> tuple[RevisionSeries | None, str]:
    named = [p for p in points if p.step is not None]
    if not named:
        members = tuple(SeriesMember(p.model, p.label, i) for i, p in enumerate(points, start=1))
        return RevisionSeries(series_name, members, "order"), ""
    if len(named) != len(points):
        without = ", ".join(p.label for p in points if p.step is None)
        return None, (f"revision series {series_name}: {without} names no training step while "
                      f"{named[0].label} does; name every revision by its step (stepN) or none of them")
    seen: dict[int, str] = {}
    for p in named:
        assert p.step is not None
        if p.step in seen:
            return None, (f"revision series {series_name}: {seen[p.step]} and {p.label} both read as training step "
                          f"{p.step}; give each checkpoint its own step")
        seen[p.step] = p.label
    members = tuple(sorted((SeriesMember(p.model, p.label, p.step) for p in named if p.step is not None),
                           key=lambda m: m.step))
    return RevisionSeries(series_name, members, "name"), ""


def check_series(names: Sequence[str]) -> list[RevisionSeries]:
    """The revision series among ``names``; a malformed one stops the run before anything loads.

    Raises:
        ModelReferenceError: the first problem :func:`find_series` reports, or a malformed ``hf:`` name.
    """
    found, problems = find_series(names)
    if problems:
        raise ModelReferenceError(problems[0])
    return found


def checkpoint_provenance(name: str) -> dict[str, Any]:
    """``{"checkpoint": {"series", "label", "step"}}`` for a name that reads as a checkpoint (its revision or
    directory and the training step it names, None if none), else ``{}``: what a report row needs to name its
    revision. Never raises (a malformed name was refused before anything loaded)."""
    try:
        point = checkpoint_of(name)
    except ModelReferenceError:
        return {}
    if point is None:
        return {}
    return {"checkpoint": {"series": point.series, "label": point.label, "step": point.step}}
