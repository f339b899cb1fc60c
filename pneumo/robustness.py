"""Does the answer depend on how tightly the film is framed? Field-of-view sensitivity.

Kermany's pneumonia films are, on the whole, framed more tightly on the lungs than its normal
films, so a network can learn "tight framing = pneumonia". This check centre-crops every film
to a fraction of its side, resizes it back, and reads the image-only answer at the bundle's
own image-only temperature and threshold: a framing-robust model keeps its specificity.

    python -m pneumo.robustness --bundle models/pneumo-fusion [--split val] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from pneumo.errors import PneumoError

FRACTIONS = (1.0, 0.85, 0.7)


def centre_crop(images: np.ndarray, fraction: float) -> np.ndarray:
    """(n, S, S, 1) in [0, 1] -> the central `fraction` of each side, resized back to S x S."""
    images = np.asarray(images, "float32")
    if not 0.1 <= fraction <= 1.0:
        raise PneumoError(f"crop fraction must be in [0.1, 1], got {fraction}")
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise PneumoError(f"expected square images (n, S, S, 1), got shape {images.shape}")
    s = images.shape[1]
    c = int(round(s * fraction))
    if c >= s:
        return images
    import tensorflow as tf
    o = (s - c) // 2
    return np.clip(tf.image.resize(images[:, o:o + c, o:o + c], (s, s), antialias=True).numpy(), 0.0, 1.0)


def field_of_view(bundle, images: np.ndarray, labels, fractions=FRACTIONS) -> dict:
    """Image-only metrics per crop fraction, at the bundle's image-only calibration and threshold."""
    from pneumo import metrics as M
    from pneumo.calibration import apply_temperature
    y = np.asarray(labels).astype(int)
    if len(y) != len(images) or len(np.unique(y)) < 2:
        raise PneumoError("field-of-view check needs images of both classes, one label each")
    temperature, threshold = bundle.calibration_for("image_only")
    rows = {}
    for f in fractions:
        p = apply_temperature(bundle.predict_proba(centre_crop(images, f), None, calibrated=False), temperature)
        m = M.binary_metrics(y, p, threshold)
        rows[f"{f:g}"] = {"specificity": m["specificity"], "sensitivity": m["sensitivity"], "roc_auc": m["roc_auc"],
                          "normal_median_p": float(np.median(p[y == 0])),
                          "pneumonia_median_p": float(np.median(p[y == 1]))}
    return {"view": "image_only", "threshold": threshold, "n": int(len(y)), "n_pos": int(y.sum()),
            "crop": "centre square of the given fraction of the side, resized back", "fractions": rows}


def split_films(frame, split: str, size: int):
    """(images (n, S, S, 1) in [0, 1], labels) of one split's films, each once, through the one
    preprocessing; None when the split lacks films of both classes."""
    from pneumo.train import load_images
    rows = frame[(frame["split"] == split) & frame["image_path"].notna()].drop_duplicates("image_path")
    if rows["label"].nunique() < 2:
        return None
    x = load_images(rows["image_path"].astype(str).tolist(), size, log=lambda s: None)
    return x[..., None].astype("float32") / 255.0, rows["label"].to_numpy().astype(int)


def kermany_split(split: str, size: int):
    """split_films of the Kermany cohort (carved val, official test)."""
    from pneumo.cohorts import kermany
    films = split_films(kermany.load().frame, split, size)
    if films is None:
        raise PneumoError(f"Kermany's {split!r} split holds no films of both classes")
    return films


def cohort_report(bundle_dir, cohort, image_size: int, log=print) -> dict:
    """{val,test}_field_of_view of a saved bundle on a cohort's films."""
    from pneumo.bundle import load_bundle
    bundle, report = load_bundle(bundle_dir), {}
    for split in ("val", "test"):
        films = split_films(cohort.frame, split, image_size)
        if films is not None:
            report[f"{split}_field_of_view"] = field_of_view(bundle, *films)
            log(f"{split.upper()} " + summary_line(report[f"{split}_field_of_view"]))
    return report


def framing_rows(report: dict) -> list[dict]:
    """One display row per crop fraction (for the model card)."""
    return [{"film shown": f"central {float(f) * 100:.0f}% of each side", "specificity": round(r["specificity"], 3),
             "sensitivity": round(r["sensitivity"], 3), "ROC AUC": round(r["roc_auc"], 3),
             "median P(pneumonia), normal films": round(r["normal_median_p"], 3)}
            for f, r in report["fractions"].items()]


def summary_line(report: dict) -> str:
    parts = [f"crop {f}: spec {r['specificity']:.3f} sens {r['sensitivity']:.3f} AUC {r['roc_auc']:.4f} "
             f"normal median P {r['normal_median_p']:.3f}" for f, r in report["fractions"].items()]
    return f"field of view ({report['n']} films, threshold {report['threshold']:.3f}): " + "; ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pneumo.robustness", description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped model)")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        from pneumo.bundle import load_bundle
        bundle = load_bundle(a.bundle)
        report = field_of_view(bundle, *kermany_split(a.split, bundle.image_size))
    except PneumoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report["split"] = a.split
    print(json.dumps(report, indent=1) if a.json else summary_line(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
