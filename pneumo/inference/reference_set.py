"""A bundle's reference set: what the Predictor compares each case with.

`reference.npz` beside the weights holds (a) the embedding gate of pneumo.inference.validity, fitted on
the training films' embeddings with thresholds from the validation films, and (b) the SHAP
background: training lab panels (raw values, NaN = not measured). Its sha256 is recorded in
bundle.json["weights"], so it is verified on load like the weights. Built by pneumo.training.reference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumo.inference.validity import EmbeddingGate
from pneumo.models.bundle import update_meta

REFERENCE_FILE = "reference.npz"


def gate_features(early: np.ndarray, late: np.ndarray) -> np.ndarray:
    """What the gate measures: both image embeddings. The early one (low-level texture and
    intensity statistics) separates photos, text and noise from films far better than the
    late one alone, which only knows pneumonia vs normal."""
    return np.concatenate([np.atleast_2d(early), np.atleast_2d(late)], axis=1)


def write_reference(bundle_dir, train_emb: np.ndarray, val_emb: np.ndarray,
                    background: np.ndarray) -> Path:
    """Fit the gate on gate_features of the training films (thresholds from the validation
    films), save it with the SHAP background, record the digest in bundle.json."""
    bundle_dir = Path(bundle_dir)
    gate = EmbeddingGate.fit(train_emb, val_emb)
    path = bundle_dir / REFERENCE_FILE
    np.savez(path, background=np.asarray(background, np.float32), **gate.to_arrays())
    update_meta(bundle_dir, verified_file=REFERENCE_FILE, reference={
        "gate": "Mahalanobis distance of [img_early, img_late] in a 32-axis PCA of the training films, "
                "and the residual norm off those axes; for each, warn above the 99th percentile of "
                "validation films, refuse beyond 1.5x the largest validation value",
        "warn_at": gate.warn_at, "refuse_at": gate.refuse_at,
        "residual_warn_at": gate.residual_warn_at, "residual_refuse_at": gate.residual_refuse_at,
        "n_train": int(len(train_emb)), "n_val": int(len(val_emb)), "shap_background": int(len(background))})
    return path


def read_reference(bundle_dir) -> tuple[EmbeddingGate | None, np.ndarray | None]:
    path = Path(bundle_dir) / REFERENCE_FILE
    if not path.is_file():
        return None, None
    with np.load(path, allow_pickle=False) as z:
        return EmbeddingGate.from_arrays(z), np.asarray(z["background"], np.float32)
