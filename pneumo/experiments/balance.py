"""ADASYN for a two-modality cohort, and inverse-frequency class weights.

ADASYN (He et al. 2008, via imbalanced-learn) runs on the TRAIN lab rows only, standardised the
one way every model reads them (pneumo.data.labs.standardisation: train mean/sd, a missing value
at the train mean), so distances are not dominated by a test's unit. A synthetic row lies on the segment between a
minority "base" case and one of its minority neighbours; it gets the base case's image (and so
its cached image embedding) - the base is the case the synthetic row was generated from.

Seed recovery: imbalanced-learn does not return which case each synthetic row came from, so it
is re-derived: the generation step is replayed with the same random_state and must reproduce
every synthetic row bit for bit ("rederived": base and neighbour exact). Should a future
imbalanced-learn generate differently, each synthetic point is instead projected onto every
minority segment; the segment at distance ~0 is the generating one and its NEARER endpoint is
taken as the base ("projection"; exact up to ties between identical lab rows).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pneumo.data.labs.standardisation import LabStandardisation
from pneumo.errors import PneumoError
from pneumo.models.features import class_weights

REGIMES = ("imbalanced", "adasyn", "class_weight")


class BalanceError(PneumoError):
    """A training set that ADASYN cannot balance (too few minority cases, no class overlap)."""


@dataclass
class Resampled:
    """ADASYN output on a standardised matrix: the synthetic rows and where each came from."""

    X_new: np.ndarray         # (m, k) synthetic rows (standardised space)
    base: np.ndarray          # (m,) row index (into the input X) of the generating minority case
    neighbour: np.ndarray     # (m,) row index of the minority neighbour it was drawn towards
    step: np.ndarray          # (m,) position on the segment base -> neighbour, in [0, 1]
    method: str               # "rederived" | "projection"
    max_error: float          # largest distance between a synthetic row and its recovered segment


def sample_weights(y: np.ndarray) -> np.ndarray:
    weights = class_weights(y)
    return np.array([weights[int(v)] for v in y], dtype=np.float64)


def adasyn(X: np.ndarray, y: np.ndarray, *, random_state: int = 0, n_neighbors: int = 5) -> Resampled:
    """Run imbalanced-learn's ADASYN on (X, y) (minority = label 1) and recover each synthetic
    row's base and neighbour. X must be complete (impute first)."""
    from imblearn.over_sampling import ADASYN

    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y).astype(int)
    if np.isnan(X).any():
        raise BalanceError("ADASYN needs complete rows: impute missing labs first")
    n_min = int((y == 1).sum())
    if n_min < 2 or n_min >= (y == 0).sum():
        raise BalanceError(f"ADASYN needs 2 <= minority < majority, got {n_min} vs {int((y == 0).sum())}")
    k = min(n_neighbors, n_min - 1)   # a neighbour must be another minority case
    sampler = ADASYN(sampling_strategy="minority", n_neighbors=k, random_state=random_state)
    try:
        X_res, _ = sampler.fit_resample(X, y)
    except (RuntimeError, ValueError) as err:
        raise BalanceError(f"ADASYN could not balance this training set: {str(err).splitlines()[0]}") from None
    X_new = X_res[len(X):]
    found = _rederive(X, y, X_new, k, random_state)
    return found if found is not None else _project(X, y, X_new)


def _rederive(X, y, X_new, k, random_state) -> Resampled | None:
    """Replay imblearn's generation step (same random_state, same draws); None unless it
    reproduces X_new exactly."""
    from sklearn.neighbors import NearestNeighbors
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    minority = np.flatnonzero(y == 1)
    X_class = X[minority]
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    nns = nn.kneighbors(X_class, return_distance=False)[:, 1:]
    ratio = np.sum(y[nns] != 1, axis=1) / k
    if not ratio.sum():
        return None
    n_target = int((y == 0).sum() - (y == 1).sum())
    counts = np.rint(ratio / ratio.sum() * n_target).astype(int)
    if counts.sum() != len(X_new):
        return None
    nns = NearestNeighbors(n_neighbors=k + 1).fit(X_class).kneighbors(X_class, return_distance=False)[:, 1:]
    rows = np.repeat(np.arange(len(minority)), counts)
    cols = rng.choice(k, size=len(rows))
    steps = rng.uniform(size=(len(rows), 1))
    neighbour = nns[rows, cols]
    replay = X_class[rows] + steps * (X_class[neighbour] - X_class[rows])
    if replay.shape != X_new.shape or not np.array_equal(replay, X_new):
        return None
    return Resampled(X_new, minority[rows], minority[neighbour], steps[:, 0], "rederived", 0.0)


def _project(X, y, X_new) -> Resampled:
    """Fallback: the minority segment nearest each synthetic row; its nearer endpoint is the base."""
    minority = np.flatnonzero(y == 1)
    P = X[minority]
    i, j = np.triu_indices(len(P), k=1)
    A, D = P[i], P[j] - P[i]                                   # segments A + t D, t in [0, 1]
    dd = np.einsum("sk,sk->s", D, D)
    base, neighbour, step, err = [], [], [], []
    for s in X_new:
        t = np.einsum("sk,sk->s", D, s - A)
        t = np.clip(np.divide(t, dd, out=np.zeros_like(t), where=dd > 0), 0, 1)
        dist = np.linalg.norm(A + t[:, None] * D - s, axis=1)
        best = int(np.argmin(dist))
        near_a = t[best] <= 0.5
        base.append(minority[i[best]] if near_a else minority[j[best]])
        neighbour.append(minority[j[best]] if near_a else minority[i[best]])
        step.append(t[best] if near_a else 1 - t[best])
        err.append(dist[best])
    return Resampled(X_new, np.array(base, int), np.array(neighbour, int), np.array(step), "projection",
                     float(max(err, default=0.0)))


def balance_train(frame: pd.DataFrame, lab_keys: list[str], *, seed: int = 0,
                  n_neighbors: int = 5) -> tuple[pd.DataFrame, dict]:
    """ADASYN-balance the train split of a cohort frame; val and test rows pass through untouched.

    Synthetic rows: case_id "<base case_id>#syn<n>", the base case's image_path and patient_id,
    label 1, split "train", lab values interpolated (original units; NaN where both endpoints
    were missing, so the model imputes them as it would a real gap), is_synthetic True and
    seed_case_id = the base case_id (whose image embedding they carry). Real rows get
    is_synthetic False and seed_case_id = their own case_id. Returns (frame, report)."""
    if "split" not in frame or "label" not in frame:
        raise BalanceError("balance_train needs a cohort frame with split and label columns")
    if not lab_keys:
        raise BalanceError("ADASYN needs lab columns; this cohort has none")
    out = frame.copy()
    out["is_synthetic"] = False
    out["seed_case_id"] = out["case_id"].astype(str)
    out["neighbour_case_id"] = None
    train = out[out["split"] == "train"].reset_index(drop=True)
    values = train[lab_keys].to_numpy(dtype=np.float64)
    std = LabStandardisation.fit(values, lab_keys)   # train statistics only: val/test never inform the synthesis
    res = adasyn(std.inputs(values)[0].astype(np.float64), train["label"].to_numpy(), random_state=seed,
                 n_neighbors=n_neighbors)
    synth_vals = std.inverse(res.X_new)
    both_missing = np.isnan(values[res.base]) & np.isnan(values[res.neighbour])
    synth_vals[both_missing] = np.nan
    base_rows = train.iloc[res.base].reset_index(drop=True)
    synth = base_rows.copy()
    synth[lab_keys] = synth_vals
    synth["case_id"] = [f"{c}#syn{n}" for n, c in enumerate(base_rows["case_id"].astype(str))]
    synth["label"] = 1
    synth["is_synthetic"] = True
    synth["seed_case_id"] = base_rows["case_id"].astype(str).to_numpy()
    synth["neighbour_case_id"] = train["case_id"].astype(str).to_numpy()[res.neighbour]
    out = pd.concat([out, synth], ignore_index=True)
    report = {"method": "ADASYN (imbalanced-learn), train split only, labs standardised with the train "
                        "mean/sd (a missing value at the train mean); synthetic rows carry their base case's image",
              "seed_recovery": res.method, "max_recovery_error": res.max_error,
              "n_neighbors": min(n_neighbors, int(train["label"].sum()) - 1), "random_state": seed,
              "n_synthetic": int(len(synth)), "n_train_before": int(len(train)),
              "train_counts_after": {str(c): int(n) for c, n in
                                     out[out["split"] == "train"]["label"].value_counts().sort_index().items()}}
    return out, report
