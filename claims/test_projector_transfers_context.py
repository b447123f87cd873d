"""Cross-model cache exchange: does another model's cache, projected into the receiver, carry the context?

Method (issue 14, item 3; details in :mod:`harness.exchange.projector.model`): the model under test is the *receiver*, the
other embedded model the *sharer* (gemma3-270m → smollm2-135m, smollm2-135m → gemma3-270m; any other model: SKIPPED).
A per-receiver-layer gated linear projector maps the sharer's un-rotated keys and values of a context, aligned to
the receiver's tokens by character spans, to the receiver's keys (re-rotated at the receiver's positions) and
values. It is trained with the receiver's next-token loss on the continuation of 200 fixed training texts, both
models frozen (:mod:`harness.exchange.projector.training`), and stored on disk. A second projector is trained the
same way on mismatched (context, continuation) pairs. On the held-out texts, the receiver's continuation loss
(nats/token) is measured with no context, its own context cache, the projected cache, and three baselines: the
projector fed another held-out text's sharer cache, or norm-matched random sharer K/V, and the mismatched-pairs
projector (:mod:`harness.exchange.projector.evaluation`). The estimate is mean(L_none − L_projected) with a BCa CI
over texts; each baseline enters as a contrast L_baseline − L_projected.

``--projector cached`` (CI's claims job) never trains: without a stored projector the claim is INCONCLUSIVE and
names the command that trains it.
"""

from __future__ import annotations

import math
import time

import pytest

from harness.claim.context import ClaimContext
from harness.claim.steps import planned_count, run_details
from harness.exchange.projector.claim import PROJECTOR_SETTINGS, SHARER_OF, projectors_for, train_command
from harness.exchange.projector.evaluation import heldout_losses, summarize_losses
from harness.exchange.projector.texts import load_text_set
from harness.exchange.projector.training import any_projector_stored
from harness.models import ModelUnavailableError, load_model
from harness.registry.exchange_claims import PROJECTOR_BASELINES
from harness.runtime.measurement_store import code_fingerprint


@pytest.mark.claim("projector_transfers_context")
def test_projector_transfers_context(claim: ClaimContext, pytestconfig: pytest.Config) -> None:
    receiver = claim.lm
    sharer_name = SHARER_OF.get(receiver.name)
    if sharer_name is None:
        pytest.skip(f"projector_transfers_context: needs the other embedded model as sharer (runs with receiver "
                    f"{' or '.join(SHARER_OF)}), not {receiver.name}")
    train = pytestconfig.getoption("projector") == "train"
    if not train and not any_projector_stored():  # nothing stored at all: no need to load the sharer to know it
        _not_trained(claim, f"no stored projector at all for {sharer_name} → {receiver.name} under --projector "
                            f"cached; train it with: {train_command(sharer_name, receiver.name)}",
                     run_details(claim, sharer=sharer_name, receiver=receiver.identity))
        return
    try:
        sharer = load_model(sharer_name, device=claim.settings.device, dtype=claim.settings.dtype)
    except ModelUnavailableError as exc:
        pytest.skip(f"projector_transfers_context: the sharer {sharer_name} is unavailable: {exc}")
    text_set = load_text_set()
    texts = text_set.heldout[:planned_count(claim)]
    started = time.perf_counter()
    trained = projectors_for(sharer, receiver, text_set, train=train)
    details = run_details(
        claim, sharer=sharer.identity, receiver=receiver.identity, texts_sha256=text_set.sha256,
        text_source=text_set.source, training_texts=len(text_set.train), heldout_texts=[t.id for t in texts],
        settings={name: vars(s) for name, s in PROJECTOR_SETTINGS.items()},
    )
    missing = [name for name, tp in trained.items() if tp is None]
    if missing:
        why = (f"no stored projector ({', '.join(missing)}) for {sharer.name} → {receiver.name} under --projector "
               f"cached; train it with: {train_command(sharer.name, receiver.name)}")
        _not_trained(claim, why, details)
        return
    projected, mismatched = trained["projected"], trained["mismatched_pairs"]
    assert projected is not None and mismatched is not None
    training_s = time.perf_counter() - started
    parts = {"projectors": {n: tp.key for n, tp in trained.items()}, "texts": [t.id for t in texts],
             "texts_sha256": text_set.sha256, "seed": claim.seed, "code": code_fingerprint([heldout_losses])}
    losses = claim.store.get_or_compute(
        "projector_heldout_losses", parts,
        lambda: heldout_losses(sharer, receiver, projected.projector, mismatched.projector, texts, claim.seed))
    summary = summarize_losses(losses, claim.spec.ci_level or 0.95, claim.seed)
    details |= {
        "training_curves": {n: {"loss": tp.curve, "seconds": tp.seconds, "from_cache": tp.from_cache,
                                "key": tp.key, "gates": tp.projector.gates} for n, tp in trained.items()},
        "timings": details["timings"] | {"projectors_s": training_s,
                                         "evaluation_s": time.perf_counter() - started - training_s},
        **summary.details,
    }
    claim.conclude(claim.evaluate(
        estimate=summary.estimate, ci_low=summary.ci[0], ci_high=summary.ci[1], n=len(texts),
        contrast_cis={name: (low, high) for name, (_, low, high) in summary.contrasts.items()},
        details=details | {"contrast_estimates": {name: est for name, (est, _, _) in summary.contrasts.items()}},
    ))


def _not_trained(claim: ClaimContext, why: str, details: dict) -> None:
    """Conclude INCONCLUSIVE (estimate undefined, every contrast undefined) for want of a stored projector."""
    claim.conclude(claim.evaluate(estimate=None, n=0, details=details, undefined_reason=why,
                                  contrast_cis={b: (math.nan, math.nan) for b in PROJECTOR_BASELINES}))
