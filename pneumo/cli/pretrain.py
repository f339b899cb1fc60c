"""Train the film backbone image-only on Kermany TRAIN (pneumo.training.backbone).

    python -m pneumo pretrain --size 224 --alpha 0.35 --intensity equalize --epochs 14
    python -m pneumo pretrain --size 224 --intensity equalize --augment fov --lr 5e-4 --epochs 8 \\
        --init cache/backbone/mobilenetv2_a0.35_224_equalize.weights.h5 --out FINETUNED.weights.h5
    python -m pneumo pretrain --backbone efficientnet-lite0 --init imagenet --freeze-before block6_expand_conv \
        --augment acq --lr 3e-4 --epochs 6
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pneumo.errors import PneumoError
from pneumo.training.backbone import AUG_STRENGTHS, pretrain
from pneumo.training.distribute import STRATEGIES, STRATEGY_HELP, make_strategy


def main(argv=None) -> int:
    from pneumo.models.network import BACKBONES, DEFAULT_BACKBONE, DEFAULT_INTENSITY, INTENSITY_MODES
    ap = argparse.ArgumentParser(prog="python -m pneumo pretrain", description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=224, help="image side in px (224, as train; 128 for speed)")
    ap.add_argument("--alpha", type=float, default=0.35)
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--intensity", choices=INTENSITY_MODES, default=DEFAULT_INTENSITY)
    ap.add_argument("--augment", choices=sorted(AUG_STRENGTHS), default="standard",
                    help="geometric augmentation: standard (7 deg, 6%% shift, 10%% zoom), strong (10 deg, 10%%, 20%%) "
                         "fov (10 deg, 8%%, zoom in up to 40%% with aspect jitter), fov_wide (fov, and zoom out "
                         "up to 25%% into a black border), acq (fov_wide, plus noise and blur) or acq_jpeg (acq, plus "
                         "resolution drops, unsharp masking and JPEG at quality 15-95)")
    ap.add_argument("--mixup", type=float, default=0.0, help="mixup Beta parameter (0 = off; 0.2 typical)")
    ap.add_argument("--backbone", choices=sorted(BACKBONES), default=DEFAULT_BACKBONE,
                    help="the film network's trunk (--alpha widens mobilenetv2 only)")
    ap.add_argument("--init", default=None,
                    help="start from this saved backbone (fine-tune), or 'imagenet' (efficientnet-lite0: the start "
                         "that `python -m pneumo import-start` converted)")
    ap.add_argument("--freeze-before", default=None, metavar="LAYER",
                    help="freeze every layer before this one (e.g. block6_expand_conv: the stem and the first "
                         "three stages keep their ImageNet weights)")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine schedule)")
    ap.add_argument("--max-minutes", type=float, default=240.0,
                    help="stop after the epoch that passes this budget (logged; the sidecar records the epochs run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--strategy", choices=STRATEGIES, default="auto", help=STRATEGY_HELP)
    a = ap.parse_args(argv)
    try:
        pretrain(a.size, a.alpha, a.epochs, a.max_minutes, a.seed, a.out, a.intensity, a.augment, a.mixup,
                 a.init, a.lr, dist=make_strategy(a.strategy), backbone=a.backbone, freeze_before=a.freeze_before,
                 log=lambda s: print(s, flush=True))
    except PneumoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
