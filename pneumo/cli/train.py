"""`python -m pneumo train`: fit one fusion model on a cohort and write a bundle (pneumo.training.fit).

    python -m pneumo train --preset shipped --out models/pneumo-fusion
    python -m pneumo train --cohort synthetic --out /tmp/b --image-size 64 --epochs 1
    python -m pneumo train --cohort mimic-cxr --mimic-dir MIMIC/hosp --cxr-dir MIMIC-CXR-JPG --out runs/real
    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}' \
        python -m pneumo train --cohort mimic-cxr ... --strategy multi-worker      # on each host, its index
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pneumo.errors import PneumoError
from pneumo.models.network import INTENSITY_MODES
from pneumo.training.distribute import STRATEGIES, STRATEGY_HELP, make_strategy
from pneumo.training.recipes import COHORTS, PRESETS, TRAIN_DEFAULTS, train_from_config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pneumo train", description="Fit the fusion model and write a bundle.")
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--cohort", help=COHORTS)
    ap.add_argument("--mimic-dir", help="mimic-cxr: MIMIC-IV's hosp folder (default: the MIMIC-IV demo in PNEUMO_DATA_DIR)")
    ap.add_argument("--cxr-dir", help="mimic-cxr: MIMIC-CXR-JPG's folder, with its metadata CSV and files/ "
                    "(default PNEUMO_MIMIC_CXR_DIR)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--alpha", type=float)
    ap.add_argument("--intensity", choices=INTENSITY_MODES, help="per-film histogram equalisation in the model")
    ap.add_argument("--backbone", help="pretrained (default) | imagenet | none | path.weights.h5")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--aug-copies", type=int)
    ap.add_argument("--lab-noise", type=float, help="sd of noise on standardised labs in training")
    ap.add_argument("--no-class-weights", action="store_true")
    ap.add_argument("--head-seeds", type=int, help="fit this many heads (consecutive seeds) on the same embeddings "
                    "and keep the one with the highest mean val ROC AUC over the three views (default 1)")
    ap.add_argument("--seed", type=int, help="seed of the pairing, the head and the lab noise (default 0, or the "
                    "preset's); with a preset it also seeds the backbone's fine-tune stages, so seeds "
                    "differ in backbone and head and share the first stage")
    ap.add_argument("--name"); ap.add_argument("--version")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--strategy", choices=STRATEGIES, default="auto", help=STRATEGY_HELP)
    a = ap.parse_args(argv)
    overrides = {k: v for k, v in vars(a).items() if k in TRAIN_DEFAULTS and k != "seed" and v is not None}
    try:
        dist = make_strategy(a.strategy)
        train_from_config(a.out, preset=a.preset, seed=a.seed, class_weight=not a.no_class_weights,
                          n_boot=a.bootstrap, dist=dist, **overrides)
        if dist is None or dist.is_chief:
            from pneumo.models.runtime_export import export_runtime   # the bundle's fast inference graph
            export_runtime(a.out)
    except PneumoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
