"""Command line of the cross-model projector: ``python -m harness.exchange.projector.cli train --sharer S --receiver R``.

Trains (or finds already stored) the two projectors the claim ``projector_transfers_context`` needs for that
direction, the matched one and the mismatched-pairs baseline, with the registered
:data:`~harness.exchange.projector.claim.PROJECTOR_SETTINGS`, and prints where they are stored, each training
curve's first and last 20-step means and the wall time.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from harness.exchange.projector.claim import projectors_for
from harness.exchange.projector.texts import load_text_set
from harness.exchange.projector.training import projector_dir
from harness.models import load_model

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and train; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m harness.exchange.projector.cli",
                                     description="train the cross-model cache projectors of projector_transfers_context")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train and store the matched and mismatched-pairs projectors of a direction")
    train.add_argument("--sharer", required=True, help="the model whose cache is projected (e.g. gemma3-270m)")
    train.add_argument("--receiver", required=True, help="the model that reads the projected cache (e.g. smollm2-135m)")
    train.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    if args.sharer == args.receiver:
        parser.error("--sharer and --receiver must be different models")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    sharer = load_model(args.sharer, device=args.device)
    receiver = load_model(args.receiver, device=args.device)
    trained = projectors_for(sharer, receiver, load_text_set(), train=True)
    for name, tp in trained.items():
        assert tp is not None
        head, tail = tp.curve[:20], tp.curve[-20:]
        print(f"{name}: {projector_dir(tp.key)}; loss {sum(head) / len(head):.3f} → {sum(tail) / len(tail):.3f} "
              f"nats/token (first / last 20 steps), {tp.seconds:.0f} s{' (stored before)' if tp.from_cache else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
