"""The metrics page's data: every (experiment, model, regime) from results/*.json and each
bundle's metrics.json, as tables (ours beside the paper's), pooled curves and confusion matrices,
a readable default selection, and each model's ADASYN - imbalanced difference with its 95% interval."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pneumo import config
from pneumo.experiments.comparisons import (BOOTSTRAP, WELCH, cases_of, experiment_label,  # noqa: F401 - the page's
                                            model_differences, regime_differences, summary_mean, welch_interval)
from pneumo.experiments.paper_tables import LOSS_NOTE, PAPER_TABLES, paper_consistency_note  # noqa: F401 - the page's words
from pneumo.experiments.variants import variant_line
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
            about = _description(doc)
            for e in doc.get("entries", []):
                entries.append({"experiment": doc.get("experiment", path.stem), "model": e["model"],
                                "regime": e.get("regime", "—"), "semi_real": semi, "description": about,
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
                    "description": _bundle_description(path.parent.name, doc.get("cohort") or {}),
                    "runs": [{"threshold": metrics.get("threshold", 0.5)}], "test_cases": cases,
                    "source": f"{path.parent.name}/metrics.json"})
    return out


def _description(doc: dict) -> str:
    """What a results file measured, in its own words: its variant's line (the cohort and how the film
    network was had) where it records one, else its description (top level or the config's), else its
    cohort's name; the page adds the test split it counts from the cases."""
    cohort = doc.get("cohort") or {}
    if cohort.get("variant_line") or "kermany+" in str(cohort.get("name", "")):
        return variant_line(doc)
    return str(doc.get("description") or (doc.get("config") or {}).get("description")
               or cohort.get("name") or "no description stored")


def _bundle_description(name: str, cohort: dict) -> str:
    """A shipped bundle's line from its metrics.json cohort: the source, and where its test films come from."""
    test = ((cohort.get("images") or {}).get("notes") or "").split(";")[0].strip().replace("test = ", "test films: ", 1)
    size = f", {cohort['n_cases']} cases" if cohort.get("n_cases") else ""
    return f"Shipped model {name}: {cohort.get('source', 'its own cohort')}{size}" + (f"; {test}" if test else "")


def split_size(e: dict) -> tuple[int, int] | None:
    """(films, pneumonia) of an entry's test split, from its stored per-case labels."""
    y = (e.get("test_cases") or {}).get("y")
    return (len(y), int(np.sum(y))) if y else None


def experiment_lines(entries: list[dict]) -> dict[str, str]:
    """One line per experiment: its description, then its test split and runs counted from the data
    (so two files of one protocol on different test films read apart)."""
    out: dict[str, str] = {}
    for e in entries:
        if "error" in e or e["experiment"] in out:
            continue
        split, runs = split_size(e), len(e.get("runs") or [])
        facts = [f"test split {split[0]} films, {split[1]} pneumonia"] if split else []
        facts += [f"{runs} runs"] if runs > 1 else []
        out[e["experiment"]] = "; ".join([e.get("description") or "no description stored"] + facts)
    return out


def thresholded_notes(entries: list[dict], max_prevalence: float = 0.25, gap: float = 0.15) -> list[str]:
    """Per experiment whose test split is rare in pneumonia and whose F1 trails ROC AUC by `gap`:
    why, in one line counted from the data (the normals flagged at each run's threshold)."""
    out = []
    for x in dict.fromkeys(e["experiment"] for e in entries):
        mine = [e for e in entries if e["experiment"] == x and cases_of(e) is not None]
        mine.sort(key=lambda e: (e["model"] != "fusion", e["regime"] != "imbalanced"))
        if not mine:
            continue
        e = mine[0]
        y, probs, thresholds, _ = cases_of(e)
        n, pos = len(y), int(y.sum())
        auc, f1 = summary_mean(e, "test", "roc_auc"), summary_mean(e, "test", "f1")
        if not pos or pos / n > max_prevalence or auc is None or f1 is None or auc - f1 < gap:
            continue
        fp = np.mean([((p >= t) & (y == 0)).sum() for p, t in zip(probs, thresholds)])
        tp = np.mean([((p >= t) & (y == 1)).sum() for p, t in zip(probs, thresholds)])
        out.append(f"Why F1 is low beside ROC AUC: {x}'s test split holds {pos} pneumonia among {n} films "
                   f"(1:{round((n - pos) / pos)}). {curve_label(e)} finds {tp:.1f} of the {pos} at its runs' "
                   f"thresholds but also flags {fp:.1f} of the {n - pos} normals, so F1 is {f1:.2f} (MCC and "
                   f"accuracy alike) while ROC AUC, which ranks films without a threshold, is {auc:.3f}.")
    return out


def loss_note(entries: list[dict]) -> str | None:
    """Where our largest fusion test loss comes from, counted: the normals' share of the cross-entropy
    and their mean P(pneumonia), beside the same model trained imbalanced."""
    def normals(e: dict) -> tuple[float, float]:    # (share of the summed cross-entropy, mean p) on normals
        y, probs, _, _ = cases_of(e)
        ce = [-(y * np.log(pc) + (1 - y) * np.log(1 - pc)) for pc in (np.clip(p, 1e-7, 1 - 1e-7) for p in probs)]
        return (float(np.mean([c[y == 0].sum() / c.sum() for c in ce])),
                float(np.mean([p[y == 0].mean() for p in probs])))

    table1 = {tuple(r["ours"]) for r in PAPER_TABLES["table1"]["rows"]}
    rows = [e for e in entries if e["model"] == "fusion" and (e["model"], e["regime"]) in table1
            and cases_of(e) is not None and summary_mean(e, "test", "loss") is not None]
    if not rows:
        return None
    e = max(rows, key=lambda e: summary_mean(e, "test", "loss"))
    share, p_normal = normals(e)
    text = (f"Largest here: {curve_label(e)}, {100 * summary_mean(e, 'test', 'loss'):.1f}; its test normals carry "
            f"{'over 99%' if share > 0.99 else f'{share:.0%}'} of it (mean P(pneumonia) on them {p_normal:.2f}")
    base = next((b for b in rows if b["experiment"] == e["experiment"] and b["regime"] == "imbalanced"), None)
    if base is not None and base is not e:
        text += f", {normals(base)[1]:.2f} when trained imbalanced"
    return text + "): confident calls on the many normals, not missed pneumonia, set the loss."


def entry_name(e: dict) -> str:
    return f"{e['experiment']} · {e['model']} · {e['regime']}"


def curve_label(e: dict, with_experiment: bool = False) -> str:
    """A legend name a reader can parse: 'Fusion (image + labs) · imbalanced' (+ experiment)."""
    if e["regime"] == "shipped":   # a bundle's name says its experiment: no 'bundle:' tag to repeat
        return f"{model_name(e['model'])} · shipped {e['experiment'].removeprefix('bundle:')}"
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


def _stat_text(stat: dict | None, cells: str = "full") -> str:
    """'mean ± sd [ci]' ('full'), 'mean ± sd' ('sd') or 'mean [ci]' ('ci'); what a cell lacks, left out."""
    if not stat or stat.get("mean") is None:
        return "—"
    text = f"{stat['mean']:.3f}"
    if stat.get("sd") is not None and cells in ("full", "sd"):
        text += f" ± {stat['sd']:.3f}"
    if stat.get("ci_low") is not None and stat.get("ci_high") is not None and cells in ("full", "ci"):
        text += f" [{stat['ci_low']:.3f}, {stat['ci_high']:.3f}]"
    return text


def metrics_table(entries: list[dict], split: str = "test", cells: str = "full", compact: bool = False) -> pd.DataFrame:
    """Accuracy, ROC AUC, PR AUC, F1, MCC as 'mean ± sd [95% CI]' per entry ('cells': which parts).
    compact: display names, and the Experiment / Regime columns only where the entries differ in them
    (the page names the experiment above the table), so five metrics fit one screen's width."""
    rows = []
    for e in entries:
        stats = (e.get("summary") or {}).get(split, {})
        row = {"Experiment": experiment_label(e["experiment"]) if compact else e["experiment"],
               "Model": model_name(e["model"]) if compact else e["model"],
               "Regime": regime_name(e["regime"]) if compact else e["regime"],
               "Runs": len(e.get("runs") or [])}
        row.update({METRIC_NAMES[m]: _stat_text(stats.get(m), cells) for m in TABLE_METRICS})
        rows.append(row)
    frame = _dashes(pd.DataFrame(rows))
    if compact:
        frame = frame.drop(columns=[c for c in ("Experiment", "Regime") if c in frame and frame[c].nunique() < 2])
    return frame


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
            acc = summary_mean(e, "test", "accuracy") if e else None
            loss = summary_mean(e, "test", "loss") if e else None
            rows.append({**base, "Ours": f"{curve_label(e)} · {e['experiment']}" if e else "—",
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
                row[f"{e['experiment']} train"] = _round(summary_mean(e, "train", key))
                row[f"{e['experiment']} test"] = _round(summary_mean(e, "test", key))
        rows.append(row)
    return _dashes(pd.DataFrame(rows))


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def regime_pairs(entries: list[dict], metric: str = "roc_auc") -> pd.DataFrame:
    """Imbalanced vs ADASYN side by side per (experiment, model): test mean of one metric."""
    table: dict[tuple, dict] = {}
    for e in entries:
        if e["regime"] in ("imbalanced", "adasyn"):
            table.setdefault((e["experiment"], e["model"]), {})[e["regime"]] = _round(summary_mean(e, "test", metric))
    rows = [{"Experiment": x, "Model": m, "imbalanced": r.get("imbalanced"), "adasyn": r.get("adasyn")}
            for (x, m), r in table.items()]
    return _dashes(pd.DataFrame(rows, columns=["Experiment", "Model", "imbalanced", "adasyn"]))
