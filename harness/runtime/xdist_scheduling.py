"""One model per pytest-xdist worker under ``--dist loadgroup``, whatever pytest does with node ids.

pytest-xdist groups ``xdist_group``-marked tests by appending ``@group`` to each node id on the workers
(``item._nodeid``). From pytest 9.2 a node id is derived from ``Node._id`` and that assignment is silently ignored, so
every test became its own work unit: both workers loaded both models and computed the same natural runs twice
(seen on pytest 9.2.0 + xdist 3.8.0). :class:`ModelGroupScheduling` keeps xdist's own grouping where the suffix
survives and otherwise reads the model from the node id's parameter part (``test_x[smollm2-135m]``), so each
model's tests form one work unit. xdist itself takes what follows the *last* ``@`` as the group, which would cut
``hf:org/name@step1000`` to ``step1000`` (and merge two models' checkpoints of one step); a suffix that is a whole
model name is taken whole. Tests without a model parameter stay units of their own (plain load balancing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xdist.scheduler import LoadGroupScheduling

__all__ = ["ModelGroupScheduling", "model_of_nodeid"]


def model_of_nodeid(nodeid: str, models: Sequence[str]) -> str | None:
    """The model of ``models`` that is a component of the node id's parameter id (``[a-b]`` → components joined
    by ``-``, model names may contain ``-`` themselves), or None; the longest name wins."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    params = nodeid[nodeid.rindex("[", 0, len(nodeid)) + 1 : -1]
    for name in sorted(models, key=len, reverse=True):
        if params == name or params.startswith(f"{name}-") or params.endswith(f"-{name}") or f"-{name}-" in params:
            return name
    return None


class ModelGroupScheduling(LoadGroupScheduling):
    """xdist's load-group scheduling whose groups are the models of ``--model`` (see the module docstring)."""

    def __init__(self, config: Any, log: Any, models: Sequence[str]) -> None:
        super().__init__(config, log)
        self.models = tuple(models)

    def _split_scope(self, nodeid: str) -> str:
        for name in sorted(self.models, key=len, reverse=True):
            if nodeid.endswith(f"]@{name}"):  # xdist's suffix; a model name may hold '@' itself (hf:org/name@rev)
                return name
        scope = super()._split_scope(nodeid)
        if scope != nodeid:  # xdist's own @group suffix reached the controller
            return scope
        return model_of_nodeid(nodeid, self.models) or nodeid
