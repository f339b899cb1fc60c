"""A seed ensemble: several trained fusion bundles composed into one bundle.

Each member keeps its own backbone, head and lab standardisation; the ensemble's answer is the
mean of the members' softmax outputs, then calibrated and thresholded on val exactly as
`pneumo.training.fit` does (temperature per view on val log loss, one Youden-J threshold). Averaging seeds
removes most of the seed-to-seed swing of a single model (its val-chosen threshold moved from
0.24 to 0.68 between seeds of the same recipe). The result is an ordinary bundle (architecture
"members": K): the app, Grad-CAM (over every member's maps), SHAP and the gate work unchanged.

    python -m pneumo ensemble --preset shipped --out models/pneumo-fusion    # the shipped 1.4.0
    python -m pneumo ensemble --members runs/a runs/b runs/c --out runs/ens --version 1.4.0
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pneumo.errors import PneumoError
from pneumo.models.bundle import WEIGHTS_FILE, load_bundle, read_metrics
from pneumo.training.reference import build_for_bundle

COMBINATION = ("mean of the members' softmax outputs (each member with its own backbone, head and lab "
               "standardisation), then temperature scaling and the Youden-J threshold fitted on val")
_SAME = ("image_size", "alpha", "intensity", "n_tests", "head", "backbone")


def check_compatible(bundles) -> None:
    """Members must read the same films and the same panel the same way."""
    if len(bundles) < 2:
        raise PneumoError("an ensemble needs at least two member bundles")
    first = bundles[0]
    for b in bundles[1:]:
        arch0, arch = first.meta["architecture"], b.meta["architecture"]
        diff = [k for k in _SAME if arch0.get(k) != arch.get(k)]
        if int(arch.get("members", 1)) != 1:
            raise PneumoError(f"{b.path.name} is itself an ensemble; compose single models")
        if diff:
            raise PneumoError(f"{b.path.name} differs from {first.path.name} in {', '.join(diff)}: "
                              "members must share image size, backbone, width, intensity, panel size and head")
        if b.panel.keys != first.panel.keys:
            raise PneumoError(f"{b.path.name} has another lab panel than {first.path.name}")


def compose(bundles):
    """One Keras model holding every member's weights; labs arrive standardised member 0's way."""
    from pneumo.models.network import build_fusion_model, member_name
    check_compatible(bundles)
    arch = bundles[0].meta["architecture"]
    model = build_fusion_model(size=int(arch["image_size"]), n_tests=int(arch["n_tests"]), alpha=float(arch["alpha"]),
                               intensity=str(arch.get("intensity", "none")), members=len(bundles),
                               backbone=str(arch.get("backbone", "mobilenetv2")), **dict(arch["head"]))
    encoder, head = model.get_layer("image_encoder"), model.get_layer("fusion_head")
    mean0, sd0 = bundles[0].standardisation.mean, bundles[0].standardisation.sd
    for k, b in enumerate(bundles):
        encoder.get_layer(member_name("image_encoder", k)).set_weights(b.image_encoder.get_weights())
        head.get_layer(member_name("fusion_head", k)).set_weights(b.fusion_head.get_weights())
        # z_k = (raw - mean_k) / sd_k = z_0 * sd_0 / sd_k + (mean_0 - mean_k) / sd_k
        s = b.standardisation
        head.get_layer(f"lab_restandardise_{k}").set_weights([(sd0 / s.sd).astype("float32"),
                                                              ((mean0 - s.mean) / s.sd).astype("float32")])
    return model


def member_record(b) -> dict:
    arch = b.meta["architecture"]
    return {"bundle": b.path.name, "name": b.name, "version": b.version,
            "weights_sha256": b.meta["weights"][WEIGHTS_FILE], "backbone_init": arch.get("backbone_init"),
            "seed": (b.meta.get("training") or {}).get("seed"),
            "backbone_seed": (arch.get("backbone_recipe") or {}).get("seed")}


def build(member_dirs, out, *, name: str = "pneumo-fusion", version: str = "1.4.0", cohort_spec: str = "kermany+mimic",
          seed: int = 0, n_boot: int = 1000, reference: bool = True, log=print) -> dict:
    """Compose, calibrate and threshold on val, evaluate on test, check robustness, write the bundle
    (+ its reference set for the gate and SHAP). Returns metrics.json's content."""
    from pneumo.training.fit import calibrate_and_report, cohort_features, save_with_reports
    from pneumo.training.recipes import load_cohort
    t0 = time.time()
    bundles = [load_bundle(d) for d in member_dirs]
    model = compose(bundles)
    first = bundles[0]
    size = first.image_size
    cohort = load_cohort(cohort_spec, seed=seed)
    if cohort.lab_keys != first.panel.keys:
        raise PneumoError(f"cohort {cohort.name!r} has another lab panel than the members")
    frame = cohort.frame
    keep = frame["split"].isin(["val", "test"]).to_numpy()
    evaluation = type(cohort)(frame[keep].reset_index(drop=True), cohort.panel, cohort.name,
                              cohort.description, cohort.semi_real)
    X, _ = cohort_features(evaluation, model.get_layer("image_encoder"), size, first.standardisation, log=log)
    split = evaluation.frame["split"].to_numpy()
    y = evaluation.frame["label"].to_numpy().astype(int)
    va, te = np.flatnonzero(split == "val"), np.flatnonzero(split == "test")
    metrics, operating = calibrate_and_report(model.get_layer("fusion_head"), X, y, va, te, cohort, n_boot, seed, log)
    metrics["history"] = []
    metrics["ensemble"] = {"combination": COMBINATION, "members": [member_record(b) for b in bundles],
                           "members_val_image_only_roc_auc": [_member_val_auc(b) for b in bundles]}
    meta = {k: v for k, v in first.meta.items() if k not in ("format", "created", "weights", "preprocessing", "reference")}
    meta.update({
        "name": name, "version": version,
        "architecture": {**first.meta["architecture"], "members": len(bundles),
                         "backbone_init": [m.meta["architecture"].get("backbone_init") for m in bundles],
                         "backbone_recipe": [m.meta["architecture"].get("backbone_recipe") for m in bundles]},
        **operating, "ensemble": metrics["ensemble"],
        "training": {"ensemble_of": [b.path.name for b in bundles], "calibration_cohort_seed": seed},
    })
    metrics["timings_seconds"] = {"compose_and_evaluate": round(time.time() - t0, 1)}
    save_with_reports(out, model, meta, metrics, cohort, size, log)
    if reference:
        build_for_bundle(out)
    log(f"ensemble of {len(bundles)} written to {out} in {time.time() - t0:.0f}s")
    return metrics


def _member_val_auc(b) -> float | None:
    return ((read_metrics(b.path).get("val") or {}).get("image_only") or {}).get("roc_auc")


PRESETS = {"shipped": dict(train_preset="shipped", seeds=(0, 1, 2), version="1.4.0")}
"""The shipped bundle: seeds 0-2 of `python -m pneumo train --preset shipped --seed s`, averaged."""


def train_members(preset: str, members_dir: Path, log=print) -> list[Path]:
    """Train each seed member of an ensemble preset that is not already in members_dir."""
    from pneumo.training.recipes import train_from_config  # Keras, only when members are trained
    p = PRESETS[preset]
    out = []
    for s in p["seeds"]:
        d = Path(members_dir) / f"{p['train_preset']}-seed{s}"
        if not (d / "bundle.json").is_file():
            log(f"training member seed {s} into {d} (long: pretrain stages are cached)")
            train_from_config(d, preset=p["train_preset"], seed=s, version=f"{p['version']}-member{s}", log=log)
        out.append(d)
    return out
