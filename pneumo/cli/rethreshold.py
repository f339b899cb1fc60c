"""Re-derive a bundle's operating threshold on its validation cases (pneumo.training.rethreshold).

    python -m pneumo rethreshold --bundle models/pneumo-fusion
"""
from __future__ import annotations

import argparse

from pneumo.training.rethreshold import rethreshold


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo rethreshold", description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--seed", type=int, default=0, help="the pairing seed the bundle was calibrated with")
    args = parser.parse_args(argv)
    rethreshold(args.bundle, args.seed)
    return 0
