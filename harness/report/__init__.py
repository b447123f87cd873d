"""The claims report: a pytest plugin (:mod:`harness.report.plugin`) and its writers.

Contract for claim tests
------------------------
- Mark the test ``@pytest.mark.claim("<claim id>")`` (an id of :data:`harness.registry.CLAIMS`;
  unknown ids stop collection with a usage error) and parametrize it with the model name as the value and
  id of its ``lm`` parameter (``model`` and ``model_name`` are accepted too). Name it ``test_<claim id>``
  so that even a worker crash before any report can be attributed.
- Build a :class:`harness.claim.verdicts.ClaimResult` with :func:`harness.claim.verdicts.evaluate`, call
  :func:`harness.claim.verdicts.record_claim` **before** asserting, then assert the verdict.
- One test per claim × model. Setup errors become ERROR rows, skips SKIPPED rows (with the reason),
  a test that fails or passes without recording becomes an ERROR row.

Outputs (controller only, written at session finish when at least one claim row exists, by
:func:`harness.report.build.write_report`), in ``--report-dir`` or by default
``reports/<UTC timestamp>-<short git sha>/``: ``claims.md`` (summary, verdict matrix, claim sections, engine checks),
``claims.tex``, ``claims.csv``, ``claims.json`` (``{"run": header, "records": [...]}``, records without their
samples), ``methods.md``, ``examples.md``, ``samples.jsonl`` and figures ``<kind>-<claim>.png`` (plus run figures
``<kind>.png``: ``training_dynamics.png`` when ``--model`` names a revision series,
:mod:`harness.report.training_dynamics`); a compact verdict
table is printed at the end of the terminal output. ``python -m harness.report rebuild RUN_DIR`` writes them all
again from claims.json and samples.jsonl without a model; ``python -m harness.report compare RUN_A RUN_B`` compares
two runs. A reused ``--report-dir`` is cleared of these
files (and only these) at start (:mod:`harness.report.files`), and all are written into a staging directory and
moved into place together, so no reader sees a half-written file. A report also says whether it is complete
(:mod:`harness.report.status`): ``run.status`` in claims.json, the header of claims.md and the terminal name the
exit status and an interruption (Ctrl-C) or stop (``-x``), and each selected claim test that never reported has a
NOT RUN row. Under xdist the selected tests are read from the workers' collected nodeids
(``test_<claim id>[<model>]``).

``details`` keys the report reads (all optional; numbers as floats, lists of equal length)
-------------------------------------------------------------------------------------------
- ``model_provenance``: ``{"source", "revision", "sha256", "dtype", "device", ...}`` → run header ``models``
  and ``device``; a checkpoint of a training run also carries ``"checkpoint": {"series", "label", "step"}``
  (:func:`harness.models.revisions.checkpoint_provenance`).
- ``prompt_bank_hash`` (or ``prompt_bank_sha256``): the bank's content hash → run header (or set
  ``config.stash[harness.report.provenance.PROMPT_BANK_HASH_KEY]`` on the controller).
- ``synthetic``: ``True`` for fabricated plumbing data → a banner on claims.md and ``run.synthetic``.
- ``examples``: ``{condition: [generated continuation, ...]}`` (e.g. baseline, recursive, patched,
  order-ablated) → examples.md, when the record has no ``samples``.
- ``samples``: ``{condition: [{"pair", "recipient", "donor", "sample", "text", "n_tokens", "stopped_at_eos",
  "empty", "degenerate", "score", "scores"}, ...]}`` → samples.jsonl (moved out of claims.json) and examples.md.
- ``conditions``: ``{condition: {"n_continuations", "empty_share", "condition": {...}, ...}}`` → examples.md.
- ``rv_by_group``: ``{group: [R_V per prompt, ...]}`` → ``rv_by_group-<claim>.png`` (panel per model).
- ``layer_sweep``: ``{"layers": [int], "depth_fraction": [float], "estimate": [...], "ci_low": [...],
  "ci_high": [...], "fixed_layer": int, "effect_label": str}`` → ``layer_sweep-<claim>.png``.
- ``alpha_curve``: ``{"alpha": [...], "estimate": [...], "ci_low": [...], "ci_high": [...],
  "effect_label": str}`` → ``alpha_dose_response-<claim>.png``.
- ``transfer_by_range``: ``{"labels": [str], "estimate": [...], "ci_low": [...], "ci_high": [...]}`` →
  ``transfer_by_layer_range-<claim>.png``.
- ``step_cis`` is filled by :func:`harness.claim.verdicts.evaluate` for trend rules with steps.
- ``contrast_cis`` (``{name: [low, high]}``) is filled by :func:`harness.claim.verdicts.evaluate` for ``contrasts_above``
  rules, and ``contrasts`` (``{name: {"condition", "estimate", "ci_low", "ci_high", "ci_level", ...}}``) by
  :func:`harness.claim.steps.transfer_result` → a contrasts table in the claim's section of claims.md.

Records carry volatile fields (``run.worker``, ``run.durations_s``) apart from the rest, so the same run
with ``-n 0`` and ``-n 2`` gives identical records once ``run`` is dropped.
"""
