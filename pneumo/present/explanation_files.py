"""Write an Explanation to a folder (CLI `explain`): the overlay as PNG, the numbers as JSON, and
the standard outputs (HTML and PDF report, DICOM SR and overlay, FHIR; see case_outputs).

Everything is written first into a private staging folder inside OUT and moved into place only
when complete, so a full disk (or any other write failure) leaves no partial file behind, not
even a 0-byte overlay.png, and an earlier run's files stand; the failure is one line (OutputError,
exit 2 like the batch's)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pneumo.errors import PneumoError, one_line
from pneumo.present.case_outputs import write_case_outputs
from pneumo.service.batch_output import OutputError, output_error


def write_explanation(explanation, case, out: Path, *, source=None, population: str | None = None) -> list[Path]:
    """overlay.png (Grad-CAM over the film), heatmap.png, explanation.json, then the standard
    outputs; returns the paths. source: the film's DICOM header when the film is DICOM.
    OutputError (one line) when OUT cannot be written; then no file of this run is in OUT."""
    out = Path(out)
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)   # sr.dcm and gradcam.dcm name the patient
        stage = Path(tempfile.mkdtemp(prefix=".pneumo-explain-", dir=out))   # 0700, same file system
    except OSError as err:
        raise _failed(err, out) from None
    late = None
    try:
        try:
            names = [p.name for p in _write_all(explanation, case, stage, source, population)]
        except PneumoError as err:     # e.g. the DICOM outputs could not be made: the others stand
            late, names = err, sorted(p.name for p in stage.iterdir())
        for name in names:
            os.replace(stage / name, out / name)
    except OSError as err:
        raise _failed(err, out) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if late is not None:
        raise late
    return [out / name for name in names]


def _write_all(explanation, case, folder: Path, source, population) -> list[Path]:
    written = []
    if explanation.overlay is not None:
        path = folder / "overlay.png"
        Image.fromarray(explanation.overlay).save(path)
        written.append(path)
        path = folder / "heatmap.png"
        Image.fromarray((np.clip(explanation.gradcam, 0, 1) * 255).astype(np.uint8)).save(path)
        written.append(path)
    path = folder / "explanation.json"
    path.write_text(json.dumps(explanation.to_dict(), indent=2, default=float) + "\n")
    written.append(path)
    return written + write_case_outputs(explanation, case, folder, source=source, population=population)


def _failed(err: OSError, out: Path) -> OutputError:
    return OutputError(one_line(f"{output_error(err, out)}; no file of this case was written there"))
