"""How a bundle is made from settings: the presets (the shipped recipes), the cohorts by name, the
backbone resolved (pretrained in stages when absent) and `train_from_config`, which
`python -m pneumo train` (pneumo.cli.train) and the ensemble call. The fitting itself: pneumo.training.fit.
"""
from __future__ import annotations

import time
from pathlib import Path

from pneumo import config
from pneumo.data.cohorts import kermany, manifest, mimic, paired, real_pairs, synthetic
from pneumo.errors import PneumoError
from pneumo.models.network import DEFAULT_BACKBONE, DEFAULT_INTENSITY
from pneumo.training import backbone as pretrain
from pneumo.training.backbone import backbone_info, set_threads
from pneumo.training.fit import train
from pneumo.training.reference import build_for_bundle

PRESETS = {"shipped": dict(cohort="kermany+mimic", image_size=224, alpha=0.35, intensity="equalize", backbone="pretrained",
                           pretrain=[dict(epochs=14, augment="standard", mixup=0.0),            # 1.1.0's backbone
                                     dict(epochs=8, augment="fov", mixup=0.0, lr=5e-4),       # 1.2.0's: zoom in
                                     dict(epochs=6, augment="fov_wide", mixup=0.0, lr=3e-4),  # and out (1.3.0)
                                     dict(epochs=6, augment="acq", mixup=0.0, lr=3e-4)],      # noise, blur (1.4.0)
                           aug_copies=1, lab_noise=1.0, epochs=80, name="pneumo-fusion", version="1.4.0-single"),
           # 2.0.0: one EfficientNet-Lite0 from its ImageNet start, stem and first three stages frozen
           "shipped-2": dict(cohort="kermany+mimic", image_size=224, alpha=0.35, intensity="equalize",
                             backbone="pretrained",
                             pretrain=[dict(backbone="efficientnet-lite0", init="imagenet", epochs=8, augment="acq",
                                            lr=3e-4, freeze_before="block5_expand_conv", max_minutes=70.0),
                                       # then JPEG, resampling and crisper films (the files users upload)
                                       dict(backbone="efficientnet-lite0", epochs=4, augment="acq_jpeg", lr=1e-4,
                                            freeze_before="block5_expand_conv", max_minutes=70.0)],
                             # a single head's labs-only view was worse than chance on val (seed 0): choose of 8
                             aug_copies=1, lab_noise=1.0, epochs=80, head_seeds=8, name="pneumo-fusion",
                             version="2.0.0")}
# one seed: the shipped 1.4.0 is seeds 0-2 of it averaged (python -m pneumo ensemble --preset shipped)


def seeded_stages(stages, seed: int) -> list[dict]:
    """A preset's backbone stages with every fine-tune stage (all but the first) given `seed`: how
    the seed members of the shipped ensemble were made (a shared first stage, fine-tunes per seed).
    A single stage is seeded itself."""
    stages = [dict(st) for st in (stages if isinstance(stages, list) else [stages])]
    for st in stages[1:] or stages:
        st["seed"] = int(seed)
    return stages


COHORTS = "kermany+mimic | mimic-cxr | synthetic | manifest.csv"


def load_cohort(spec: str, *, seed: int = 0, size: int = 64, tmpdir: Path | None = None,
                mimic_dir: str | None = None, cxr_dir: str | None = None):
    if spec == "kermany+mimic":
        return paired.pair(kermany.load(), mimic.load(), seed=seed)
    if spec == "mimic-cxr":      # real pairs: the film and the labs of the same admission
        return real_pairs.load(mimic_dir, cxr_dir, seed=seed)
    if spec == "synthetic":
        return synthetic.make(96, size=size, seed=seed, tmpdir=tmpdir or config.cache_dir() / "synthetic")
    if spec.endswith(".csv"):
        return manifest.load(spec)
    raise PneumoError(f"unknown cohort {spec!r}: use {COHORTS}")


def resolve_backbone(spec: str | None, size: int, alpha: float, log=print, intensity: str = "none",
                     pretrain_kw: dict | list[dict] | None = None, dist=None) -> str | None:
    """pretrained -> the Kermany backbone (pretraining it first when absent); none; imagenet; a path.
    pretrain_kw: one recipe, or stages (each later one fine-tunes the one before), e.g.
    [{"epochs": 14}, {"epochs": 8, "augment": "fov", "lr": 5e-4}]."""
    if spec in (None, "none", "random"):
        return None
    if spec == "pretrained":
        stages = pretrain_kw if isinstance(pretrain_kw, list) else [pretrain_kw or {}]
        path = None
        for stage in stages:
            # a generous time budget: a recipe cut short by a slow machine would not be the recipe
            kw = {"epochs": 24, "augment": "standard", "mixup": 0.0, "seed": 0, "max_minutes": 240.0, **stage}
            init = kw.pop("init", None) if path is None else path      # a first stage may start from ImageNet
            target = (pretrain.backbone_path(size, alpha, intensity, kw["augment"], kw["mixup"], kw["seed"],
                                             kw.get("backbone", DEFAULT_BACKBONE))
                      if path is None else pretrain.finetuned_path(path, kw["augment"], kw["mixup"], kw["seed"]))
            if not target.exists():
                log(f"no pretrained backbone at {target}: {'pretraining on Kermany train' if path is None else 'fine-tuning'} first (long)")
                pretrain.pretrain(size, alpha, intensity=intensity, init=init, out=target, dist=dist, log=log, **kw)
                if dist is not None:
                    dist.barrier()   # the chief has written it: every worker reads the same weights next
            path = target
        return str(path)
    if spec != "imagenet" and not Path(spec).is_file():
        raise PneumoError(f"backbone weights not found: {spec}")
    return spec


TRAIN_DEFAULTS = dict(cohort="synthetic", image_size=224, alpha=0.35, intensity=None, backbone="pretrained",
                      aug_copies=0, lab_noise=0.3, epochs=80, name="pneumo-fusion", version="0.1.0", seed=0,
                      head_seeds=1, mimic_dir=None, cxr_dir=None)
"""What `train` uses where neither a preset nor the caller says otherwise."""


def train_from_config(out: str | Path, *, preset: str | None = None, seed: int | None = None,
                      class_weight: bool = True, n_boot: int = 1000, dist=None, log=None, **overrides) -> Path:
    """A bundle in `out` from a preset (PRESETS) and overrides of TRAIN_DEFAULTS' keys: the cohort is
    loaded, the backbone found or pretrained (its stages cached), the head fitted and calibrated, and
    for the Kermany+MIMIC cohort the reference set built. seed also seeds a preset's fine-tune stages.
    dist: a pneumo.training.distribute.Distribution to train the backbone stages and the head under."""
    unknown = set(overrides) - set(TRAIN_DEFAULTS)
    if unknown:
        raise PneumoError(f"unknown training settings: {sorted(unknown)}")
    if preset is not None and preset not in PRESETS:
        raise PneumoError(f"unknown preset {preset!r} (one of {', '.join(sorted(PRESETS))})")
    log = log or (lambda s: print(s, flush=True))
    out = Path(out)
    cfg = {**TRAIN_DEFAULTS, **PRESETS.get(preset, {}), **overrides}
    if seed is not None:
        cfg["seed"] = seed
        if cfg.get("pretrain"):
            cfg["pretrain"] = seeded_stages(cfg["pretrain"], seed)
    set_threads()
    t0 = time.time()
    timings = {}
    cohort = load_cohort(cfg["cohort"], seed=cfg["seed"], size=cfg["image_size"], tmpdir=out.parent / ".synthetic",
                         mimic_dir=cfg["mimic_dir"], cxr_dir=cfg["cxr_dir"])
    log(f"cohort {cohort.name}: {cohort.description.get('counts', len(cohort))}")
    t = time.time()
    backbone = resolve_backbone(cfg["backbone"], cfg["image_size"], cfg["alpha"], log, cfg["intensity"] or DEFAULT_INTENSITY,
                                cfg.get("pretrain"), dist)
    timings["backbone_seconds_this_run"] = round(time.time() - t, 1)
    pj = backbone_info(backbone) if backbone else {}
    if pj:
        timings["pretrain_seconds"] = pj.get("train_seconds")
        timings["pretrain_cache_seconds"] = pj.get("cache_seconds")
    train(cohort, out, image_size=cfg["image_size"], alpha=cfg["alpha"], backbone=backbone, intensity=cfg["intensity"],
          epochs=cfg["epochs"], class_weight=class_weight, aug_copies=cfg["aug_copies"], lab_noise=cfg["lab_noise"],
          seed=cfg["seed"], name=cfg["name"], version=cfg["version"], n_boot=n_boot, timings=timings,
          head_seeds=cfg["head_seeds"], dist=dist, log=log)
    if dist is not None and not dist.is_chief:
        return out
    if cfg["cohort"] == "kermany+mimic":   # the gate and SHAP background come from those films
        log(f"reference set (validity gate, SHAP background): {build_for_bundle(out)}")
    log(f"done in {time.time() - t0:.0f}s")
    return out
