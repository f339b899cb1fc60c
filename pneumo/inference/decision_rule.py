"""One decision rule for every case: PNEUMONIA when the calibrated probability reaches one
operating threshold, whatever the case holds (film and labs, film only, labs only).

Each view keeps its own validation temperature, so a probability means the same in every view;
one threshold on those probabilities means adding a lab value can move the label only the way it
moves the probability. The threshold maximises Youden's J (sensitivity + specificity - 1) on the
validation cases read all three ways at once (each case once per view)."""
from __future__ import annotations

import numpy as np

from pneumo.models.features import VIEWS

NEAR_THRESHOLD = 0.10     # |p - threshold| below this reads "near threshold"
RULE = ("one threshold for every case: PNEUMONIA when the calibrated probability is at least the "
        "threshold; it maximises Youden's J (sensitivity + specificity - 1) on the validation cases, each read as film "
        "and labs, film only and labs only (every view calibrated on validation by its own temperature)")


def single_threshold(y: np.ndarray, probabilities: dict[str, np.ndarray]) -> float:
    """The one operating threshold: Youden's J on the validation cases of every view pooled."""
    from pneumo.evaluation import metrics as M  # scikit-learn, needed only when a model is trained
    views = [v for v in VIEWS if v in probabilities]
    if not views:
        raise ValueError("no view's validation probabilities to choose a threshold on")
    y_all = np.concatenate([np.asarray(y) for _ in views])
    p_all = np.concatenate([np.asarray(probabilities[v], np.float64) for v in views])
    return float(M.youden_threshold(y_all, p_all))


def label_of(probability: float, threshold: float) -> str:
    """The rule itself, in one place."""
    return "PNEUMONIA" if probability >= threshold else "NORMAL"


def band_of(probability: float, threshold: float, *, has_warning: bool, members_agree: bool) -> str:
    """How much to trust the label, worst first: caution (a warning fired), members disagree
    (the ensemble straddles the threshold), near threshold, clear. Never clear with a warning."""
    if has_warning:
        return "caution"
    if not members_agree:
        return "members disagree"
    return "near threshold" if abs(probability - threshold) < NEAR_THRESHOLD else "clear"
