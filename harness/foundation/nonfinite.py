"""The error of a computation whose numbers stopped being finite (NaN or ±inf), shared by the layer that raises it
(the decode loop, :class:`harness.engine.generation.NonFiniteLogitsError`) and the one that reports it (a claim
whose condition ran into it is INCONCLUSIVE by data, never decoded from NaN: :mod:`harness.report.rows`)."""

from __future__ import annotations

__all__ = ["NonFiniteError"]


class NonFiniteError(ArithmeticError):
    """Numbers a measurement needs are not finite; the message is one line naming model, condition and step."""
