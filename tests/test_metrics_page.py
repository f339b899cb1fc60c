"""The metrics page opens readable: one experiment, fusion vs its single-modality baselines, one
regime (<= 6 curves, a distinct colour each), and each model's ADASYN - imbalanced difference."""
from __future__ import annotations

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from pneumo import config

MODELS = ("fusion", "image_only", "labs_only", "late_fusion", "gbm_labs")
REGIMES = ("imbalanced", "adasyn", "class_weight")


def _write_results(folder, name, models=MODELS, regimes=REGIMES, runs=3, seed=0):
    """A small paper-like grid: every model x regime, per-run metrics and per-case probabilities."""
    rng = np.random.default_rng(seed)
    y = [0] * 30 + [1] * 10
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
    assert [m.value for m in at.multiselect] == [["paper-50-500"], ["fusion", "image_only", "labs_only"],
                                                 ["imbalanced"]]
    lines = _check_readable_roc(at)
    assert [t["name"] for t in lines] == ["Fusion (image + labs) · imbalanced", "Image only · imbalanced",
                                          "Labs only · imbalanced"]
    # the regime section: one row per chosen model, a paired bootstrap interval, said in the caption
    diffs = at.dataframe[1].value
    assert list(diffs["Model"]) == ["fusion", "image_only", "labs_only"]
    assert (diffs["CI low"] <= diffs["Difference"]).all() and (diffs["Difference"] <= diffs["CI high"]).all()
    assert "paired bootstrap" in " ".join(c.value for c in at.caption)
    # a colour per model, the same in every plot; ADASYN is dashed when chosen
    at.multiselect[2].set_value(["imbalanced", "adasyn"]).run()
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
    assert at.multiselect[0].value == ["paper-50-500"]
    _check_readable_roc(at)
