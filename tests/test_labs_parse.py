"""parse_labs / read_wide_csv over every format, good and bad."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from pneumo.config import REPO_ROOT
from pneumo.data.labs import LabReading, default_panel, parse_labs, read_wide_csv
from pneumo.errors import LabError

PANEL = default_panel()
ASSETS = REPO_ROOT / "assets"


@pytest.mark.parametrize("name", ["example_labs_pneumonia.csv", "example_labs_normal.csv",
                                  "example_labs_long.csv", "example_labs_fhir.json"])
def test_example_assets_parse_clean(name):
    r = parse_labs(ASSETS / name, PANEL)
    assert r.errors == [] and r.missing == [] and r.unknown == []
    r.raise_for_errors()
    values = r.row(PANEL)
    assert values.dtype == np.float32 and np.isfinite(values).all()


def test_example_assets_tell_a_story():
    pneu = parse_labs(ASSETS / "example_labs_pneumonia.csv", PANEL)
    normal = parse_labs(ASSETS / "example_labs_normal.csv", PANEL)
    assert pneu.values["wbc"] == 16.2 and "wbc" in pneu.out_of_range and "sodium" in pneu.out_of_range
    assert normal.out_of_range == []
    long = parse_labs(ASSETS / "example_labs_long.csv", PANEL)
    assert long.values["glucose"] == pytest.approx(7.8 * 18.016)
    assert long.values["bun"] == pytest.approx(9.6 * 2.801)       # urea mmol/L -> BUN mg/dL


def test_wide_csv_names_aliases_loinc_and_header_units():
    text = b"Glucose [mmol/L],WBC (x10^9/L),2951-2,Hgb,Urea Nitrogen,case_id\n5.5,12,138,13.2 g/dL,14,A1\n"
    r = parse_labs(text, PANEL)
    assert r.values["glucose"] == pytest.approx(99.088)
    assert r.values["wbc"] == 12.0 and r.values["sodium"] == 138.0
    assert r.values["hemoglobin"] == 13.2 and r.values["bun"] == 14.0
    assert r.unknown == ["case_id"] and r.errors == []
    assert "potassium" in r.missing and "glucose" not in r.missing


def test_wide_csv_semicolon_and_bom():
    r = parse_labs("\ufeffsodium;potassium\n140;4.1\n".encode("utf-8"), PANEL)
    assert r.values["sodium"] == 140 and r.values["potassium"] == 4.1


def test_wide_csv_blank_cells_are_missing():
    r = parse_labs(b"sodium,potassium,glucose\n140,,NA\n", PANEL)
    assert r.values["potassium"] is None and r.values["glucose"] is None and r.errors == []


def test_wide_csv_single_case_row_count():
    with pytest.raises(LabError, match="no values row"):
        parse_labs(b"sodium,potassium\n", PANEL)
    with pytest.raises(LabError, match="read_wide_csv"):
        parse_labs(b"sodium\n140\n141\n", PANEL)
    with pytest.raises(LabError, match="empty"):
        parse_labs(b"\n\n", PANEL, fmt="wide_csv")


def test_read_wide_csv_batch(tmp_path):
    path = tmp_path / "batch.csv"
    path.write_text("image_path,sodium,wbc\na.png,140,7\nb.png,abc,16\nc.png,,\n")
    rows = read_wide_csv(path, PANEL)
    assert len(rows) == 3
    assert rows[0].values["sodium"] == 140 and rows[0].unknown == ["image_path"]
    assert rows[1].errors[0].key == "sodium" and rows[1].values["wbc"] == 16
    assert rows[2].values["sodium"] is None and rows[2].errors == []
    assert read_wide_csv(io.BytesIO(path.read_bytes()), PANEL)[1].values["wbc"] == 16


def test_long_csv():
    text = b"test,value,unit\nSodium,132,mmol/L\nK,4.0,\n6777-7,6.1,mmol/L\ncreatinine,90,umol/L\nferritin,300,ng/mL\n"
    r = parse_labs(text, PANEL)
    assert r.values["sodium"] == 132 and r.values["potassium"] == 4.0
    assert r.values["glucose"] == pytest.approx(6.1 * 18.016)
    assert r.values["creatinine"] == pytest.approx(90 / 88.42)
    assert r.unknown == ["ferritin"]


def test_long_csv_needs_columns():
    with pytest.raises(LabError, match="'test' and 'value'"):
        parse_labs(b"analyte,amount\nsodium,140\n", PANEL, fmt="long_csv")


def _obs(loinc, value, unit, **extra):
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "valueQuantity": {"value": value, "unit": unit}, **extra}


def test_fhir_observation_and_bundle():
    r = parse_labs(json.dumps(_obs("2951-2", 135, "mmol/L")).encode(), PANEL)
    assert r.values["sodium"] == 135
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _obs("6690-2", 14.2, "10*9/L")},
        {"resource": _obs("2345-7", 7.0, "mmol/L")},
        {"resource": _obs("718-7", 120, "g/L", status="entered-in-error")},
        {"resource": {"resourceType": "Patient", "id": "x"}},
        {"resource": {"resourceType": "Observation", "code": {"text": "Potassium"}, "valueString": "4.4"}},
        {"resource": _obs("99999-9", 1, "mg/dL")},
    ]}
    r = parse_labs(json.dumps(bundle).encode(), PANEL)
    assert parse_labs(bundle, PANEL).values == r.values          # an already-parsed resource too
    assert r.values["wbc"] == 14.2 and r.values["glucose"] == pytest.approx(126.112)
    assert r.values["hemoglobin"] is None and r.values["potassium"] == 4.4
    assert r.unknown == ["99999-9"] and r.errors == []


def test_fhir_ucum_code_preferred_over_display_unit():
    obs = _obs("2160-0", 88.42, "micromoles per litre")
    obs["valueQuantity"].update(system="http://unitsofmeasure.org", code="umol/L")
    assert parse_labs(json.dumps(obs).encode(), PANEL).values["creatinine"] == pytest.approx(1.0)


@pytest.mark.parametrize("doc,match", [
    ({"sodium": 140}, "no resourceType"),
    ({"resourceType": "Patient", "id": "p"}, "not lab results"),
    ({"resourceType": "Bundle", "entry": []}, "no Observation"),
    ({"resourceType": "Bundle", "entry": {"a": 1}}, "not a list"),
    ([1, 2, 3], "not a FHIR resource"),
])
def test_not_fhir(doc, match):
    with pytest.raises(LabError, match=match):
        parse_labs(json.dumps(doc).encode(), PANEL)


@pytest.mark.parametrize("text", [b"{", b'{"resourceType": "Observation",', b"[" * 100000])
def test_malformed_json(text):
    with pytest.raises(LabError, match="malformed"):
        parse_labs(text, PANEL, fmt="fhir")


def test_dict_format():
    r = parse_labs({"sodium": 140, "glucose": "6 mmol/L", "wbc": (11.0, "x10^9/L"),
                    "potassium": {"value": 4.2, "unit": "mEq/L"}, "Hb": "13,2", "mystery": 3}, PANEL)
    assert r.values["sodium"] == 140 and r.values["glucose"] == pytest.approx(108.096)
    assert r.values["wbc"] == 11.0 and r.values["potassium"] == 4.2
    assert [e.key for e in r.errors] == ["hemoglobin"] and r.unknown == ["mystery"]


@pytest.mark.parametrize("value,reason", [
    ("abc", "'abc' is not a number"), (9999, "outside the plausible range 90-200"),
    (-1, "negative"), ("140 furlongs", "cannot be converted"), (float("inf"), "not a finite"),
    (True, "not a number"), ([1, 2, 3], "not a number"),
])
def test_refused_values(value, reason):
    r = parse_labs({"sodium": value}, PANEL)
    assert r.values["sodium"] is None and "sodium" in r.missing
    assert len(r.errors) == 1 and reason in r.errors[0].reason and r.errors[0].severity == "error"
    with pytest.raises(LabError, match="^sodium: "):
        r.raise_for_errors()


def test_implausible_after_conversion():
    r = parse_labs({"glucose": "150 mmol/L"}, PANEL)       # 2702 mg/dL: a unit mix-up
    assert "2702" in r.errors[0].reason and "10-2000 mg/dL" in r.errors[0].reason


def test_raise_for_errors_lists_everything_on_one_line():
    r = parse_labs({"glucose": "abc", "sodium": "9999 mmol/L", "wbc": "x\ny"}, PANEL)
    with pytest.raises(LabError) as exc:
        r.raise_for_errors()
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith("glucose: 'abc' is not a number; sodium: 9999 mmol/L outside the plausible range 90-200")
    assert "wbc:" in msg


def test_out_of_range_is_flagged_and_kept():
    r = parse_labs({"sodium": 128, "potassium": 4.0}, PANEL)
    assert r.values["sodium"] == 128 and r.out_of_range == ["sodium"] and r.errors == []


def test_duplicates_agree_or_conflict():
    r = parse_labs(b"test,value,unit\nglucose,5.5,mmol/L\nGlucose,99.1,mg/dL\n", PANEL)
    assert r.errors == [] and r.values["glucose"] == pytest.approx(99.088)
    r = parse_labs(b"sodium,Na\n140,130\n", PANEL)
    assert r.values["sodium"] is None and "conflicting values" in r.errors[0].reason


def test_censored_value_is_kept_with_a_warning():
    r = parse_labs({"creatinine": "<0.2"}, PANEL)
    assert r.values["creatinine"] == 0.2 and r.errors == [] and r.warnings[0].severity == "warning"


def test_urea_given_as_urea():
    r = parse_labs({"urea": "40 mg/dL"}, PANEL)
    assert r.values["bun"] == pytest.approx(18.68)
    assert parse_labs({"urea": 40}, PANEL).errors[0].key == "bun"


def test_row_is_in_panel_order_with_nan_where_missing():
    r = parse_labs({"wbc": 9.0, "sodium": 138.0}, PANEL)
    values = r.row(PANEL)
    i = PANEL.keys.index
    assert values.shape == (len(PANEL),) and values[i("wbc")] == 9.0 and values[i("sodium")] == 138.0
    assert np.isnan(values).sum() == len(PANEL) - 2


def test_impute_value_is_the_median_then_the_reference_midpoint():
    panel = PANEL.with_medians({"sodium": 138.0})
    assert panel["sodium"].impute_value() == 138.0
    assert panel["potassium"].impute_value() == pytest.approx((3.5 + 5.1) / 2)


def test_sources_path_str_filelike_and_fmt(tmp_path):
    p = tmp_path / "labs.csv"
    p.write_text("sodium\n141\n")
    for src in (p, str(p), io.BytesIO(p.read_bytes()), io.StringIO("sodium\n141\n"), "sodium\n141\n"):
        assert parse_labs(src, PANEL).values["sodium"] == 141
    assert isinstance(parse_labs({"sodium": 141}), LabReading)        # panel defaults to the shipped one
    with pytest.raises(LabError, match="not found"):
        parse_labs(tmp_path / "nope.csv", PANEL)
    with pytest.raises(LabError, match="not a file"):
        parse_labs(tmp_path, PANEL)
    with pytest.raises(LabError, match="unknown lab format"):
        parse_labs(p, PANEL, fmt="xml")
    with pytest.raises(LabError, match="needs a dict"):
        parse_labs(p, PANEL, fmt="dict")
    with pytest.raises(LabError, match="cannot read labs"):
        parse_labs(12345, PANEL)
