"""Panel schema, catalogue and unit conversion."""
from __future__ import annotations

import gzip
import json
import math

import pandas as pd
import pytest

from pneumo.data.labs import CATALOGUE, LabPanel, LabTest, catalogue_by_itemid, default_panel
from pneumo.data.labs.catalogue import panel_of
from pneumo.data.labs.units import FACTORS, normalize_unit, to_panel_unit
from pneumo.errors import LabError

MIMIC_SELECTION = ["sodium", "potassium", "chloride", "bicarbonate", "anion_gap", "bun", "creatinine",
                   "glucose", "magnesium", "phosphate", "calcium", "wbc", "rbc", "hemoglobin",
                   "hematocrit", "platelets", "mcv", "mch", "mchc", "rdw"]


def test_default_panel_is_the_mimic_selection():
    p = default_panel()
    assert p.keys == MIMIC_SELECTION
    assert all(t.median is None for t in p)
    assert all(t.itemid is not None and t.loinc for t in p)


def test_catalogue_is_consistent():
    for key, t in CATALOGUE.items():
        assert t.key == key and key == key.lower() and " " not in key
        assert t.plaus_low < t.plaus_high
        assert t.plaus_low >= 0
        if t.ref_low is not None and t.ref_high is not None:
            assert t.plaus_low <= t.ref_low < t.ref_high <= t.plaus_high
    itemids = [t.itemid for t in CATALOGUE.values() if t.itemid is not None]
    assert len(itemids) == len(set(itemids))
    names = {}
    for t in CATALOGUE.values():   # no name/alias/LOINC may point at two tests
        for n in (t.key, t.name, t.loinc, *t.aliases):
            if n:
                assert names.setdefault(n.lower(), t.key) == t.key, n


def test_catalogue_by_itemid():
    assert catalogue_by_itemid(50912).key == "creatinine"
    assert catalogue_by_itemid("51301").key == "wbc"
    assert catalogue_by_itemid(1) is None
    assert catalogue_by_itemid("x") is None
    assert catalogue_by_itemid(None) is None
    catalogue_by_itemid(50912).median = 1.0          # a copy: the catalogue is not changed
    assert CATALOGUE["creatinine"].median is None


def test_panel_json_round_trip(tmp_path):
    p = default_panel().with_medians({"sodium": 138.0, "wbc": 8.5})
    assert p["sodium"].median == 138.0 and p["potassium"].median is None
    assert default_panel()["sodium"].median is None              # with_medians copies
    path = tmp_path / "panel.json"
    p.save(path)
    q = LabPanel.load(path)
    assert q == p and q.keys == p.keys and isinstance(q["sodium"].aliases, tuple)
    assert LabPanel.from_dict(json.loads(path.read_text())) == p


def test_panel_access_and_errors(tmp_path):
    p = panel_of(["wbc", "crp"])
    assert len(p) == 2 and list(p)[1].key == "crp" and "wbc" in p
    with pytest.raises(KeyError):
        p["nope"]
    with pytest.raises(LabError):
        panel_of(["nope"])
    with pytest.raises(LabError):
        p.with_medians({"nope": 1.0})
    with pytest.raises(LabError):
        LabPanel([CATALOGUE["wbc"], CATALOGUE["wbc"]])
    with pytest.raises(LabError):
        LabPanel.from_dict({"tests": [{"key": "x"}]})
    with pytest.raises(LabError):
        LabPanel.from_dict([])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LabError):
        LabPanel.load(bad)


def test_impute_value():
    t = LabTest("x", "X", None, None, "mg/dL", 2.0, 4.0, 0, 10)
    assert t.impute_value() == 3.0
    t.median = 3.5
    assert t.impute_value() == 3.5


@pytest.mark.parametrize("raw,canon", [
    ("K/uL", "10*3/ul"), ("x10^9/L", "10*3/ul"), ("10^3/µL", "10*3/ul"), ("10³/μL", "10*3/ul"),
    ("×10⁹/L", "10*3/ul"), ("10*3/uL", "10*3/ul"), ("10e9/L", "10*3/ul"), ("thou/uL", "10*3/ul"),
    ("m/uL", "10*6/ul"), ("x10^12/L", "10*6/ul"), ("mEq/L", "meq/l"), (" MMOL / L ", "mmol/l"),
    ("µmol/L", "umol/l"), ("mm Hg", "mmhg"), ("mm[Hg]", "mmhg"), ("{INR}", ""), ("[pH]", ""),
    ("units", ""), (None, ""), ("IU/L", "u/l"), ("sec", "s"), ("mg%", "mg/dl"), ("fl", "fl"),
])
def test_normalize_unit(raw, canon):
    assert normalize_unit(raw) == canon


@pytest.mark.parametrize("key,value,unit,expected", [
    ("glucose", 5.5, "mmol/L", 5.5 * 18.016), ("glucose", 99, "mg/dL", 99),
    ("creatinine", 88.42, "µmol/L", 1.0), ("creatinine", 1.0, "mg/dl", 1.0),
    ("hemoglobin", 135, "g/L", 13.5), ("hemoglobin", 8.0, "mmol/L", 8.0 * 1.611),
    ("bun", 5.0, "mmol/L", 5.0 * 2.801), ("calcium", 2.4, "mmol/L", 2.4 * 4.008),
    ("magnesium", 0.9, "mmol/L", 0.9 * 2.431), ("phosphate", 1.1, "mmol/L", 1.1 * 3.097),
    ("wbc", 12.0, "x10^9/L", 12.0), ("wbc", 12.0, "K/uL", 12.0), ("wbc", 12000, "cells/uL", 12.0),
    ("wbc", 12.0, "G/L", 12.0), ("platelets", 250, "10^9/L", 250), ("rbc", 4.5, "10^12/L", 4.5),
    ("sodium", 140, "mmol/L", 140), ("potassium", 4, "mEq/L", 4), ("chloride", 100, "mmol/l", 100),
    ("bicarbonate", 24, "mmol/L", 24), ("anion_gap", 12, "mmol/L", 12),
    ("hematocrit", 0.42, "L/L", 42), ("mchc", 330, "g/L", 33), ("mchc", 33, "%", 33),
    ("albumin", 40, "g/L", 4.0), ("bilirubin_total", 17.1, "umol/L", 1.0), ("crp", 1.2, "mg/dL", 12),
    ("lactate", 18.016, "mg/dL", 2.0), ("po2", 10, "kPa", 75.0062), ("inr", 1.1, "", 1.1),
    ("ph", 7.4, "units", 7.4), ("procalcitonin", 0.3, "ug/L", 0.3), ("alt", 30, "IU/L", 30),
])
def test_conversions(key, value, unit, expected):
    assert to_panel_unit(value, unit, CATALOGUE[key]) == pytest.approx(expected, rel=1e-4)


def test_no_unit_means_panel_unit_and_urea():
    assert to_panel_unit(7.0, None, CATALOGUE["glucose"]) == 7.0
    assert to_panel_unit(40, "mg/dL", CATALOGUE["bun"], as_urea=True) == pytest.approx(40 * 0.467)
    assert to_panel_unit(10, "mmol/L", CATALOGUE["bun"], as_urea=True) == pytest.approx(28.01)
    with pytest.raises(LabError):
        to_panel_unit(40, None, CATALOGUE["bun"], as_urea=True)


@pytest.mark.parametrize("key,unit", [("glucose", "furlongs"), ("sodium", "mg/dL"), ("wbc", "g/dL"),
                                      ("rbc", "K/uL"), ("inr", "s")])
def test_unconvertible_unit(key, unit):
    with pytest.raises(LabError, match="cannot be converted"):
        to_panel_unit(1.0, unit, CATALOGUE[key])


def test_every_catalogue_unit_is_in_its_table():
    for t in CATALOGUE.values():
        assert normalize_unit(t.unit) in FACTORS[t.key], t.key
        assert math.isclose(to_panel_unit(1.0, t.unit, t), 1.0)


@pytest.mark.data
def test_catalogue_matches_mimic_d_labitems(data_dir):
    d = pd.read_csv(data_dir / "mimic-iv-demo" / "hosp" / "d_labitems.csv.gz")
    d = d.set_index("itemid")
    for t in CATALOGUE.values():
        if t.itemid is None:
            continue
        assert t.itemid in d.index, t.key
        row = d.loc[t.itemid]
        assert row["fluid"] == "Blood", t.key
        if isinstance(row["loinc_code"], str) and row["loinc_code"]:
            assert t.loinc == row["loinc_code"], t.key


@pytest.mark.data
def test_catalogue_units_match_mimic_valueuom(data_dir):
    """Each panel test's MIMIC unit (valueuom) converts 1:1 to the panel unit."""
    ids = {t.itemid for t in default_panel()}
    uoms: dict[int, set] = {}
    with gzip.open(data_dir / "mimic-iv-demo" / "hosp" / "labevents.csv.gz", "rt") as fh:
        for chunk in pd.read_csv(fh, usecols=["itemid", "valueuom"], chunksize=20000):
            chunk = chunk[chunk.itemid.isin(ids)].dropna()
            for i, u in zip(chunk.itemid, chunk.valueuom):
                uoms.setdefault(int(i), set()).add(u)
    for t in default_panel():
        for u in uoms.get(t.itemid, set()):
            assert to_panel_unit(1.0, u, t) == 1.0, (t.key, u)
