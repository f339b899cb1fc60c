"""The paper's protocol end to end on the synthetic cohort with a tiny random encoder, plus the
config, the bootstrap statistics and the published-id guard."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pneumo import config
from pneumo.evaluation import bootstrap as stats
from pneumo.experiments import paper_tables as tables
from pneumo.experiments import protocol as experiments
from pneumo.experiments import results_json
from pneumo.experiments.config import ConfigError, from_dict, load

TINY = {"name": "tiny", "runs": 1, "seeds": [0], "image_size": 32, "bootstrap": 40,
        "cohort": {"source": "synthetic", "n": 80, "synthetic_image_size": 64, "n_pos": 16, "n_neg": 40,
                   "min_test_positives": 3},
        "encoder": {"weights": "random"}, "train": {"epochs": 2, "patience": 1}}


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """One run of all three regimes (fusion + gbm) and one of the single-modality trio."""
    root = tmp_path_factory.mktemp("exp")
    mp = pytest.MonkeyPatch()
    mp.setenv("PNEUMO_CACHE_DIR", str(root / "cache"))
    chosen = []                         # (labels, probabilities, threshold) of every threshold the grid chose
    real_youden = experiments.stats.youden_threshold

    def spy(y, p):
        chosen.append((np.asarray(y).copy(), np.asarray(p).copy(), real_youden(y, p)))
        return chosen[-1][2]
    mp.setattr(experiments.stats, "youden_threshold", spy)
    lines: list[str] = []
    cfg = from_dict(dict(TINY, models=["fusion", "gbm_labs"]))
    main, main_path = experiments.run_experiment(cfg, out_dir=root / "results", progress=lines.append)
    cfg2 = from_dict(dict(TINY, name="trio", regimes=["imbalanced"], models=["image_only", "labs_only", "late_fusion"]))
    trio, _ = experiments.run_experiment(cfg2, out_dir=root / "results", progress=lines.append)
    yield {"results": main, "path": main_path, "trio": trio, "lines": lines, "root": root, "chosen": chosen}
    mp.undo()


def test_results_file_has_the_schema(grid):
    data = json.loads(grid["path"].read_text())
    assert data == json.loads(json.dumps(grid["results"]))
    for key in ("schema", "experiment", "created", "cohort", "config", "n_runs", "seeds", "entries", "timing"):
        assert key in data, key
    assert data["schema"] == "pneumo.results/1" and data["experiment"] == "tiny" == grid["path"].stem
    assert set(data["cohort"]) >= {"name", "semi_real", "description", "counts"}
    assert data["cohort"]["counts"]["test"]["1"] >= 3
    assert {(e["model"], e["regime"]) for e in data["entries"]} == {
        (m, r) for m in ("fusion", "gbm_labs") for r in ("imbalanced", "adasyn", "class_weight")}
    for entry in data["entries"]:
        run = entry["runs"][0]
        assert set(run) >= {"seed", "threshold", "train", "test", "seconds"}
        assert set(stats.METRICS) <= set(run["test"]) and set(stats.METRICS) <= set(run["train"])
        for m in stats.METRICS:
            cell = entry["summary"]["test"][m]
            assert set(cell) == {"mean", "sd", "ci_low", "ci_high"}
            if cell["ci_low"] is not None:
                assert cell["ci_low"] <= cell["ci_high"]
        cases = entry["test_cases"]
        n_test = sum(data["cohort"]["counts"]["test"].values())
        assert len(cases["case_id"]) == len(cases["y"]) == len(cases["p"][0]) == n_test
        assert len(cases["p"]) == data["n_runs"]
        assert all(0.0 <= v <= 1.0 for v in cases["p"][0])


def test_curves_can_be_redrawn_from_the_file(grid):
    from pneumo.evaluation import metrics
    entry = grid["results"]["entries"][0]
    y, p = np.array(entry["test_cases"]["y"]), np.array(entry["test_cases"]["p"][0])
    roc = metrics.roc_points(y, p)
    assert len(roc["fpr"]) == len(roc["tpr"]) >= 2
    assert metrics.binary_metrics(y, p, entry["runs"][0]["threshold"])["roc_auc"] == pytest.approx(
        entry["runs"][0]["test"]["roc_auc"], abs=1e-6)


def test_adasyn_runs_record_balancing_and_compare_to_imbalanced(grid):
    data = grid["results"]
    adasyn = next(e for e in data["entries"] if e["model"] == "fusion" and e["regime"] == "adasyn")
    report = adasyn["runs"][0]["balance"]
    assert report["seed_recovery"] == "rederived" and report["n_synthetic"] > 0
    assert adasyn["runs"][0]["n_train"] > next(e for e in data["entries"] if e["regime"] == "imbalanced")["runs"][0]["n_train"]
    diffs = [c for c in data["comparisons"] if c["model"] == "fusion" and c["regime"] == "adasyn" and c["metric"] == "mcc"]
    assert len(diffs) == 1 and set(diffs[0]) >= {"difference", "ci_low", "ci_high"}


def test_thresholds_come_from_val_not_test(grid):
    """Every run's threshold was chosen on val: on as many cases as val holds (train holds more), and
    not on the test probabilities the run recorded (val and test labels can coincide in a tiny cohort)."""
    counts = grid["results"]["cohort"]["counts"]
    by_threshold = {t: (y, p) for y, p, t in grid["chosen"]}
    told_apart = 0
    for entry in grid["results"]["entries"]:
        run = entry["runs"][0]
        y, p = by_threshold[run["threshold"]]
        assert len(y) == sum(counts["val"].values()) and int(y.sum()) == counts["val"]["1"], entry["model"]
        test_p = np.asarray(entry["test_cases"]["p"][0])
        if np.ptp(test_p) > 0:          # a constant model (gbm on a tiny cohort) reads val and test alike
            assert len(p) != len(test_p) or not np.allclose(p, test_p), entry["model"]
            told_apart += 1
        assert run["val"]["threshold"] == run["threshold"] == run["test"]["threshold"]
    assert told_apart >= 3              # the fusion model under each regime at least


def test_late_fusion_is_the_mean_of_the_single_modality_fits(grid):
    entries = {e["model"]: np.array(e["test_cases"]["p"][0]) for e in grid["trio"]["entries"]}
    assert np.allclose(entries["late_fusion"], 0.5 * (entries["image_only"] + entries["labs_only"]), atol=1e-6)


def test_progress_lines_and_summary_table(grid):
    steps = [line for line in grid["lines"] if line.startswith("[")]
    assert len(steps) == 6 + 3 and "test mcc" in steps[0]
    table = results_json.summary_table(grid["results"])
    assert table.count("\n") == 1 + len(grid["results"]["entries"])


def test_tables_render_ours_beside_the_papers(grid):
    text = tables.render(grid["results"])
    assert "96.0" in text and "0.9780" in text and "| paper |" in text and "| ours |" in text
    fusion = next(e for e in grid["results"]["entries"] if e["model"] == "fusion" and e["regime"] == "imbalanced")
    assert f"{fusion['summary']['test']['mcc']['mean']:.4f}" in text


def test_embeddings_are_cached_once(grid):
    cached = list((grid["root"] / "cache").rglob("*.npz"))
    assert len(cached) == 56          # 16 + 40 images, one file each, reused by the second grid
    assert "embeddings: 0 computed, 56 from cache" in "\n".join(grid["lines"])
    assert not list((grid["root"] / "cache").rglob("*.tmp.npz"))


def test_configs_in_the_repository_parse():
    paper = load(config.REPO_ROOT / "configs" / "paper.toml")
    assert paper.runs == 5 and paper.regimes == ["imbalanced", "adasyn", "class_weight"]
    assert paper.models == ["fusion", "image_only", "labs_only", "late_fusion", "gbm_labs"]
    assert paper.cohort.preset == "paper" and paper.cohort.min_test_positives >= 10 and not paper.finetune
    smoke = load(config.REPO_ROOT / "configs" / "smoke.toml")
    assert smoke.runs == 1 and smoke.cohort.source == "synthetic"


@pytest.mark.parametrize("bad", [{"models": ["resnet"]}, {"regimes": ["smote"]}, {"runs": 2, "seeds": [0]},
                                 {"colour": 1}, {"cohort": {"source": "paired", "shape": 1}}, {"name": "a/b"}])
def test_bad_configs_raise_one_line(bad):
    with pytest.raises(ConfigError) as err:
        from_dict(dict(TINY, **bad))
    assert "\n" not in str(err.value)


def test_published_case_ids_never_carry_mimic_identifiers():
    frame = pd.DataFrame({"case_id": ["a.jpeg|mimic-hadm-1", "b.jpeg|mimic-hadm-2"], "image_case_id": ["a.jpeg", "b.jpeg"]})
    assert results_json.public_case_ids(frame) == ["a.jpeg", "b.jpeg"]
    frame = pd.DataFrame({"case_id": ["mimic-hadm-1", "mimic-hadm-2", "mimic-hadm-2"]})
    ids = results_json.public_case_ids(frame)
    assert not any("hadm" in i for i in ids) and len(set(ids)) == 3


def test_weighted_metrics_match_pneumo_metrics_and_resampling():
    from pneumo.evaluation.metrics import binary_metrics
    rng = np.random.default_rng(3)
    y = (rng.random(120) < 0.12).astype(int)
    y[:2] = [0, 1]
    p = np.round(np.clip(rng.random(120) * 0.6 + 0.35 * y, 0, 1), 2)    # ties on purpose
    for t in (0.0, 0.5, 0.97):
        ref = binary_metrics(y, p, t)
        got = stats.weighted_metrics(y, p, t, np.ones((1, len(y))))
        for m in stats.METRICS:
            assert (np.isnan(ref[m]) and np.isnan(got[m][0])) or got[m][0] == pytest.approx(ref[m], abs=1e-12), m
    w = rng.integers(0, 3, len(y))
    idx = np.repeat(np.arange(len(y)), w)
    got = stats.weighted_metrics(y, p, 0.5, w[None].astype(float))
    ref = binary_metrics(y[idx], p[idx], 0.5)
    for m in stats.METRICS:
        assert got[m][0] == pytest.approx(ref[m], abs=1e-12), m


def test_hierarchical_bootstrap_averages_drawn_runs():
    reps = np.array([[0.0, 1.0], [1.0, 1.0]])          # (runs, B)
    draws = np.array([[0, 0], [0, 1]])
    assert stats.mean_over_drawn_runs(reps, draws).tolist() == [0.0, 1.0]


def test_cli_delegates_experiment_and_tables(tmp_path, grid):
    (tmp_path / "tiny.json").write_text(grid["path"].read_text())
    out = subprocess.run([sys.executable, "-m", "pneumo", "tables", "--results", str(tmp_path)],
                         capture_output=True, text=True, cwd=config.REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Table 1" in out.stdout and "0.9455" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "pneumo", "experiment", str(tmp_path / "none.toml")],
                         capture_output=True, text=True, cwd=config.REPO_ROOT, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "cannot read config" in bad.stderr
