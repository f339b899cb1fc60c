"""The paper's Tables 1-2 (Ivanova et al. 2024) beside our measured results, in Markdown.

`python -m pneumo tables [--results DIR] [--experiment NAME]` reads results/*.json (written by
pneumo.experiments.protocol) and prints both tables. PAPER_TABLES holds the paper's figures as printed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pneumo.errors import PneumoError
from pneumo.models.names import model_name, regime_name

SOURCE = "Ivanova et al. 2024, Intermediate fusion approach for pneumonia classification on imbalanced multimodal data"

PAPER_TABLES = {
    "source": SOURCE,
    "cohort": {"n_pos": 50, "n_neg": 500},
    "table1": {
        "caption": "Comparison of accuracy and losses in different models (test split, mean of 5 runs)",
        "columns": {"test_accuracy_pct": "Test accuracy, %", "test_loss_pct": "Test loss, %"},
        "rows": [
            {"model": "Single modality CXR [1]", "ours": ("image_only", "imbalanced"),
             "test_accuracy_pct": 93.0, "test_loss_pct": 4.81},
            {"model": "Single modality CXR [3]", "ours": ("image_only", "imbalanced"),
             "test_accuracy_pct": 92.8, "test_loss_pct": 3.93},
            {"model": "Single modality CXR NSGANETV2 [4]", "ours": ("image_only", "imbalanced"),
             "test_accuracy_pct": 93.5, "test_loss_pct": 4.11},
            {"model": "Proposed model on balanced classes", "ours": ("fusion", "adasyn"),
             "test_accuracy_pct": 95.9, "test_loss_pct": 2.14},
            {"model": "Proposed model on imbalanced classes", "ours": ("fusion", "imbalanced"),
             "test_accuracy_pct": 96.0, "test_loss_pct": 2.11},
        ],
    },
    "table2": {
        "caption": "Metrics of the proposed model on imbalanced classes",
        "model": "fusion", "regime": "imbalanced",
        "metrics": {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "f1": "F1 score", "mcc": "Matthews coefficient"},
        "train": {"roc_auc": 0.9827, "pr_auc": 0.9627, "f1": 0.9577, "mcc": 0.9583},
        "test": {"roc_auc": 0.9780, "pr_auc": 0.9480, "f1": 0.9501, "mcc": 0.9455},
    },
}


def best_at_accuracy(accuracy: float, prevalence: float) -> dict:
    """The highest pneumonia-class F1 and MCC that any classifier with this accuracy can reach on a
    test set with this share of pneumonia cases, over every split of its errors into misses and
    false alarms (as fractions of the test set, so it holds whatever the test set's size)."""
    err = 1.0 - accuracy
    fn = np.linspace(0.0, min(err, prevalence), 2001)
    fp = err - fn
    tp, tn = prevalence - fn, 1.0 - prevalence - fp
    f1 = 2 * tp / (2 * tp + fp + fn)
    with np.errstate(invalid="ignore", divide="ignore"):
        mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {"f1": float(np.nanmax(f1)), "mcc": float(np.nanmax(mcc))}


def paper_consistency_note() -> str:
    """Why the paper's Table 2 F1 and MCC cannot be the same classifier's as its Table 1 accuracy, counted."""
    cohort, t1, t2 = PAPER_TABLES["cohort"], PAPER_TABLES["table1"], PAPER_TABLES["table2"]
    accuracy = next(r["test_accuracy_pct"] for r in t1["rows"] if tuple(r["ours"]) == (t2["model"], t2["regime"]))
    prevalence = cohort["n_pos"] / (cohort["n_pos"] + cohort["n_neg"])
    best = best_at_accuracy(accuracy / 100, prevalence)
    return (f"Read the paper's Table 2 with care: at its own test accuracy ({accuracy:.1f}%, Table 1) and "
            f"{cohort['n_pos']} pneumonia in {cohort['n_pos'] + cohort['n_neg']} cases, no classifier reaches a "
            f"pneumonia-class F1 above {best['f1']:.3f} or an MCC above {best['mcc']:.3f} (every error a false "
            f"alarm). Its F1 {t2['test']['f1']:.4f} and MCC {t2['test']['mcc']:.4f} therefore come from another "
            "averaging (a class-weighted F1 is about the accuracy) or another test set. Ours are the pneumonia "
            "class's, as the paper defines F1 (section 2).")


# what our 'Test loss, %' is: the CLI's tables and the metrics page say it in these words
LOSS_NOTE = ("Test loss, %: for ours, 100 × the mean binary cross-entropy of the test films (natural log, the "
             "paper's equation 1), averaged over runs. The paper does not say how its figure is scaled, so read "
             "our loss against our rows, not against the paper's.")


def load_results(path: str | Path) -> dict:
    """One results JSON; PneumoError when unreadable or not a pneumo results file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise PneumoError(f"cannot read results file {path.name}: {err}") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("pneumo.results/"):
        raise PneumoError(f"{path.name} is not a pneumo results file (no pneumo.results schema)")
    return data


def find_results(folder: str | Path, experiment: str | None = None) -> Path:
    """The named experiment's file, else paper-50-500.json, else the newest results file."""
    folder = Path(folder)
    if experiment:
        path = folder / f"{experiment}.json"
        if not path.is_file():
            raise PneumoError(f"no results for experiment {experiment!r} in {folder}")
        return path
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise PneumoError(f"no results in {folder}: run `python -m pneumo experiment configs/paper.toml` first")
    preferred = folder / "paper-50-500.json"
    return preferred if preferred.is_file() else files[-1]


def _entry(results: dict, model: str, regime: str) -> dict | None:
    return next((e for e in results.get("entries", []) if e["model"] == model and e["regime"] == regime), None)


def _fmt(stat: dict | None, scale: float = 1.0, digits: int = 4, ci: bool = True) -> str:
    """'mean ± sd [ci_low, ci_high]' of a summary cell; '-' when absent or not a number."""
    if not stat or stat.get("mean") is None:
        return "-"
    text = f"{stat['mean'] * scale:.{digits}f}"
    if stat.get("sd") is not None:
        text += f" ± {stat['sd'] * scale:.{digits}f}"
    if ci and stat.get("ci_low") is not None and stat.get("ci_high") is not None:
        text += f" [{stat['ci_low'] * scale:.{digits}f}, {stat['ci_high'] * scale:.{digits}f}]"
    return text


def describe(results: dict) -> str:
    """One line saying what our figures were measured on."""
    cohort = results.get("cohort", {})
    test = cohort.get("counts", {}).get("test", {})
    n_pos, n_neg = test.get("1", "?"), test.get("0", "?")
    kind = " [semi-real: class-conditionally paired]" if cohort.get("semi_real") else ""
    return (f"Ours: {results.get('experiment', '?')}, cohort {cohort.get('name', '?')}{kind}, "
            f"test split {n_pos} pneumonia + {n_neg} other, {results.get('n_runs', '?')} runs; "
            f"mean ± sd over runs [bootstrap 95% CI of the mean].")


def table1(results: dict) -> str:
    """Table 1: the paper's rows, then ours for every model x regime we ran."""
    lines = ["| Model | Source | Test accuracy, % | Test loss, % |", "|---|---|---|---|"]
    for row in PAPER_TABLES["table1"]["rows"]:
        lines.append(f"| {row['model']} | paper | {row['test_accuracy_pct']:.1f} | {row['test_loss_pct']:.2f} |")
    for entry in results.get("entries", []):
        test = entry.get("summary", {}).get("test", {})
        name = f"{model_name(entry['model'], paper=True)}, {regime_name(entry['regime'], paper=True)}"
        lines.append(f"| {name} | ours | {_fmt(test.get('accuracy'), 100, 1)} | {_fmt(test.get('loss'), 100, 2)} |")
    return "\n".join(lines)


def table2(results: dict) -> str:
    """Table 2: train/test ROC AUC, PR AUC, F1, MCC of fusion on imbalanced, paper beside ours."""
    spec = PAPER_TABLES["table2"]
    entry = _entry(results, spec["model"], spec["regime"])
    summary = entry.get("summary", {}) if entry else {}
    lines = ["| Metric | Train (paper) | Train (ours) | Test (paper) | Test (ours) |", "|---|---|---|---|---|"]
    for key, label in spec["metrics"].items():
        ours_train = _fmt(summary.get("train", {}).get(key), ci=False)
        ours_test = _fmt(summary.get("test", {}).get(key))
        lines.append(f"| {label} | {spec['train'][key]:.4f} | {ours_train} | {spec['test'][key]:.4f} | {ours_test} |")
    return "\n".join(lines)


def render(results: dict) -> str:
    """Both tables as one Markdown document."""
    t1, t2 = PAPER_TABLES["table1"], PAPER_TABLES["table2"]
    return "\n".join([
        f"## Table 1. {t1['caption']}", "", table1(results), "",
        LOSS_NOTE + " The paper's single-modality rows are published CNNs re-run on the paper's data; ours is the same "
        "frozen backbone as the fusion model with an image-only head.", "",
        f"## Table 2. {t2['caption']}", "", table2(results), "",
        f"Paper: {SOURCE}: their private MIMIC-derived cohort (50 pneumonia + 500 other), 5 runs.",
        describe(results), "", paper_consistency_note(), "",
    ])
