"""Temperature scaling on the logit of p, fitted on validation: p' = sigmoid(logit(p) / T).

One parameter, so it cannot reorder cases (ROC AUC unchanged) and barely overfits a small
validation set; T > 1 softens an overconfident model."""
from __future__ import annotations

import numpy as np

EPS = 1e-6


def logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(p, temperature: float) -> np.ndarray:
    """Calibrated probabilities for raw probabilities p."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature}")
    return 1.0 / (1.0 + np.exp(-logit(p) / float(temperature)))


def fit_temperature(y, p, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """T minimising the log loss of sigmoid(logit(p) / T) on (y, p) — searched on log T."""
    from scipy.optimize import minimize_scalar   # ~0.5 s to import: only fitting needs it, not predict

    y = np.asarray(y, dtype="float64").ravel()
    z = logit(p).ravel()
    if len(np.unique(y)) < 2:
        return 1.0   # one class: nothing to calibrate against

    def nll(log_t: float) -> float:
        q = np.clip(1.0 / (1.0 + np.exp(-z / np.exp(log_t))), 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    res = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(res.x))
