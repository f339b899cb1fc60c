"""How lab values read on a screen: short names, units, reference ranges and flags, the
labs-as-read and SHAP tables (the what-if's values: pneumo.present.lab_effects)."""
from __future__ import annotations

import hashlib
import json
import math
import re

import pandas as pd

from pneumo.data.labs import paediatric_ranges as pr
from pneumo.data.labs.catalogue import CATALOGUE

_SHORT = {"wbc": "WBC", "rbc": "RBC", "hemoglobin": "Hb", "hematocrit": "Hct",
          "platelets": "Platelets", "calcium": "Calcium", "crp": "CRP"}


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
        side = range_flag(_Range(lo, hi), d.get("value"))    # against the rows' own (age's) range
        flag = "not given" if d.get("imputed") else (side or ("out of range" if d.get("out_of_range")
                                                                and lo is None and hi is None else ""))
        rows.append({"Test": d.get("name") or d.get("key"),
                     "Value": fmt_number(d.get("value")), "Unit": d.get("unit", ""),
                     "Reference": f"{fmt_number(lo)}–{fmt_number(hi)}" if lo is not None or hi is not None else "",
                     "Note": flag})
    return pd.DataFrame(rows, columns=["Test", "Value", "Unit", "Reference", "Note"])


class _Range:
    def __init__(self, ref_low, ref_high):
        self.ref_low, self.ref_high = ref_low, ref_high


_PAREN = re.compile(r"\s*[\[(].*$")


def not_used_lines(labels: list[str], panel, escape=str) -> list[str]:
    """Why each column or entry the model did not read was not used: a lab test pneumo knows but the
    model was not trained on (CRP, procalcitonin) is not a model input; anything else is unknown."""
    lines: list[str] = []
    for label in labels:
        norm = _PAREN.sub("", str(label)).strip().lower()
        test = next((t for t in CATALOGUE.values()
                     if norm in {t.key, t.name.lower(), *(a.lower() for a in t.aliases)}), None)
        if test is not None:
            lines.append(f"{short_name(test.key, test.name)}: not a model input (the model reads the "
                         f"{len(panel)} tests of its panel)")
        else:
            lines.append(f"{escape(label)}: not a lab test the model knows")   # the file's text: escaped
    return list(dict.fromkeys(lines))


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


def ranges_caption(age: float | None) -> str:
    """Which reference ranges the flags and the table use, in one line."""
    if pr.covers(age):
        whose = "children aged 1-5" + (" (age not given: the span over ages 1-5)" if age is None else "")
        return f"Reference ranges: {whose}; Harriet Lane Handbook, Nelson, CALIPER."
    return "Reference ranges: the panel's adult ranges (the age is outside 1-5, the model's population)."


def case_key(image_digest: str | None, labs: dict | None) -> str:
    """One key per distinct case (image + labs), so a rerun does not log it twice."""
    payload = json.dumps({"image": image_digest, "labs": labs or {}}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
