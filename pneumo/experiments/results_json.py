"""The results file one experiment writes (schema pneumo.results/1): the grid's runs summarised
(run mean/sd, hierarchical bootstrap CIs, each regime vs imbalanced), written atomically with no
MIMIC identifier, and the markdown tables the CLI prints. pneumo.experiments.results reads it."""
from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from pneumo.errors import PneumoError
from pneumo.evaluation import bootstrap as stats

SCHEMA = "pneumo.results/1"
COMPARE_METRICS = ("mcc", "pr_auc", "f1", "roc_auc", "accuracy", "brier")
_PRIVATE_ID_MARKERS = ("mimic-hadm-", "mimic-subject-")


def public_case_ids(frame: pd.DataFrame) -> list[str]:
    """Case ids safe to publish: the image's own id for paired cohorts (the lab side names a
    MIMIC admission), and row numbers wherever an id would carry a MIMIC identifier."""
    ids = (frame["image_case_id"] if "image_case_id" in frame else frame["case_id"]).astype(str).tolist()
    if any(m in i for i in ids for m in _PRIVATE_ID_MARKERS):
        ids = [f"case-{n:05d}" for n in range(len(ids))]
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}#{seen[i]}")
    return out


def split_counts(frame: pd.DataFrame) -> dict:
    """Cases per split and class: {split: {"0": n, "1": n}}."""
    return {s: {str(c): int(((frame["split"] == s) & (frame["label"] == c)).sum()) for c in (0, 1)}
            for s in ("train", "val", "test")}


def write_results(results: dict, out: Path, name: str) -> tuple[dict, Path]:
    """Write <out>/<name>.json atomically; returns (what the file holds, its path). Refuses any
    text naming a MIMIC admission or subject."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    results = jsonable(results)    # NaN -> null: what is returned is what the file holds
    text = json.dumps(results, indent=1, allow_nan=False)
    if any(m in text for m in _PRIVATE_ID_MARKERS):
        raise PneumoError("refusing to write results that contain MIMIC admission or subject ids")
    tmp_path = path.with_suffix(".json.tmp")
    tmp_path.write_text(text)
    os.replace(tmp_path, path)
    return results, path


def assemble(cfg, cohort, frame, grid, enc_desc, wall, t_embed, finetune) -> dict:
    """The results file's content from the grid's runs: per cell the run mean/sd and bootstrap CIs,
    the regime comparisons, the cohort, config, timing and environment."""
    y = grid["y_test"]
    rng = np.random.default_rng(20240 + cfg.seeds[0])
    W = stats.case_weights(len(y), cfg.bootstrap, rng) if cfg.bootstrap else None
    entries, replicates = [], {}
    for (name, regime), runs in grid["cells"].items():
        probs = [r.pop("p_test") for r in runs]
        summary = {"train": {m: _mean_sd([r["train"][m] for r in runs]) for m in stats.METRICS},
                   "test": {m: _mean_sd([r["test"][m] for r in runs]) for m in stats.METRICS}}
        if W is not None:
            reps = stats.per_run_replicates(y, probs, [r["threshold"] for r in runs], W)
            draws = rng.integers(0, len(runs), size=(len(W), len(runs)))
            replicates[(name, regime)] = {m: stats.mean_over_drawn_runs(v, draws) for m, v in reps.items()}
            for m, samples in replicates[(name, regime)].items():
                lo, hi = stats.percentile_ci(samples)
                summary["test"][m].update(ci_low=lo, ci_high=hi)
        entries.append({"model": name, "regime": regime, "runs": runs, "summary": summary,
                        "test_cases": {"case_id": public_case_ids(grid["test_frame"]), "y": y.tolist(),
                                       "p": [np.round(p, 6).tolist() for p in probs]}})
    return {
        "schema": SCHEMA, "experiment": cfg.name,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cohort": {"name": cohort.name, "semi_real": bool(cohort.semi_real),
                   "variant": cohort.description.get("variant"), "variant_line": cohort.description.get("variant_line"),
                   "description": _scrub(cohort.description), "counts": split_counts(frame)},
        "config": cfg.to_dict(), "n_runs": cfg.runs, "seeds": list(cfg.seeds),
        "protocol": {"threshold": "Youden's J on val, per run", "finetune": bool(finetune),
                     "train_metrics_on": "real train cases (ADASYN's synthetic rows excluded)",
                     "ci": stats.CI_METHOD,
                     "bootstrap": cfg.bootstrap, "encoder": enc_desc},
        "comparisons": _comparisons(cfg, replicates, grid["cells"]),
        "timing": {"wall_seconds": round(wall, 1), "embedding_seconds": round(t_embed, 1),
                   **({"film_seconds": enc_desc["film_seconds"]} if "film_seconds" in enc_desc else {}),
                   "fit_seconds": round(sum(r["seconds"] for runs in grid["cells"].values() for r in runs), 1)},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
                        **_versions()},
        "entries": entries,
    }


def _comparisons(cfg, replicates, cells) -> list[dict]:
    """Regime vs imbalanced for each model: difference of the run-mean test metric, paired bootstrap
    (the same test-case resamples for both; runs redrawn independently)."""
    out = []
    for name in cfg.models:
        for regime in (r for r in cfg.regimes if r != "imbalanced"):
            if "imbalanced" not in cfg.regimes:
                break
            a, b = (name, regime), (name, "imbalanced")
            for m in COMPARE_METRICS:
                diff = np.mean([r["test"][m] for r in cells[a]]) - np.mean([r["test"][m] for r in cells[b]])
                row = {"model": name, "regime": regime, "versus": "imbalanced", "metric": m, "difference": float(diff)}
                if a in replicates:
                    samples = replicates[a][m] - replicates[b][m]
                    lo, hi = stats.percentile_ci(samples)
                    finite = samples[np.isfinite(samples)]
                    row.update(ci_low=lo, ci_high=hi,
                               p_two_sided=float(min(1.0, 2 * min((finite <= 0).mean(), (finite >= 0).mean()))))
                out.append(row)
    return out


def _mean_sd(values) -> dict:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if len(v) else None, "sd": float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else None)}


def _scrub(obj):
    """Drop anything that could name a MIMIC admission or subject from the cohort description."""
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if not any(s in str(k) for s in ("hadm", "subject_id"))}
    if isinstance(obj, (list, tuple)):
        return [_scrub(v) for v in obj]
    return obj


def jsonable(obj):
    """Plain JSON types; NaN and inf become null."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _versions() -> dict:
    out = {}
    for mod in ("tensorflow", "keras", "sklearn", "imblearn", "numpy"):
        module = sys.modules.get(mod)
        if module is not None:
            out[mod] = getattr(module, "__version__", "?")
    return out


def summary_table(results: dict, metrics=("mcc", "pr_auc", "f1", "roc_auc", "accuracy")) -> str:
    """Markdown: model x regime rows, test metrics as mean ± sd."""
    head = "| model | regime | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for e in results["entries"]:
        t = e["summary"]["test"]
        cells = [f"{t[m]['mean']:.3f} ± {t[m]['sd']:.3f}" if t[m]["mean"] is not None else "-" for m in metrics]
        lines.append(f"| {e['model']} | {e['regime']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_table(results: dict, model: str = "fusion") -> str:
    """Markdown: each regime minus imbalanced for one model, with the paired bootstrap 95% CI."""
    rows = [c for c in results.get("comparisons", []) if c["model"] == model]
    lines = [f"| {model}: regime - imbalanced | metric | difference | 95% CI |", "|---|---|---|---|"]
    for c in rows:
        ci = f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]" if c.get("ci_low") is not None else "-"
        lines.append(f"| {c['regime']} | {c['metric']} | {c['difference']:+.3f} | {ci} |")
    return "\n".join(lines)
