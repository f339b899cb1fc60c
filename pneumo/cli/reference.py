"""Build a bundle's reference set: the validity gate and the SHAP background (pneumo.training.reference).

    python -m pneumo reference --bundle models/pneumo-fusion
"""
from __future__ import annotations

import argparse

from pneumo.training.reference import build_for_bundle


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo reference", description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True)
    args = parser.parse_args(argv)
    print(build_for_bundle(args.bundle))
    return 0
