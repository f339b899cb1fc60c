"""pneumo.present.app_support and pneumo.present.report: the app's library side, without streamlit."""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pneumo.data.labs import default_panel
from pneumo.experiments import results as res
from pneumo.inference.case import Result
from pneumo.present import app_support as sup
from pneumo.present import figures as figs
from pneumo.present import lab_display
from pneumo.present import model_card as mc
from pneumo.present.report import render_case_report
from pneumo.service import uploads


def test_shap_frame_sorted_by_magnitude_with_readable_labels():
    display = [{"key": "wbc", "name": "White blood cells", "value": 16.2, "unit": "10*3/uL", "imputed": False},
               {"key": "bun", "name": "Urea nitrogen (BUN)", "value": 27.0, "unit": "mg/dL", "imputed": False},
               {"key": "rdw", "name": "Red cell distribution width (RDW)", "value": None, "unit": "%",
                "imputed": True}]
    frame = lab_display.shap_frame({"wbc": 0.05, "bun": -0.08, "rdw": 0.001}, display)
    assert frame["key"].tolist() == ["bun", "wbc", "rdw"]
    assert frame.loc[1, "label"] == "WBC 16.2 10*3/uL"
    assert frame.loc[0, "label"] == "BUN 27 mg/dL"
    assert frame.loc[2, "label"] == "RDW not given"


def test_lab_form_helpers():
    panel = default_panel()
    wbc = panel["wbc"]
    assert lab_display.range_flag(wbc, 16.2) == "high" and lab_display.range_flag(wbc, 2.0) == "low"
    assert lab_display.range_flag(wbc, 7.0) is None and lab_display.range_flag(wbc, None) is None
    assert "4–11 10³/µL" in lab_display.lab_help(wbc)
    assert lab_display.form_values({"wbc": 7.0, "bun": None}) == {"wbc": 7.0}
    assert lab_display.form_values({"wbc": None}) is None


def test_case_key_is_stable_and_distinct():
    assert lab_display.case_key("a" * 64, {"wbc": 7.0}) == lab_display.case_key("a" * 64, {"wbc": 7.0})
    assert lab_display.case_key("a" * 64, {"wbc": 7.0}) != lab_display.case_key("a" * 64, {"wbc": 7.1})
    assert lab_display.case_key("a" * 64, None) != lab_display.case_key("b" * 64, None)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_extract_zip_refuses_traversal(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    data = _zip({"images/a.png": b"A", "../evil.txt": b"x", "/abs/evil.txt": b"x",
                 "images/../../evil2.txt": b"x", "C:/win.txt": b"x", "ok/b.png": b"B"})
    n, refused = uploads.extract_zip(data, dest)
    assert n == 2
    assert sorted(refused) == sorted(["../evil.txt", "/abs/evil.txt", "images/../../evil2.txt", "C:/win.txt"])
    assert (dest / "images" / "a.png").read_bytes() == b"A"
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "evil2.txt").exists()


def test_save_uploads_uses_base_names(tmp_path):
    refused = uploads.save_uploads([("../../x.png", b"1"), ("dir\\y.png", b"2"), ("z.zip", _zip({"q.png": b"3"}))],
                               tmp_path)
    assert refused == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.png", "x.png", "y.png"]


def test_csv_bytes_escapes_formulas():
    text = uploads.csv_bytes(pd.DataFrame({"image_path": ["=HYPERLINK(\"x\")", "a.png"], "probability": [0.5, 0.7]}))
    assert b"'=HYPERLINK" in text and b"0.5" in text


def _results_file(folder: Path, name="exp") -> Path:
    rng = np.random.default_rng(0)
    y = [0] * 40 + [1] * 10
    entries = []
    for model, regime in (("fusion", "imbalanced"), ("fusion", "adasyn"), ("image_only", "imbalanced")):
        runs_p = [np.clip(np.array(y) * 0.6 + rng.uniform(0, 0.4, len(y)), 0, 1).tolist() for _ in range(2)]
        stat = {"mean": 0.9, "sd": 0.01, "ci_low": 0.88, "ci_high": 0.92}
        entries.append({"model": model, "regime": regime,
                        "runs": [{"seed": s, "threshold": 0.5, "train": {}, "test": {}} for s in range(2)],
                        "summary": {"test": {m: stat for m in ("accuracy", "roc_auc", "pr_auc", "f1", "mcc", "loss")},
                                    "train": {m: {"mean": 0.95, "sd": 0.01} for m in ("roc_auc", "pr_auc", "f1", "mcc")}},
                        "test_cases": {"case_id": [str(i) for i in range(len(y))], "y": y, "p": runs_p}})
    doc = {"schema": "pneumo.results/1", "experiment": name, "cohort": {"semi_real": True}, "n_runs": 2,
           "entries": entries}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def test_metrics_entries_tables_and_curves(tmp_path):
    _results_file(tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    models = tmp_path / "models" / "m1"
    models.mkdir(parents=True)
    (models / "metrics.json").write_text(json.dumps({   # pneumo.training.fit's layout: per view
        "semi_real": True,
        "test": {"fusion": {"accuracy": 0.91, "roc_auc": 0.95, "threshold": 0.4},
                 "image_only": {"accuracy": 0.9, "roc_auc": 0.93, "threshold": 0.5}},
        "test_ci": {"fusion": {"roc_auc": {"estimate": 0.95, "low": 0.9, "high": 0.98}}},
        "test_probabilities": {"fusion": [0.1, 0.9, 0.4, 0.6], "image_only": [0.2, 0.8, 0.3, 0.7]},
        "test_labels": [0, 1, 0, 1]}))
    entries = res.load_entries(tmp_path, tmp_path / "models")
    assert any("error" in e for e in entries)
    good = [e for e in entries if "error" not in e]
    assert len(good) == 5
    shipped = [e for e in good if e["regime"] == "shipped"]
    assert [e["model"] for e in shipped] == ["fusion", "image_only"]
    assert res.metrics_table(shipped).loc[0, "ROC AUC"] == "0.950 [0.900, 0.980]"
    assert res.confusion(shipped[0])[1] == 0.4
    good = [e for e in good if e["regime"] != "shipped"]
    table = res.metrics_table(good)
    assert table.loc[0, "ROC AUC"] == "0.900 ± 0.010 [0.880, 0.920]"
    assert set(table.columns) >= {"Accuracy", "ROC AUC", "PR AUC", "F1", "MCC"}
    for kind in ("roc", "pr", "calibration"):
        cs = res.curves(good, kind)
        assert len(cs) == 3 and all(len(c["x"]) == len(c["y"]) > 1 for c in cs)
        figs.curve_figure(cs, kind)
    cm, t = res.confusion(good[0])
    assert cm.sum() == 100 and t == 0.5
    t1, t2 = res.paper_table1(good), res.paper_table2(good)
    assert 96.0 in t1["Paper acc %"].tolist() and 90.0 in t1["Our acc %"].tolist()
    assert t2.loc[0, "Paper test"] == 0.978 and "exp test" in t2.columns
    pairs = res.regime_pairs(good)
    assert pairs.loc[0, "imbalanced"] == 0.9 and pairs.loc[0, "adasyn"] == 0.9


def test_history_frame_shortens_digest():
    frame = pd.DataFrame({"time": ["2026-01-01T00:00:00Z"], "image_digest": ["ab" * 32], "probability": [0.81234],
                          "label": ["PNEUMONIA"], "validity": ["accept"], "model_version": ["1.0"],
                          "origin": ["app"], "labs": [{"wbc": 7}]})
    out = sup.history_frame(frame)
    assert out.loc[0, "Image"] == "ab" * 6 and out.loc[0, "P(pneumonia)"] == 0.812
    assert "labs" not in out.columns
    assert sup.history_frame(pd.DataFrame()).empty


# --- the report ------------------------------------------------------------------------

def _Result() -> Result:
    return Result(probability=0.83, label="PNEUMONIA", threshold=0.42, band="caution",
                  modalities={"image": True, "labs": True},
                  modality_contribution={"image": 0.41, "labs": 0.06}, validity="warn",
                  warnings=["unusual <b>aspect</b> ratio"],
                  model={"name": "pneumo-fusion", "version": "1.2.0", "weights_sha256": "f" * 64},
                  image_digest="a" * 64, intended_use="within",
                  intended_use_reason="the film looks like a child's frontal film", baseline=0.36,
                  uncertainty={"members": [0.8, 0.83, 0.86], "spread": 0.06, "agree": True,
                               "words": "the 3 members of the ensemble agree"})


@dataclass
class _Explanation:
    result: _Result = field(default_factory=_Result)
    shap_values: dict = field(default_factory=lambda: {"wbc": 0.05, "sodium": -0.01})
    shap_base: float = 0.3
    lab_display: list = field(default_factory=lambda: [
        {"key": "wbc", "name": "White blood cells", "value": 16.2, "unit": "10*3/uL", "ref_low": 4, "ref_high": 11,
         "imputed": False, "out_of_range": True},
        {"key": "sodium", "name": "Sodium <script>", "value": None, "unit": "meq/L", "ref_low": 135,
         "ref_high": 145, "imputed": True, "out_of_range": False}])
    contribution: dict = field(default_factory=lambda: {"image": 0.41, "labs": 0.06})


def test_case_report_is_self_contained_and_escaped():
    pixels = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(64, 48)
    over = np.zeros((64, 48, 3), np.uint8)
    html = render_case_report(_Explanation(), pixels, over, example_label=sup.SEMI_REAL_LABEL,
                              population="children aged 1-5, frontal (AP/PA) chest radiographs")
    assert html.startswith("<!doctype html>")
    assert html.count("data:image/png;base64,") == 2
    assert not re.search(r"""(src|href)=['"](?!data:)""", html), "no external assets"
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;aspect" in html
    for text in ("PNEUMONIA", "0.830", "0.420",
                 "With neither film nor labs the model starts at 0.36; the film takes it to 0.77 (+0.41); "
                 "the labs then take it to 0.83 (+0.06).", "children aged 1-5", "text burned into the film",
                 "WBC 16.2 10*3/uL", "+0.0500", "pneumo-fusion", "1.2.0", "f" * 64,
                 "not a diagnosis", "Semi-real example", "not given", "Within the intended use",
                 "PNEUMONIA when the calibrated probability is at least 0.42"):
        assert text in html, text


def test_case_report_without_image_or_labs():
    exp = _Explanation(shap_values={}, lab_display=[])
    html = render_case_report(exp)
    assert "data:image" not in html and "not a diagnosis" in html and "Semi-real" not in html


def test_model_description_names_an_ensemble_and_its_seeds():
    single = {"architecture": {"alpha": 0.35, "image_size": 224, "intensity": "equalize", "n_tests": 20}}
    text = mc.model_description(single)
    assert text.startswith("Intermediate fusion") and "histogram equalisation" in text and "ensemble" not in text
    ens = {"architecture": {**single["architecture"], "members": 3},
           "ensemble": {"members": [{"seed": 0}, {"seed": 1}, {"seed": 2}]}}
    text = mc.model_description(ens)
    assert "seed ensemble of 3" in text and "seeds 0, 1, 2" in text and "width 0.35" in text
    assert mc.model_description({}) == "Architecture not recorded in the bundle."


def test_weakest_changes_names_what_costs_more_than_the_margin():
    report = {"changes": {"as given": {"sensitivity": 0.91, "specificity": 0.96},
                          "wider framing": {"sensitivity": 0.74, "specificity": 0.98},
                          "noisier": {"sensitivity": 0.94, "specificity": 0.93}}}
    assert mc.weakest_changes(report) == ["wider framing: sensitivity 0.91 -> 0.74"]
    assert mc.weakest_changes(report, drop=0.02) == ["wider framing: sensitivity 0.91 -> 0.74",
                                                      "noisier: specificity 0.96 -> 0.93"]
    assert mc.weakest_changes(None) == [] and mc.weakest_changes({}) == []
    assert "wider framing: sensitivity 0.91 -> 0.74" in mc.limitations_text({"val_perturbations": report})
    assert mc.limitations_text({}) == mc.SEMI_REAL_LIMITATIONS + mc.LIMITATIONS


def test_a_real_pairs_bundle_is_not_called_semi_real():
    real = {"semi_real": False, "training_data": {"pairing": "real pairs: each patient's own film and labs"}}
    assert mc.provenance_text(real).startswith("The training cohort is made of **real pairs**: each patient's own") and "Kermany" not in mc.provenance_text(real)
    assert "Semi-real" not in mc.limitations_text({"semi_real": False})
    assert "Kermany" not in mc.performance_caption(9, {"semi_real": False}) and "Kermany" in mc.performance_caption(9, {})
    assert "records no intended use" in mc.intended_use_text({})[0] and "children" not in mc.intended_use_text({})[0]
    assert mc.provenance_text({"semi_real": True}) == mc.PROVENANCE == mc.provenance_text({})
    assert "Semi-real pairing" in mc.limitations_text({"semi_real": True})


def test_model_card_words_come_from_the_bundle():
    meta = {"threshold": 0.53, "intended_use": {"description": "children aged 1-5"},
            "views": {"fusion": {"threshold": 0.53, "temperature": 1.27}, "labs_only": {"threshold": 0.53, "temperature": 5.18}}}
    text = " ".join(mc.calibration_text(meta, {"calibration": {"fusion": {"val_ece_before": 0.05, "val_ece_after": 0.02}}}))
    assert "0.53" in text and "film + labs T = 1.270" in text and "labs only T = 5.180" in text
    assert "0.050 before, 0.020 after" in text
    assert "**children aged 1-5**" in mc.intended_use_text(meta)[0]


def test_versions_show_the_weights_digest_of_a_bundle():
    frame = mc.versions({"weights": {"model.weights.h5": "ab" * 32}})
    assert dict(zip(frame["Component"], frame["Version"]))["Model weights sha256"] == "ab" * 32


def test_performance_rows_give_each_view_with_its_interval():
    metrics = {"test": {"fusion": {"n": 10, "roc_auc": 0.9, "accuracy": 0.8, "threshold": 0.7},
                        "image_only": {"n": 10, "roc_auc": 0.85, "accuracy": 0.75, "threshold": 0.4}},
               "test_ci": {"image_only": {"roc_auc": {"low": 0.8, "high": 0.9}}}}
    rows = mc.performance_rows(metrics)
    assert [r["case holds"] for r in rows] == ["film + labs", "film only"]      # no labs-only figures: no row
    assert rows[1]["ROC AUC [95% CI]"] == "0.850 [0.800, 0.900]" and rows[0]["ROC AUC [95% CI]"] == "0.900"
    assert rows[1]["threshold"] == "0.400" and rows[0]["MCC"] == "—"
    assert mc.performance_rows({}) == []


def test_gate_description_reads_the_bundles_thresholds():
    ref = {"warn_at": 8.47, "refuse_at": 14.99, "n_train": 4348, "n_val": 514}
    old = mc.gate_description({"reference": ref})
    assert "8.5" in old and "15.0" in old and "4348" in old and "outside them" not in old
    new = mc.gate_description({"reference": dict(ref, residual_warn_at=1.345, residual_refuse_at=2.445)})
    assert "outside them" in new and "1.34" in new and "2.44" in new and "514" in new
    assert mc.gate_description({}) is None


def test_view_settings_name_each_view_or_fall_back_to_the_one_value():
    meta = {"temperature": 1.2, "views": {"fusion": {"threshold": 0.7, "temperature": 1.2},
                                          "image_only": {"threshold": 0.7, "temperature": 1.1}}}
    assert mc.view_settings(meta, "temperature") == {"film + labs": 1.2, "film only": 1.1}
    assert mc.view_settings({"temperature": 1.3}, "temperature") == {"film + labs": 1.3}
    assert mc.view_settings({}, "temperature") == {}


def test_ci_means_ci_true_not_just_set(monkeypatch):
    from tests.conftest import in_ci

    for value, expected in (("true", True), ("1", True), ("TRUE", True), ("false", False), ("0", False), ("", False)):
        monkeypatch.setenv("CI", value)
        assert in_ci() is expected, value
    monkeypatch.delenv("CI")
    assert in_ci() is False


def test_the_model_card_says_where_grad_cam_heat_lies():
    from pneumo.present import model_card as mc

    text = mc.limitations_text({})
    assert "Grad-CAM is not a lesion map" in text and "lung fields" in text and "central 16%" in text


def test_history_shows_the_origin_up_front():
    import pandas as pd

    from pneumo.present.app_support import history_frame

    raw = pd.DataFrame([{"time": "2026-01-01T09:30:12.345Z", "origin": "dicom-node", "probability": 0.7,
                         "threshold": 0.5, "label": "PNEUMONIA", "intended_use": "within", "warnings": []}])
    out = history_frame(raw)
    assert list(out.columns[:2]) == ["Time", "Origin"] and out["Origin"].iloc[0] == "dicom-node"
    assert out["Time"].iloc[0] == "2026-01-01 09:30 UTC"
