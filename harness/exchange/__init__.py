"""Cache exchange between model instances and between models (issue 14).

Rooms: :mod:`~harness.exchange.packets.packet` (cache packets: a safetensors file plus a JSON header; partial and compressed
packets), :mod:`~harness.exchange.partial` (a cache with a fraction of its layers transferred),
:mod:`~harness.exchange.projector.model` (a trained sharer-to-receiver cache projector) and
:mod:`~harness.exchange.confabulation` (cache statistics of grounded vs confabulation-inducing prompts).
"""
