"""The benchmark runs end to end on the tiny bundle and writes the JSON the README's table is made from."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pneumo.cli import bench as bench_cli
from pneumo.errors import PneumoError
from pneumo.qa import bench, bench_report


@pytest.fixture
def fast_shap(monkeypatch):
    """SHAP's first call JIT-compiles numba code for tens of seconds: stand in a one-call fake."""
    def fake(f, x, background=None, **kw):
        return np.zeros(len(x)), float(f(np.asarray(x, np.float32)[None])[0])
    monkeypatch.setattr("pneumo.explain.attribution.lab_shap", fake)


@pytest.mark.slow
def test_tiny_bench_writes_expected_keys(tiny_bundle, tmp_path, fast_shap, capsys):
    out = tmp_path / "bench.json"
    assert bench_cli.main(["--model", str(tiny_bundle), "--n", "3", "--parts", "case,hostile", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["schema"] == "pneumo.bench/1"
    assert {"model", "machine", "targets", "reference", "parts", "data"} <= set(report)
    assert report["model"]["shipped"] is False and report["data"]["n"] == 3
    case = report["parts"]["case"]
    for step in ("decode", "preprocess", "decode_preprocess", "predict", "embed", "contribution", "gradcam_model",
                 "gradcam", "predict_gradcam_contribution", "shap", "explain"):
        assert set(case[step]) == {"p50", "p95", "mean", "n"} and case[step]["n"] == 3, step
        assert case[step]["p50"] > 0, step
    ratios = case["ratios"]
    assert {"predict_many_vs_predict", "head_tf_function_vs_keras_predict",
            "embed_tf_function_vs_keras_predict"} <= set(ratios)
    assert all(r["speedup"] > 0 for r in ratios.values())
    hostile = report["parts"]["hostile"]["summary"]
    assert set(hostile) == {"image", "labs", "manifest", "bundle"}
    assert all(row["crashed"] == 0 and row["escaped"] == 0 for row in hostile.values())
    table = capsys.readouterr().out
    assert "| predict, one case, p50" in table and "| hostile kind |" in table and "not measured by us" in table


def test_markdown_copes_with_missing_and_failed_parts():
    report = {"model": {"name": "m", "version": "1", "image_size": 64, "shipped": True},
              "machine": {"cpus": 2, "load_start": [0], "load_end": [0]},
              "parts": {"cold": {"error": "exit 1: boom"}, "grid": {"status": "not available"}}}
    text = bench_report.markdown(report)
    assert "exit 1: boom" in text and "grid status | not available" in text and "| - |" in text


def test_bad_arguments_are_typed_errors(tiny_bundle, tmp_path):
    with pytest.raises(PneumoError, match="unknown bench part"):
        bench_cli.main(["--model", str(tiny_bundle), "--parts", "case,warp"])
    with pytest.raises(PneumoError, match="no model bundle"):
        bench_cli.main(["--model", str(tmp_path), "--parts", "case"])


def test_sample_images_falls_back_to_synthetic(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMO_DATA_DIR", str(tmp_path / "nothing"))
    images, source = bench.sample_images(4, tmp_path / "img")
    assert source.startswith("synthetic") and len(images) == 4 and all(p.is_file() for p, _ in images)


def test_guards_part_measures_what_the_tests_no_longer_time(tmp_path, tiny_bundle, capsys):
    """The wall-clock bounds the tests dropped (auth, hostile images, image and labs fuzz) are in the bench JSON."""
    out = tmp_path / "bench.json"
    assert bench_cli.main(["--model", str(tiny_bundle), "--parts", "guards", "--out", str(out)]) == 0
    guards = json.loads(out.read_text())["parts"]["guards"]
    assert set(guards) == {"auth", "image_refusal", "image_fuzz", "labs_fuzz"}
    assert guards["auth"]["known_s"] > 0 and guards["auth"]["unknown_s"] > 0 and guards["auth"]["ratio"] > 0
    assert guards["image_refusal"]["n"] >= 10 and guards["image_refusal"]["accepted"] == []
    assert guards["image_fuzz"]["n"] == 200 and 0 < guards["image_fuzz"]["max_s"]
    assert guards["labs_fuzz"]["n"] == 300 and guards["labs_fuzz"]["seconds"] > 0
    assert "guards" in bench.DEFAULT_PARTS.split(",")
    table = capsys.readouterr().out
    for row in ("sign-in: wrong password", "slowest hostile image refusal", "slowest image fuzz input",
                "labs fuzz, all inputs"):
        assert row in table and f"| {row}" in table, row
