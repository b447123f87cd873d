"""Measurement stores from the command line, without loading any model:

    python -m harness.store merge SRC [SRC ...] --into DST    every entry of the SRC stores into store DST

``merge`` exits 0 after merging (one summary line on stdout), 2 on a usage error, a missing or empty SRC, DST equal
to a SRC, a corrupt entry or a conflict (one kind/key with different values in two places), with one ``error:`` line
on stderr; a refused merge writes nothing (see :mod:`harness.store.merge`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.store.merge import MergeError, merge_stores


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m harness.store", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser(
        "merge", help="combine the measurement stores of several machines (shards of one run) into one",
        description="Copy every entry of every SRC store into DST (created if absent), after verifying each entry and "
                    "checking that no kind/key has different values in two places; an identical entry held twice is "
                    "kept once, and merging again copies nothing. A store is the folder holding <kind>/<key>.json "
                    "(<KVCLAIMS_CACHE>/measurements by default).")
    merge.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="a measurement store root to merge from")
    merge.add_argument("--into", required=True, type=Path, metavar="DST", help="the store root to merge into")
    args = parser.parse_args(argv)
    try:
        summary = merge_stores(args.sources, args.into)
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
