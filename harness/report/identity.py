"""Which claim and which model a test report belongs to.

Contract for claim tests (see :mod:`harness.report`): a claim test carries ``@pytest.mark.claim("<id>")``
and is parametrized with the model name as the value (and id) of its ``lm`` parameter. At collection the
plugin copies both into ``item.user_properties`` as ``claim_id`` / ``claim_model``, so every phase report
(setup errors and skips included) names its claim and model on the controller, even under xdist.
For a worker that crashes before any report, the nodeid is parsed: the model from the ``[...]`` param id
and the claim from a test named ``test_<claim_id>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CLAIM_ID_PROPERTY = "claim_id"
CLAIM_MODEL_PROPERTY = "claim_model"
MODEL_PARAM_NAMES = ("lm", "model", "model_name")
NO_MODEL = "-"

_PARAM = re.compile(r"\[(?P<id>[^\]]*)\]$")


@dataclass(frozen=True)
class Identity:
    """The claim id and model name a report row belongs to."""

    claim: str
    model: str


def clean_nodeid(nodeid: str) -> str:
    """The nodeid without xdist's ``@<group>`` suffix (loadgroup adds it), so rows match across runs. The suffix
    starts at the first ``@`` after the parameter id: a group named by a revision (``hf:org/name@step1000``) holds
    an ``@`` of its own."""
    at = nodeid.find("@", nodeid.rfind("]") + 1)
    if at > nodeid.rfind("::") and at != -1:
        return nodeid[:at]
    return nodeid


def model_from_callspec(params: dict[str, Any], callspec_id: str | None) -> str:
    """The model name from a parametrized item's params (first string among MODEL_PARAM_NAMES)."""
    for name in MODEL_PARAM_NAMES:
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    return callspec_id or NO_MODEL


def from_properties(user_properties: Iterable[Any]) -> Identity | None:
    """The identity recorded at collection, or None for a non-claim test."""
    props = {name: value for name, value in user_properties}
    claim = props.get(CLAIM_ID_PROPERTY)
    if not claim:
        return None
    return Identity(str(claim), str(props.get(CLAIM_MODEL_PROPERTY) or NO_MODEL))


def from_nodeid(nodeid: str, known_claims: Iterable[str]) -> Identity | None:
    """Best-effort identity from a nodeid alone (used for crashed workers): ``test_<claim>[<model>]``."""
    base = clean_nodeid(nodeid)
    match = _PARAM.search(base)
    model = match.group("id") if match else NO_MODEL
    func = base[: match.start()] if match else base
    name = func.rsplit("::", 1)[-1]
    claim = name.removeprefix("test_")
    if claim in set(known_claims):
        return Identity(claim, model)
    return None
