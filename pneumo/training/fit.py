"""Fit one fusion model on a cohort and write a bundle.

Recipe (any cohort): frozen image encoder (Kermany-pretrained backbone, ImageNet or random)
-> two image embeddings per image, computed once -> fusion head trained on them with modality
dropout, class weights and early stopping on val -> temperature scaling on val -> threshold
on val (Youden J on the calibrated val probabilities) -> bundle + val/test metrics.

Presets, cohorts by name and the command line's settings: pneumo.training.recipes.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pneumo.data.image_cache import load_images
from pneumo.data.labs.standardisation import LabStandardisation
from pneumo.errors import PneumoError
from pneumo.evaluation import metrics as M
from pneumo.evaluation.robustness import cohort_report
from pneumo.inference.decision_rule import RULE
from pneumo.models.bundle import save_bundle, write_metrics
from pneumo.models.calibration import apply_temperature, fit_temperature
from pneumo.models.features import VIEWS, Features, class_weights
from pneumo.models.network import (
    BACKBONES,
    DEFAULT_BACKBONE,
    DEFAULT_INTENSITY,
    LAST_CONV_LAYER,
    build_fusion_head,
    build_fusion_model,
    build_image_encoder,
    embed_images,
    predict_head,
)
from pneumo.training import distribute
from pneumo.training.backbone import augmenter, backbone_info, backbone_recipe
from pneumo.training.film_stream import stream_passes, to_unit
from pneumo.training.head_fit import fit_head
from pneumo.training.threshold import single_threshold

HEAD_DEFAULTS = dict(d_model=32, heads=4, layers_n=1, pooled_dim=16, fusion_units=64, dropout=0.3)


# ----------------------------------------------------------------------------- cohort -> features
def cohort_features(cohort, encoder, size: int, std: LabStandardisation, aug_copies: int = 0, seed: int = 0, log=print,
                    augment: str = "standard", stream: bool = False):
    """Features for every row of the cohort (+ `aug_copies` augmented image embeddings per row,
    with the backbone's augmentation strength). stream: read the films from disk batch by batch
    (pneumo.training.film_stream) instead of holding them all in memory."""
    frame = cohort.frame
    keys = cohort.lab_keys
    has_img = frame["image_path"].notna().to_numpy()
    paths = frame.loc[has_img, "image_path"].astype(str).tolist()
    t = time.time()
    runs = _image_embeddings(encoder, paths, size, aug_copies, seed, augment, stream, log) if paths else []
    early_dim, late_dim = (int(o.shape[-1]) for o in encoder.outputs)

    def every_row(run):   # a film's embeddings in its row, zeros where a row has no film
        early, late = np.zeros((len(frame), early_dim), "float32"), np.zeros((len(frame), late_dim), "float32")
        if run is not None:
            early[has_img], late[has_img] = run
        return early, late
    early, late = every_row(runs[0] if runs else None)
    augmented = [every_row(run) for run in runs[1:]]
    log(f"embedded {len(paths)} images (+{aug_copies} augmented copies) in {time.time() - t:.0f}s")
    if keys:
        labs, missing = std.inputs(frame[keys].to_numpy("float64"))
    else:
        labs, missing = np.zeros((len(frame), 1)), np.ones((len(frame), 1), bool)
    f = Features(early, late, has_img.astype("float32"), labs.astype("float32"), missing.astype("float32"))
    return f, augmented


def _image_embeddings(encoder, paths: list[str], size: int, aug_copies: int, seed: int, augment: str, stream: bool,
                      log) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(early, late) of the films, then the same for each augmented copy]. stream: one pass over the
    films from disk computes every copy (each film decoded once); else the films are held in memory."""
    import tensorflow as tf
    aug = augmenter(seed + 100, augment) if aug_copies else None

    def jitter(xb):
        return tf.clip_by_value(aug(xb, training=True), 0, 1)
    if stream:
        return stream_passes(encoder, paths, size, [None] + [jitter] * aug_copies)
    x = load_images(paths, size, log)
    runs = [embed_images(encoder, x)]
    for _ in range(aug_copies):
        xa = np.concatenate([np.asarray(jitter(to_unit(x[i:i + 256]))) for i in range(0, len(x), 256)])
        runs.append(embed_images(encoder, xa))
    return runs


# ----------------------------------------------------------------------------- evaluation
HEAD_CHOICE = ("of the heads fitted with consecutive seeds on the same embeddings, the one with the highest "
               "mean validation ROC AUC over the three views (film + labs, film only, labs only)")


def view_aucs(head, X: Features, y) -> dict:
    """Validation ROC AUC of each view (temperature does not move it, so it is read before calibration)."""
    return {v: round(M.metric_fn("roc_auc")(y, predict_head(head, X.as_view(v))), 5) for v in VIEWS}


def evaluate_views(head, X: Features, y, temps: dict, thresholds: dict) -> tuple[dict, dict]:
    """Calibrated probabilities and metrics per view at the threshold given for it (fit gives all views one)."""
    probs, out = {}, {}
    for name in VIEWS:
        p = apply_temperature(predict_head(head, X.as_view(name)), temps[name])
        probs[name] = p
        out[name] = M.binary_metrics(y, p, thresholds[name])
    return probs, out


def calibrate_on_val(head, X_val: Features, y_val) -> tuple[dict, dict, dict]:
    """Per view: temperature (val log loss), before/after; then ONE threshold for every view
    (pneumo.training.threshold: Youden J on the calibrated val probabilities of all views pooled)."""
    temps, cal_probs, report = {}, {}, {}
    for name in VIEWS:
        raw = predict_head(head, X_val.as_view(name))
        temps[name] = fit_temperature(y_val, raw)
        cal_probs[name] = cal = apply_temperature(raw, temps[name])
        report[name] = {"temperature": temps[name],
                        "val_brier_before": M.binary_metrics(y_val, raw)["brier"], "val_ece_before": M.ece(y_val, raw),
                        "val_brier_after": M.binary_metrics(y_val, cal)["brier"], "val_ece_after": M.ece(y_val, cal)}
    t = single_threshold(y_val, cal_probs)
    thr = {name: t for name in VIEWS}
    for name in VIEWS:
        report[name]["threshold"] = t
    return temps, thr, report


def _portable(d):
    """A cohort description without local folder paths (a bundle travels to other machines)."""
    if isinstance(d, dict):
        return {k: _portable(v) for k, v in d.items() if k not in ("root", "cxr_root")}
    return [_portable(v) for v in d] if isinstance(d, list) else d


def _split_idx(frame, name) -> np.ndarray:
    return np.flatnonzero((frame["split"] == name).to_numpy())


def train(cohort, out: str | Path, *, image_size: int = 224, alpha: float = 0.35, backbone: str | None = None,
          intensity: str | None = None,
          head_kw: dict | None = None, epochs: int = 80, lr: float = 1e-3, batch_size: int = 64, patience: int = 10,
          class_weight: bool = True, aug_copies: int = 0, lab_noise: float = 0.3, seed: int = 0, name: str = "pneumo-fusion",
          version: str = "0.1.0", n_boot: int = 1000, timings: dict | None = None, head_seeds: int = 1, dist=None,
          log=print) -> dict:
    """Fit, calibrate, threshold, evaluate and save a bundle; returns the metrics dict (also metrics.json).

    dist: a pneumo.training.distribute.Distribution: films streamed from disk for the embeddings, the
    head trained under it; only its chief calibrates and writes the bundle (the others return the history).

    intensity: "none" | "equalize"; default = what a pretrained backbone was trained with, else "equalize".
    head_seeds: heads fitted with seeds seed, seed+1, ... on the same embeddings; the one with the highest
    mean val ROC AUC over the three views is kept (HEAD_CHOICE)."""
    import keras
    saved = bool(backbone) and backbone != "imagenet"
    info = backbone_info(backbone) if saved else {}           # the backbone's sidecar, read once
    trained_with = info.get("intensity", "none") if saved else None
    if intensity is None:
        intensity = trained_with or DEFAULT_INTENSITY
    elif trained_with is not None and intensity != trained_with:
        raise PneumoError(f"backbone {Path(str(backbone)).name} was pretrained with intensity {trained_with!r}, "
                          f"not {intensity!r}")
    if trained_with is not None:
        _check_backbone_shape(backbone, info, image_size, alpha)
    timings = dict(timings or {})
    keras.utils.set_random_seed(seed)
    head_kw = {**HEAD_DEFAULTS, **(head_kw or {})}
    if cohort.panel is None or not cohort.lab_keys:
        raise PneumoError(f"cohort {cohort.name!r} has no lab panel; the fusion model needs one (labs may be missing)")
    frame, keys = cohort.frame, cohort.lab_keys
    tr, va, te = (_split_idx(frame, s) for s in ("train", "val", "test"))
    if len(tr) == 0 or len(va) == 0 or len(np.unique(frame["label"].to_numpy()[va])) < 2:
        raise PneumoError("training needs a train split and a val split holding both classes")
    y = frame["label"].to_numpy().astype(int)

    t = time.time()
    trunk = info.get("backbone", DEFAULT_BACKBONE)
    encoder = build_image_encoder(image_size, alpha, weights=backbone, intensity=intensity, backbone=trunk)
    encoder.trainable = False
    std = LabStandardisation.fit(frame.iloc[tr][keys].to_numpy("float64"), keys)   # train rows only
    panel = cohort.panel
    if any(test.median is None for test in panel):
        panel = panel.with_medians({k: float(np.nanmedian(frame.iloc[tr][k])) for k in keys
                                    if frame.iloc[tr][k].notna().any()})
    augment = info.get("augment", "standard")
    X, aug = cohort_features(cohort, encoder, image_size, std, aug_copies, seed, log, augment, stream=dist is not None)
    timings["embed_seconds"] = round(time.time() - t, 1)

    t = time.time()
    cw = class_weights(y[tr]) if class_weight else None
    variants = [X.subset(tr)] + [Features(e[tr], l[tr], X.image_present[tr], X.labs[tr], X.lab_missing[tr])
                                 for e, l in aug]
    candidates = []
    for head_seed in range(seed, seed + max(1, int(head_seeds))):
        keras.utils.set_random_seed(head_seed)
        with distribute.collectives(dist):
            with distribute.scope(dist):
                head = build_fusion_head(len(keys), X.img_early.shape[1], X.img_late.shape[1], **head_kw)
            history = fit_head(head, variants, y[tr], X.subset(va), y[va], lr=lr, epochs=epochs,
                               batch_size=batch_size, patience=patience, class_weight=cw, lab_noise=lab_noise,
                               seed=head_seed, dist=dist, log=log)
        candidates.append((head, history, head_seed, view_aucs(head, X.subset(va), y[va])))
    head, history, head_seed, _ = max(candidates, key=lambda c: np.mean(list(c[3].values())))
    head_choice = {"rule": HEAD_CHOICE, "chosen_seed": head_seed,
                   "candidates": [{"seed": s, "epochs_run": len(h), "val_roc_auc": a} for _, h, s, a in candidates]}
    if len(candidates) > 1:
        log(f"head seed {head_seed} chosen of {len(candidates)} on val: " + "; ".join(
            f"seed {s}: " + " ".join(f"{v} {a[v]:.3f}" for v in VIEWS) for _, _, s, a in candidates))
    timings["head_seconds"] = round(time.time() - t, 1)
    if dist is not None and not dist.is_chief:
        return {"history": history}

    metrics, operating = calibrate_and_report(head, X, y, va, te, cohort, n_boot, seed, log)
    metrics["history"] = history
    metrics["head_choice"] = head_choice

    model = build_fusion_model(encoder=encoder, head=head)
    meta = {
        "name": name, "version": version, "image_size": image_size,
        "architecture": {"kind": "fusion", "image_size": image_size, "alpha": alpha, "intensity": intensity,
                         "n_tests": len(keys), "backbone": trunk,
                         "early_layer": BACKBONES[trunk], "last_conv_layer": LAST_CONV_LAYER, "head": head_kw,
                         **({"start": info["start"]} if info.get("start") else {}),
                         "backbone_init": Path(str(backbone)).name if backbone else "random",
                         "backbone_recipe": backbone_recipe(backbone, info) if saved else {}},
        "lab_panel": panel.to_dict(), "lab_standardisation": std.to_meta(), **operating,
        "training_data": _portable(cohort.description), "semi_real": bool(cohort.semi_real),
        "training": {"epochs_run": len(history), "seed": seed, "class_weight": cw, "modality_dropout": True,
                     "aug_copies": aug_copies, "augment": augment, "lab_noise": lab_noise, "lr": lr, "batch_size": batch_size,
                     "head_choice": head_choice, **({"distribution": dist.describe()} if dist else {})},
    }
    metrics["timings_seconds"] = timings
    save_with_reports(out, model, meta, metrics, cohort, image_size, log)
    log(f"bundle written to {out}")
    return metrics


def calibrate_and_report(head, X: Features, y, va, te, cohort, n_boot: int, seed: int, log) -> tuple[dict, dict]:
    """Per view: temperature and threshold on the val rows `va`, metrics on val and (when `te` is not
    empty) on test. -> (metrics.json's content so far, the bundle.json operating fields)."""
    temps, thr, cal = calibrate_on_val(head, X.subset(va), y[va])
    log("calibration on val: " + "; ".join(f"{v}: T={c['temperature']:.3f} thr={c['threshold']:.3f} "
                                            f"ECE {c['val_ece_before']:.3f}->{c['val_ece_after']:.3f}"
                                            for v, c in cal.items()))
    _, val_metrics = evaluate_views(head, X.subset(va), y[va], temps, thr)
    log("VAL " + "; ".join(f"{v}: AUC {m['roc_auc']:.4f} thr {m['threshold']:.3f}" for v, m in val_metrics.items()))
    metrics = {"cohort": _portable(cohort.description), "semi_real": bool(cohort.semi_real), "val": val_metrics,
               "calibration": cal, "threshold_rule": THRESHOLD_RULE}
    if len(te):
        metrics.update(_test_report(head, X.subset(te), y[te], temps, thr, n_boot, seed, log))
    operating = {"threshold": thr["fusion"], "threshold_rule": THRESHOLD_RULE, "temperature": temps["fusion"],
                 "views": {v: {"threshold": thr[v], "temperature": temps[v]} for v in VIEWS}}
    return metrics, operating


def save_with_reports(out, model, meta: dict, metrics: dict, cohort, image_size: int, log) -> None:
    """Save the bundle, add the framing and acquisition-change reports of the saved bundle on the
    cohort's val/test films to the metrics, and write metrics.json once."""
    save_bundle(out, model, meta)
    metrics.update(cohort_report(out, cohort, image_size, log))
    write_metrics(out, metrics)


THRESHOLD_RULE = RULE


def _test_report(head, X: Features, y, temps, thr, n_boot: int, seed: int, log) -> dict:
    probs, test = evaluate_views(head, X, y, temps, thr)
    ci = {}
    for view in ("fusion", "image_only", "labs_only"):
        ci[view] = {m: M.bootstrap_ci(y, probs[view], M.metric_fn(m, thr[view]), n=n_boot, seed=seed)
                    for m in ("roc_auc", "accuracy", "pr_auc")}
    gain = {m: M.paired_bootstrap(y, probs["fusion"], probs["image_only"], M.metric_fn(m), n=n_boot, seed=seed)
            for m in ("roc_auc", "pr_auc", "loss")}
    curves = {v: {"roc": M.roc_points(y, probs[v]), "pr": M.pr_points(y, probs[v]),
                  "calibration": M.calibration_bins(y, probs[v])} for v in ("fusion", "image_only")}
    for v, m in test.items():
        log(f"TEST {v}: AUC {m['roc_auc']:.4f} acc {m['accuracy']:.4f} sens {m['sensitivity']:.3f} "
            f"spec {m['specificity']:.3f} F1 {m['f1']:.3f} MCC {m['mcc']:.3f} (thr {m['threshold']:.3f})")
    log(f"TEST gain of labs (fusion - image only) AUC {gain['roc_auc']['diff']:+.4f} "
        f"[{gain['roc_auc']['low']:+.4f}, {gain['roc_auc']['high']:+.4f}]")
    return {"test": test, "test_ci": ci, "test_gain_labs_over_image_only": gain, "test_curves": curves,
            "test_probabilities": {v: [round(float(p), 5) for p in probs[v]] for v in probs},
            "test_labels": [int(v) for v in y]}


def _check_backbone_shape(backbone, info: dict, image_size: int, alpha: float) -> None:
    """A saved backbone must have been pretrained at this image size and width: weights of
    another size load without complaint but were tuned to other film detail."""
    name = Path(str(backbone)).name
    if info.get("size") is not None and int(info["size"]) != int(image_size):
        raise PneumoError(f"backbone {name} was pretrained at {info['size']} px, this model is {image_size} px: "
                          f"pretrain it at {image_size} (python -m pneumo pretrain --size {image_size}) "
                          f"or train at --image-size {info['size']}")
    if info.get("backbone", DEFAULT_BACKBONE) == DEFAULT_BACKBONE and info.get("alpha") is not None \
            and float(info["alpha"]) != float(alpha):
        raise PneumoError(f"backbone {name} has width alpha {info['alpha']:g}, this model {alpha:g}")
