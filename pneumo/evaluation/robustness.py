"""Does the answer depend on how the film was framed or exposed? Field-of-view sensitivity,
and a wider set of acquisition changes (wider framing, off-centre, rotation, exposure, noise,
JPEG recompression, lower resolution).

Kermany's pneumonia films are, on the whole, framed more tightly on the lungs than its normal
films, so a network can learn "tight framing = pneumonia". This check centre-crops every film
to a fraction of its side, resizes it back, and reads the image-only answer at the bundle's
own image-only temperature and threshold: a framing-robust model keeps its specificity.

The wider set (`perturbations`) applies each change a real film can carry to every film and
reports the same image-only metrics, so a reader sees which changes the model tolerates.

    python -m pneumo robustness --bundle models/pneumo-fusion [--split val] [--json] [--all]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumo import config
from pneumo.data.cohorts import kermany
from pneumo.data.image_cache import load_images
from pneumo.errors import PneumoError
from pneumo.models.bundle import load_bundle, read_meta, read_metrics, write_metrics
from pneumo.models.calibration import apply_temperature

FRACTIONS = (1.0, 0.85, 0.7)


def centre_crop(images: np.ndarray, fraction: float) -> np.ndarray:
    """(n, S, S, 1) in [0, 1] -> the central `fraction` of each side, resized back to S x S."""
    if not 0.1 <= fraction <= 1.0:
        raise PneumoError(f"crop fraction must be in [0.1, 1], got {fraction}")
    images = _square(images)
    s = images.shape[1]
    c = int(round(s * fraction))
    if c >= s:
        return images
    o = (s - c) // 2
    return _resized(images[:, o:o + c, o:o + c], s)


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    import tensorflow as tf
    return np.clip(tf.image.resize(images, (size, size), antialias=True).numpy(), 0.0, 1.0)


def _square(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, "float32")
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise PneumoError(f"expected square images (n, S, S, 1), got shape {images.shape}")
    return images


def corner_crop(images: np.ndarray, fraction: float, corner: str) -> np.ndarray:
    """An off-centre crop: `fraction` of each side anchored at a corner ('tl' or 'br'), resized
    back: the patient off the middle of the detector."""
    images = _square(images)
    s = images.shape[1]
    c = int(round(s * fraction))
    if corner not in ("tl", "br") or not 0.1 <= fraction <= 1.0:
        raise PneumoError(f"corner crop needs a fraction in [0.1, 1] and a corner tl/br, got {fraction}, {corner!r}")
    o = 0 if corner == "tl" else s - c
    return _resized(images[:, o:o + c, o:o + c], s)


def zoom_out(images: np.ndarray, fraction: float) -> np.ndarray:
    """Wider framing: the film shrunk to `fraction` of its side in a black border (collimation,
    a larger detector), the opposite of centre_crop."""
    images = _square(images)
    if not 0.3 <= fraction <= 1.0:
        raise PneumoError(f"zoom-out fraction must be in [0.3, 1], got {fraction}")
    s = images.shape[1]
    c = int(round(s * fraction))
    out = np.zeros_like(images)
    o = (s - c) // 2
    out[:, o:o + c, o:o + c] = _resized(images, c)
    return out


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Each film turned by `degrees` about its centre, corners filled black (a rotated patient)."""
    from scipy import ndimage
    images = _square(images)
    return np.clip(ndimage.rotate(images, degrees, axes=(1, 2), reshape=False, order=1, mode="constant",
                                  cval=0.0), 0.0, 1.0).astype("float32")


def gamma(images: np.ndarray, g: float) -> np.ndarray:
    """Exposure: intensities raised to the power g (g < 1 brighter, > 1 darker)."""
    return np.power(_square(images).clip(0.0, 1.0), g).astype("float32")


def noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Quantum noise: Gaussian noise of sd `sigma` (of the full range), fixed seed."""
    images = _square(images)
    rng = np.random.default_rng(seed)
    return (images + rng.normal(0.0, sigma, images.shape).astype("float32")).clip(0.0, 1.0)


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """Each film saved as a JPEG at `quality` (1-95) and read back: a film that was exported,
    e-mailed or photographed on the way (block artefacts, lost fine texture)."""
    import io

    from PIL import Image
    images = _square(images)
    if not 1 <= quality <= 95:
        raise PneumoError(f"JPEG quality must be in [1, 95], got {quality}")
    out = np.empty_like(images)
    for i, film in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(np.round(film[..., 0].clip(0, 1) * 255).astype("uint8")).save(buf, "JPEG", quality=quality)
        out[i, ..., 0] = np.asarray(Image.open(buf), "float32") / 255.0
    return out


def coarser(images: np.ndarray, factor: float) -> np.ndarray:
    """Lower resolution: each film shrunk to `factor` of its side and enlarged back (a coarser
    detector, or an original that was small to begin with)."""
    images = _square(images)
    if not 0.1 <= factor <= 1.0:
        raise PneumoError(f"resolution factor must be in [0.1, 1], got {factor}")
    s = images.shape[1]
    return _resized(_resized(images, max(int(round(s * factor)), 1)), s)


PERTURBATIONS = {
    "as given": lambda x: x,
    "tighter framing (central 85%)": lambda x: centre_crop(x, 0.85),
    "wider framing (film at 85% in a black border)": lambda x: zoom_out(x, 0.85),
    "off-centre (85%, top-left)": lambda x: corner_crop(x, 0.85, "tl"),
    "off-centre (85%, bottom-right)": lambda x: corner_crop(x, 0.85, "br"),
    "rotated +10°": lambda x: rotate(x, 10.0),
    "rotated -10°": lambda x: rotate(x, -10.0),
    "brighter (gamma 0.7)": lambda x: gamma(x, 0.7),
    "darker (gamma 1.4)": lambda x: gamma(x, 1.4),
    "noisier (Gaussian, sd 0.03)": lambda x: noise(x, 0.03),
    "recompressed (JPEG quality 20)": lambda x: jpeg(x, 20),
    "coarser (half resolution)": lambda x: coarser(x, 0.5),
}
"""Acquisition changes a real film can carry, each mild enough that a reader still reads the film."""


def _image_only_metrics(bundle, images, y, temperature, threshold) -> dict:
    from pneumo.evaluation import metrics as M
    p = apply_temperature(bundle.predict_proba(images, None, calibrated=False), temperature)
    m = M.binary_metrics(y, p, threshold)
    return {"specificity": m["specificity"], "sensitivity": m["sensitivity"], "roc_auc": m["roc_auc"],
            "accuracy": m["accuracy"], "normal_median_p": float(np.median(p[y == 0])),
            "pneumonia_median_p": float(np.median(p[y == 1]))}


def _per_change(bundle, images: np.ndarray, labels, changes: dict, key: str, what: str) -> dict:
    """Image-only metrics of each changed copy of the films (name -> images -> images), at the
    bundle's image-only calibration and threshold, under report[key]."""
    y = np.asarray(labels).astype(int)
    if len(y) != len(images) or len(np.unique(y)) < 2:
        raise PneumoError(f"the {what} check needs images of both classes, one label each")
    temperature, threshold = bundle.calibration_for("image_only")
    rows = {name: _image_only_metrics(bundle, fn(images), y, temperature, threshold) for name, fn in changes.items()}
    return {"view": "image_only", "threshold": threshold, "n": int(len(y)), "n_pos": int(y.sum()), key: rows}


def perturbations(bundle, images: np.ndarray, labels, changes: dict | None = None) -> dict:
    """Image-only metrics per acquisition change (PERTURBATIONS); `changes` replaces the set."""
    return _per_change(bundle, images, labels, changes or PERTURBATIONS, "changes", "perturbation")


def perturbation_rows(report: dict) -> list[dict]:
    """One display row per change (for the model card), with the AUC change from 'as given'."""
    base = next(iter(report["changes"].values()))["roc_auc"]
    return [{"film": name, "specificity": round(r["specificity"], 3), "sensitivity": round(r["sensitivity"], 3),
             "accuracy": round(r["accuracy"], 3), "ROC AUC": round(r["roc_auc"], 3),
             "AUC change": round(r["roc_auc"] - base, 3)} for name, r in report["changes"].items()]


def perturbation_lines(report: dict) -> str:
    return "\n".join(f"{name:48s} spec {r['specificity']:.3f} sens {r['sensitivity']:.3f} "
                     f"acc {r['accuracy']:.3f} AUC {r['roc_auc']:.4f}" for name, r in report["changes"].items())


def field_of_view(bundle, images: np.ndarray, labels, fractions=FRACTIONS) -> dict:
    """Image-only metrics per centre-crop fraction, at the bundle's image-only calibration and threshold."""
    crops = {f"{f:g}": (lambda x, f=f: centre_crop(x, f)) for f in fractions}
    report = _per_change(bundle, images, labels, crops, "fractions", "field-of-view")
    report["crop"] = "centre square of the given fraction of the side, resized back"
    return report


def split_films(frame, split: str, size: int):
    """(images (n, S, S, 1) in [0, 1], labels) of one split's films, each once, through the one
    preprocessing; None when the split lacks films of both classes."""
    rows = frame[(frame["split"] == split) & frame["image_path"].notna()].drop_duplicates("image_path")
    if rows["label"].nunique() < 2:
        return None
    x = load_images(rows["image_path"].astype(str).tolist(), size, log=lambda s: None)
    return x[..., None].astype("float32") / 255.0, rows["label"].to_numpy().astype(int)


def kermany_split(split: str, size: int):
    """split_films of the Kermany cohort (carved val, official test)."""
    films = split_films(kermany.load().frame, split, size)
    if films is None:
        raise PneumoError(f"Kermany's {split!r} split holds no films of both classes")
    return films


def cohort_report(bundle_dir, cohort, image_size: int, log=print) -> dict:
    """{val,test}_field_of_view and {val,test}_perturbations of a saved bundle on a cohort's films."""
    bundle, report = load_bundle(bundle_dir), {}
    for split in ("val", "test"):
        films = split_films(cohort.frame, split, image_size)
        if films is not None:
            report[f"{split}_field_of_view"] = field_of_view(bundle, *films)
            log(f"{split.upper()} " + summary_line(report[f"{split}_field_of_view"]))
            report[f"{split}_perturbations"] = perturbations(bundle, *films)
            log(f"{split.upper()} acquisition changes:\n" + perturbation_lines(report[f"{split}_perturbations"]))
    return report


def write_report(bundle_dir) -> dict:
    """Recompute the framing and acquisition reports of a Kermany-trained bundle on Kermany's
    films and add them to its metrics.json (which the weights' sha256 does not cover)."""
    folder = Path(bundle_dir) if bundle_dir is not None else config.default_model_dir()
    size = int(read_meta(folder)["image_size"])   # the model itself is loaded once, by cohort_report
    metrics = read_metrics(folder)
    metrics.update(cohort_report(folder, kermany.load(), size, log=lambda s: None))
    write_metrics(folder, metrics)
    return metrics


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
