"""The metrics page's data: every (experiment, model, regime) from results/*.json and each
bundle's metrics.json, as tables (ours beside the paper's), pooled curves and confusion matrices."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pneumo import config
from pneumo.tables import PAPER_TABLES

METRIC_NAMES = {"accuracy": "Accuracy", "roc_auc": "ROC AUC", "pr_auc": "PR AUC", "f1": "F1",
                "mcc": "MCC", "loss": "Loss", "sensitivity": "Sensitivity",
                "specificity": "Specificity", "brier": "Brier", "ece": "ECE"}
TABLE_METRICS = ("accuracy", "roc_auc", "pr_auc", "f1", "mcc")


def load_entries(results_dir: Path | None = None, models_dir: Path | None = None) -> list[dict]:
    """Every (experiment, model, regime) with metrics: results/*.json entries and each
    bundle's metrics.json. Unreadable files become an entry with an 'error' so the page says so."""
    results_dir = Path(results_dir) if results_dir else config.results_dir()
    models_dir = Path(models_dir) if models_dir else config.models_dir()
    entries: list[dict] = []
    for path in sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
            semi = bool((doc.get("cohort") or {}).get("semi_real"))
            for e in doc.get("entries", []):
                entries.append({"experiment": doc.get("experiment", path.stem), "model": e["model"],
                                "regime": e.get("regime", "—"), "semi_real": semi,
                                "summary": e.get("summary", {}), "runs": e.get("runs", []),
                                "test_cases": e.get("test_cases"), "source": path.name})
        except (OSError, ValueError, KeyError, TypeError) as err:
            entries.append({"experiment": path.stem, "error": f"{path.name}: {err}"})
    for path in sorted(models_dir.glob("*/metrics.json")) if models_dir.is_dir() else []:
        try:
            entries += _bundle_entries(path, json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            entries.append({"experiment": f"bundle:{path.parent.name}", "error": f"{path}: {err}"})
    return entries


def _bundle_entries(path: Path, doc: dict) -> list[dict]:
    """A bundle's metrics.json (pneumo.train: test metrics per view, bootstrap CIs, test
    probabilities) as one single-run entry per view: fusion, image_only, labs_only."""
    test, ci = doc.get("test") or {}, doc.get("test_ci") or {}
    probs, labels = doc.get("test_probabilities") or {}, doc.get("test_labels")
    out = []
    for view, metrics in test.items():
        if not isinstance(metrics, dict):
            continue
        summary = {"test": {m: {"mean": v, **{k: (ci.get(view, {}).get(m) or {}).get(k2)
                                               for k, k2 in (("ci_low", "low"), ("ci_high", "high"))}}
                            for m, v in metrics.items() if isinstance(v, (int, float))}}
        cases = {"y": labels, "p": [probs[view]]} if labels and view in probs else None
        out.append({"experiment": f"bundle:{path.parent.name}", "model": view, "regime": "shipped",
                    "semi_real": bool(doc.get("semi_real", True)), "summary": summary,
                    "runs": [{"threshold": metrics.get("threshold", 0.5)}], "test_cases": cases,
                    "source": f"{path.parent.name}/metrics.json"})
    return out


def entry_name(e: dict) -> str:
    return f"{e['experiment']} · {e['model']} · {e['regime']}"


def _stat_text(stat: dict | None) -> str:
    if not stat or stat.get("mean") is None:
        return "—"
    text = f"{stat['mean']:.3f}"
    if stat.get("sd") is not None:
        text += f" ± {stat['sd']:.3f}"
    if stat.get("ci_low") is not None and stat.get("ci_high") is not None:
        text += f" [{stat['ci_low']:.3f}, {stat['ci_high']:.3f}]"
    return text


def metrics_table(entries: list[dict], split: str = "test") -> pd.DataFrame:
    """Accuracy, ROC AUC, PR AUC, F1, MCC as 'mean ± sd [95% CI]' per entry."""
    rows = []
    for e in entries:
        stats = (e.get("summary") or {}).get(split, {})
        row = {"Experiment": e["experiment"], "Model": e["model"], "Regime": e["regime"],
               "Runs": len(e.get("runs") or [])}
        row.update({METRIC_NAMES[m]: _stat_text(stats.get(m)) for m in TABLE_METRICS})
        rows.append(row)
    return _dashes(pd.DataFrame(rows))


def _pooled(e: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """All runs' test probabilities pooled with their labels (y repeated per run)."""
    cases = e.get("test_cases") or {}
    y, runs = cases.get("y"), cases.get("p")
    if not y or not runs:
        return None
    y = np.asarray(y, dtype=int)
    runs = [np.asarray(p, dtype=float) for p in runs if len(p) == len(y)]
    if not runs or len(set(y.tolist())) < 2:
        return None
    return np.tile(y, len(runs)), np.concatenate(runs)


def curves(entries: list[dict], kind: str, bins: int = 10) -> list[dict]:
    """ROC / PR / calibration points per entry from the stored per-case probabilities."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    out = []
    for e in entries:
        pooled = _pooled(e)
        if pooled is None:
            continue
        y, p = pooled
        if kind == "roc":
            x, yy, _ = roc_curve(y, p)
        elif kind == "pr":
            yy, x, _ = precision_recall_curve(y, p)
        else:
            edges = np.linspace(0, 1, bins + 1)
            idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
            keep = [i for i in range(bins) if (idx == i).any()]
            x = np.array([p[idx == i].mean() for i in keep])
            yy = np.array([y[idx == i].mean() for i in keep])
        out.append({"name": entry_name(e), "x": np.asarray(x).tolist(), "y": np.asarray(yy).tolist()})
    return out


def confusion(e: dict) -> tuple[np.ndarray, float] | None:
    """The pooled 2x2 confusion matrix (rows true NORMAL/PNEUMONIA) at the runs' mean threshold."""
    pooled = _pooled(e)
    if pooled is None:
        return None
    y, p = pooled
    thresholds = [r.get("threshold") for r in e.get("runs") or [] if r.get("threshold") is not None]
    t = float(np.mean(thresholds)) if thresholds else 0.5
    pred = (p >= t).astype(int)
    m = np.array([[((y == a) & (pred == b)).sum() for b in (0, 1)] for a in (0, 1)])
    return m, t


def _mean(e: dict, split: str, metric: str) -> float | None:
    stat = ((e.get("summary") or {}).get(split) or {}).get(metric) or {}
    return stat.get("mean")


def paper_table1(entries: list[dict]) -> pd.DataFrame:
    """Table 1: each paper row with our matching (model, regime) per experiment; test
    accuracy % and test loss % (x100, as the paper prints them)."""
    rows = []
    for ref in PAPER_TABLES["table1"]["rows"]:
        base = {"Paper row": ref["model"], "Paper acc %": ref["test_accuracy_pct"],
                "Paper loss %": ref["test_loss_pct"]}
        model, regime = ref["ours"]
        matches = [e for e in entries if e["model"] == model and e["regime"] == regime]
        for e in matches or [None]:
            acc = _mean(e, "test", "accuracy") if e else None
            loss = _mean(e, "test", "loss") if e else None
            rows.append({**base, "Ours": entry_name(e) if e else "—",
                         "Our acc %": None if acc is None else round(100 * acc, 1),
                         "Our loss %": None if loss is None else round(100 * loss, 2)})
    return _dashes(pd.DataFrame(rows))


def _dashes(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing cells shown as '—' rather than 'None'."""
    return frame.astype(object).where(frame.notna(), "—")


def paper_table2(entries: list[dict]) -> pd.DataFrame:
    """Table 2 (fusion, imbalanced): paper train/test beside each of our matching entries."""
    spec = PAPER_TABLES["table2"]
    rows = []
    for key, label in spec["metrics"].items():
        row = {"Metric": label, "Paper train": spec["train"][key], "Paper test": spec["test"][key]}
        for e in entries:
            if e["model"] == spec["model"] and e["regime"] == spec["regime"]:
                row[f"{e['experiment']} train"] = _round(_mean(e, "train", key))
                row[f"{e['experiment']} test"] = _round(_mean(e, "test", key))
        rows.append(row)
    return _dashes(pd.DataFrame(rows))


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def regime_pairs(entries: list[dict], metric: str = "roc_auc") -> pd.DataFrame:
    """Imbalanced vs ADASYN side by side per (experiment, model): test mean of one metric."""
    table: dict[tuple, dict] = {}
    for e in entries:
        if e["regime"] in ("imbalanced", "adasyn"):
            table.setdefault((e["experiment"], e["model"]), {})[e["regime"]] = _round(_mean(e, "test", metric))
    rows = [{"Experiment": x, "Model": m, "imbalanced": r.get("imbalanced"), "adasyn": r.get("adasyn")}
            for (x, m), r in table.items()]
    return _dashes(pd.DataFrame(rows, columns=["Experiment", "Model", "imbalanced", "adasyn"]))
