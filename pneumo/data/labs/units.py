"""Unit normalisation and conversion to a panel test's unit (UCUM as MIMIC reports it)."""
from __future__ import annotations

import re
import unicodedata

from pneumo.data.labs.panel import LabTest
from pneumo.errors import LabError

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_POWER = re.compile(r"^(?:x|\*)?10(?:\^|\*\*|\*|e)?(\d+)/(.+)$")

# spelling -> canonical token; the canonical tokens are what the factor tables use
_SYNONYMS = {
    "": "", "1": "", "ph": "", "units": "", "unit": "", "ratio": "", "inr": "", "none": "", "-": "",
    "meq/l": "meq/l", "mequiv/l": "meq/l", "mmol/l": "mmol/l", "mm/l": "mmol/l",
    "umol/l": "umol/l", "mcmol/l": "umol/l",
    "mg/dl": "mg/dl", "mg%": "mg/dl", "mg/100ml": "mg/dl", "mg/l": "mg/l", "g/dl": "g/dl", "g/l": "g/l",
    "ng/ml": "ng/ml", "ug/l": "ng/ml", "mcg/l": "ng/ml", "ng/dl": "ng/dl",
    "%": "%", "percent": "%", "l/l": "l/l", "fraction": "l/l",
    "fl": "fl", "um3": "fl", "u3": "fl", "pg": "pg",
    "u/l": "u/l", "iu/l": "u/l", "units/l": "u/l", "ukat/l": "ukat/l",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "mmhg": "mmhg", "torr": "mmhg", "kpa": "kpa",
    "10*3/ul": "10*3/ul", "k/ul": "10*3/ul", "thou/ul": "10*3/ul", "10*3/mm3": "10*3/ul", "k/mm3": "10*3/ul",
    "10*9/l": "10*3/ul", "giga/l": "10*3/ul", "g/l(cells)": "10*3/ul", "10*3/mcl": "10*3/ul",
    "10*6/ul": "10*6/ul", "m/ul": "10*6/ul", "mil/ul": "10*6/ul", "10*6/mm3": "10*6/ul", "m/mm3": "10*6/ul",
    "10*12/l": "10*6/ul", "tera/l": "10*6/ul", "10*6/mcl": "10*6/ul",
    "/ul": "/ul", "cells/ul": "/ul", "/mm3": "/ul", "cells/mm3": "/ul", "/mcl": "/ul",
}

_ELECTROLYTE = {"meq/l": 1.0, "mmol/l": 1.0}
_COUNT_K = {"10*3/ul": 1.0, "/ul": 1e-3, "g/l": 1.0}      # "G/L" (giga per litre) lower-cases to g/l
_PCT = {"%": 1.0, "l/l": 100.0}

# test key -> {canonical unit: multiply by this to reach the panel unit}
FACTORS: dict[str, dict[str, float]] = {
    "sodium": _ELECTROLYTE, "potassium": _ELECTROLYTE, "chloride": _ELECTROLYTE,
    "bicarbonate": _ELECTROLYTE, "anion_gap": _ELECTROLYTE,
    "bun": {"mg/dl": 1.0, "mmol/l": 2.801, "g/l": 100.0},          # urea-N mmol/L -> mg/dL
    "creatinine": {"mg/dl": 1.0, "umol/l": 1 / 88.42, "mmol/l": 1000 / 88.42},
    "glucose": {"mg/dl": 1.0, "mmol/l": 18.016, "g/l": 100.0},
    "magnesium": {"mg/dl": 1.0, "mmol/l": 2.431, "meq/l": 2.431 / 2},
    "phosphate": {"mg/dl": 1.0, "mmol/l": 3.097},
    "calcium": {"mg/dl": 1.0, "mmol/l": 4.008, "meq/l": 4.008 / 2},
    "wbc": _COUNT_K, "platelets": _COUNT_K,
    "rbc": {"10*6/ul": 1.0},
    "hemoglobin": {"g/dl": 1.0, "g/l": 0.1, "mmol/l": 1.611},
    "mchc": {"g/dl": 1.0, "g/l": 0.1, "%": 1.0},                  # MIMIC reports MCHC as % and g/dL alike
    "hematocrit": _PCT, "rdw": _PCT, "neutrophils_pct": _PCT, "lymphocytes_pct": _PCT,
    "mcv": {"fl": 1.0}, "mch": {"pg": 1.0},
    "lactate": {"mmol/l": 1.0, "meq/l": 1.0, "mg/dl": 1 / 9.008},
    "crp": {"mg/l": 1.0, "mg/dl": 10.0},
    "procalcitonin": {"ng/ml": 1.0},
    "albumin": {"g/dl": 1.0, "g/l": 0.1},
    "bilirubin_total": {"mg/dl": 1.0, "umol/l": 1 / 17.1},
    "alt": {"u/l": 1.0, "ukat/l": 60.0}, "ast": {"u/l": 1.0, "ukat/l": 60.0},
    "inr": {"": 1.0}, "ph": {"": 1.0},
    "pt": {"s": 1.0}, "ptt": {"s": 1.0},
    "po2": {"mmhg": 1.0, "kpa": 7.50062}, "pco2": {"mmhg": 1.0, "kpa": 7.50062},
}
# urea given as urea (not urea nitrogen): mg/dL urea -> BUN x0.467; molar amounts are equal
UREA_FACTORS = {"mg/dl": 0.467, "mmol/l": 2.801, "g/l": 46.7}


def normalize_unit(unit: str | None) -> str:
    """A canonical spelling ('K/uL', 'x10^9/L', '10³/µL' -> '10*3/ul'); unknown spellings come back
    lower-cased without spaces or brackets, so they still compare equal to themselves."""
    if unit is None:
        return ""
    s = unicodedata.normalize("NFKC", str(unit)).translate(_SUPERSCRIPTS)
    s = s.replace("µ", "u").replace("μ", "u").replace("×", "x").replace("·", "")
    s = re.sub(r"\s+", "", s).lower()
    s = re.sub(r"\{[^}]*\}", "", s).replace("[", "").replace("]", "")   # UCUM annotations/brackets
    m = _POWER.match(s)
    if m:
        s = f"10*{int(m.group(1))}/{m.group(2)}"
    return _SYNONYMS.get(s, s)


def to_panel_unit(value: float, unit: str | None, test: LabTest, *, as_urea: bool = False) -> float:
    """value (in unit) expressed in test.unit; no unit means the test's own unit. Raises LabError."""
    src = normalize_unit(unit)
    target = normalize_unit(test.unit)
    if as_urea:
        if src == "":
            raise LabError(f"urea needs a unit (mg/dL or mmol/L) to convert to {test.unit} BUN")
        table = UREA_FACTORS
    else:
        if src == "" or src == target:
            return float(value)
        table = FACTORS.get(test.key, {target: 1.0})
    factor = table.get(src)
    if factor is None:
        raise LabError(f"unit {str(unit).strip()!r} cannot be converted to {test.unit}")
    return float(value) * factor


def convertible_units(test: LabTest) -> list[str]:
    """Canonical units accepted for a test (for help text)."""
    return sorted(set(FACTORS.get(test.key, {})) | {normalize_unit(test.unit)})
