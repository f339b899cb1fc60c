"""A healthy value per lab test: the reference a lab bar is read against ("this value, against a
normal one") and where the what-if's "back to normal" goes.

Today the midpoint of the panel's reference range (an adult range for most tests). When a module
of paediatric reference ranges (children 1-5) lands, this one function is where it is swapped in."""
from __future__ import annotations

import numpy as np

from pneumo.data.labs.panel import LabPanel, LabTest


def healthy_value(test: LabTest) -> float:
    """The midpoint of the test's reference range; of its plausible range where it has none."""
    lo = test.ref_low if test.ref_low is not None else test.plaus_low
    hi = test.ref_high if test.ref_high is not None else test.plaus_high
    return float(f"{(float(lo) + float(hi)) / 2.0:.6g}")      # 9.35, not 9.350000000000001


def healthy_row(panel: LabPanel, measured: np.ndarray) -> np.ndarray:
    """A lab row in panel order: a healthy value where `measured` has a value, NaN (not measured)
    where it has none, so a test nobody measured stays out of the comparison."""
    measured = np.asarray(measured, np.float64).ravel()
    healthy = np.array([healthy_value(t) for t in panel], np.float64)
    return np.where(np.isfinite(measured), healthy, np.nan)
