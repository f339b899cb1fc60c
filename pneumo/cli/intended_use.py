"""Fit and measure a bundle's intended-use film check (pneumo.training.intended_use_fit).

    python -m pneumo intended-use --bundle DIR [--seed 0] [--features embedding|shape|both]

Adult vs child from the image embedding, from the film's shape (HOG + thumbnail, with source
shifts), or both (a film flagged when either says adult; the default), each thresholded on the
validation children; states the leave-one-adult-source-out figures (docs/model-history.md).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from pneumo.inference.intended_use import BOTH, INPUTS
from pneumo.training.intended_use_fit import build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo intended-use", description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", default=os.environ.get("PNEUMO_DATA_DIR"), help="data folder (PNEUMO_DATA_DIR)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", choices=INPUTS, default=BOTH,
                        help="what the adult check reads: the image embedding, the film's shape, or both (either flags)")
    parser.add_argument("--cache", type=Path, help="an .npz to keep the film sets (features, embeddings) in between refits")
    args = parser.parse_args(argv)
    build(args.bundle, Path(args.data) if args.data else None, args.seed, cache=args.cache, inputs=args.features)
    return 0
