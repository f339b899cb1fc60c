"""Re-derive a trained bundle's operating threshold under pneumo.inference.decision_rule, on the same
validation cases that calibrated it, and rewrite its val/test figures at that threshold.

    python -m pneumo rethreshold --bundle models/pneumo-fusion

The temperatures are not refitted (the weights and calibration stay as trained); the test
probabilities are recomputed and must match the ones metrics.json recorded (else the cohort
is not the one the bundle was trained on, and nothing is written)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumo.data.cohorts import kermany, mimic, paired
from pneumo.data.image_cache import kermany_cache
from pneumo.errors import BundleError
from pneumo.evaluation import metrics as M
from pneumo.inference.decision_rule import RULE
from pneumo.models.bundle import update_meta, write_metrics
from pneumo.models.features import VIEWS
from pneumo.training.threshold import single_threshold

PARITY = 2e-3   # test probabilities recomputed vs recorded (float32 head, rounded to 5 places there)


def view_probabilities(runner, early, late, labs, present) -> dict[str, np.ndarray]:
    """Calibrated P per view for rows of embeddings and raw lab values (NaN = missing)."""
    n = len(early)
    none = np.full_like(labs, np.nan)
    zeros_e, zeros_l = np.zeros_like(early), np.zeros_like(late)
    return {"fusion": runner.head(early, late, present, labs),
            "image_only": runner.head(early, late, present, none),
            "labs_only": runner.head(zeros_e, zeros_l, np.zeros(n, np.float32), labs)}


def cohort_probabilities(runner, seed: int = 0) -> dict:
    """Val and test rows of the semi-real cohort the bundle was trained on: labels and per-view
    calibrated probabilities."""

    cohort = paired.pair(kermany.load(), mimic.load(), seed=seed)
    images, x = kermany_cache(runner.image_size, log=lambda *_: None)
    row_of = {p: i for i, p in enumerate(images.frame["image_path"].astype(str))}
    out = {}
    for split in ("val", "test"):
        rows = cohort.frame[cohort.frame["split"] == split]
        xs = x[[row_of[str(p)] for p in rows["image_path"]]].astype(np.float32)[..., None] / 255.0
        early, late = runner.embed(xs)
        labs = rows[runner.panel.keys].to_numpy(np.float32)
        present = np.ones(len(rows), np.float32)
        out[split] = {"y": rows["label"].to_numpy(int),
                      "p": view_probabilities(runner, early, late, labs, present)}
    return out


def rethreshold(bundle_dir, seed: int = 0, log=print) -> float:
    from pneumo.inference.runner import ModelRunner

    bundle_dir = Path(bundle_dir)
    runner = ModelRunner.load(bundle_dir)
    metrics = runner.metrics
    data = cohort_probabilities(runner, seed)
    recorded = metrics.get("test_probabilities", {})
    for view in VIEWS:
        if view in recorded:
            gap = float(np.max(np.abs(np.asarray(recorded[view]) - data["test"]["p"][view])))
            log(f"test {view}: recomputed vs recorded probabilities, largest gap {gap:.2e}")
            if gap > PARITY:
                raise BundleError(f"the recomputed test probabilities of {view} differ from metrics.json "
                                  f"by {gap:.3g}: not the cohort this bundle was calibrated on")
    t = single_threshold(data["val"]["y"], data["val"]["p"])
    log(f"one operating threshold: {t:.4f}")
    views = {v: {**c, "threshold": t} for v, c in runner.meta["views"].items()}
    update_meta(bundle_dir, threshold=t, threshold_rule=RULE, views=views)
    for split in ("val", "test"):
        y = data[split]["y"]
        metrics[split] = {v: M.binary_metrics(y, data[split]["p"][v], t) for v in VIEWS}
    y, p = data["test"]["y"], data["test"]["p"]
    metrics["test_ci"] = {v: {m: M.bootstrap_ci(y, p[v], M.metric_fn(m, t), n=1000, seed=seed)
                              for m in ("roc_auc", "accuracy", "pr_auc")} for v in VIEWS}
    metrics["threshold_rule"] = RULE
    for view in VIEWS:
        metrics.setdefault("calibration", {}).setdefault(view, {})["threshold"] = t
    write_metrics(bundle_dir, metrics)
    for split in ("val", "test"):
        log(split.upper() + " " + "; ".join(
            f"{v}: sens {metrics[split][v]['sensitivity']:.3f} spec {metrics[split][v]['specificity']:.3f} "
            f"acc {metrics[split][v]['accuracy']:.3f}" for v in VIEWS))
    return t
