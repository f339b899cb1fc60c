"""The metrics page's data: the default selection, curve styles, and the ADASYN - imbalanced
difference with its 95% interval (Welch over runs; paired bootstrap of shared test cases)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pneumo import config
from pneumo.experiments import results as res
from pneumo.present import figures as figs


def _entry(model, regime, runs_metric, experiment="exp", cases=None, thresholds=None, metric="roc_auc"):
    runs = [{"test": {metric: v}, "threshold": (thresholds or [0.5] * len(runs_metric))[i]}
            for i, v in enumerate(runs_metric)]
    return {"experiment": experiment, "model": model, "regime": regime, "semi_real": True,
            "summary": {"test": {metric: {"mean": float(np.mean(runs_metric))}}}, "runs": runs,
            "test_cases": cases, "source": "x.json"}


def test_welch_interval_on_known_runs():
    # sd 0.02 in both, 3 runs: se = 0.02 * sqrt(2/3), Welch df = 4, t(0.975, 4) = 2.776445
    entries = [_entry("fusion", "imbalanced", [0.80, 0.82, 0.84]), _entry("fusion", "adasyn", [0.85, 0.87, 0.89])]
    row = res.regime_differences(entries, "roc_auc").iloc[0]
    half = 2.7764451 * 0.02 * np.sqrt(2 / 3)
    assert row["Difference"] == pytest.approx(0.05)
    assert row["CI low"] == pytest.approx(0.05 - half, abs=1e-6)
    assert row["CI high"] == pytest.approx(0.05 + half, abs=1e-6)
    assert row["Interval"] == res.WELCH
    assert (row["imbalanced"], row["adasyn"]) == (pytest.approx(0.82), pytest.approx(0.87))


def test_welch_against_scipy_unequal_variances():
    from scipy import stats

    a, b = [0.5, 0.7, 0.6, 0.65], [0.9, 0.95, 0.7]
    d, lo, hi = res.welch_interval(a, b)
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(np.mean(b) - np.mean(a))
    assert (lo, hi) == (pytest.approx(ci.low), pytest.approx(ci.high))


def _cases(y, probs, ids=None):
    return {"case_id": ids or [str(i) for i in range(len(y))], "y": y, "p": probs}


def test_paired_bootstrap_is_paired_and_needs_the_same_cases():
    rng = np.random.default_rng(1)
    y = [0] * 30 + [1] * 10
    probs = [np.clip(np.array(y) * 0.3 + rng.uniform(0, 0.7, 40), 0, 1).tolist() for _ in range(3)]
    from pneumo.evaluation.metrics import binary_metrics
    vals = [binary_metrics(y, p, 0.5)["roc_auc"] for p in probs]
    same = [_entry("fusion", "imbalanced", vals, cases=_cases(y, probs)),
            _entry("fusion", "adasyn", vals, cases=_cases(y, probs))]
    row = res.regime_differences(same, "roc_auc").iloc[0]
    # the same probabilities in both regimes: only the run draws differ, so 0 lies inside
    assert row["Interval"] == res.BOOTSTRAP and row["Difference"] == pytest.approx(0)
    assert row["CI low"] < 0 < row["CI high"]
    one_run = [dict(e, runs=e["runs"][:1], test_cases=_cases(y, probs[:1])) for e in same]
    row = res.regime_differences(one_run, "roc_auc").iloc[0]
    assert (row["CI low"], row["CI high"]) == (0.0, 0.0)      # paired cases, one run: no spread at all
    # different test cases: no pairing, back to Welch over the runs
    other = dict(same[1], test_cases=_cases(y, probs, ids=[f"b{i}" for i in range(40)]))
    assert res.regime_differences([same[0], other], "roc_auc").iloc[0]["Interval"] == res.WELCH


def test_paired_bootstrap_sees_a_real_gain():
    y = np.array([0] * 40 + [1] * 10)
    rng = np.random.default_rng(2)
    weak = [(0.5 * y + rng.uniform(0, 0.8, 50)).clip(0, 1).tolist() for _ in range(3)]
    strong = [(0.8 * y + rng.uniform(0, 0.3, 50)).clip(0, 1).tolist() for _ in range(3)]
    from pneumo.evaluation.metrics import binary_metrics
    va = [binary_metrics(y, p, 0.5)["roc_auc"] for p in weak]
    vb = [binary_metrics(y, p, 0.5)["roc_auc"] for p in strong]
    entries = [_entry("fusion", "imbalanced", va, cases=_cases(y.tolist(), weak)),
               _entry("fusion", "adasyn", vb, cases=_cases(y.tolist(), strong))]
    row = res.regime_differences(entries, "roc_auc").iloc[0]
    assert row["Difference"] == pytest.approx(np.mean(vb) - np.mean(va))
    assert 0 < row["CI low"] < row["Difference"] < row["CI high"] <= 1


PAPER = config.REPO_ROOT / "results" / "paper-50-500.json"


def test_bootstrap_agrees_with_the_experiments_stored_comparisons():
    assert PAPER.is_file(), "results/paper-50-500.json is committed"
    entries = [e for e in res.load_entries(PAPER.parent, PAPER.parent / "no-models") if e.get("experiment") == "paper-50-500"]
    stored = {(c["model"], c["metric"]): c for c in json.loads(PAPER.read_text())["comparisons"]
              if c["regime"] == "adasyn" and c["versus"] == "imbalanced"}
    for metric in ("roc_auc", "mcc"):
        for _, row in res.regime_differences(entries, metric, n_boot=1000).iterrows():
            c = stored[(row["Model"], metric)]
            assert row["Difference"] == pytest.approx(c["difference"], abs=1e-9)
            width = c["ci_high"] - c["ci_low"]
            assert abs(row["CI low"] - c["ci_low"]) < 0.25 * width + 0.005
            assert abs(row["CI high"] - c["ci_high"]) < 0.25 * width + 0.005


def _grid(experiment, models=("fusion", "image_only", "labs_only", "late_fusion", "gbm_labs"),
          regimes=("imbalanced", "adasyn", "class_weight")):
    y = [0, 1, 0, 1, 0, 1]
    p = [[0.1, 0.9, 0.3, 0.6, 0.2, 0.8]]
    return [_entry(m, r, [0.9], experiment=experiment, cases=_cases(y, p)) for m in models for r in regimes]


def test_default_selection_is_the_paper_protocol_and_small():
    entries = _grid("aaa-other", models=("fusion", "late_fusion"), regimes=("imbalanced",)) + _grid("paper-50-500") \
        + _grid("bundle:pneumo-fusion", models=("fusion", "image_only", "labs_only"), regimes=("shipped",)) \
        + [{"experiment": "broken", "error": "broken.json: bad"}]
    pick = res.default_selection(entries)
    assert pick == {"experiment": ["paper-50-500"], "model": ["fusion", "image_only", "labs_only"],
                    "regime": ["imbalanced"]}
    chosen = [e for e in entries if "error" not in e and all(e[f] in pick[f] for f in pick)]
    assert len(res.curves(chosen, "roc")) <= res.MAX_DEFAULT_CURVES
    # only a bundle: its shipped curves
    only_bundle = _grid("bundle:m", models=("fusion", "image_only", "labs_only"), regimes=("shipped",))
    assert res.default_selection(only_bundle)["regime"] == ["shipped"]
    assert res.default_selection([]) == {"experiment": [], "model": [], "regime": []}


def test_curves_have_one_colour_per_model_and_one_dash_per_regime():
    entries = _grid("paper-50-500")
    for kind in ("roc", "pr", "calibration"):
        fig = figs.curve_figure(res.curves(entries, kind), kind)
        lines = [t for t in fig.data if t.name not in ("chance", "perfect")]
        by_model, by_regime = {}, {}
        for t, e in zip(lines, entries):
            by_model.setdefault(e["model"], set()).add(t.line.color)
            by_regime.setdefault(e["regime"], set()).add(t.line.dash)
            assert "_" not in t.name and "·" in t.name          # 'Image only · ADASYN-balanced'
        assert all(len(c) == 1 for c in by_model.values()) and all(len(d) == 1 for d in by_regime.values())
        assert len({c.pop() for c in by_model.values()}) == len(by_model)     # distinct per model
        assert len({d.pop() for d in by_regime.values()}) == len(by_regime)
    assert figs.model_colours(["fusion", "zzz"])["fusion"] == figs.model_colours(["fusion"])["fusion"]


def test_difference_figure_draws_each_model_with_its_interval():
    entries = [_entry("fusion", "imbalanced", [0.80, 0.82, 0.84]), _entry("fusion", "adasyn", [0.85, 0.87, 0.89]),
               _entry("labs_only", "imbalanced", [0.6]), _entry("labs_only", "adasyn", [0.5])]
    d = res.regime_differences(entries, "roc_auc")
    d.insert(0, "Label", d["Model"])
    fig = figs.difference_figure(d, "ROC AUC")
    assert list(fig.data[0].y) == ["labs_only", "fusion"]
    assert fig.data[0].error_x.array[1] == pytest.approx(d.loc[0, "CI high"] - 0.05)
    assert fig.data[0].error_x.array[0] == 0            # one run each: a point, no interval


def test_runs_without_stored_metrics_are_scored_from_their_probabilities():
    y = [0, 0, 0, 1, 1, 1]
    weak, strong = [[0.2, 0.6, 0.4, 0.5, 0.7, 0.3]], [[0.1, 0.2, 0.3, 0.7, 0.8, 0.9]]
    entries = [_entry("fusion", "imbalanced", [0.1], cases=_cases(y, weak)),
               _entry("fusion", "adasyn", [0.1], cases=_cases(y, strong))]
    for e in entries:
        e["runs"] = [{"threshold": 0.5}]                     # no per-run metrics stored (a summary only)
    row = res.regime_differences(entries, "roc_auc").iloc[0]
    assert row["imbalanced"] == pytest.approx(6 / 9)   # 6 of 9 positive-negative pairs ranked right and row["adasyn"] == pytest.approx(1.0)
    assert row["Difference"] == pytest.approx(3 / 9)
