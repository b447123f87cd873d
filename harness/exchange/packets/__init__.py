"""Cache packets: :mod:`~harness.exchange.packets.packet` (a safetensors file with a JSON header; partial and
compressed packets), :mod:`~harness.exchange.packets.codecs` (storage formats), :mod:`~harness.exchange.packets.identity`
(what a packet must match) and :mod:`~harness.exchange.packets.fidelity` (a model continuing from a packet)."""
