"""pneumo.evaluation.metrics and pneumo.models.calibration against sklearn and on toys with known answers."""
import json

import numpy as np
import pytest
from sklearn import metrics as skm

from pneumo.evaluation import metrics as M
from pneumo.models.calibration import apply_temperature, fit_temperature, logit


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.5 * y + 0.5 * rng.random(400), 0, 1)
    return y, p


def test_binary_metrics_match_sklearn(toy):
    y, p = toy
    m = M.binary_metrics(y, p, 0.4)
    pred = (p >= 0.4).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["loss"] == pytest.approx(skm.log_loss(y, p), rel=1e-4)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == m["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert m["specificity"] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    json.dumps(m)


def test_metrics_refuse_bad_probabilities():
    with pytest.raises(ValueError):
        M.binary_metrics([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError):
        M.binary_metrics([0, 1, 1], [0.2, 0.5])


def test_ranking_metrics_nan_with_one_class():
    m = M.binary_metrics([1, 1, 1], [0.2, 0.5, 0.9])
    assert np.isnan(m["roc_auc"]) and m["accuracy"] == pytest.approx(2 / 3)


def test_ece_perfect_and_bad():
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert M.ece(y, p) < 0.02
    assert M.ece(np.zeros(100, int), np.full(100, 0.9)) == pytest.approx(0.9)


def test_youden_threshold_on_toy():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.35, 0.3, 0.8, 0.9])
    # p >= 0.8 gives J = 2/3 - 0; p >= 0.3 gives 1 - 1/3 = 2/3; both tie, roc_curve reaches 0.8 first
    t = M.youden_threshold(y, p)
    assert t in (0.8, 0.3)
    y2, p2 = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.6, 0.7])
    assert M.youden_threshold(y2, p2) == pytest.approx(0.6)


def test_temperature_reduces_ece_on_overconfident_toy():
    rng = np.random.default_rng(2)
    true_p = rng.random(3000)
    y = (rng.random(3000) < true_p).astype(int)
    over = 1 / (1 + np.exp(-logit(true_p) * 3))       # logits x3: overconfident
    t = fit_temperature(y, over)
    assert 2.3 < t < 3.8
    cal = apply_temperature(over, t)
    assert M.ece(y, cal) < M.ece(y, over) / 2
    assert skm.roc_auc_score(y, cal) == pytest.approx(skm.roc_auc_score(y, over))


def test_temperature_refuses_nonpositive():
    with pytest.raises(ValueError):
        apply_temperature([0.5], 0.0)


def test_bootstrap_ci_brackets_estimate(toy):
    y, p = toy
    ci = M.bootstrap_ci(y, p, M.metric_fn("roc_auc"), n=200, seed=0)
    assert ci["low"] <= ci["estimate"] <= ci["high"] and ci["n"] == 200


def test_paired_bootstrap_detects_better_model(toy):
    y, p = toy
    noise = np.random.default_rng(3).random(len(y))
    worse = 0.3 * p + 0.7 * noise
    d = M.paired_bootstrap(y, p, worse, M.metric_fn("roc_auc"), n=200, seed=0)
    assert d["diff"] > 0 and d["low"] > 0 and d["p_le_0"] < 0.05
    same = M.paired_bootstrap(y, p, p, M.metric_fn("roc_auc"), n=50)
    assert same["diff"] == 0 and same["low"] == same["high"] == 0


def test_curves_are_plain_lists(toy):
    y, p = toy
    out = {"roc": M.roc_points(y, p, 50), "pr": M.pr_points(y, p, 50), "cal": M.calibration_bins(y, p)}
    json.dumps(out)
    assert len(out["roc"]["fpr"]) <= 50 and out["roc"]["fpr"][0] == 0.0 and out["roc"]["tpr"][-1] == 1.0
    assert sum(out["cal"]["count"]) == len(y)
