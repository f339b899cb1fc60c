"""Parse lab values (wide/long CSV, FHIR R4 JSON, a dict) into one validated LabReading."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from pneumo.data.labs.catalogue import default_panel
from pneumo.data.labs.fhir import observation_entries
from pneumo.data.labs.panel import LabPanel, LabTest
from pneumo.data.labs.units import to_panel_unit
from pneumo.errors import LabError, one_line

MAX_BYTES = 5 * 1024 * 1024          # one case's labs are a few KB; refuse before reading more
MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_COLUMNS = 1000
MAX_ISSUES = 20                      # refused values / warnings listed per case; then "... and N more"
MAX_DIGITS = 400                     # a JSON integer longer than this is kept as text (then refused)
FORMATS = ("wide_csv", "long_csv", "fhir", "dict")
_MISSING = {"", "na", "n/a", "nan", "none", "null", "-", "--", "?", "missing"}
_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_VALUE_UNIT = re.compile(rf"^(?P<cmp>[<>]=?)?\s*(?P<num>{_NUM})\s*(?P<unit>[A-Za-z%µμ×\[{{/*^0-9][^=+@]*)?$")
_HEADER_UNIT = re.compile(r"^(?P<name>.*?)\s*[\[(](?P<unit>[^\])]*)[\])]\s*$")
_UREA_NAMES = {"urea", "serum urea", "plasma urea", "3091 6"}
_TEST_COLS, _VALUE_COLS, _UNIT_COLS = ("test", "name", "analyte", "code", "loinc"), ("value", "result"), ("unit", "units", "uom")


@dataclass
class LabIssue:
    key: str | None
    value: str
    reason: str
    severity: str = "error"      # "error" (value refused) | "warning" (value kept)

    def __str__(self) -> str:
        return f"{self.key or self.value}: {self.reason}"


@dataclass
class LabReading:
    values: dict[str, float | None]
    errors: list[LabIssue] = field(default_factory=list)
    out_of_range: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    warnings: list[LabIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> None:
        """LabError listing every refused value in one line."""
        if self.errors:
            raise LabError("; ".join(one_line(str(e), None) for e in self.errors))

    def row(self, panel: LabPanel) -> np.ndarray:
        """The values in panel order (T,) float32, NaN = missing: what the model standardises
        (pneumo.data.labs.standardisation puts a missing value at the train mean and flags it)."""
        return np.array([np.nan if self.values.get(k) is None else self.values[k] for k in panel.keys], np.float32)


def display_rows(reading: LabReading | None, panel: LabPanel) -> list[dict]:
    """One row per panel test for screens and reports: name, unit, value, reference range and flags
    (`imputed`: not given, which the model reads as its own "not measured" token)."""
    values = reading.values if reading is not None else {}
    out = set(reading.out_of_range) if reading is not None else set()
    return [{"key": t.key, "name": t.name, "unit": t.display_unit, "value": values.get(t.key),
             "ref_low": t.ref_low, "ref_high": t.ref_high, "imputed": values.get(t.key) is None,
             "out_of_range": t.key in out} for t in panel]


def _show(raw: Any, limit: int = 40) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) > 10**300:
        return f"a {int(abs(raw).bit_length() * 0.30103) + 1}-digit integer"   # no float/str for it
    try:
        s = raw if isinstance(raw, str) else repr(raw) if not isinstance(raw, (int, float)) else f"{raw:g}"
    except (ValueError, OverflowError, RecursionError):   # a value too large or deep to print
        s = f"a {type(raw).__name__}"
    return one_line(s, limit)


def _capped(issues: list[LabIssue], what: str) -> list[LabIssue]:
    """At most MAX_ISSUES issues, then one line saying how many more there were."""
    if len(issues) <= MAX_ISSUES:
        return issues
    more = len(issues) - MAX_ISSUES
    return issues[:MAX_ISSUES] + [LabIssue("labs", "", f"... and {more} more {what}", issues[-1].severity)]


def _norm_name(name: Any) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


class _Resolver:
    """Input names (key, display name, alias, LOINC) -> (panel key, given-as-urea)."""

    def __init__(self, panel: LabPanel):
        self.index: dict[str, tuple[str, bool]] = {}
        for t in panel:
            for n in (t.key, t.name, t.loinc, *t.aliases):
                if n:
                    self.index.setdefault(_norm_name(n), (t.key, False))
        if "bun" in panel:
            for n in _UREA_NAMES:
                self.index.setdefault(n, ("bun", True))

    def resolve(self, name: Any) -> tuple[str | None, bool, str | None]:
        """(key, as_urea, unit from the name such as 'glucose [mmol/L]')."""
        hit = self.index.get(_norm_name(name))
        if hit:
            return hit[0], hit[1], None
        m = _HEADER_UNIT.match(str(name))
        if m:
            hit = self.index.get(_norm_name(m.group("name")))
            if hit:
                return hit[0], hit[1], m.group("unit").strip()
        return None, False, None


def _number(raw: Any) -> tuple[float | None, str | None, str | None, str | None]:
    """(number, unit in the value, comparator, error reason); (None, None, None, None) = missing."""
    if raw is None:
        return None, None, None, None
    if isinstance(raw, bool):
        return None, None, None, f"{_show(raw)!r} is not a number"
    if isinstance(raw, (int, float, np.integer, np.floating)):
        try:
            x = float(raw)
        except OverflowError:   # an int beyond float range
            return None, None, None, f"{_show(raw)} is not a finite number"
        if math.isnan(x):
            return None, None, None, None
        return (x, None, None, None) if math.isfinite(x) else (None, None, None, f"{_show(raw)} is not a finite number")
    if not isinstance(raw, str):
        return None, None, None, f"{_show(raw)!r} is not a number"
    s = raw.strip()
    if s.startswith("'"):         # our own CSV-injection escape (pneumo.service.csv_safe) is not part of the value
        s = s[1:].strip()
    if s.lower() in _MISSING:
        return None, None, None, None
    m = _VALUE_UNIT.match(s)
    if not m:
        return None, None, None, f"{_show(raw)!r} is not a number"
    x = float(m.group("num"))
    if not math.isfinite(x):
        return None, None, None, f"{_show(raw)!r} is not a finite number"
    return x, (m.group("unit") or "").strip() or None, m.group("cmp"), None


def _validate(entries: Iterable[tuple[Any, Any, str | None]], panel: LabPanel) -> LabReading:
    """entries: (input name or list of candidate names, raw value, unit or None)."""
    resolver = _Resolver(panel)
    found: dict[str, list[tuple[float, str]]] = {}
    errors, warnings, unknown = [], [], []
    for names, raw, unit in entries:
        candidates = names if isinstance(names, list) else [names]
        key = as_urea = name_unit = None
        for cand in candidates:
            key, as_urea, name_unit = resolver.resolve(cand)
            if key:
                break
        if key is None:
            label = _show(candidates[0] if candidates else "", 60)
            if label.strip() and label not in unknown:
                unknown.append(label)
            continue
        test = panel[key]
        x, value_unit, cmp, reason = _number(raw)
        shown = _show(raw)
        if reason:
            errors.append(LabIssue(key, shown, reason))
            continue
        if x is None:
            continue
        unit_given = value_unit or (unit if unit not in (None, "") else None) or name_unit
        shown = f"{x:g} {unit_given}" if unit_given else f"{x:g}"
        try:
            v = to_panel_unit(x, unit_given, test, as_urea=bool(as_urea))
        except LabError as err:
            errors.append(LabIssue(key, shown, str(err)))
            continue
        if x < 0 or v < 0:
            errors.append(LabIssue(key, shown, f"{shown} is negative"))
            continue
        if not test.plaus_low <= v <= test.plaus_high:
            conv = "" if abs(v - x) < 1e-12 else f" (= {v:.4g} {test.unit})"
            errors.append(LabIssue(key, shown, f"{shown}{conv} outside the plausible range "
                                               f"{test.plaus_low:g}-{test.plaus_high:g} {test.unit}"))
            continue
        if cmp:
            warnings.append(LabIssue(key, shown, f"censored value {cmp}{shown} used as {v:.4g}", "warning"))
        found.setdefault(key, []).append((v, shown))
    values: dict[str, float | None] = {k: None for k in panel.keys}
    for key, vals in found.items():
        first = vals[0][0]
        if all(math.isclose(v, first, rel_tol=5e-3, abs_tol=1e-9) for v, _ in vals):
            values[key] = first
        else:
            errors.append(LabIssue(key, ", ".join(s for _, s in vals)[:80],
                                   f"conflicting values ({', '.join(s for _, s in vals)[:80]})"))
    out_of_range = [t.key for t in panel if values[t.key] is not None and _outside_ref(values[t.key], t)]
    missing = [k for k, v in values.items() if v is None]
    return LabReading(values, _capped(errors, "refused values"), out_of_range, missing, unknown,
                      _capped(warnings, "warnings"))


def _outside_ref(v: float, t: LabTest) -> bool:
    return (t.ref_low is not None and v < t.ref_low) or (t.ref_high is not None and v > t.ref_high)


# ---- reading the source --------------------------------------------------------------------

def _read_bytes(source: Any, max_bytes: int) -> tuple[bytes, str | None]:
    """(content, file name or None); refuses oversize input before reading it whole."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise LabError(f"lab input is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
        return data, None
    if isinstance(source, str) and ("\n" in source or source.lstrip()[:1] in ("{", "[")):
        return _read_bytes(source.encode("utf-8"), max_bytes)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError:
            raise LabError(f"lab file not found: {path.name}") from None
        if not path.is_file():
            raise LabError(f"lab input {path.name} is not a file")
        if size > max_bytes:
            raise LabError(f"lab file {path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
        try:
            return path.read_bytes(), path.name
        except OSError as err:
            raise LabError(f"cannot read lab file {path.name}: {err.strerror or err}") from None
    if hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) > max_bytes:
            raise LabError(f"lab input is over the {max_bytes / 1e6:.0f} MB limit")
        return data, getattr(source, "name", None)
    raise LabError(f"cannot read labs from a {type(source).__name__}")


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise LabError("lab input is not a text file (it holds binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")   # spreadsheet exports are often Windows-1252


def _csv_rows(text: str, keep_blank_cells: bool = False) -> list[list[str]]:
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delim = max((",", ";", "\t"), key=first.count)
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delim)
                if r and (keep_blank_cells or any(c.strip() for c in r))]
    except csv.Error as err:
        raise LabError(f"lab CSV is malformed: {err}") from None
    if not rows:
        raise LabError("lab CSV is empty")
    if len(rows[0]) > MAX_COLUMNS:
        raise LabError(f"lab CSV has {len(rows[0])} columns (at most {MAX_COLUMNS})")
    return rows


def _find_col(header: list[str], names: tuple[str, ...]) -> int | None:
    low = [h.strip().lower() for h in header]
    return next((low.index(n) for n in names if n in low), None)


def _is_long(header: list[str]) -> bool:
    return _find_col(header, _TEST_COLS) is not None and _find_col(header, _VALUE_COLS) is not None


def _wide_entries(header: list[str], row: list[str]):
    return [(h, row[i] if i < len(row) else None, None) for i, h in enumerate(header)]


def _long_entries(rows: list[list[str]]):
    header = rows[0]
    ti, vi, ui = _find_col(header, _TEST_COLS), _find_col(header, _VALUE_COLS), _find_col(header, _UNIT_COLS)
    if ti is None or vi is None:
        raise LabError("long lab CSV needs 'test' and 'value' columns")
    cell = lambda r, i: r[i] if i is not None and i < len(r) else None  # noqa: E731
    return [(cell(r, ti) or "", cell(r, vi), cell(r, ui)) for r in rows[1:]]


def _sniff(text: str, name: str | None) -> str:
    if text.lstrip()[:1] in ("{", "[") or (name or "").lower().endswith(".json"):
        return "fhir"
    return "long_csv" if _is_long(_csv_rows(text)[0]) else "wide_csv"


def parse_labs(source: Any, panel: LabPanel | None = None, *, fmt: str | None = None) -> LabReading:
    """One case's labs from a path, bytes, text, file-like or dict; fmt is sniffed when None.
    Refused values are in .errors (call raise_for_errors() to fail loudly)."""
    if panel is None:
        panel = default_panel()
    if fmt is not None and fmt not in FORMATS:
        raise LabError(f"unknown lab format {fmt!r} (one of {', '.join(FORMATS)})")
    if isinstance(source, dict) and (fmt == "fhir" or (fmt is None and "resourceType" in source)):
        return _validate(observation_entries(source), panel)     # an already-parsed FHIR resource
    if isinstance(source, dict) and fmt in (None, "dict"):
        return _validate(_dict_entries(source), panel)
    if fmt == "dict":
        raise LabError(f"format 'dict' needs a dict, got a {type(source).__name__}")
    text = _decode(_read_bytes(source, MAX_BYTES)[0]) if not isinstance(source, dict) else None
    if text is None:
        raise LabError(f"format {fmt!r} needs a file or bytes, got a dict")
    name = str(source) if isinstance(source, (str, os.PathLike)) and "\n" not in str(source) else None
    fmt = fmt or _sniff(text, name)
    if fmt == "fhir":
        doc = _json_loads(text)
        return _validate(observation_entries(doc), panel)
    rows = _csv_rows(text)
    if fmt == "long_csv":
        return _validate(_long_entries(rows), panel)
    if len(rows) < 2:
        raise LabError("wide lab CSV has a header but no values row")
    if len(rows) > 2:
        raise LabError(f"wide lab CSV has {len(rows) - 1} rows; one case has one row (use read_wide_csv for a batch)")
    return _validate(_wide_entries(rows[0], rows[1]), panel)


def _json_int(digits: str) -> int | str:
    """A JSON integer; one too long for int() (a 5,000-digit value) stays text, to be refused
    as that lab's value rather than crash the parse."""
    return int(digits) if len(digits) <= MAX_DIGITS else digits


def _json_loads(text: str) -> Any:
    try:
        return json.loads(text, parse_int=_json_int)
    except RecursionError:
        raise LabError("lab JSON is malformed: nested too deeply to be lab results") from None
    except ValueError as err:   # JSONDecodeError, and any number the decoder cannot convert
        raise LabError(f"lab JSON is malformed: {one_line(str(err), 80)}") from None


def _dict_entries(d: dict):
    out = []
    for k, v in d.items():
        unit = None
        if isinstance(v, (tuple, list)) and len(v) == 2 and (v[1] is None or isinstance(v[1], str)):
            v, unit = v
        elif isinstance(v, dict) and "value" in v:
            v, unit = v.get("value"), v.get("unit")
            unit = unit if isinstance(unit, str) else None
        out.append((k if isinstance(k, str) else _show(k, 200), v, unit))
    return out


def read_wide_csv(path_or_buf: Any, panel: LabPanel | None = None) -> list[LabReading]:
    """A batch: one LabReading per data row of a wide CSV (columns as in parse_labs)."""
    if panel is None:
        panel = default_panel()
    # rows of empty cells are kept (all missing), so readings align with pandas.read_csv rows
    rows = _csv_rows(_decode(_read_bytes(path_or_buf, MAX_BATCH_BYTES)[0]), keep_blank_cells=True)
    return [_validate(_wide_entries(rows[0], r), panel) for r in rows[1:]]
