"""How lab values read on a screen: short names, units, reference ranges and flags, the
labs-as-read and SHAP tables (the what-if's values: pneumo.present.lab_effects)."""
from __future__ import annotations

import hashlib
import json
import math
import re

import pandas as pd

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
        flag = "not given" if d.get("imputed") else ("out of range" if d.get("out_of_range") else "")
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
