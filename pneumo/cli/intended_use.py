"""Fit and measure a bundle's intended-use film check (pneumo.training.intended_use_fit).

    python -m pneumo intended-use --bundle models/pneumo-fusion [--seed 0]

Fits the film-shape check with source shifts and states its leave-one-adult-source-out figures
(docs/model-history.md); the shipped 1.5.0 check (image embedding) was fitted by the earlier recipe
in the git history and is kept because this one does not yet reach its targets.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from pneumo.training.intended_use_fit import build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo intended-use", description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", default=os.environ.get("PNEUMO_DATA_DIR"), help="data folder (PNEUMO_DATA_DIR)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="an .npz to keep the embeddings in between refits")
    args = parser.parse_args(argv)
    build(args.bundle, Path(args.data) if args.data else None, args.seed, cache=args.cache)
    return 0
