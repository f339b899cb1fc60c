"""Does the answer depend on how the film was framed or exposed? (pneumo.evaluation.robustness).

    python -m pneumo robustness --bundle models/pneumo-fusion [--split val] [--json] [--all] [--write]
"""
from __future__ import annotations

import argparse
import json
import sys

from pneumo.errors import PneumoError
from pneumo.evaluation.robustness import (
    field_of_view,
    kermany_split,
    perturbation_lines,
    perturbations,
    summary_line,
    write_report,
)
from pneumo.models.bundle import load_bundle


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pneumo robustness", description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped model)")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--all", action="store_true", help="also the wider set of acquisition changes")
    ap.add_argument("--write", action="store_true",
                    help="recompute both reports on val and test and add them to the bundle's metrics.json")
    a = ap.parse_args(argv)
    if a.write:
        try:
            metrics = write_report(a.bundle)
        except PneumoError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(summary_line(metrics["val_field_of_view"]) + " (val); metrics.json updated")
        return 0
    try:
        bundle = load_bundle(a.bundle)
        films = kermany_split(a.split, bundle.image_size)
        report = field_of_view(bundle, *films)
        wider = perturbations(bundle, *films) if a.all else None
    except PneumoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report["split"] = a.split
    if a.json:
        print(json.dumps({"field_of_view": report, "perturbations": wider} if a.all else report, indent=1))
    else:
        print(summary_line(report) + ("\n" + perturbation_lines(wider) if wider else ""))
    return 0
