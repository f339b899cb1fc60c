"""A healthy value per lab test: the reference a lab bar is read against ("this value, against a
normal one") and where the what-if's "back to normal" goes.

The midpoint of the test's reference range for the patient's age: the paediatric range for
children 1-5 and for an unknown age (the intended population), the panel's own range otherwise."""
from __future__ import annotations

import numpy as np

from pneumo.data.labs.paediatric_ranges import for_age
from pneumo.data.labs.panel import LabPanel, LabTest


def healthy_value(test: LabTest, age: float | None = None) -> float:
    """The midpoint of the test's reference range at this age; of its plausible range where it has none."""
    t = for_age(test, age)
    lo = t.ref_low if t.ref_low is not None else t.plaus_low
    hi = t.ref_high if t.ref_high is not None else t.plaus_high
    return float(f"{(float(lo) + float(hi)) / 2.0:.6g}")      # 9.35, not 9.350000000000001


def healthy_row(panel: LabPanel, measured: np.ndarray, age: float | None = None) -> np.ndarray:
    """A lab row in panel order: a healthy value where `measured` has a value, NaN (not measured)
    where it has none, so a test nobody measured stays out of the comparison."""
    measured = np.asarray(measured, np.float64).ravel()
    healthy = np.array([healthy_value(t, age) for t in panel], np.float64)
    return np.where(np.isfinite(measured), healthy, np.nan)
