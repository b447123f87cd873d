"""The cross-model cache projector: :mod:`~harness.exchange.projector.model` (the projector),
:mod:`~harness.exchange.projector.texts` and :mod:`~harness.exchange.projector.text_builder` (its fixed text set),
:mod:`~harness.exchange.projector.training`, :mod:`~harness.exchange.projector.evaluation`,
:mod:`~harness.exchange.projector.claim` (what the claim asks for) and :mod:`~harness.exchange.projector.cli`
(``python -m harness.exchange.projector.cli``)."""
