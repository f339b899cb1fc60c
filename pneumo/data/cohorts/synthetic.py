"""A tiny synthetic cohort for fast unit tests ONLY (never shown as real data).

Images: gray noise PNGs; positives get a bright blob so a model can learn something.
Labs: drawn around each test's reference range; inflammatory keys (wbc, crp, neutrophils,
procalcitonin, lactate) shift up for positives."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pneumo.data.cohorts.base import Cohort, counts_dict, split_groups
from pneumo.data.labs.catalogue import panel_of
from pneumo.data.labs.panel import LabPanel
from pneumo.errors import CohortError

SHIFTED = ("wbc", "crp", "neutrophils_pct", "procalcitonin", "lactate")
DEFAULT_KEYS = ("sodium", "potassium", "creatinine", "glucose", "wbc", "hemoglobin", "platelets", "crp")


def _image(rng: np.random.Generator, size: int, positive: bool) -> np.ndarray:
    img = rng.normal(0.35, 0.08, (size, size))
    if positive:
        yy, xx = np.mgrid[:size, :size]
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        r = size * rng.uniform(0.12, 0.2)
        img += 0.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _labs(panel: LabPanel, labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for test in panel:
        lo = test.ref_low if test.ref_low is not None else test.plaus_low
        hi = test.ref_high if test.ref_high is not None else test.plaus_high
        mid, half = (lo + hi) / 2, max((hi - lo) / 2, 1e-3)
        shift = 1.5 * half * labels if test.key in SHIFTED else 0.0
        values = mid + shift + rng.normal(0, half / 2, len(labels))
        out[test.key] = np.clip(values, test.plaus_low, test.plaus_high)
    return out


def make(n: int = 64, *, panel: LabPanel | None = None, size: int = 64, seed: int = 0,
         tmpdir: str | os.PathLike) -> Cohort:
    """n synthetic cases (half pneumonia), PNGs written to tmpdir, split 60/20/20 stratified.

    panel: lab panel to fill (default: a small catalogue panel incl. wbc and crp).
    size: image side in pixels. seed: seeds images, labs and splits."""
    if n < 6:
        raise CohortError(f"synthetic cohort needs n >= 6 (two per split), got {n}")
    if size < 8:
        raise CohortError(f"synthetic image size must be >= 8, got {size}")
    panel = panel if panel is not None else panel_of(list(DEFAULT_KEYS))
    folder = Path(tmpdir)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(int)
    ids = [f"syn{i:04d}" for i in range(n)]
    paths = []
    for case, label in zip(ids, labels):
        path = folder / f"{case}.png"
        Image.fromarray(_image(rng, size, bool(label)), mode="L").save(path)
        paths.append(str(path.resolve()))
    assign = split_groups(pd.Series(labels, index=ids), (0.6, 0.2, 0.2), seed)
    frame = pd.DataFrame({"case_id": ids, "patient_id": ids, "image_path": paths, "label": labels,
                          "split": [assign[i] for i in ids], "source": "synthetic"})
    for key, values in _labs(panel, labels, rng).items():
        frame[key] = values.astype(float)
    train = frame[frame["split"] == "train"]
    panel = panel.with_medians({k: float(train[k].median()) for k in panel.keys})
    description = {"source": "synthetic", "notes": "synthetic (test only): noise images, made-up labs",
                   "params": {"n": n, "size": size, "seed": seed}, "counts": counts_dict(frame),
                   "semi_real": False, "synthetic": True}
    return Cohort(frame, panel, "synthetic (test only)", description)
