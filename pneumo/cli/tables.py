"""The paper's Tables 1-2 beside our measured results, in Markdown (pneumo.experiments.paper_tables).

    python -m pneumo tables            # both variants (official-test, same-source) where their files exist
    python -m pneumo tables --experiment paper-50-500
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pneumo import config
from pneumo.experiments import variants
from pneumo.experiments.paper_tables import find_results, load_results, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo tables", description=__doc__.split("\n")[0])
    parser.add_argument("--results", default=None, help="results folder (default: the repository's results/)")
    parser.add_argument("--experiment", default=None,
                        help="one experiment id, the file stem (default: every variant found, "
                             f"{', '.join(variants.VARIANT_FILES)})")
    args = parser.parse_args(argv)
    folder = Path(args.results) if args.results else config.results_dir()
    found = [folder / f"{name}.json" for name in variants.VARIANT_FILES if (folder / f"{name}.json").is_file()]
    if args.experiment or not found:
        print(render(load_results(find_results(folder, args.experiment))))
    else:
        print(variants.render([load_results(path) for path in found]))
    return 0
