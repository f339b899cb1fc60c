"""Write an Explanation to a folder: the overlay as PNG, the numbers as JSON (CLI `explain`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_explanation(explanation, case, out: Path) -> list[Path]:
    """overlay.png (Grad-CAM over the film), heatmap.png, explanation.json; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
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
    return written
