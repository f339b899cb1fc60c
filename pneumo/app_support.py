"""What the Streamlit pages need that is not model logic: labels, tables, figures, safe
upload handling, example cases and the metrics-page data. No streamlit import here, so
all of it is testable without a running app."""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import numpy as np
import pandas as pd

from pneumo import config

DISCLAIMER = "Research and decision support only — not a diagnosis."
SEMI_REAL_LABEL = ("Semi-real example: a real chest X-ray (Kermany test set) with a "
                   "real-format lab panel of another person (invented values).")
# Colours shared by every figure: one calm blue, a warm red for pneumonia, gray for normal.
BLUE, RED, GREEN, GRAY = "#1f5fa8", "#c0392b", "#2e8b57", "#8a96a3"

from pneumo.tables import MODEL_NAMES, PAPER_TABLES, REGIME_NAMES  # noqa: E402,F401 - one source of the paper's figures

METRIC_NAMES = {"accuracy": "Accuracy", "roc_auc": "ROC AUC", "pr_auc": "PR AUC", "f1": "F1",
                "mcc": "MCC", "loss": "Loss", "sensitivity": "Sensitivity",
                "specificity": "Specificity", "brier": "Brier", "ece": "ECE"}
TABLE_METRICS = ("accuracy", "roc_auc", "pr_auc", "f1", "mcc")

# --- labs ------------------------------------------------------------------------------

_SHORT = {"wbc": "WBC", "rbc": "RBC", "hemoglobin": "Hb", "hematocrit": "Hct",
          "platelets": "Platelets", "calcium": "Calcium"}


def short_name(key: str, name: str | None = None) -> str:
    """A chart-sized name: 'WBC', 'BUN', else the display name."""
    if key in _SHORT:
        return _SHORT[key]
    m = re.search(r"\(([A-Z]{2,6})\)", name or "")
    return m.group(1) if m else (name or key)


def fmt_number(value: float | None, digits: int = 3) -> str:
    """3 significant digits, no trailing noise: 16.2, 0.9, 245."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.{digits}g}"


def ref_text(test, unit: bool = True) -> str:
    lo, hi = getattr(test, "ref_low", None), getattr(test, "ref_high", None)
    if lo is None and hi is None:
        return "no reference range"
    text = f"{fmt_number(lo)}–{fmt_number(hi)}"
    return f"{text} {test.unit}" if unit else text


def lab_label(test) -> str:
    return f"{test.name} ({test.unit})"


def lab_help(test) -> str:
    median = getattr(test, "median", None)
    blank = (f"the model uses the training median {fmt_number(median)}" if median is not None
             else "the model treats it as missing")
    return (f"Reference range {ref_text(test)}; values outside "
            f"{fmt_number(test.plaus_low)}–{fmt_number(test.plaus_high)} are refused. "
            f"Leave blank if not measured: {blank}.")


def range_flag(test, value: float | None) -> str | None:
    """'low' / 'high' against the reference range, None inside it or when blank."""
    if value is None:
        return None
    if test.ref_low is not None and value < test.ref_low:
        return "low"
    if test.ref_high is not None and value > test.ref_high:
        return "high"
    return None


def form_values(values: dict[str, float | None]) -> dict[str, float] | None:
    """Form entries -> the dict parse_labs takes; None when nothing was typed."""
    kept = {k: float(v) for k, v in values.items() if v is not None}
    return kept or None


def lab_display_frame(lab_display: list[dict]) -> pd.DataFrame:
    """The explanation's per-test rows as a readable table."""
    rows = []
    for d in lab_display:
        lo, hi = d.get("ref_low"), d.get("ref_high")
        flag = "imputed" if d.get("imputed") else ("out of range" if d.get("out_of_range") else "")
        rows.append({"Test": d.get("name") or d.get("key"),
                     "Value": fmt_number(d.get("value")), "Unit": d.get("unit", ""),
                     "Reference": f"{fmt_number(lo)}–{fmt_number(hi)}" if lo is not None or hi is not None else "",
                     "Note": flag})
    return pd.DataFrame(rows, columns=["Test", "Value", "Unit", "Reference", "Note"])


def shap_frame(shap_values: dict[str, float], lab_display: list[dict]) -> pd.DataFrame:
    """One row per lab: a label like 'WBC 16.2 10*3/uL' and its SHAP value, largest |value| first."""
    info = {d.get("key"): d for d in lab_display}
    rows = []
    for key, val in shap_values.items():
        d = info.get(key, {})
        name = short_name(key, d.get("name"))
        text = (f"{name} not given" if d.get("imputed") or d.get("value") is None
                else f"{name} {fmt_number(d.get('value'))} {d.get('unit', '')}".strip())
        rows.append({"key": key, "label": text, "value": float(val)})
    frame = pd.DataFrame(rows, columns=["key", "label", "value"])
    return frame.reindex(frame["value"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def contribution_sentence(contribution: dict, modalities: dict | None = None) -> str:
    """'The film moved the risk +0.41, the labs +0.06.' (exact two-player Shapley split)."""
    img, labs = contribution.get("image"), contribution.get("labs")
    parts = []
    if img is not None and (modalities is None or modalities.get("image", True)):
        parts.append(f"the film moved the risk {img:+.2f}")
    if labs is not None and (modalities is None or modalities.get("labs", True)):
        parts.append(f"the labs {labs:+.2f}")
    if not parts:
        return ""
    text = ", ".join(parts)
    return text[0].upper() + text[1:] + "."


def case_key(image_digest: str | None, labs: dict | None) -> str:
    """One key per distinct case (image + labs), so a rerun does not log it twice."""
    payload = json.dumps({"image": image_digest, "labs": labs or {}}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# --- figures (plotly imported lazily: the library must not pay for it) ------------------

def _layout(fig, height: int):
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), paper_bgcolor="white",
                      plot_bgcolor="white", font=dict(size=13))
    return fig


def probability_figure(probability: float, threshold: float, label: str):
    """A 0-1 bar with the operating threshold marked."""
    import plotly.graph_objects as go

    colour = RED if label == "PNEUMONIA" else GREEN
    fig = go.Figure(go.Bar(x=[probability], y=["P(pneumonia)"], orientation="h", marker_color=colour,
                           text=[f"{probability:.2f}"], textposition="outside", width=0.5))
    fig.add_vline(x=threshold, line_dash="dash", line_color="#1c2430",
                  annotation_text=f"threshold {threshold:.2f}", annotation_position="top")
    fig.update_xaxes(range=[0, 1.08], tickvals=[0, .25, .5, .75, 1], gridcolor="#e6ebf1")
    fig.update_yaxes(showticklabels=False)
    return _layout(fig, 140)


def shap_figure(frame: pd.DataFrame, top: int = 12):
    """Horizontal SHAP bars, largest on top; red pushes towards pneumonia."""
    import plotly.graph_objects as go

    f = frame.head(top).iloc[::-1]
    colours = [RED if v > 0 else BLUE for v in f["value"]]
    fig = go.Figure(go.Bar(x=f["value"], y=f["label"], orientation="h", marker_color=colours,
                           text=[f"{v:+.3f}" for v in f["value"]], textposition="outside",
                           cliponaxis=False))
    # scale to the largest bar (a saturated case has tiny values that a fixed axis would hide)
    reach = max(float(f["value"].abs().max()) if len(f) else 0.0, 0.005) * 1.35
    fig.update_xaxes(title="change in P(pneumonia)", zeroline=True, zerolinecolor="#1c2430",
                     gridcolor="#e6ebf1", range=[-reach, reach])
    return _layout(fig, 60 + 26 * len(f))


def curve_figure(curves: list[dict], kind: str):
    """ROC / PR / calibration lines, one per (experiment, model, regime)."""
    import plotly.graph_objects as go

    titles = {"roc": ("False positive rate", "True positive rate"),
              "pr": ("Recall", "Precision"),
              "calibration": ("Mean predicted probability", "Observed fraction with pneumonia")}
    fig = go.Figure()
    if kind in ("roc", "calibration"):
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color=GRAY),
                                 name="chance" if kind == "roc" else "perfect", hoverinfo="skip"))
    for c in curves:
        fig.add_trace(go.Scatter(x=c["x"], y=c["y"], mode="lines+markers" if kind == "calibration" else "lines",
                                 name=c["name"]))
    fig.update_xaxes(title=titles[kind][0], range=[0, 1], gridcolor="#e6ebf1")
    fig.update_yaxes(title=titles[kind][1], range=[0, 1.02], gridcolor="#e6ebf1")
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return _layout(fig, 420)


def confusion_figure(matrix: np.ndarray, title: str):
    import plotly.graph_objects as go

    names = ["NORMAL", "PNEUMONIA"]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", showscale=False,
                               text=matrix, texttemplate="%{text}"))
    fig.update_xaxes(title="predicted")
    fig.update_yaxes(title="true", autorange="reversed")
    fig.update_layout(title=dict(text=title, font=dict(size=13)))
    return _layout(fig, 300)


# --- metrics page data -----------------------------------------------------------------

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


# --- uploads, examples, other tables ---------------------------------------------------

def safe_member(name: str) -> PurePosixPath | None:
    """A zip member name as a relative path, or None when it is absolute or climbs out ('..')."""
    norm = name.replace("\\", "/")
    path = PurePosixPath(norm)
    if not norm or norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in path.parts:
        return None
    return path


def extract_zip(data: bytes, dest: Path, *, max_bytes: int = 500_000_000) -> tuple[int, list[str]]:
    """Extract a zip into dest, refusing members with absolute paths or '..'.
    Returns (files extracted, refused member names)."""
    dest = Path(dest).resolve()
    refused, n, total = [], 0, 0
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            rel = safe_member(info.filename)
            target = (dest / rel).resolve() if rel is not None else None
            if target is None or not target.is_relative_to(dest):
                refused.append(info.filename)
                continue
            if info.is_dir():
                continue
            total += info.file_size
            if total > max_bytes:  # a zip bomb guard: stop before filling the disk
                refused.append(info.filename)
                break
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                out.write(src.read())
            n += 1
    return n, refused


def safe_filename(name: str) -> str:
    """An uploaded file's base name, stripped of folders and odd characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return base or "upload"


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV for download, with formula-like cells escaped (a spreadsheet will open it)."""
    from pneumo.csv_safe import safe_frame

    return safe_frame(frame).to_csv(index=False).encode("utf-8")


def example_images(root: Path | None = None) -> dict[str, Path]:
    """One Kermany test film per class ({'pneumonia': path, 'normal': path}); {} without data."""
    root = Path(root) if root else config.kermany_dir()
    found = {}
    for cls in ("PNEUMONIA", "NORMAL"):
        folder = root / "test" / cls
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
            if files:
                found[cls.lower()] = files[len(files) // 2]  # a fixed, unremarkable pick
    return found


def example_labs(kind: str) -> Path:
    return config.REPO_ROOT / "assets" / f"example_labs_{kind}.csv"


def panel_table(panel: Iterable) -> pd.DataFrame:
    return pd.DataFrame([{"Key": t.key, "Test": t.name, "Unit": t.unit, "Reference range": ref_text(t),
                          "Imputation (training median)": fmt_number(t.median)} for t in panel])


def history_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The case log for display: short digest, rounded probability, no identifiers."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    out = pd.DataFrame()
    cols = {c.lower(): c for c in frame.columns}

    def col(*names):
        for n in names:
            if n in cols:
                return frame[cols[n]]
        return pd.Series([None] * len(frame), index=frame.index)

    out["Time"] = col("time", "timestamp", "created", "ts")
    out["Image"] = col("image_digest", "digest").map(lambda d: (str(d)[:12] if isinstance(d, str) and d else "—"))
    out["P(pneumonia)"] = pd.to_numeric(col("probability"), errors="coerce").round(3)
    out["Label"] = col("label")
    out["Validity"] = col("validity")
    out["Model"] = col("model_version", "model", "version")
    out["Origin"] = col("origin")
    return out


def what_if_range(test, current: float | None) -> tuple[float, float, float]:
    """A slider span for one lab: the reference range widened, kept inside the plausible range."""
    lo = test.ref_low if test.ref_low is not None else test.plaus_low
    hi = test.ref_high if test.ref_high is not None else test.plaus_high
    span = max(hi - lo, 1e-6)
    lo, hi = lo - span, hi + span
    if current is not None:
        lo, hi = min(lo, current), max(hi, current)
    lo, hi = max(lo, test.plaus_low), min(hi, test.plaus_high)
    raw = (hi - lo) / 200  # about 200 steps, each a round 1, 2 or 5 x 10^k
    exp = 10 ** math.floor(math.log10(raw))
    step = next(m * exp for m in (1, 2, 5, 10) if m * exp >= raw - 1e-12)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return float(f"{lo:.6g}"), float(f"{hi:.6g}"), float(f"{step:.6g}")


def save_uploads(files: list[tuple[str, bytes]], dest: Path) -> list[str]:
    """Write uploaded (name, bytes) into dest: zips are extracted safely, other files by their
    base name only. Returns the refused archive members."""
    refused: list[str] = []
    for name, data in files:
        if name.lower().endswith(".zip"):
            refused += extract_zip(data, dest)[1]
        else:
            (Path(dest) / safe_filename(name)).write_bytes(data)
    return refused


def count_rows(csv_path: Path) -> int:
    """Data rows of a CSV (for a progress bar; quoted newlines make it an estimate)."""
    with open(csv_path, "rb") as fh:
        return max(sum(1 for line in fh if line.strip()) - 1, 0)


def read_bundle(bundle_dir: Path | None = None) -> tuple[dict, dict]:
    """(bundle.json, metrics.json) of a bundle folder, {} for what is missing; no TensorFlow."""
    folder = Path(bundle_dir) if bundle_dir else config.default_model_dir()
    out = []
    for name in ("bundle.json", "metrics.json"):
        try:
            out.append(json.loads((folder / name).read_text()))
        except (OSError, ValueError):
            out.append({})
    return out[0], out[1]


def bundle_panel(meta: dict):
    """The bundle's lab panel (with its training medians), else the default panel."""
    from pneumo.labs import LabPanel, default_panel

    for key in ("panel", "lab_panel", "labs"):
        if isinstance(meta.get(key), dict):
            try:
                return LabPanel.from_dict(meta[key])
            except Exception:  # noqa: BLE001 - a malformed panel falls back to the default
                break
    return default_panel()


def versions(meta: dict) -> pd.DataFrame:
    """pneumo, TensorFlow and Keras versions (package metadata: no import) and the weights digest."""
    from importlib.metadata import PackageNotFoundError, version

    import pneumo

    rows = [("pneumo", getattr(pneumo, "__version__", "?"))]
    for label, dists in (("TensorFlow", ("tensorflow-cpu", "tensorflow")), ("Keras", ("keras",))):
        for dist in dists:
            try:
                rows.append((label, version(dist)))
                break
            except PackageNotFoundError:
                continue
    rows.append(("Model weights sha256", meta.get("weights_sha256") or "—"))
    for k in ("tensorflow_version", "keras_version"):
        if meta.get(k):
            rows.append((f"trained with {k.split('_')[0]}", meta[k]))
    return pd.DataFrame(rows, columns=["Component", "Version"])
