"""Reference ranges for children aged 1-5, the shipped model's population, for every test of the
lab panel, in the panel's units (the catalogue's ranges are adult ones: WBC 4-11, Hb 12-17.5,
creatinine 0.5-1.2 would flag a healthy three-year-old).

Sources (ranges rounded to the precision a screen shows; where the sources differ, the wider):
  - CBC and red-cell indices: The Harriet Lane Handbook, 22nd ed. (Johns Hopkins Hospital, 2020),
    ch. 14 "Hematology", table "Age-specific blood cell indices" (mean -2 SD .. +2 SD), with the
    leucocyte table of Nelson Textbook of Pediatrics, 21st ed. (2020), ch. 765 (reference ranges).
  - Chemistry: CALIPER, the Canadian Laboratory Initiative on Paediatric Reference Intervals
    (Colantonio et al., Clin Chem 2012;58:854-68; Adeli et al., Clin Chem 2017;63:1075-87),
    rounded, and the Harriet Lane Handbook's ch. 28 "Blood chemistries and body fluids".
A range is a flag, not a diagnosis: the labs' own reference intervals, where known, come first.
Ages in whole years, `start <= age < end`; outside 1-5 (or a test not listed) there is no
paediatric range here and the panel's own range stands.

    >>> reference_range("wbc", 3)
    (6.0, 17.5)
    >>> for_age(panel["hemoglobin"], 4).ref_low     # pneumo.data.labs.healthy takes the midpoint
    11.5
"""
from __future__ import annotations

from dataclasses import replace

from pneumo.data.labs.panel import LabPanel, LabTest

AGE_MIN, AGE_MAX = 1, 5          # the ages these ranges cover, both ends included
SOURCE = ("paediatric reference ranges for ages 1-5 (Harriet Lane Handbook 22nd ed.; Nelson Textbook "
          "of Pediatrics 21st ed.; CALIPER)")

# test key -> ((start age, end age (excluded), low, high), ...), in the panel's units
_RANGES: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    # chemistry (CALIPER; Harriet Lane ch. 28)
    "sodium": ((1, 6, 135, 145),),                        # mEq/L
    "potassium": ((1, 6, 3.5, 5.0),),                     # mEq/L
    "chloride": ((1, 6, 98, 107),),                       # mEq/L
    "bicarbonate": ((1, 6, 18, 27),),                     # mEq/L (total CO2; children run lower)
    "anion_gap": ((1, 6, 7, 16),),                        # mEq/L
    "bun": ((1, 4, 5, 17), (4, 6, 7, 17)),                # mg/dL
    "creatinine": ((1, 3, 0.1, 0.4), (3, 6, 0.2, 0.5)),   # mg/dL (enzymatic; rises with muscle mass)
    "glucose": ((1, 6, 60, 100),),                        # mg/dL (fasting)
    "magnesium": ((1, 6, 1.7, 2.4),),                     # mg/dL
    "phosphate": ((1, 4, 3.8, 6.5), (4, 6, 3.7, 5.6)),    # mg/dL (high in growing children)
    "calcium": ((1, 6, 8.8, 10.8),),                      # mg/dL (total)
    # complete blood count (Harriet Lane ch. 14; Nelson)
    "wbc": ((1, 4, 6.0, 17.5), (4, 6, 5.5, 15.5)),        # 10^3/uL
    "rbc": ((1, 2, 3.7, 5.3), (2, 6, 3.9, 5.3)),          # 10^6/uL
    "hemoglobin": ((1, 2, 10.5, 13.5), (2, 6, 11.5, 13.5)),   # g/dL
    "hematocrit": ((1, 2, 33, 39), (2, 6, 34, 40)),       # %
    "platelets": ((1, 6, 150, 450),),                     # 10^3/uL
    "mcv": ((1, 2, 70, 86), (2, 6, 75, 87)),              # fL
    "mch": ((1, 2, 23, 31), (2, 6, 24, 30)),              # pg
    "mchc": ((1, 2, 30, 36), (2, 6, 31, 37)),             # g/dL
    "rdw": ((1, 6, 11.5, 14.5),),                         # %
}


def covers(age: float | None) -> bool:
    """Whether these ranges are the ones for this age: 1-5, or not known (this product's
    population is children aged 1-5, so an unknown age is read as one of them)."""
    return age is None or AGE_MIN <= float(age) < AGE_MAX + 1


def reference_range(key: str, age: float | None = None) -> tuple[float, float] | None:
    """(low, high) for the test at this age; for an unknown age the span of the 1-5 bands (a value
    flags only if it is outside for every age 1-5). None outside 1-5 or for a test not listed."""
    bands = _RANGES.get(key)
    if bands is None or not covers(age):
        return None
    if age is None:
        return min(b[2] for b in bands), max(b[3] for b in bands)
    lo, hi = next((b[2], b[3]) for b in bands if b[0] <= float(age) < b[1])
    return lo, hi


def for_age(test: LabTest, age: float | None = None) -> LabTest:
    """A copy of the test with its reference range for this age (its own range where there is none)."""
    rng = reference_range(test.key, age)
    return replace(test) if rng is None else replace(test, ref_low=rng[0], ref_high=rng[1])


def panel_for_age(panel: LabPanel, age: float | None = None) -> LabPanel:
    """The panel with each test's reference range for this age: what a screen flags and shows."""
    return LabPanel([for_age(t, age) for t in panel])
