"""The paper's Tables 1-2 beside ours, in Markdown."""
from __future__ import annotations

import json

import pytest

from pneumo.cli import tables as tables_cli
from pneumo.errors import PneumoError
from pneumo.experiments import paper_tables as tables
from pneumo.experiments.paper_tables import PAPER_TABLES


def _cell(mean, sd=0.01, lo=None, hi=None):
    return {"mean": mean, "sd": sd, "ci_low": lo, "ci_high": hi}


def _results():
    entries = []
    for model, regime, acc in (("fusion", "imbalanced", 0.9345), ("fusion", "adasyn", 0.9212), ("image_only", "imbalanced", 0.9001)):
        test = {m: _cell(0.5) for m in ("roc_auc", "pr_auc", "f1", "mcc", "loss")}
        test["accuracy"] = _cell(acc, 0.012, acc - 0.03, acc + 0.02)
        test["mcc"] = _cell(0.7123, 0.05, 0.61, 0.80)
        train = {m: {"mean": 0.8811, "sd": 0.02} for m in ("roc_auc", "pr_auc", "f1", "mcc")}
        entries.append({"model": model, "regime": regime, "runs": [], "summary": {"test": test, "train": train}})
    return {"schema": "pneumo.results/1", "experiment": "paper-50-500", "n_runs": 5,
            "cohort": {"name": "kermany+mimic (semi-real)", "semi_real": True,
                       "counts": {"test": {"0": 100, "1": 10}}}, "entries": entries}


def test_paper_constants_are_the_published_figures():
    rows = {r["model"]: r for r in PAPER_TABLES["table1"]["rows"]}
    assert rows["Proposed model on imbalanced classes"]["test_accuracy_pct"] == 96.0
    assert rows["Proposed model on imbalanced classes"]["test_loss_pct"] == 2.11
    assert rows["Proposed model on balanced classes"]["test_accuracy_pct"] == 95.9
    assert rows["Single modality CXR NSGANETV2 [4]"]["test_loss_pct"] == 4.11
    assert PAPER_TABLES["table2"]["train"] == {"roc_auc": 0.9827, "pr_auc": 0.9627, "f1": 0.9577, "mcc": 0.9583}
    assert PAPER_TABLES["table2"]["test"] == {"roc_auc": 0.9780, "pr_auc": 0.9480, "f1": 0.9501, "mcc": 0.9455}


def test_render_shows_both_the_papers_and_our_figures():
    text = tables.render(_results())
    assert text.count("## Table") == 2
    assert "| Proposed model on imbalanced classes | paper | 96.0 | 2.11 |" in text
    assert "| Intermediate fusion (CXR + labs), imbalanced | ours | 93.5 ± 1.2 [90.5, 95.5] |" in text
    assert "| Matthews coefficient | 0.9583 | 0.8811 ± 0.0200 | 0.9455 | 0.7123 ± 0.0500 [0.6100, 0.8000] |" in text
    assert "semi-real" in text and "10 pneumonia + 100 other" in text and "5 runs" in text
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")


def test_missing_entries_render_as_dashes():
    data = _results()
    data["entries"] = [e for e in data["entries"] if e["regime"] != "imbalanced" or e["model"] != "fusion"]
    assert "| ROC AUC | 0.9827 | - | 0.9780 | - |" in tables.table2(data)


def test_main_reads_a_results_folder(tmp_path, capsys):
    (tmp_path / "paper-50-500.json").write_text(json.dumps(_results()))
    (tmp_path / "other.json").write_text(json.dumps(dict(_results(), experiment="other")))
    assert tables_cli.main(["--results", str(tmp_path)]) == 0      # the variants' files found: both variants' view
    assert "official-test" in capsys.readouterr().out
    assert tables_cli.main(["--results", str(tmp_path), "--experiment", "paper-50-500"]) == 0
    assert "Ours: paper-50-500" in capsys.readouterr().out
    assert tables_cli.main(["--results", str(tmp_path), "--experiment", "other"]) == 0
    assert "Ours: other" in capsys.readouterr().out


def test_bad_results_raise_one_line(tmp_path):
    with pytest.raises(PneumoError, match="no results"):
        tables.find_results(tmp_path)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(PneumoError, match="not a pneumo results file"):
        tables.load_results(tmp_path / "x.json")
    with pytest.raises(PneumoError, match="no results for experiment"):
        tables.find_results(tmp_path, "nope")


def test_table1_says_what_our_loss_is():
    # the paper prints "Test loss, %" unscaled; ours is 100 x mean cross-entropy: the CLI and the page say so alike
    from pneumo.experiments import results as res

    text = tables.render(_results())
    assert tables.LOSS_NOTE in text and "100 × the mean binary cross-entropy" in tables.LOSS_NOTE
    assert res.LOSS_NOTE is tables.LOSS_NOTE


@pytest.mark.parametrize("n_pos,n_neg,errors", [(10, 100, 4), (10, 100, 1), (50, 500, 22), (20, 80, 7)])
def test_the_best_f1_and_mcc_at_an_accuracy_are_those_of_the_best_confusion_matrix(n_pos, n_neg, errors):
    """Against every integer confusion matrix with that many errors (sklearn's own F1 and MCC)."""
    import numpy as np
    from sklearn.metrics import f1_score, matthews_corrcoef
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    f1s, mccs = [], []
    for fn in range(min(errors, n_pos) + 1):
        fp = errors - fn
        pred = np.r_[np.ones(n_pos - fn), np.zeros(fn), np.ones(fp), np.zeros(n_neg - fp)]
        f1s.append(f1_score(y, pred))
        mccs.append(matthews_corrcoef(y, pred))
    best = tables.best_at_accuracy(1 - errors / (n_pos + n_neg), n_pos / (n_pos + n_neg))
    assert best["f1"] == pytest.approx(max(f1s), abs=1e-9)
    assert best["mcc"] == pytest.approx(max(mccs), abs=1e-6)   # a 2001-point grid of the error split


def test_the_papers_table2_is_read_against_its_own_table1_accuracy():
    note = tables.paper_consistency_note()
    assert "96.0%" in note and "0.820" in note and "0.815" in note and "0.9501" in note
    assert note in tables.render(_results())
