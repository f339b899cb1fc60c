"""The metrics page's data: every (experiment, model, regime) from results/*.json and each
bundle's metrics.json, as tables (ours beside the paper's), pooled curves and confusion matrices,
a readable default selection, and each model's ADASYN - imbalanced difference with its 95% interval."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pneumo import config
from pneumo.evaluation import bootstrap as st
from pneumo.evaluation.bootstrap import METRICS
from pneumo.experiments.paper_tables import PAPER_TABLES
from pneumo.models.names import model_name, regime_name

METRIC_NAMES = {"accuracy": "Accuracy", "roc_auc": "ROC AUC", "pr_auc": "PR AUC", "f1": "F1",
                "mcc": "MCC", "loss": "Loss", "sensitivity": "Sensitivity",
                "specificity": "Specificity", "brier": "Brier", "ece": "ECE"}
TABLE_METRICS = ("accuracy", "roc_auc", "pr_auc", "f1", "mcc")
BASELINES = ("fusion", "image_only", "labs_only")   # the paper's comparison: fusion vs each modality alone
MAX_DEFAULT_CURVES = 6


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
    """A bundle's metrics.json (pneumo.training.fit: test metrics per view, bootstrap CIs, test
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


def curve_label(e: dict, with_experiment: bool = False) -> str:
    """A legend name a reader can parse: 'Fusion (image + labs) · imbalanced' (+ experiment)."""
    label = f"{model_name(e['model'])} · {regime_name(e['regime'])}"
    return f"{label} · {e['experiment']}" if with_experiment else label


def default_selection(entries: list[dict]) -> dict[str, list[str]]:
    """What the page opens on: one experiment (the paper protocol's where there is one: fusion,
    both single-modality baselines, imbalanced and ADASYN), the fusion model and its baselines,
    one regime (imbalanced, else the shipped bundle's), so at most MAX_DEFAULT_CURVES curves."""
    good = [e for e in entries if "error" not in e]
    if not good:
        return {"experiment": [], "model": [], "regime": []}

    def score(x: str) -> tuple:
        mine = [e for e in good if e["experiment"] == x]
        models, regimes = {e["model"] for e in mine}, {e["regime"] for e in mine}
        return (len(models & set(BASELINES)), {"imbalanced", "adasyn"} <= regimes, "paper" in x,
                not x.startswith("bundle:"))

    experiment = max(sorted({e["experiment"] for e in good}), key=score)
    mine = [e for e in good if e["experiment"] == experiment]
    regimes = sorted({e["regime"] for e in mine})
    regime = next((r for r in ("imbalanced", "shipped") if r in regimes), regimes[0])
    present = sorted({e["model"] for e in mine if e["regime"] == regime})
    models = [m for m in BASELINES if m in present] or present
    return {"experiment": [experiment], "model": models[:MAX_DEFAULT_CURVES], "regime": [regime]}


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
    """ROC / PR / calibration points per entry from the stored per-case probabilities; each
    curve also names its experiment, model and regime (for colour and dash) and a legend label."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    out = []
    several = len({e["experiment"] for e in entries}) > 1
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
        out.append({"name": entry_name(e), "x": np.asarray(x).tolist(), "y": np.asarray(yy).tolist(),
                    "experiment": e["experiment"], "model": e["model"], "regime": e["regime"],
                    "label": curve_label(e, several)})
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


DIFFERENCE_COLUMNS = ["Experiment", "Model", "imbalanced", "adasyn", "Difference", "CI low", "CI high",
                      "Interval"]
BOOTSTRAP = "paired bootstrap of test cases and runs"
WELCH = "Welch t-interval over runs"


def _run_values(e: dict, metric: str) -> list[float]:
    vals = [((r.get("test") or {}).get(metric)) for r in e.get("runs") or []]
    return [float(v) for v in vals if isinstance(v, (int, float)) and np.isfinite(v)]


def _values(e: dict | None, metric: str) -> list[float]:
    """Per-run test values: stored, else from the per-case probabilities at each run's threshold
    (so the difference and its bootstrap interval agree), else the summary mean alone."""
    if e is None:
        return []
    stored = _run_values(e, metric)
    cases = _cases(e)
    if not stored and cases is not None:
        from pneumo.evaluation.metrics import binary_metrics
        stored = [float(v) for p, t in zip(cases[1], cases[2])
                  if np.isfinite(v := binary_metrics(cases[0], p, t).get(metric, np.nan))]
    mean = _mean(e, "test", metric)
    return stored or ([] if mean is None else [float(mean)])


def _cases(e: dict) -> tuple[np.ndarray, list[np.ndarray], list[float], list | None] | None:
    """(y, per-run probabilities, per-run thresholds, case ids) when every run has both."""
    cases = e.get("test_cases") or {}
    y, probs, runs = cases.get("y"), cases.get("p") or [], e.get("runs") or []
    thresholds = [r.get("threshold") for r in runs]
    if not y or not probs or len(probs) != len(runs) or any(t is None for t in thresholds) \
            or any(len(p) != len(y) for p in probs):
        return None
    return (np.asarray(y, dtype=float), [np.asarray(p, dtype=float) for p in probs],
            [float(t) for t in thresholds], cases.get("case_id"))


def welch_interval(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """mean(b) - mean(a) and its Welch t-interval (the runs of two regimes are independent fits)."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    diff = float(b.mean() - a.mean())
    se = float(np.sqrt(va + vb))
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return diff, diff - half, diff + half


def paired_bootstrap_interval(base: tuple, other: tuple, metric: str, n_boot: int = 2000, seed: int = 0,
                              level: float = 0.95) -> tuple[float | None, float | None]:
    """95% interval of mean-over-runs(other) - mean-over-runs(base): each replicate draws one
    resample of the shared test cases (the same for both regimes) and, per regime, the runs with
    replacement, each run's metric at its own threshold (as pneumo.experiments.results_json's comparisons)."""

    (y, pa, ta, _), (_, pb, tb, _) = base, other
    rng = np.random.default_rng(seed)
    W = st.case_weights(len(y), n_boot, rng)
    ra = st.per_run_replicates(y, pa, ta, W)[metric]
    rb = st.per_run_replicates(y, pb, tb, W)[metric]
    da = rng.integers(0, len(pa), size=(n_boot, len(pa)))
    db = rng.integers(0, len(pb), size=(n_boot, len(pb)))
    return st.percentile_ci(st.mean_over_drawn_runs(rb, db) - st.mean_over_drawn_runs(ra, da), level)


def regime_differences(entries: list[dict], metric: str = "roc_auc", n_boot: int = 2000,
                       seed: int = 0) -> pd.DataFrame:
    """Per (experiment, model): ADASYN - imbalanced of the run-mean test metric with a 95% interval.
    Both regimes scored on the same test cases: a paired bootstrap of cases and runs (it carries
    test-sampling and seed variability). Otherwise, with >= 2 runs each: a Welch t-interval over
    the per-run values. Numbers stay numeric (NaN where missing); 'Interval' names the method."""
    table: dict[tuple, dict] = {}
    for e in entries:
        if "error" not in e and e["regime"] in ("imbalanced", "adasyn"):
            table.setdefault((e["experiment"], e["model"]), {})[e["regime"]] = e
    rows = []
    for (x, m), pair in table.items():
        a, b = pair.get("imbalanced"), pair.get("adasyn")
        va, vb = _values(a, metric), _values(b, metric)
        row = {"Experiment": x, "Model": m, "imbalanced": np.mean(va) if va else np.nan,
               "adasyn": np.mean(vb) if vb else np.nan, "Difference": np.nan, "CI low": np.nan,
               "CI high": np.nan, "Interval": "—"}
        if va and vb:
            row["Difference"] = float(np.mean(vb) - np.mean(va))
            ca, cb = (_cases(a), _cases(b))
            same = (ca is not None and cb is not None and np.array_equal(ca[0], cb[0])
                    and (ca[3] is None or cb[3] is None or list(ca[3]) == list(cb[3])))
            if same and metric in _bootstrap_metrics():
                lo, hi = paired_bootstrap_interval(ca, cb, metric, n_boot, seed)
                if lo is not None:
                    row.update({"CI low": lo, "CI high": hi, "Interval": BOOTSTRAP})
            elif len(va) >= 2 and len(vb) >= 2:
                _, lo, hi = welch_interval(va, vb)
                row.update({"CI low": lo, "CI high": hi, "Interval": WELCH})
        rows.append(row)
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def _bootstrap_metrics() -> tuple[str, ...]:
    return METRICS
