"""The random-weight twin of ``--null-twin`` (harness.claim.null_twin.build_null_twin) on the toy models: other
weights, the same everything else, reproducible from the run seed, and measurement store keys of its own."""

from __future__ import annotations

import torch

from harness.claim.null_twin import build_null_twin, null_twin_seed
from harness.models import LoadedModel
from harness.runtime.measurement_store import measurement_key


def test_the_twin_has_other_weights_and_the_same_model_around_them(toy_model: LoadedModel) -> None:
    state = torch.random.get_rng_state()
    twin = build_null_twin(toy_model, 0)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state is untouched
    assert twin.name == toy_model.name and twin.tokenizer is toy_model.tokenizer and twin.layers == toy_model.layers
    assert twin.model is not toy_model.model and twin.model.config.to_dict() == toy_model.model.config.to_dict()
    trained, random = dict(toy_model.model.named_parameters()), dict(twin.model.named_parameters())
    assert trained.keys() == random.keys()
    assert not all(torch.equal(trained[k], random[k]) for k in trained)
    seed = null_twin_seed(0, toy_model.name)
    assert twin.provenance["model"] == f"{toy_model.name}:random-weights:{seed}"
    again = build_null_twin(toy_model, 0)
    assert all(torch.equal(p, q) for p, q in zip(twin.model.parameters(), again.model.parameters()))
    other = build_null_twin(toy_model, 1)
    assert not all(torch.equal(p, q) for p, q in zip(twin.model.parameters(), other.model.parameters()))


def test_the_twin_measurements_are_stored_under_keys_of_their_own(toy_llama: LoadedModel) -> None:
    twin = build_null_twin(toy_llama, 0)
    differing = {k for k in toy_llama.identity if toy_llama.identity[k] != twin.identity.get(k)}
    assert differing == {"model"}  # the identity every store key holds names the twin's seed
    parts = {"prompt": "p", "window": 16}
    assert measurement_key({"model": toy_llama.identity, **parts}) != measurement_key({"model": twin.identity, **parts})
