"""The paper's Tables 1-2 beside our measured results, in Markdown (pneumo.experiments.paper_tables).

    python -m pneumo tables
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pneumo import config
from pneumo.experiments.paper_tables import find_results, load_results, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo tables", description=__doc__.split("\n")[0])
    parser.add_argument("--results", default=None, help="results folder (default: the repository's results/)")
    parser.add_argument("--experiment", default=None, help="experiment id, the file stem (default: paper-50-500)")
    args = parser.parse_args(argv)
    folder = Path(args.results) if args.results else config.results_dir()
    print(render(load_results(find_results(folder, args.experiment))))
    return 0
