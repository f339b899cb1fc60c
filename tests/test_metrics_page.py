"""The metrics page opens readable: one experiment (with its one-line description), fusion vs its
single-modality baselines, one regime (<= 6 curves, a distinct colour each), fusion - each other model
and each model's ADASYN - imbalanced difference; the paired differences checked by a direct computation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score
from streamlit.testing.v1 import AppTest

from pneumo import config
from pneumo.experiments import comparisons as cmp
from pneumo.experiments import results as res

MODELS = ("fusion", "image_only", "labs_only", "late_fusion", "gbm_labs")
REGIMES = ("imbalanced", "adasyn", "class_weight")


def _write_results(folder, name, models=MODELS, regimes=REGIMES, runs=3, seed=0, description=None,
                   y=None):
    """A small paper-like grid: every model x regime, per-run metrics and per-case probabilities."""
    rng = np.random.default_rng(seed)
    y = y or [0] * 30 + [1] * 10
    entries = []
    for m in models:
        for r in regimes:
            probs = [np.clip(np.array(y) * 0.4 + rng.uniform(0, 0.6, len(y)), 0, 1).round(4).tolist()
                     for _ in range(runs)]
            per_run = [{"seed": i, "threshold": 0.5, "test": {"roc_auc": 0.8 + 0.01 * i, "accuracy": 0.8,
                                                              "pr_auc": 0.6, "f1": 0.5, "mcc": 0.4}}
                       for i in range(runs)]
            stat = {"mean": 0.81, "sd": 0.01, "ci_low": 0.7, "ci_high": 0.9}
            entries.append({"model": m, "regime": r, "runs": per_run,
                            "summary": {"test": {k: stat for k in ("roc_auc", "accuracy", "pr_auc", "f1", "mcc")}},
                            "test_cases": {"case_id": [str(i) for i in range(len(y))], "y": y, "p": probs}})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"schema": "pneumo.results/1", "experiment": name,
                                                     "config": {"description": description or f"{name} protocol"},
                                                     "cohort": {"semi_real": True}, "entries": entries}))


def _figures(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _metrics_page(monkeypatch, tmp_path, results=None, models=None) -> AppTest:
    monkeypatch.setenv("PNEUMO_HOME", str(tmp_path / "home"))
    if results is not None:
        monkeypatch.setenv("PNEUMO_RESULTS_DIR", str(results))
    if models is not None:
        monkeypatch.setenv("PNEUMO_MODELS_DIR", str(models))
    at = AppTest.from_file(str(config.REPO_ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("pages/metrics.py").run()
    assert not at.exception, at.exception
    return at


def _check_readable_roc(at):
    roc = _figures(at)[0]
    lines = [t for t in roc["data"] if t.get("name") not in ("chance", "perfect")]
    assert 1 <= len(lines) <= 6
    colours = [t["line"]["color"] for t in lines]
    assert len(set(colours)) == len(colours), colours
    assert all("_" not in t["name"] for t in lines), [t["name"] for t in lines]   # readable legend
    return lines


def test_default_is_one_experiment_fusion_and_baselines(monkeypatch, tmp_path):
    _write_results(tmp_path / "results", "paper-50-500")
    _write_results(tmp_path / "results", "another-run", seed=1)
    at = _metrics_page(monkeypatch, tmp_path, tmp_path / "results", tmp_path / "no-models")
    assert [m.value for m in at.pills] == [["paper-50-500"], ["fusion", "image_only", "labs_only"],
                                                 ["imbalanced"]]
    lines = _check_readable_roc(at)
    assert [t["name"] for t in lines] == ["Fusion (image + labs) · imbalanced", "Image only · imbalanced",
                                          "Labs only · imbalanced"]
    # fusion - each other model of the experiment, paired on its test cases
    versus = at.dataframe[1].value
    assert list(versus["Comparison"]) == ["Fusion − Image only", "Fusion − Late fusion"]
    assert (versus["CI low"] <= versus["Difference"]).all() and (versus["Difference"] <= versus["CI high"]).all()
    # the regime section: one row per chosen model, a paired bootstrap interval, said in the caption
    diffs = at.dataframe[2].value
    assert list(diffs["Model"]) == ["Fusion (image + labs)", "Image only", "Labs only"]
    assert (diffs["CI low"] <= diffs["Difference"]).all() and (diffs["Difference"] <= diffs["CI high"]).all()
    assert "paired bootstrap" in " ".join(c.value for c in at.caption)
    # a colour per model, the same in every plot; ADASYN is dashed when chosen
    at.pills[2].set_value(["imbalanced", "adasyn"]).run()
    assert not at.exception, at.exception
    roc = [t for t in _figures(at)[0]["data"] if t["name"] != "chance"]
    assert len(roc) == 6
    assert {t["line"]["dash"] for t in roc if "ADASYN" in t["name"]} == {"dash"}
    fusion = {t["line"]["color"] for t in roc if t["name"].startswith("Fusion")}
    assert len(fusion) == 1 and fusion == {lines[0]["line"]["color"]}


def test_shipped_results_and_bundle_open_readable(monkeypatch, tmp_path):
    assert (config.REPO_ROOT / "results" / "paper-50-500.json").is_file()   # committed: its absence is a failure
    at = _metrics_page(monkeypatch, tmp_path)          # the repository's own results/ and models/
    assert not any("No results yet" in i.value for i in at.info), [i.value for i in at.info]
    assert not at.warning, [w.value for w in at.warning]    # every stored file read
    assert at.pills[0].value == ["paper-50-500"]
    _check_readable_roc(at)


# --- paired differences, checked against a direct computation -----------------------------------------

def _entry(model, y, probs, thresholds, experiment="exp", regime="imbalanced", ids=True):
    """A results entry as load_entries makes it, its per-run metrics computed by sklearn."""
    runs = [{"threshold": t, "test": {"roc_auc": roc_auc_score(y, p), "f1": f1_score(y, np.asarray(p) >= t)}}
            for p, t in zip(probs, thresholds)]
    cases = {"y": list(y), "p": [list(p) for p in probs]}
    if ids:
        cases["case_id"] = [f"c{i}" for i in range(len(y))]
    return {"experiment": experiment, "model": model, "regime": regime, "runs": runs, "test_cases": cases,
            "summary": {"test": {m: {"mean": float(np.mean(v := [r["test"][m] for r in runs])), "sd": float(np.std(v))}
                                 for m in ("roc_auc", "f1")}}}


def _synthetic(n_runs=3, seed=3):
    rng = np.random.default_rng(seed)
    y = np.array([0] * 40 + [1] * 12)
    fusion = [np.clip(0.45 * y + rng.uniform(0, 0.55, len(y)), 0, 1) for _ in range(n_runs)]
    image = [np.clip(0.3 * y + rng.uniform(0, 0.7, len(y)), 0, 1) for _ in range(n_runs)]
    return y, fusion, image, [0.5, 0.45, 0.55][:n_runs]


def _direct_interval(y, base, other, tb, to, metric, n_boot, seed):
    """The paired bootstrap written out by hand: one case resample shared by both sides, each side's
    runs redrawn, every run scored by sklearn with the resample's counts as sample weights."""
    rng = np.random.default_rng(seed)
    W = rng.multinomial(len(y), np.full(len(y), 1 / len(y)), size=n_boot)
    da = rng.integers(0, len(base), size=(n_boot, len(base)))
    db = rng.integers(0, len(other), size=(n_boot, len(other)))

    def score(p, t, w):
        return roc_auc_score(y, p, sample_weight=w) if metric == "roc_auc" else f1_score(y, p >= t, sample_weight=w)

    diffs = [np.mean([score(other[j], to[j], W[b]) for j in db[b]]) - np.mean([score(base[j], tb[j], W[b]) for j in da[b]])
             for b in range(n_boot)]
    return np.percentile(diffs, [2.5, 97.5])


@pytest.mark.parametrize("metric", ["roc_auc", "f1"])
def test_fusion_minus_image_only_matches_a_direct_paired_bootstrap(metric):
    y, fusion, image, t = _synthetic()
    entries = [_entry("fusion", y, fusion, t), _entry("image_only", y, image, t)]
    row = res.model_differences(entries, metric, n_boot=300, seed=7).iloc[0]
    assert row["Comparison"] == "Fusion − Image only" and row["Interval"] == cmp.BOOTSTRAP
    direct = [roc_auc_score(y, p) if metric == "roc_auc" else f1_score(y, p >= th) for p, th in zip(fusion, t)]
    base = [roc_auc_score(y, p) if metric == "roc_auc" else f1_score(y, p >= th) for p, th in zip(image, t)]
    assert row["Fusion"] == pytest.approx(np.mean(direct)) and row["Other"] == pytest.approx(np.mean(base))
    assert row["Difference"] == pytest.approx(np.mean(direct) - np.mean(base))
    lo, hi = _direct_interval(y, image, fusion, t, t, metric, 300, 7)
    assert (row["CI low"], row["CI high"]) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))
    assert row["CI low"] > 0           # fusion separates the classes better by construction: beyond noise


def test_pairing_narrows_the_interval_the_same_cases_matter():
    # fusion = image-only plus a small constant on positives, runs alike (no seed noise): paired on the
    # same cases, every resample moves both sides together, so the interval is tight and above 0
    y, _, image, t = _synthetic()
    image = [image[0]] * 3
    fusion = [np.clip(p + 0.03 * y, 0, 1) for p in image]
    row = res.model_differences([_entry("fusion", y, fusion, t), _entry("image_only", y, image, t)],
                                "roc_auc", n_boot=300).iloc[0]
    assert 0 < row["CI low"] <= row["Difference"] <= row["CI high"] < 0.05


def test_bundle_on_other_films_is_said_not_compared():
    y, fusion, image, t = _synthetic()
    exp = [_entry("fusion", y, fusion, t), _entry("image_only", y, image, t), _entry("late_fusion", y, image, t)]
    other_y = np.array([0] * 10 + [1] * 30)
    bundle = _entry("fusion", other_y, [np.clip(0.5 * other_y + 0.3, 0, 1)], [0.5], experiment="bundle:b",
                    regime="shipped", ids=False)
    d = res.model_differences(exp + [bundle], "roc_auc", n_boot=100)
    assert list(d["Comparison"]) == ["Fusion − Image only", "Fusion − Late fusion", "Fusion − shipped b"]
    last = d.iloc[2]
    assert np.isnan(last["Difference"]) and np.isnan(last["CI low"])
    assert "not made" in last["Note"] and "52 films, 12 pneumonia" in last["Note"] and "40 films" in last["Note"]
    assert "\n" not in last["Note"] and d["Note"].iloc[:2].eq("").all()
    # the same films without ids: refused too (label vectors alike prove nothing); with the same ids: paired
    same_no_ids = dict(_entry("fusion", y, image, t, experiment="bundle:b", regime="shipped", ids=False))
    assert "no case ids" in res.model_differences(exp[:1] + [same_no_ids], "roc_auc", n_boot=50)["Note"].iloc[0]
    same = _entry("fusion", y, image, t, experiment="bundle:b", regime="shipped")
    row = res.model_differences(exp[:1] + [same], "roc_auc", n_boot=50).iloc[0]
    assert row["Interval"] == cmp.BOOTSTRAP and row["Note"] == ""


def test_thresholded_note_counts_the_normals_at_one_to_ten():
    y = np.array([0] * 100 + [1] * 10)
    p = np.where(y == 1, 0.9, 0.1)
    p[:15] = 0.8                                  # 15 normals above the threshold, every pneumonia found
    e = _entry("fusion", y, [p, p], [0.5, 0.5])
    e["summary"]["test"]["f1"]["mean"] = f1_score(y, p >= 0.5)   # 20 / 35
    note = res.thresholded_notes([e])
    assert len(note) == 1 and "10 pneumonia among 110 films (1:10)" in note[0]
    assert "15.0 of the 100 normals" in note[0] and "F1 is 0.57" in note[0] and "1.000" in note[0]
    balanced = _entry("fusion", np.array([0, 1] * 20), [np.tile([0.2, 0.9], 20)], [0.5])
    assert res.thresholded_notes([balanced]) == []


def test_each_experiment_says_what_it_is_from_its_file(tmp_path):
    _write_results(tmp_path / "r", "grid-a", models=("fusion",), regimes=("imbalanced",),
                   description="Paper protocol; test films from Kermany's official test release")
    _write_results(tmp_path / "r", "grid-b", models=("fusion",), regimes=("imbalanced",),
                   description="Same-source: all 550 films from one release, split by patient at random",
                   y=[0] * 20 + [1] * 2)
    lines = res.experiment_lines(res.load_entries(tmp_path / "r", tmp_path / "none"))
    assert lines["grid-a"].startswith("Paper protocol; test films from Kermany's official test release")
    assert lines["grid-b"].startswith("Same-source")
    assert "40 films, 10 pneumonia; 3 runs" in lines["grid-a"] and "22 films, 2 pneumonia" in lines["grid-b"]


def test_compact_table_keeps_only_the_columns_that_differ():
    y, fusion, image, t = _synthetic()
    one = [_entry("fusion", y, fusion, t), _entry("image_only", y, image, t)]
    table = res.metrics_table(one, cells="sd", compact=True)
    assert "Experiment" not in table and "Regime" not in table
    assert list(table["Model"]) == ["Fusion (image + labs)", "Image only"]
    assert "[" not in table.loc[0, "ROC AUC"] and "±" in table.loc[0, "ROC AUC"]
    two = one + [_entry("fusion", y, fusion, t, experiment="other", regime="adasyn")]
    assert {"Experiment", "Regime"} <= set(res.metrics_table(two, compact=True).columns)


def _write_bundle(models_dir, n=40):
    """A shipped bundle's metrics.json tested on films of its own (no case ids), as training writes it."""
    y = [0] * (n // 2) + [1] * (n // 2)
    p = [0.2] * (n // 2) + [0.8] * (n // 2)
    folder = models_dir / "pneumo-fusion"
    folder.mkdir(parents=True)
    test = {v: {"threshold": 0.5, "accuracy": 1.0, "roc_auc": 1.0, "pr_auc": 1.0, "f1": 1.0, "mcc": 1.0}
            for v in ("fusion", "image_only", "labs_only")}
    (folder / "metrics.json").write_text(json.dumps({
        "cohort": {"source": "kermany", "n_cases": 5000, "images": {"notes": "test = official test, complete"}},
        "test": test, "test_probabilities": {v: p for v in test}, "test_labels": y}))


def test_adding_the_bundle_keeps_it_readable_and_says_why_it_is_not_compared(monkeypatch, tmp_path):
    _write_results(tmp_path / "results", "paper-50-500", description="Paper protocol, official test release")
    _write_bundle(tmp_path / "models")
    at = _metrics_page(monkeypatch, tmp_path, tmp_path / "results", tmp_path / "models")
    captions = " ".join(c.value for c in at.caption)
    assert "**paper-50-500** — Paper protocol, official test release; test split 40 films, 10 pneumonia" in captions
    assert "Fusion − shipped pneumo-fusion not made: tested on different films" in captions
    at.pills[0].set_value(["bundle:pneumo-fusion", "paper-50-500"]).run()
    assert not at.exception, at.exception
    assert at.pills[0].format_func("bundle:pneumo-fusion") == "pneumo-fusion (shipped)"
    # the bundle's three views join without picking its regime; a colour per model, a marker per experiment
    lines = [t for t in _figures(at)[0]["data"] if t.get("name") != "chance"]
    names = [t["name"] for t in lines]
    assert "Fusion (image + labs) · shipped pneumo-fusion" in names and len(names) == 6
    assert all("bundle:" not in n and "_" not in n for n in names), names
    styles = {(t["line"]["color"], t["marker"]["symbol"]) for t in lines}
    assert len(styles) == 6
    captions = " ".join(c.value for c in at.caption)
    assert "**pneumo-fusion (shipped)** — Shipped model pneumo-fusion: kermany, 5000 cases; test films: official test" in captions


def test_table1_loss_is_explained(monkeypatch, tmp_path):
    _write_results(tmp_path / "results", "paper-50-500")
    at = _metrics_page(monkeypatch, tmp_path, tmp_path / "results", tmp_path / "no-models")
    captions = " ".join(c.value for c in at.caption)
    assert res.LOSS_NOTE in captions and "100 × the mean binary cross-entropy" in captions
