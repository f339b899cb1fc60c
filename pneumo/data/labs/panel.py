"""The lab panel schema: one LabTest per analyte, a LabPanel is the model's ordered list."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

from pneumo.errors import LabError

_CLINICAL_UNITS = {"10*3/ul": "10³/µL", "10*6/ul": "10⁶/µL", "10*9/l": "10⁹/L", "10*12/l": "10¹²/L",
                   "meq/l": "mEq/L", "mmol/l": "mmol/L", "umol/l": "µmol/L", "mg/dl": "mg/dL",
                   "g/dl": "g/dL", "g/l": "g/L", "fl": "fL", "pg": "pg", "%": "%", "u/l": "U/L",
                   "ng/ml": "ng/mL", "mg/l": "mg/L", "mm[hg]": "mmHg"}


def clinical_unit(unit: str | None) -> str:
    """A UCUM unit in clinical spelling (10*3/uL -> 10³/µL, meq/L -> mEq/L); unknown ones as given."""
    text = (unit or "").strip()
    return _CLINICAL_UNITS.get(text.lower(), text)


@dataclass
class LabTest:
    key: str                  # snake_case, e.g. "wbc", "creatinine"
    name: str                 # display name, e.g. "White blood cells"
    itemid: int | None        # MIMIC-IV d_labitems itemid
    loinc: str | None
    unit: str                 # UCUM, e.g. "10*3/uL", "mg/dL", "mmol/L"
    ref_low: float | None
    ref_high: float | None    # reference range (flag only)
    plaus_low: float
    plaus_high: float         # physiologically plausible (refuse outside)
    median: float | None = None            # training median, set by the cohort; a blank test is never set to it
    aliases: tuple[str, ...] = field(default=())   # other names (and LOINC codes) seen in inputs

    def __post_init__(self):
        # JSON gives lists; a tuple keeps the test hashable-ish and immutable in spirit
        self.aliases = tuple(self.aliases)

    @property
    def display_unit(self) -> str:
        """The unit as a clinician writes it (10³/µL, mEq/L), for screens and reports; `unit`
        stays UCUM for the parsers."""
        return clinical_unit(self.unit)

    def impute_value(self) -> float:
        """A typical value where a number is needed (the what-if slider's start, a warm-up case): the
        training median, else mid-reference. The network never reads it for a blank test: it has a
        learned "not measured" token per test (pneumo.models.network.LabTokens)."""
        if self.median is not None:
            return float(self.median)
        if self.ref_low is not None and self.ref_high is not None:
            return (float(self.ref_low) + float(self.ref_high)) / 2.0
        return (float(self.plaus_low) + float(self.plaus_high)) / 2.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LabTest":
        try:
            return cls(**{k: d[k] for k in d if k in cls.__dataclass_fields__})
        except TypeError as err:
            raise LabError(f"lab test entry is incomplete: {err}") from None


class LabPanel:
    """An ordered list of LabTests: the order is the model's token order."""

    def __init__(self, tests: list[LabTest]):
        self.tests = list(tests)
        keys = [t.key for t in self.tests]
        if len(set(keys)) != len(keys):
            raise LabError("lab panel has duplicate test keys")
        self._by_key = {t.key: t for t in self.tests}

    @property
    def keys(self) -> list[str]:
        return [t.key for t in self.tests]

    def __len__(self) -> int:
        return len(self.tests)

    def __iter__(self) -> Iterator[LabTest]:
        return iter(self.tests)

    def __getitem__(self, key: str) -> LabTest:
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"no lab test {key!r} in the panel") from None

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabPanel) and self.tests == other.tests

    def __repr__(self) -> str:
        return f"LabPanel({self.keys})"

    def to_dict(self) -> dict:
        return {"tests": [t.to_dict() for t in self.tests]}

    @classmethod
    def from_dict(cls, d: dict) -> "LabPanel":
        if not isinstance(d, dict) or not isinstance(d.get("tests"), list):
            raise LabError("lab panel JSON must be an object with a 'tests' list")
        return cls([LabTest.from_dict(t) for t in d["tests"]])

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LabPanel":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as err:
            raise LabError(f"cannot read lab panel {Path(path).name}: {err}") from None

    def with_medians(self, medians: dict[str, float]) -> "LabPanel":
        """A copy with training medians set (keys not given keep theirs)."""
        unknown = set(medians) - set(self._by_key)
        if unknown:
            raise LabError(f"medians given for tests not in the panel: {sorted(unknown)}")
        return LabPanel([replace(t, median=None if medians.get(t.key) is None else float(medians[t.key]))
                         if t.key in medians else replace(t) for t in self.tests])
