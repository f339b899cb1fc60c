"""A user's manifest CSV -> Cohort. Columns: image_path (relative to root), optional lab columns
named by the panel's keys, optional label / split / case_id / patient_id; others are carried.
Read by cohorts.manifest_csv, the batch's reader too (`,` `;` or tab).

A bad row (path outside root, missing image, non-numeric lab, unknown label) never fails the
file: its reason goes into the row's `error` column (None when the row is fine) and the other
rows stay usable. Only an unreadable file or a missing image_path column raises ManifestError."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from pneumo.data.cohorts.base import SPLITS, Cohort, counts_dict
from pneumo.data.cohorts.manifest_csv import manifest_rows, read_header
from pneumo.data.labs.catalogue import default_panel
from pneumo.data.labs.panel import LabPanel
from pneumo.errors import CohortError, ManifestError

LABEL_WORDS = {"1": 1, "0": 0, "pneumonia": 1, "normal": 0, "positive": 1, "negative": 0, "true": 1,
               "false": 0, "yes": 1, "no": 0, "1.0": 1, "0.0": 0, "other": 0}


def resolve_inside(root: str | os.PathLike, rel: str | os.PathLike) -> Path:
    """The resolved absolute path of `rel` under `root`; ManifestError if it is empty or resolves
    outside root (.., an absolute path elsewhere, or a symlink pointing out). Existence is not checked."""
    text = "" if rel is None or (isinstance(rel, float) and np.isnan(rel)) else str(rel).strip()
    if not text:
        raise ManifestError("image_path is empty")
    try:
        base = Path(root).resolve()
        target = (base / text).resolve()   # resolve() follows symlinks, so a link out is caught
    except (OSError, ValueError, RuntimeError) as err:
        raise ManifestError(f"image_path cannot be resolved: {type(err).__name__}") from None
    if not target.is_relative_to(base):
        raise ManifestError("image_path resolves outside the manifest root; refused")
    return target


def _read(csv_path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The manifest as text cells, and how many cells beyond the header each row has."""
    header = read_header(csv_path)
    rows = list(manifest_rows(csv_path, header))
    frame = pd.DataFrame([row for _, row, _ in rows], columns=header, dtype=str)
    return frame, [len(extra) for _, _, extra in rows]


def _default_panel() -> LabPanel | None:
    try:
        return default_panel()
    except (ImportError, CohortError, ValueError, OSError):
        return None


def load(csv_path: str | os.PathLike, *, root: str | os.PathLike | None = None,
         panel: LabPanel | None = None) -> Cohort:
    """Load a manifest CSV as a Cohort (rows with problems marked in `error`, not dropped).

    root: folder image paths are relative to (default: the manifest's folder); nothing outside it is read.
    panel: lab panel whose keys name lab columns (default: the shipped default panel). Cohort.panel is
        None when no panel key appears among the columns.
    Defaults: split "test" (scoring), label <NA> when absent, case_id "row<N>" (1-based data row),
    patient_id = case_id. `image_path_given` keeps the path as written."""
    csv_path = Path(csv_path)
    raw, extra = _read(csv_path)
    root = Path(root) if root is not None else csv_path.resolve().parent
    if not root.is_dir():
        raise ManifestError(f"manifest root is not a folder: {root}")
    panel = panel if panel is not None else _default_panel()
    lab_keys = [k for k in panel.keys if k in raw.columns] if panel is not None else []
    errors: list[list[str]] = [[f"row has {n} more cells than the header"] if n else [] for n in extra]

    paths: list[str | None] = []
    for i, rel in enumerate(raw["image_path"]):
        try:
            target = resolve_inside(root, rel)
        except ManifestError as err:
            errors[i].append(str(err))
            paths.append(None)
            continue
        if not target.is_file():
            errors[i].append("image file not found")
            paths.append(None)
        else:
            paths.append(str(target))

    n = len(raw)
    case_id = _text(raw, "case_id", [f"row{i + 1}" for i in range(n)])
    frame = pd.DataFrame({
        "case_id": case_id,
        "patient_id": _text(raw, "patient_id", case_id),
        "image_path": pd.Series(paths, dtype=object),
        "label": pd.array([pd.NA] * n, dtype="Int64"),
        "split": "test",
        "source": "manifest",
    })
    if "label" in raw:
        for i, v in enumerate(raw["label"]):
            word = str(v).strip().lower()
            if word in LABEL_WORDS:
                frame.loc[i, "label"] = LABEL_WORDS[word]
            elif word:
                errors[i].append(f"label {str(v)[:20]!r} is not 0/1 or NORMAL/PNEUMONIA")
    if "split" in raw:
        for i, v in enumerate(raw["split"]):
            word = str(v).strip().lower()
            if word in SPLITS:
                frame.loc[i, "split"] = word
            elif word:
                errors[i].append(f"split {str(v)[:20]!r} is not one of {list(SPLITS)}")
    if panel is not None and lab_keys:
        for key in panel.keys:
            col = raw[key].str.strip() if key in raw else pd.Series([""] * n)
            values = pd.to_numeric(col.replace("", np.nan), errors="coerce")
            for i in np.flatnonzero((values.isna() & col.ne("")).to_numpy()):
                errors[i].append(f"{key} value is not a number")
            frame[key] = values.astype(float).to_numpy()
    carried = [c for c in raw.columns if c not in frame.columns and c not in ("image_path", "error")]
    for c in carried:
        frame[c] = raw[c].to_numpy()
    frame["image_path_given"] = raw["image_path"].to_numpy()
    frame["error"] = pd.Series(["; ".join(e) if e else None for e in errors], dtype=object)   # None, not NaN

    description = {
        "source": "manifest", "manifest": csv_path.name, "root": str(root.resolve()),
        "n_rows": n, "n_errors": int(sum(bool(e) for e in errors)),
        "lab_columns": lab_keys, "carried_columns": carried,
        "counts": counts_dict(frame.dropna(subset=["label"])) if frame["label"].notna().any() else {},
        "semi_real": False,
    }
    return Cohort(frame, panel if lab_keys else None, f"manifest:{csv_path.name}", description)


def _text(raw: pd.DataFrame, col: str, default: list[str]) -> list[str]:
    if col not in raw:
        return list(default)
    return [str(v).strip() or d for v, d in zip(raw[col], default)]
