"""Choose the one operating threshold that pneumo.inference.decision_rule applies: Youden's J on
the calibrated validation probabilities of every view pooled (each case once per view)."""
from __future__ import annotations

import numpy as np

from pneumo.models.features import VIEWS


def single_threshold(y: np.ndarray, probabilities: dict[str, np.ndarray]) -> float:
    """The one operating threshold: Youden's J on the validation cases of every view pooled."""
    from pneumo.evaluation import metrics as M  # scikit-learn, needed only when a model is trained
    views = [v for v in VIEWS if v in probabilities]
    if not views:
        raise ValueError("no view's validation probabilities to choose a threshold on")
    y_all = np.concatenate([np.asarray(y) for _ in views])
    p_all = np.concatenate([np.asarray(probabilities[v], np.float64) for v in views])
    return float(M.youden_threshold(y_all, p_all))
