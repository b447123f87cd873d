"""The report from the command line, without loading any model:

    python -m harness.report rebuild RUN_DIR [--out DIR]     every report file from claims.json (+ samples.jsonl)
    python -m harness.report compare RUN_A RUN_B [--by claim] [--fail-on verdict|estimate:5%] [--exact]
                                                             a Markdown table of verdicts and estimates of two runs

``compare`` exits 0 when nothing that ``--fail-on`` counts differs, 1 when it does (by default: a verdict changed or
a row is in one run only), 2 on a usage error or a missing or malformed input, in one line (see
:mod:`harness.report.compare`); ``rebuild`` exits 0 after writing, 2 on a usage error or a missing run directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    reb = sub.add_parser("rebuild", help="rebuild every report file of a run from its claims.json")
    reb.add_argument("run_dir", type=Path, help="report directory (or its claims.json)")
    reb.add_argument("--out", type=Path, default=None, help="write the files here instead of into RUN_DIR")
    from harness.report.compare import add_arguments, run

    add_arguments(sub.add_parser("compare", help="a Markdown table of verdicts and estimates of two runs"))
    args = parser.parse_args(argv)
    if args.command == "compare":
        return run(args)
    from harness.report.rebuild import rebuild

    if not args.run_dir.exists():
        parser.error(f"{args.run_dir} does not exist")
    written = rebuild(args.run_dir, args.out)
    target = written[0].parent if written else args.out or args.run_dir
    print(f"rebuilt {len(written)} files in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
