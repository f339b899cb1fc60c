"""What the Streamlit pages need that is not model logic: lab labels and tables, safe upload
handling, example cases, history and model-card tables. No streamlit import here, so all of
it is testable without a running app. Figures: pneumo.present.figures; metrics-page data:
pneumo.experiments.results."""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable

import pandas as pd

import pneumo
from pneumo import config
from pneumo.data.labs import LabPanel, default_panel
from pneumo.errors import PneumoError
from pneumo.models.bundle import WEIGHTS_FILE
from pneumo.service.csv_safe import safe_frame

DISCLAIMER = "Research and decision support only — not a diagnosis."
SEMI_REAL_LABEL = ("Semi-real example: a real chest X-ray (Kermany test set) with a "
                   "real-format lab panel of another person (invented values).")

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
    return f"{text} {test.display_unit}" if unit else text


def lab_label(test) -> str:
    return f"{test.name} ({test.display_unit})"


def lab_help(test) -> str:
    return (f"Reference range {ref_text(test)}; values outside "
            f"{fmt_number(test.plaus_low)}–{fmt_number(test.plaus_high)} are refused. "
            "Leave blank if not measured: the model reads a blank as not measured (its own token), "
            "not as a normal value.")


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


def case_key(image_digest: str | None, labs: dict | None) -> str:
    """One key per distinct case (image + labs), so a rerun does not log it twice."""
    payload = json.dumps({"image": image_digest, "labs": labs or {}}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# --- uploads, examples, other tables ---------------------------------------------------

def safe_member(name: str) -> PurePosixPath | None:
    """A zip member name as a relative path, or None when it is absolute or climbs out ('..')."""
    norm = name.replace("\\", "/")
    path = PurePosixPath(norm)
    if not norm or norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in path.parts:
        return None
    return path


class UploadError(PneumoError):
    """An upload refused as a whole (too many files, not a zip, a corrupt member); one line."""


MAX_MEMBER_NAME_BYTES = 255


def extract_zip(data: bytes, dest: Path, *, max_bytes: int = 500_000_000, max_entries: int = 10_000,
                name: str = "the archive") -> tuple[int, list[str]]:
    """Extract a zip into dest, skipping members with absolute paths or '..'.
    Returns (files extracted, refused member names). Raises UploadError, with one readable line,
    for what is not a zip, more than `max_entries` members, more than `max_bytes` inflated, a
    member name over 255 bytes, or a member that cannot be read back (bad CRC, encrypted,
    truncated). Members extracted before such a failure stay in dest."""
    return _extract_zip(data, dest, max_bytes, max_entries, name, [])


def _extract_zip(data, dest, max_bytes, max_entries, name, written: list[int]) -> tuple[int, list[str]]:
    dest = Path(dest).resolve()
    refused, n, total = [], 0, 0
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise UploadError(f"{name} is not a readable zip archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise UploadError(f"{name} has {len(infos)} entries; at most {max_entries} are accepted")
        for info in infos:
            if len(info.filename.encode("utf-8", "surrogateescape")) > MAX_MEMBER_NAME_BYTES:
                raise UploadError(f"{name} has a member name longer than {MAX_MEMBER_NAME_BYTES} bytes")
        if sum(i.file_size for i in infos if not i.is_dir()) > max_bytes:  # a zip bomb: refuse before writing
            raise UploadError(f"{name} inflates to more than {max_bytes / 1e6:.0f} MB, the limit for one batch")
        for info in infos:
            rel = safe_member(info.filename)
            target = (dest / rel).resolve() if rel is not None else None
            if target is None or not target.is_relative_to(dest):
                refused.append(info.filename)
                continue
            if info.is_dir():
                continue
            total += info.file_size
            if total > max_bytes:
                raise UploadError(f"{name} inflates to more than {max_bytes / 1e6:.0f} MB, the limit for one batch")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)   # ZipExtFile stops at file_size, checks the CRC
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError,
                    ValueError) as err:
                target.unlink(missing_ok=True)
                what = "has a bad CRC" if "CRC" in str(err) else "cannot be read"
                if "encrypt" in str(err).lower():
                    what = "is encrypted"
                raise UploadError(f"{name}: member {info.filename!r} {what}") from None
            n += 1
            written.append(info.file_size)
    return n, refused


def safe_filename(name: str) -> str:
    """An uploaded file's base name, stripped of folders and odd characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return base or "upload"


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV for download, with formula-like cells escaped (a spreadsheet will open it)."""

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
    return pd.DataFrame([{"Key": t.key, "Test": t.name, "Unit": t.display_unit, "Reference range": ref_text(t),
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
    out["Outcome"] = col("outcome").fillna("scored")
    out["Image"] = col("image_digest", "digest").map(lambda d: (str(d)[:12] if isinstance(d, str) and d else "—"))
    out["Inputs"] = col("inputs")
    out["P(pneumonia)"] = pd.to_numeric(col("probability"), errors="coerce").round(3)
    out["Label"] = col("label").map(lambda v: v if isinstance(v, str) and v else "—")
    out["Threshold"] = pd.to_numeric(col("threshold"), errors="coerce").round(3)
    out["Intended use"] = col("intended_use")
    out["Validity"] = col("validity")
    out["Warnings"] = col("warnings").map(lambda w: "; ".join(map(str, w)) if isinstance(w, list) else "")
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
    base name only. Returns the refused archive members; raises the first UploadError."""
    outcome = unpack_uploads(files, dest)
    if outcome.problems:
        raise UploadError(outcome.problems[0])
    return outcome.refused


@dataclass
class UploadOutcome:
    files: int = 0                                        # files written into dest
    refused: list[str] = field(default_factory=list)      # archive members skipped (unsafe paths)
    problems: list[str] = field(default_factory=list)     # one line per upload that was refused


def unpack_uploads(files: list[tuple[str, bytes]], dest: Path, *, max_files: int | None = None,
                   max_entries: int | None = None, max_bytes: int | None = None) -> UploadOutcome:
    """save_uploads with the batch limits (config.max_upload_files / max_zip_entries /
    max_batch_bytes by default) shared by every file of one upload, and no exception: a refused
    upload is one line in .problems and the other files are still written."""
    max_files = config.max_upload_files() if max_files is None else max_files
    entries_left = config.max_zip_entries() if max_entries is None else max_entries
    bytes_left = config.max_batch_bytes() if max_bytes is None else max_bytes
    out = UploadOutcome()
    if len(files) > max_files:
        out.problems.append(f"{len(files)} files in one upload; at most {max_files} are accepted "
                            "(put them in a zip)")
        return out
    dest = Path(dest)
    for name, data in files:
        try:
            if name.lower().endswith(".zip"):
                written: list[int] = []
                try:
                    n, refused = _extract_zip(data, dest, bytes_left, entries_left, safe_filename(name), written)
                finally:
                    out.files += len(written)
                    bytes_left -= sum(written)
                out.refused += refused
                entries_left -= n + len(refused)
            else:
                if len(data) > bytes_left:
                    raise UploadError(f"{safe_filename(name)} goes past the size limit for one batch")
                (dest / safe_filename(name)).write_bytes(data)
                out.files += 1
                bytes_left -= len(data)
        except UploadError as err:
            out.problems.append(str(err))
    return out


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

    for key in ("panel", "lab_panel", "labs"):
        if isinstance(meta.get(key), dict):
            try:
                return LabPanel.from_dict(meta[key])
            except Exception:  # noqa: BLE001 - a malformed panel falls back to the default
                break
    return default_panel()


def model_description(meta: dict) -> str:
    """What the network is, in one paragraph, from bundle.json (an ensemble says so and how)."""
    arch = meta.get("architecture") or {}
    if not arch:
        return "Architecture not recorded in the bundle."
    eq = "per-film histogram equalisation, then " if arch.get("intensity") == "equalize" else ""
    one = (f"MobileNetV2 (width {arch.get('alpha', '?')}, {arch.get('image_size', '?')} px, {eq}two pooled "
           f"embeddings) and a transformer over the {arch.get('n_tests', '?')} lab tests (two embeddings); "
           "the four embeddings concatenated, a ReLU layer, a 2-way softmax. A missing film or test is an input "
           "of its own (a mask and a learned token), so partial cases are scored as such.")
    k = int(arch.get("members", 1) or 1)
    if k == 1:
        return "Intermediate fusion: " + one
    members = (meta.get("ensemble") or {}).get("members") or []
    seeds = [m.get("seed") for m in members if m.get("seed") is not None]
    seed_text = f" (training seeds {', '.join(str(s) for s in seeds)})" if seeds else ""
    return (f"A **seed ensemble of {k}** intermediate-fusion models trained by the same recipe{seed_text}; the "
            "answer is the mean of their outputs, calibrated and thresholded on the validation split, and "
            "Grad-CAM adds up every member's maps. Each member: " + one)


VIEW_NAMES = {"fusion": "film + labs", "image_only": "film only", "labs_only": "labs only"}


def view_settings(meta: dict, key: str) -> dict[str, float]:
    """{view name: its validation-fitted `key` ("threshold" or "temperature")} from bundle.json's
    views; a case is read with the settings of what it holds. Bundles without per-view records
    give their one value as fusion's."""
    out = {VIEW_NAMES[v]: float(c[key]) for v, c in (meta.get("views") or {}).items()
           if v in VIEW_NAMES and isinstance(c, dict) and isinstance(c.get(key), (int, float))}
    if not out and isinstance(meta.get(key), (int, float)):
        out[VIEW_NAMES["fusion"]] = float(meta[key])
    return out


def view_thresholds(meta: dict) -> dict[str, float]:
    """{view name: validation-chosen threshold} (view_settings of "threshold")."""
    return view_settings(meta, "threshold")


def performance_rows(metrics: dict) -> list[dict]:
    """One row per view of metrics.json's test figures (fusion, image only, labs only): what a
    case holding both, only a film or only labs gets, each at its own validation-chosen
    threshold, with the bootstrap 95% CI where recorded."""
    rows = []
    for view, name in VIEW_NAMES.items():
        m = (metrics.get("test") or {}).get(view)
        if not m:
            continue
        ci = (metrics.get("test_ci") or {}).get(view) or {}

        def cell(key):
            v, c = m.get(key), ci.get(key) or {}
            if not isinstance(v, (int, float)):
                return "—"
            return f"{v:.3f} [{c['low']:.3f}, {c['high']:.3f}]" if "low" in c else f"{v:.3f}"
        rows.append({"case holds": name, "ROC AUC [95% CI]": cell("roc_auc"),
                     "accuracy [95% CI]": cell("accuracy"), "sensitivity": cell("sensitivity"),
                     "specificity": cell("specificity"), "PR AUC": cell("pr_auc"), "F1": cell("f1"),
                     "MCC": cell("mcc"), "threshold": cell("threshold")})
    return rows


_CHECK_ROWS = (("val", "kermany_children", "Children, Kermany validation films (thresholds set here)"),
               ("val", "adults", "Adults, validation films (thresholds set here)"),
               ("test", "kermany_children", "Children, Kermany official test films"),
               ("test", "kermany_children_at_128px", "Children, Kermany test films seen at 128 px"),
               ("test", "adults_hannover-covid", "Adults, Hannover COVID-19 films (held-out patients)"),
               ("test", "adults_nih-chestxray14", "Adults, NIH ChestX-ray14 films (held-out patients)"),
               ("test", "laterals", "Lateral films, ieee8023 (evaluation only)"))


def intended_use_rows(meta: dict) -> list[dict]:
    """The intended-use check's measured flag rates (bundle.json intended_use.film_check)."""
    report = ((meta.get("intended_use") or {}).get("film_check") or {})
    rows = []
    for part, key, name in _CHECK_ROWS:
        r = (report.get(part) or {}).get(key)
        if r and r.get("n"):
            rows.append({"films": name, "n": r["n"], "flagged outside": f"{r['flagged']:.1%}",
                         "as adult": f"{r['flagged_adult']:.1%}", "as lateral": f"{r['flagged_lateral']:.1%}"})
    return rows


def gate_description(meta: dict) -> str | None:
    """How the bundle decides not to read a film (bundle.json's reference), in plain words."""
    ref = meta.get("reference") or {}
    if "warn_at" not in ref:
        return None
    text = ("Before reading a film, pneumo checks it. A colour image, an almost flat one, or one that is mostly "
            "fine-grained noise or text is refused; a lateral view or an unusual aspect ratio is read with a "
            f"warning. Then the film's image embedding is compared with the {ref.get('n_train', '?')} training "
            f"films': its distance inside their main directions of variation (warned above "
            f"{ref['warn_at']:.1f}, refused above {ref['refuse_at']:.1f})")
    if "residual_warn_at" in ref:
        text += (f", and how much of it lies outside them (warned above {ref['residual_warn_at']:.2f}, refused "
                 f"above {ref['residual_refuse_at']:.2f})")
    return (text + f". The warning levels are the 99th percentile of the {ref.get('n_val', '?')} validation "
            "films, so about 1 in 100 ordinary films is warned; the refusal levels are 1.5 times the largest "
            "validation value, so no validation film would be refused. A refused film gets no probability.")


def weakest_changes(report: dict | None, drop: float = 0.05) -> list[str]:
    """Acquisition changes (metrics.json val_perturbations) under which sensitivity or specificity
    falls by more than `drop` from the film as given: the model card lists them as limitations."""
    if not report or not report.get("changes"):
        return []
    changes = report["changes"]
    base = next(iter(changes.values()))
    out = []
    for name, r in list(changes.items())[1:]:
        for what in ("sensitivity", "specificity"):
            if base[what] - r[what] > drop:
                out.append(f"{name}: {what} {base[what]:.2f} -> {r[what]:.2f}")
    return out


def versions(meta: dict) -> pd.DataFrame:
    """pneumo, TensorFlow and Keras versions (package metadata: no import) and the weights digest."""
    from importlib.metadata import PackageNotFoundError, version


    rows = [("pneumo", getattr(pneumo, "__version__", "?"))]
    for label, dists in (("TensorFlow", ("tensorflow-cpu", "tensorflow")), ("Keras", ("keras",))):
        for dist in dists:
            try:
                rows.append((label, version(dist)))
                break
            except PackageNotFoundError:
                continue
    digest = meta.get("weights_sha256") or (meta.get("weights") or {}).get(WEIGHTS_FILE)
    rows.append(("Model weights sha256", digest or "—"))
    for k in ("tensorflow_version", "keras_version"):
        if meta.get(k):
            rows.append((f"trained with {k.split('_')[0]}", meta[k]))
    return pd.DataFrame(rows, columns=["Component", "Version"])
