"""A bundle's reference set: what the Predictor compares each case with.

`reference.npz` beside the weights holds (a) the embedding gate of pneumo.inference.validity, fitted on
the training films' embeddings with thresholds from the validation films, and (b) the SHAP
background: training lab panels (raw values, NaN = not measured). Its sha256 is recorded in
bundle.json["weights"], so it is verified on load like the weights. Written by pneumo.training.reference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumo.inference.validity import EmbeddingGate

REFERENCE_FILE = "reference.npz"


def gate_features(early: np.ndarray, late: np.ndarray) -> np.ndarray:
    """What the gate measures: both image embeddings. The early one (low-level texture and
    intensity statistics) separates photos, text and noise from films far better than the
    late one alone, which only knows pneumonia vs normal."""
    return np.concatenate([np.atleast_2d(early), np.atleast_2d(late)], axis=1)


def read_reference(bundle_dir) -> tuple[EmbeddingGate | None, np.ndarray | None]:
    path = Path(bundle_dir) / REFERENCE_FILE
    if not path.is_file():
        return None, None
    with np.load(path, allow_pickle=False) as z:
        return EmbeddingGate.from_arrays(z), np.asarray(z["background"], np.float32)
