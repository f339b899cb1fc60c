"""ADASYN for a two-modality cohort: exact seed recovery, train-only balancing, class weights."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pneumo.errors import CohortError
from pneumo.experiments import balance
from pneumo.experiments.balance import BalanceError, adasyn, balance_train
from pneumo.models.features import class_weights


def _toy(seed=0, n_neg=60, n_pos=8, k=4):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (n_neg, k)), rng.normal(1.0, 1, (n_pos, k))])
    return X, np.r_[np.zeros(n_neg), np.ones(n_pos)].astype(int)


def test_rederived_seeds_reproduce_every_synthetic_row_exactly():
    X, y = _toy()
    res = adasyn(X, y, random_state=3)
    assert res.method == "rederived" and res.max_error == 0.0
    assert abs(len(res.X_new) - ((y == 0).sum() - (y == 1).sum())) <= (y == 1).sum()   # ADASYN rounds per seed
    assert (y[res.base] == 1).all() and (y[res.neighbour] == 1).all() and (res.base != res.neighbour).all()
    rebuilt = X[res.base] + res.step[:, None] * (X[res.neighbour] - X[res.base])
    assert np.array_equal(rebuilt, res.X_new)      # bit for bit: the base is imblearn's own base sample


def test_recovery_matches_imblearn_output_rows():
    from imblearn.over_sampling import ADASYN
    X, y = _toy(seed=5)
    X_res, _ = ADASYN(sampling_strategy="minority", n_neighbors=5, random_state=11).fit_resample(X, y)
    res = adasyn(X, y, random_state=11, n_neighbors=5)
    assert np.array_equal(res.X_new, X_res[len(X):])


def test_projection_fallback_recovers_known_seeds_on_a_toy():
    # minority points in general position; synthetic rows built by hand with step < 0.5 from a known
    # base, so the generating segment is at distance ~0 and its nearer endpoint is the true base
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 3, (20, 3)), rng.normal(0, 1, (6, 3))])
    y = np.r_[np.zeros(20), np.ones(6)].astype(int)
    minority = np.flatnonzero(y == 1)
    base = rng.choice(minority, 15)
    neighbour = np.array([rng.choice(minority[minority != b]) for b in base])
    step = rng.uniform(0.05, 0.45, 15)
    X_new = X[base] + step[:, None] * (X[neighbour] - X[base])
    res = balance._project(X, y, X_new)
    assert res.method == "projection" and res.max_error < 1e-9
    assert np.array_equal(res.base, base) and np.array_equal(res.neighbour, neighbour)
    assert np.allclose(res.step, step)


def test_adasyn_refuses_what_it_cannot_balance():
    X, y = _toy(n_pos=1)
    with pytest.raises(BalanceError):
        adasyn(X, y)
    with pytest.raises(BalanceError):
        adasyn(np.where(np.arange(X.size).reshape(X.shape) == 0, np.nan, X), _toy()[1])


def _cohort_frame(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for split, n_neg, n_pos in (("train", 40, 6), ("val", 12, 3), ("test", 12, 3)):
        for label, n in ((0, n_neg), (1, n_pos)):
            for i in range(n):
                rows.append({"case_id": f"{split}-{label}-{i}", "patient_id": f"p-{split}-{label}-{i}",
                             "image_path": f"/img/{split}/{label}/{i}.png", "label": label, "split": split,
                             "source": "toy", "wbc": rng.normal(8 + 4 * label, 2), "crp": rng.normal(5 + 30 * label, 8)})
    frame = pd.DataFrame(rows)
    frame.loc[[3, 41], "crp"] = np.nan          # a missing value in train, in both classes
    return frame


def test_balance_touches_train_only_and_synthetic_rows_carry_their_seed_image():
    frame = _cohort_frame()
    out, report = balance_train(frame, ["wbc", "crp"], seed=2)
    real = out[~out["is_synthetic"]]
    pd.testing.assert_frame_equal(real.drop(columns=["is_synthetic", "seed_case_id", "neighbour_case_id"]).reset_index(drop=True),
                                  frame.reset_index(drop=True))
    synth = out[out["is_synthetic"]]
    assert len(synth) == report["n_synthetic"] > 0
    assert (synth["split"] == "train").all() and (synth["label"] == 1).all()
    train_pos = frame[(frame["split"] == "train") & (frame["label"] == 1)].set_index("case_id")
    assert synth["seed_case_id"].isin(train_pos.index).all()
    assert synth["neighbour_case_id"].isin(train_pos.index).all()
    assert (synth["image_path"].to_numpy() == train_pos.loc[synth["seed_case_id"], "image_path"].to_numpy()).all()
    counts = out[out["split"] == "train"]["label"].value_counts()
    assert abs(counts[1] - counts[0]) <= 2
    assert report["seed_recovery"] == "rederived"
    # val/test lab values never inform the synthesis
    moved = frame.copy()
    moved.loc[moved["split"] != "train", ["wbc", "crp"]] *= 100
    out2, _ = balance_train(moved, ["wbc", "crp"], seed=2)
    np.testing.assert_allclose(out2[out2["is_synthetic"]][["wbc", "crp"]].to_numpy(),
                               synth[["wbc", "crp"]].to_numpy())


def test_synthetic_lab_values_lie_between_seed_and_neighbour():
    frame = _cohort_frame(seed=4)
    out, _ = balance_train(frame, ["wbc", "crp"], seed=0)
    ids = frame.set_index("case_id")
    for _, row in out[out["is_synthetic"]].iterrows():
        a, b = ids.loc[row["seed_case_id"], "wbc"], ids.loc[row["neighbour_case_id"], "wbc"]
        assert min(a, b) - 1e-9 <= row["wbc"] <= max(a, b) + 1e-9


def test_class_weights_are_inverse_frequency():
    y = np.r_[np.zeros(90), np.ones(10)]
    w = class_weights(y)
    assert w[0] == pytest.approx(100 / 180) and w[1] == pytest.approx(100 / 20)
    assert w[0] * 90 == pytest.approx(w[1] * 10)
    with pytest.raises(CohortError):
        class_weights(np.zeros(5))
