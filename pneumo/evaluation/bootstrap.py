"""Vectorised, case-weighted binary metrics for bootstrap CIs over runs and test cases.

A bootstrap replicate of the test set is a vector of case counts (multinomial weights), so all
B replicates of a metric are one matrix product instead of B sklearn calls: the full grid's CIs
take seconds. With unit weights every metric equals its plain definition (tested against
sklearn): roc_auc = Mann-Whitney with ties 1/2, pr_auc = average precision (sklearn's step
sum), loss = mean cross-entropy with p clipped to [1e-7, 1 - 1e-7], ece = 10 equal-width bins.

CI design (hierarchical bootstrap): each replicate resamples the test cases AND the runs (with
replacement), takes each drawn run's metric on the resampled cases at that run's own threshold,
and averages over the drawn runs; the 2.5/97.5 percentiles are the 95% CI of the mean over runs.
So the interval carries both test-sampling and training (seed) variability.
"""
from __future__ import annotations

import warnings

import numpy as np

METRICS = ("accuracy", "loss", "roc_auc", "pr_auc", "f1", "mcc", "precision", "recall",
           "sensitivity", "specificity", "brier", "ece")
EPS = 1e-7
ECE_BINS = 10
CI_METHOD = ("hierarchical percentile bootstrap: each replicate resamples the test cases and the runs "
             "(with replacement) and averages the drawn runs' metrics, each at its own val threshold")


def _div(a, b, empty=np.nan):
    """a / b, `empty` where b == 0 (pneumo.evaluation.metrics gives NaN for an undefined ratio)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.divide(a, b, out=np.full(np.broadcast(a, b).shape, empty), where=b != 0)


def weighted_metrics(y: np.ndarray, p: np.ndarray, threshold: float, W: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric for each row of W (B, n) of case weights; returns {metric: (B,) array}.
    Same definitions as pneumo.evaluation.metrics.binary_metrics (undefined ratios NaN; MCC 0 when its
    denominator is 0, as sklearn; ranking metrics and MCC NaN without both classes)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    W = np.atleast_2d(np.asarray(W, dtype=float))
    pred = (p >= threshold).astype(float)
    tp, fp = W @ (y * pred), W @ ((1 - y) * pred)
    fn, tn = W @ (y * (1 - pred)), W @ ((1 - y) * (1 - pred))
    n, pos, neg = W.sum(axis=1), tp + fn, tn + fp
    out = {"accuracy": _div(tp + tn, n), "precision": _div(tp, tp + fp), "recall": _div(tp, pos),
           "specificity": _div(tn, neg), "f1": _div(2 * tp, 2 * tp + fp + fn)}
    out["sensitivity"] = out["recall"]
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    out["mcc"] = np.where((pos > 0) & (neg > 0), _div(tp * tn - fp * fn, denom, 0.0), np.nan)
    pc = np.clip(p, EPS, 1 - EPS)
    out["loss"] = _div(W @ -(y * np.log(pc) + (1 - y) * np.log(1 - pc)), n)
    out["brier"] = _div(W @ (p - y) ** 2, n)
    bins = np.minimum((p * ECE_BINS).astype(int), ECE_BINS - 1)
    onehot = np.eye(ECE_BINS)[bins]                                   # (n, bins)
    out["ece"] = _div(np.abs(W @ (onehot * (p - y)[:, None])).sum(axis=1), n)
    out.update(_ranking(y, p, W, pos, neg))
    return out


def _ranking(y, p, W, pos, neg) -> dict[str, np.ndarray]:
    """ROC AUC and average precision with tied scores grouped, as sklearn does."""
    values, group = np.unique(p, return_inverse=True)                  # ascending
    G = np.zeros((len(p), len(values)))
    G[np.arange(len(p)), group] = 1.0
    wpos, wneg = W @ (G * y[:, None]), W @ (G * (1 - y)[:, None])      # (B, groups)
    below = np.cumsum(wneg, axis=1) - wneg
    auc = _div((wpos * (below + 0.5 * wneg)).sum(axis=1), pos * neg)
    tp_c = np.cumsum(wpos[:, ::-1], axis=1)                            # descending thresholds
    fp_c = np.cumsum(wneg[:, ::-1], axis=1)
    precision = _div(tp_c, tp_c + fp_c)
    ap = _div((wpos[:, ::-1] * precision).sum(axis=1), pos)           # sum dR * P
    undefined = (pos <= 0) | (neg <= 0)
    return {"roc_auc": np.where(undefined, np.nan, auc), "pr_auc": np.where(pos <= 0, np.nan, ap)}


def point_metrics(y, p, threshold) -> dict[str, float]:
    """The metrics of one run on all its cases: pneumo.evaluation.metrics.binary_metrics, the one definition."""
    from pneumo.evaluation.metrics import binary_metrics
    return binary_metrics(y, p, threshold)


def youden_threshold(y, p) -> float:
    """Youden's J threshold, as pneumo.evaluation.metrics chooses it (the bundle's rule too)."""
    from pneumo.evaluation.metrics import youden_threshold as youden
    return youden(y, p)


def case_weights(n_cases: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_cases) multinomial counts: each row is one bootstrap resample of the cases."""
    return rng.multinomial(n_cases, np.full(n_cases, 1.0 / n_cases), size=n_boot).astype(float)


def per_run_replicates(y, probs, thresholds, W) -> dict[str, np.ndarray]:
    """{metric: (runs, B)} - each run's metric on each case resample."""
    reps = [weighted_metrics(y, p, t, W) for p, t in zip(probs, thresholds)]
    return {m: np.stack([r[m] for r in reps]) for m in METRICS}


def mean_over_drawn_runs(reps: np.ndarray, run_draws: np.ndarray) -> np.ndarray:
    """(B,) mean of each replicate's drawn runs; reps (runs, B), run_draws (B, k) run indices."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a replicate where a metric is undefined in every drawn run
        return np.nanmean(reps[run_draws, np.arange(reps.shape[1])[:, None]], axis=1)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return None, None
    lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
