"""Hostile lab inputs (reliability issue): huge, wide, not-what-it-claims, formulas; and a fuzz."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pneumo.data.labs import LabReading, default_panel, parse_labs, read_wide_csv
from pneumo.data.labs.parse import MAX_BYTES, MAX_COLUMNS
from pneumo.errors import LabError

PANEL = default_panel()


def test_csv_with_10000_columns_is_refused():
    header = ",".join(f"c{i}" for i in range(10_000))
    row = ",".join("1" for _ in range(10_000))
    with pytest.raises(LabError, match="10000 columns"):
        parse_labs(f"{header}\n{row}\n".encode(), PANEL)
    with pytest.raises(LabError, match="columns"):
        read_wide_csv(f"{header}\n{row}\n".encode(), PANEL)


def test_many_unknown_columns_under_the_cap_are_listed():
    n = MAX_COLUMNS - 1
    text = "sodium," + ",".join(f"x{i}" for i in range(n)) + "\n140," + ",".join("1" * n) + "\n"
    r = parse_labs(text.encode(), PANEL)
    assert r.values["sodium"] == 140 and len(r.unknown) == n


def test_oversize_file_is_refused_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:                      # 50 MB sparse file: cheap to make
        fh.truncate(50 * 1024 * 1024)
    read_calls = []
    monkeypatch.setattr(type(big), "read_bytes", lambda self: read_calls.append(self) or b"")
    with pytest.raises(LabError, match="limit is 5 MB"):
        parse_labs(big, PANEL)
    assert read_calls == []
    with pytest.raises(LabError, match="limit"):
        parse_labs(b"a" * (MAX_BYTES + 1), PANEL)


def test_oversize_stream_reads_at_most_the_cap():
    class Endless:
        def read(self, n=-1):
            assert n > 0, "must not read a stream whole"
            return b"1" * n
    with pytest.raises(LabError, match="limit"):
        parse_labs(Endless(), PANEL)


def test_binary_file_is_refused():
    with pytest.raises(LabError, match="binary"):
        parse_labs(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", PANEL)


@pytest.mark.parametrize("formula", ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3",
                                     "@SUM(A1:A2)", "=1+2", "\t=1", "'=1+2"])
def test_formula_cells_are_not_numbers(formula):
    for source in ({"sodium": formula}, f'sodium\n"{formula}"\n'.encode()):
        r = parse_labs(source, PANEL)
        assert r.values["sodium"] is None
        assert r.errors and r.errors[0].key == "sodium" and "not a number" in r.errors[0].reason


def test_escaped_number_is_read():
    assert parse_labs({"sodium": "'140"}, PANEL).values["sodium"] == 140   # csv_safe's escape undone


def test_bundle_with_too_many_entries_is_refused():
    doc = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Observation"}}] * 6000}
    with pytest.raises(LabError, match="entries"):
        parse_labs(json.dumps(doc).encode(), PANEL)


def _must_be_reading_or_laberror(source, **kw):
    try:
        r = parse_labs(source, PANEL, **kw)
    except LabError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(r, LabReading)
    assert set(r.values) == set(PANEL.keys)
    assert set(r.missing) == {k for k, v in r.values.items() if v is None}
    for k, v in r.values.items():
        if v is not None:
            assert PANEL[k].plaus_low <= v <= PANEL[k].plaus_high
    try:
        r.raise_for_errors()
    except LabError as err:
        assert "\n" not in str(err) and r.errors
    values = r.row(PANEL)
    assert values.shape == (len(PANEL),) and (np.isnan(values) == [r.values.get(k) is None for k in PANEL.keys]).all()


_names = st.sampled_from(PANEL.keys + ["Glucose [mmol/L]", "WBC (K/uL)", "2951-2", "urea", "hb", "x", ""]) | st.text(max_size=12)
_scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
            | st.text(max_size=20) | st.sampled_from(["5.5 mmol/L", "<0.2", "=1+2", "1e309", "140 mEq/L", "NaN", "'-3"]))
_values = _scalars | st.tuples(_scalars, st.text(max_size=8) | st.none()) | st.lists(_scalars, max_size=3) \
    | st.dictionaries(st.sampled_from(["value", "unit"]), _scalars, max_size=2)
_json = st.recursive(_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(
    st.sampled_from(["resourceType", "entry", "resource", "code", "coding", "system", "valueQuantity",
                     "value", "unit", "status", "text", "valueString"]) | st.text(max_size=5), c, max_size=4), max_leaves=20)
_fhirish = st.fixed_dictionaries({"resourceType": st.sampled_from(["Bundle", "Observation", "Patient", 3])}, optional={
    "entry": st.lists(st.fixed_dictionaries({"resource": st.fixed_dictionaries({
        "resourceType": st.just("Observation"),
        "code": st.fixed_dictionaries({"coding": st.lists(st.fixed_dictionaries({
            "system": st.sampled_from(["http://loinc.org", "x"]), "code": st.sampled_from(["2951-2", "718-7", "1"]) | _scalars}), max_size=2)}),
        "valueQuantity": st.dictionaries(st.sampled_from(["value", "unit", "code", "system"]), _scalars, max_size=4)})}), max_size=4),
    "code": _json, "valueQuantity": _json})
_FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))


@_FUZZ
@given(st.dictionaries(_names, _values, max_size=8))
def test_fuzz_dict(d):
    _must_be_reading_or_laberror(d)


@_FUZZ
@given(st.lists(st.lists(st.text(max_size=10) | _names, min_size=1, max_size=6), min_size=1, max_size=4),
       st.sampled_from([",", ";", "\t"]), st.sampled_from([None, "wide_csv", "long_csv"]))
def test_fuzz_csv_text(rows, sep, fmt):
    text = "\n".join(sep.join(r) for r in rows)
    _must_be_reading_or_laberror(text.encode("utf-8", errors="surrogatepass"), fmt=fmt)


@_FUZZ
@given(_json | _fhirish)
def test_fuzz_json(doc):
    _must_be_reading_or_laberror(json.dumps(doc).encode(), fmt="fhir")


@_FUZZ
@given(st.binary(max_size=200))
def test_fuzz_bytes(data):
    _must_be_reading_or_laberror(data)

