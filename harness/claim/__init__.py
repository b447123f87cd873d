"""Claim layer: what a claim test receives, the steps it shares with other claims, and the verdict logic.

- :mod:`harness.claim.context`: :class:`~harness.claim.context.ClaimContext` and the run-wide settings;
- :mod:`harness.claim.steps`: prompt and pair selection per the registry, condition runs, transfer results;
- :mod:`harness.claim.verdicts`: the three-valued verdict and the decision-rule evaluation.
"""
