"""What the Streamlit pages share that is not model logic: the disclaimer, the example cases and
the history and panel tables. Elsewhere: lab display (pneumo.present.lab_display), uploads
(pneumo.service.uploads), the model card (pneumo.present.model_card), figures
(pneumo.present.figures), the metrics page's data (pneumo.experiments.results)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from pneumo import config
from pneumo.inference.disclosure import shown
from pneumo.inference.intended_use import OUTSIDE, assess
from pneumo.present.lab_display import fmt_number, ref_text

DISCLAIMER = "Research and decision support only — not a diagnosis."
SEMI_REAL_LABEL = ("Semi-real example: a real chest X-ray (Kermany test set) with a "
                   "real-format lab panel of another person (invented values).")


def header_decides_use(population, case) -> bool:
    """Whether the film's DICOM header alone settles the intended use (its age, a birth date that
    rules 1-5 out, a lateral view, another modality): then the page need not ask for the age."""
    meta = case.image.meta if case.image is not None else None
    if meta is None or population is None:
        return True
    if meta.age_years is not None:
        return True
    return assess(population, has_image=True, header_age_bounds=meta.age_bounds, view_position=meta.view_position,
                  modality=meta.modality).evidence == "dicom header"


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
                          "Training median": fmt_number(t.median)} for t in panel])


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

    out["Time"] = col("time", "timestamp", "created", "ts").map(_short_time)
    out["Origin"] = col("origin")          # up front: where the case came from (app, cli, batch, dicom-node)
    out["Outcome"] = col("outcome").fillna("scored")
    out["Image"] = col("image_digest", "digest").map(lambda d: (str(d)[:12] if isinstance(d, str) and d else "—"))
    out["Inputs"] = col("inputs")
    # what the case showed when it was scored (pneumo.inference.disclosure): an outside case shows
    # no number unless the user asked for that case, and never a label word
    p = pd.to_numeric(col("probability"), errors="coerce").round(3)
    threshold = pd.to_numeric(col("threshold"), errors="coerce").round(3)
    shows = [shown({"probability": v, "threshold": t, "intended_use": u, "outside_allowed": a is True or a == 1})
             if u == OUTSIDE else None
             for v, t, u, a in zip(p, threshold.fillna(0.5), col("intended_use"), col("outside_allowed"))]
    out["P(pneumonia)"] = [None if s is not None and s.probability is None else v for s, v in zip(shows, p)]
    out["Label"] = [v if (s is None or s.verdict_colour) and isinstance(v, str) and v else "—"
                    for s, v in zip(shows, col("label"))]
    out["Threshold"] = threshold
    out["Intended use"] = [u if s is None else "outside (number shown on request)" if s.asked
                           else "outside: no opinion given" for s, u in zip(shows, col("intended_use"))]
    out["Validity"] = col("validity")
    out["Warnings"] = col("warnings").map(lambda w: "; ".join(map(str, w)) if isinstance(w, list) else "")
    out["Model"] = col("model_version", "model", "version")
    return out


def _short_time(stamp) -> str:
    """'2026-01-01T09:30:12.345Z' -> '2026-01-01 09:30 UTC': the minute is enough to find a case."""
    text = str(stamp) if isinstance(stamp, str) else ""
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 and text[10] == "T" else text
