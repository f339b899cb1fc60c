"""Paired differences for the metrics page: each model's ADASYN - imbalanced, and fusion - each
comparator (image only, late fusion, the shipped bundle), as the difference of the run-mean test
metric with a 95% interval. One engine for both: a paired bootstrap of the shared test cases and
the runs (pneumo.evaluation.bootstrap), a Welch interval over runs where no cases are shared."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pneumo.evaluation import bootstrap as st
from pneumo.evaluation.bootstrap import METRICS
from pneumo.models.names import model_name

BOOTSTRAP = "paired bootstrap of test cases and runs"
WELCH = "Welch t-interval over runs"
DIFFERENCE_COLUMNS = ["Experiment", "Model", "imbalanced", "adasyn", "Difference", "CI low", "CI high",
                      "Interval"]
MODEL_COLUMNS = ["Experiment", "Regime", "Comparison", "Model", "Fusion", "Other", "Difference", "CI low",
                 "CI high", "Interval", "Note"]
VERSUS = ("image_only", "late_fusion")   # fusion against each modality's own model and the simpler fusion


def experiment_label(name: str) -> str:
    """An experiment as the page names it: a results file by its name, a bundle as 'NAME (shipped)'."""
    return f"{name.removeprefix('bundle:')} (shipped)" if name.startswith("bundle:") else name


def summary_mean(e: dict | None, split: str, metric: str) -> float | None:
    """The stored mean over runs of one metric on one split (None when absent)."""
    stat = (((e or {}).get("summary") or {}).get(split) or {}).get(metric) or {}
    return stat.get("mean")


def _run_values(e: dict, metric: str) -> list[float]:
    vals = [((r.get("test") or {}).get(metric)) for r in e.get("runs") or []]
    return [float(v) for v in vals if isinstance(v, (int, float)) and np.isfinite(v)]


def run_values(e: dict | None, metric: str) -> list[float]:
    """Per-run test values: stored, else from the per-case probabilities at each run's threshold
    (so the difference and its bootstrap interval agree), else the summary mean alone."""
    if e is None:
        return []
    stored = _run_values(e, metric)
    cases = cases_of(e)
    if not stored and cases is not None:
        from pneumo.evaluation.metrics import binary_metrics
        stored = [float(v) for p, t in zip(cases[1], cases[2])
                  if np.isfinite(v := binary_metrics(cases[0], p, t).get(metric, np.nan))]
    mean = summary_mean(e, "test", metric)
    return stored or ([] if mean is None else [float(mean)])


def cases_of(e: dict) -> tuple[np.ndarray, list[np.ndarray], list[float], list | None] | None:
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
    resample of the shared test cases (the same for both) and, per side, the runs with
    replacement, each run's metric at its own threshold (as pneumo.experiments.results_json's comparisons)."""
    (y, pa, ta, _), (_, pb, tb, _) = base, other
    rng = np.random.default_rng(seed)
    W = st.case_weights(len(y), n_boot, rng)
    ra = st.per_run_replicates(y, pa, ta, W)[metric]
    rb = st.per_run_replicates(y, pb, tb, W)[metric]
    da = rng.integers(0, len(pa), size=(n_boot, len(pa)))
    db = rng.integers(0, len(pb), size=(n_boot, len(pb)))
    return st.percentile_ci(st.mean_over_drawn_runs(rb, db) - st.mean_over_drawn_runs(ra, da), level)


def _split_words(cases: tuple | None) -> str:
    if cases is None:
        return "no per-case probabilities"
    return f"{len(cases[0])} films, {int(cases[0].sum())} pneumonia"


def unpaired_reason(a: dict, b: dict) -> str | None:
    """Why a and b (from different files) cannot be paired case by case; None when they can:
    both store per-case probabilities and the same case ids in the same order."""
    ca, cb = cases_of(a), cases_of(b)
    if ca is None or cb is None or len(ca[0]) != len(cb[0]) or not np.array_equal(ca[0], cb[0]):
        return (f"tested on different films ({experiment_label(a['experiment'])}: {_split_words(ca)}; "
                f"{experiment_label(b['experiment'])}: {_split_words(cb)})")
    if ca[3] is None or cb[3] is None:
        missing = experiment_label(a["experiment"] if ca[3] is None else b["experiment"])
        return f"{missing} stores no case ids, so its test films cannot be matched one by one"
    if list(ca[3]) != list(cb[3]):
        return "the two test splits hold different films"
    return None


def difference(a: dict | None, b: dict | None, metric: str, n_boot: int = 2000, seed: int = 0,
               paired_only: bool = False) -> dict:
    """b - a of the run-mean test metric: 'a', 'b', 'Difference', 'CI low', 'CI high', 'Interval'.
    Paired bootstrap when both hold the same test cases; else (unless paired_only) a Welch interval
    with >= 2 runs each. Numbers stay numeric (NaN where missing); 'Interval' names the method."""
    va, vb = run_values(a, metric), run_values(b, metric)
    row = {"a": np.mean(va) if va else np.nan, "b": np.mean(vb) if vb else np.nan, "Difference": np.nan,
           "CI low": np.nan, "CI high": np.nan, "Interval": "—"}
    if not (va and vb):
        return row
    row["Difference"] = float(np.mean(vb) - np.mean(va))
    ca, cb = cases_of(a), cases_of(b)
    same = (ca is not None and cb is not None and np.array_equal(ca[0], cb[0])
            and (ca[3] is None or cb[3] is None or list(ca[3]) == list(cb[3])))
    if same and metric in METRICS:
        lo, hi = paired_bootstrap_interval(ca, cb, metric, n_boot, seed)
        if lo is not None:
            row.update({"CI low": lo, "CI high": hi, "Interval": BOOTSTRAP})
    elif not paired_only and len(va) >= 2 and len(vb) >= 2:
        _, lo, hi = welch_interval(va, vb)
        row.update({"CI low": lo, "CI high": hi, "Interval": WELCH})
    return row


def regime_differences(entries: list[dict], metric: str = "roc_auc", n_boot: int = 2000,
                       seed: int = 0) -> pd.DataFrame:
    """Per (experiment, model): ADASYN - imbalanced of the run-mean test metric with a 95% interval.
    Both regimes scored on the same test cases: a paired bootstrap of cases and runs (it carries
    test-sampling and seed variability). Otherwise, with >= 2 runs each: a Welch t-interval over
    the per-run values."""
    table: dict[tuple, dict] = {}
    for e in entries:
        if "error" not in e and e["regime"] in ("imbalanced", "adasyn"):
            table.setdefault((e["experiment"], e["model"]), {})[e["regime"]] = e
    rows = []
    for (x, m), pair in table.items():
        d = difference(pair.get("imbalanced"), pair.get("adasyn"), metric, n_boot, seed)
        rows.append({"Experiment": x, "Model": m, "imbalanced": d.pop("a"), "adasyn": d.pop("b"), **d})
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def _bundle_name(e: dict) -> str:
    return e["experiment"].removeprefix("bundle:")


def model_differences(entries: list[dict], metric: str = "roc_auc", n_boot: int = 2000,
                      seed: int = 0) -> pd.DataFrame:
    """Per (experiment, regime) of a results file: fusion - image only, fusion - late fusion (the
    same test cases: paired bootstrap) and fusion - each shipped bundle's fusion, made only when the
    bundle was tested on the same films (else 'Note' says why, in one line). 'Model': the comparator."""
    good = [e for e in entries if "error" not in e]
    bundles = [e for e in good if e["regime"] == "shipped" and e["model"] == "fusion"]
    rows = []
    for f in (e for e in good if e["model"] == "fusion" and e["regime"] != "shipped"):
        same = {e["model"]: e for e in good if (e["experiment"], e["regime"]) == (f["experiment"], f["regime"])}
        pairs = [(same[m], model_name(m), m, None) for m in VERSUS if m in same]
        pairs += [(b, f"shipped {_bundle_name(b)}", "fusion", unpaired_reason(f, b)) for b in bundles]
        for other, name, kind, reason in pairs:
            row = {"Experiment": f["experiment"], "Regime": f["regime"], "Comparison": f"Fusion − {name}",
                   "Model": kind, "Note": ""}
            if reason:
                row.update({"Fusion": np.mean(run_values(f, metric) or [np.nan]), "Other": np.nan,
                            "Difference": np.nan, "CI low": np.nan, "CI high": np.nan, "Interval": "—",
                            "Note": f"Fusion − {name} not made: {reason}; a paired difference needs the same films."})
            else:
                d = difference(other, f, metric, n_boot, seed, paired_only=kind == "fusion")
                row.update({"Fusion": d.pop("b"), "Other": d.pop("a"), **d})
            rows.append(row)
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)
