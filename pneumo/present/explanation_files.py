"""Write an Explanation to a folder (CLI `explain`): the overlay as PNG, the numbers as JSON, and
the standard outputs (HTML and PDF report, DICOM SR and overlay, FHIR; see case_outputs)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.present.case_outputs import write_case_outputs


def write_explanation(explanation, case, out: Path, *, source=None, population: str | None = None) -> list[Path]:
    """overlay.png (Grad-CAM over the film), heatmap.png, explanation.json, then the standard
    outputs; returns the paths. source: the film's DICOM header when the film is DICOM."""
    out.mkdir(mode=0o700, parents=True, exist_ok=True)   # sr.dcm and gradcam.dcm name the patient
    written = []
    if explanation.overlay is not None:
        path = out / "overlay.png"
        Image.fromarray(explanation.overlay).save(path)
        written.append(path)
        path = out / "heatmap.png"
        Image.fromarray((np.clip(explanation.gradcam, 0, 1) * 255).astype(np.uint8)).save(path)
        written.append(path)
    path = out / "explanation.json"
    path.write_text(json.dumps(explanation.to_dict(), indent=2, default=float) + "\n")
    written.append(path)
    return written + write_case_outputs(explanation, case, out, source=source, population=population)
