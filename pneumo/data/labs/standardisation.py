"""The one lab standardisation: every model, baseline and the ADASYN synthesis read labs this way.

z = (value - train mean) / train sd, both over the observed train values of each test; a missing
value (NaN or not finite) becomes z = 0, the train mean, and is flagged in a missing mask, which
the network takes as an input. A test never observed in train gets mean 0 and sd 1; an sd of 0
(one value, or all equal) becomes 1, so a constant test stays finite."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from pneumo.errors import LabError


@dataclass(frozen=True)
class LabStandardisation:
    keys: tuple[str, ...]
    mean: np.ndarray     # (T,) float64
    sd: np.ndarray       # (T,) float64, > 0

    @classmethod
    def fit(cls, values, keys) -> "LabStandardisation":
        """From the train rows' raw values (n, T) in panel order, NaN = missing."""
        v = _matrix(values, len(keys))
        v = np.where(np.isfinite(v), v, np.nan)
        seen = np.isfinite(v).sum(axis=0)
        with warnings.catch_warnings(), np.errstate(all="ignore"):   # empty columns warn; they are replaced below
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.where(seen > 0, np.nanmean(v, axis=0), 0.0) if len(v) else np.zeros(len(keys))
            sd = np.where(seen > 1, np.nanstd(v, axis=0), 1.0) if len(v) else np.ones(len(keys))
        return cls(tuple(keys), mean.astype("float64"), np.where(sd > 0, sd, 1.0).astype("float64"))

    @classmethod
    def from_meta(cls, meta: dict, keys) -> "LabStandardisation":
        """From bundle.json's {"mean": {key: v}, "sd": {key: v}}; LabError naming what is missing."""
        try:
            mean = np.array([float(meta["mean"][k]) for k in keys], "float64")
            sd = np.array([float(meta["sd"][k]) for k in keys], "float64")
        except KeyError as err:
            raise LabError(f"lab standardisation has no value for {err}") from None
        except (TypeError, ValueError) as err:
            raise LabError(f"lab standardisation is malformed: {err}") from None
        if not (np.isfinite(mean).all() and np.isfinite(sd).all()):
            raise LabError("lab standardisation holds a non-finite mean or sd")
        return cls(tuple(keys), mean, np.where(sd > 0, sd, 1.0))   # the same guard as fit

    def to_meta(self) -> dict:
        return {"mean": dict(zip(self.keys, map(float, self.mean))),
                "sd": dict(zip(self.keys, map(float, self.sd)))}

    def inputs(self, values) -> tuple[np.ndarray, np.ndarray]:
        """Raw values (n, T) -> (z float32 with missing = 0, missing mask float32, 1 = missing)."""
        v = _matrix(values, len(self.keys))
        missing = ~np.isfinite(v)
        z = np.where(missing, 0.0, (np.where(missing, 0.0, v) - self.mean) / self.sd)
        return z.astype("float32"), missing.astype("float32")

    def inverse(self, z) -> np.ndarray:
        """Standardised values back to panel units (float64)."""
        return np.asarray(z, dtype=np.float64) * self.sd + self.mean


def _matrix(values, width: int) -> np.ndarray:
    v = np.atleast_2d(np.asarray(values, dtype="float64"))
    if v.ndim != 2 or v.shape[1] != width:
        raise LabError(f"expected {width} lab values in panel order, got {v.shape[-1]}")
    return v
