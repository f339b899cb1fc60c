"""One manifest row of a batch -> a Case -> a result, each row's failure kept as its one-line
`error` (the other rows go on): used by the in-process engine (pneumo.service.batch) and by Ray
(pneumo.service.batch_ray) alike."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pneumo.data.cohorts.manifest import resolve_inside
from pneumo.data.cohorts.manifest_csv import IMAGE_PATH
from pneumo.data.imaging import read_image
from pneumo.data.labs import parse_labs
from pneumo.errors import ManifestError, PneumoError, one_line
from pneumo.inference.case import Case
from pneumo.inference.intended_use import parse_age

AGE = "age"          # optional manifest column: the patient's age in years (judged, never written back)
MAX_ERROR = 300


@dataclass
class _Item:
    index: int
    row: dict[str, str]
    case: Any = None
    labs: Any = None
    error: str | None = None
    result: Any = None
    extra: list[str] = field(default_factory=list)
    path: Path | None = None              # the film, resolved inside the root (for on_case)
    log_only: bool = False                # --resume: OUT has this row scored, the case log lacks it


def _error_text(err: BaseException) -> str:
    if isinstance(err, PneumoError):
        return one_line(str(err), MAX_ERROR)
    if isinstance(err, OSError):          # e.g. an image that cannot be opened: that row's error
        name = f" {Path(str(err.filename)).name}" if err.filename else ""
        return one_line(f"cannot read{name}: {err.strerror or type(err).__name__}", MAX_ERROR)
    if isinstance(err, MemoryError):
        return "not enough memory to read this row"
    return f"internal error: {type(err).__name__}"   # its text may quote a header value: the type only


def _lab_columns(header: list[str], panel) -> list[str]:
    """Manifest columns that name a panel test (key, name, alias, LOINC, or 'name [unit]')."""
    if panel is None:
        return []

    return [h for h in header if h not in (IMAGE_PATH, AGE)
            and not parse_labs({h: None}, panel, fmt="dict").unknown]


def _read_labs(row: dict[str, str], lab_cols: list[str], panel):
    given = {c: row[c] for c in lab_cols if (row.get(c) or "").strip()}
    if not given:
        return None                       # no labs for this row: an image-only case

    reading = parse_labs(given, panel, fmt="dict")
    reading.raise_for_errors()
    return None if all(v is None for v in reading.values.values()) else reading


def _prepare(item: _Item, root: Path, lab_cols: list[str], panel) -> _Item:
    """Runs in a worker thread: everything before the model, errors kept on the item."""
    try:
        if item.extra:
            raise ManifestError(f"row has {len(item.extra)} more cells than the header")
        rel = (item.row.get(IMAGE_PATH) or "").strip()
        labs = _read_labs(item.row, lab_cols, panel)
        age = parse_age(item.row.get(AGE))
        item.path = resolve_inside(root, rel) if rel else None
        image = read_image(item.path) if rel else None
        if image is None and labs is None:
            raise ManifestError("row has no image_path and no lab values")
        item.case, item.labs = Case(image=image, labs=labs, age_years=age), labs
    except Exception as err:  # noqa: BLE001 - a bad row of any kind is that row's error
        item.error = _error_text(err)
    return item


def _score(items: list[_Item], predictor) -> None:
    """Results onto the items: one predict_many call, or one predict per case to isolate a bad one."""
    ready = [it for it in items if it.case is not None]
    if not ready:
        return
    if hasattr(predictor, "predict_many") and len(ready) > 1:
        try:
            results = list(predictor.predict_many([it.case for it in ready]))
            if len(results) == len(ready):
                for it, res in zip(ready, results):   # a refused case comes back as its error
                    if isinstance(res, BaseException):
                        it.error = _error_text(res)
                    else:
                        it.result = res
                return
        except Exception:  # noqa: BLE001 - some case in the chunk is bad: find which, below
            pass
    for it in ready:
        try:
            it.result = predictor.predict(it.case)
        except Exception as err:  # noqa: BLE001 - that row's error
            it.error = _error_text(err)


