"""The metric suite: threshold metrics, ranking metrics, calibration, bootstrap CIs, curves.

Everything takes plain arrays (y in {0,1}, p = P(pneumonia)) and returns plain floats/lists,
so results serialise to JSON as they are."""
from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn import metrics as skm

EPS = 1e-7


def _check(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype="float64").ravel()
    if y.shape != p.shape:
        raise ValueError(f"y and p differ in length: {y.shape[0]} vs {p.shape[0]}")
    if not np.all(np.isfinite(p)) or p.min(initial=0) < 0 or p.max(initial=1) > 1:
        raise ValueError("probabilities must be finite and in [0, 1]")
    return y, p


def ece(y, p, n_bins: int = 10) -> float:
    """Expected calibration error: |mean p - observed rate| weighted over equal-width bins."""
    y, p = _check(y, p)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            total += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(total)


def _safe(fn, *a, **kw) -> float:
    try:
        return float(fn(*a, **kw))
    except ValueError:   # one class only: ranking metrics are undefined
        return float("nan")


def binary_metrics(y, p, threshold: float = 0.5) -> dict:
    """accuracy, loss, roc_auc, pr_auc, f1, mcc, precision, recall, sensitivity, specificity,
    brier, ece (10 bins), with n / n_pos / threshold for the record. Predicted 1 where p >= threshold."""
    y, p = _check(y, p)
    pred = (p >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum()); tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum()); fn = int(((pred == 0) & (y == 1)).sum())
    div = lambda a, b: float(a / b) if b else float("nan")
    precision, recall = div(tp, tp + fp), div(tp, tp + fn)
    pc = np.clip(p, EPS, 1 - EPS)
    return {
        "n": int(len(y)), "n_pos": int(y.sum()), "threshold": float(threshold),
        "accuracy": div(tp + tn, len(y)),
        "loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
        "roc_auc": _safe(skm.roc_auc_score, y, p),
        "pr_auc": _safe(skm.average_precision_score, y, p),
        "f1": div(2 * tp, 2 * tp + fp + fn),
        "mcc": float(skm.matthews_corrcoef(y, pred)) if len(np.unique(y)) > 1 else float("nan"),
        "precision": precision, "recall": recall, "sensitivity": recall,
        "specificity": div(tn, tn + fp),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": ece(y, p),
        "tp": tp, "tn": tn, "fp": fp, "fn": fn,
    }


def metric_fn(name: str, threshold: float = 0.5) -> Callable[[np.ndarray, np.ndarray], float]:
    """A (y, p) -> float callable for one key of binary_metrics (for bootstrap_ci)."""
    if name == "roc_auc":
        return lambda y, p: _safe(skm.roc_auc_score, y, p)
    if name == "pr_auc":
        return lambda y, p: _safe(skm.average_precision_score, y, p)
    return lambda y, p: binary_metrics(y, p, threshold)[name]


def bootstrap_ci(y, p, metric_fn: Callable, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Case-resampling bootstrap: {estimate, low, high, n} (percentile interval, 1 - alpha)."""
    y, p = np.asarray(y).astype(int), np.asarray(p, dtype="float64")
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        v = metric_fn(y[idx], p[idx])
        if np.isfinite(v):
            stats.append(v)
    lo, hi = (np.quantile(stats, [alpha / 2, 1 - alpha / 2]) if stats else (np.nan, np.nan))
    return {"estimate": float(metric_fn(y, p)), "low": float(lo), "high": float(hi), "n": len(stats)}


def paired_bootstrap(y, p_a, p_b, metric_fn: Callable, n: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """metric(a) - metric(b) on the same resampled cases: {diff, low, high, p_le_0} (p_le_0: share
    of resamples where a is not better, a one-sided bootstrap p-value)."""
    y = np.asarray(y).astype(int)
    p_a, p_b = np.asarray(p_a, "float64"), np.asarray(p_b, "float64")
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        d = metric_fn(y[idx], p_a[idx]) - metric_fn(y[idx], p_b[idx])
        if np.isfinite(d):
            diffs.append(d)
    diffs = np.asarray(diffs)
    lo, hi = (np.quantile(diffs, [alpha / 2, 1 - alpha / 2]) if len(diffs) else (np.nan, np.nan))
    return {"diff": float(metric_fn(y, p_a) - metric_fn(y, p_b)), "low": float(lo), "high": float(hi),
            "p_le_0": float(np.mean(diffs <= 0)) if len(diffs) else float("nan"), "n": int(len(diffs))}


def youden_threshold(y, p) -> float:
    """The threshold maximising sensitivity + specificity - 1 (Youden's J) on (y, p)."""
    y, p = _check(y, p)
    fpr, tpr, thr = skm.roc_curve(y, p)
    j = tpr - fpr
    best = int(np.argmax(j))
    return float(min(max(thr[best], 0.0), 1.0))   # roc_curve's first threshold is inf


def roc_points(y, p, max_points: int = 200) -> dict:
    fpr, tpr, thr = skm.roc_curve(*_check(y, p))
    keep = _thin(len(fpr), max_points)
    return {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist(),
            "threshold": np.minimum(thr[keep], 1.0).tolist()}


def pr_points(y, p, max_points: int = 200) -> dict:
    prec, rec, thr = skm.precision_recall_curve(*_check(y, p))
    thr = np.append(thr, 1.0)
    keep = _thin(len(prec), max_points)
    return {"precision": prec[keep].tolist(), "recall": rec[keep].tolist(), "threshold": thr[keep].tolist()}


def calibration_bins(y, p, n_bins: int = 10) -> dict:
    """Per equal-width bin: mean predicted, observed rate, count (empty bins left out)."""
    y, p = _check(y, p)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = {"mean_predicted": [], "observed": [], "count": [], "bin_low": []}
    for b in range(n_bins):
        m = bins == b
        if m.any():
            out["mean_predicted"].append(float(p[m].mean()))
            out["observed"].append(float(y[m].mean()))
            out["count"].append(int(m.sum()))
            out["bin_low"].append(b / n_bins)
    return out


def _thin(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))
