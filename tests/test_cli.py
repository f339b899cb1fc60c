"""The command-line contracts (DESIGN.md): JSON shape, exit 2 with one line on bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumo import config

ROOT = Path(__file__).resolve().parent.parent
needs_model = pytest.mark.usefixtures("shipped_bundle")   # fails, never skips, without the committed bundle


def run_cli(*args, home):
    env = dict(os.environ, PNEUMO_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pneumo", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=180)


def assert_one_line_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]


def test_help_lists_every_subcommand(tmp_path):
    proc = run_cli("--help", home=tmp_path)
    assert proc.returncode == 0
    from pneumo.cli.main import COMMANDS
    assert {"predict", "explain", "batch", "history", "train", "experiment", "tables", "bench"} <= set(COMMANDS)
    listed = " ".join(proc.stdout.split())          # argparse wraps long help lines
    for name, (target, text) in COMMANDS.items():
        assert name in listed and text in listed, name
        module, _, function = target.partition(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function)), target


def test_missing_file_and_no_inputs(tmp_path):
    assert_one_line_error(run_cli("predict", "--image", tmp_path / "nope.png", home=tmp_path),
                          "no such file")
    assert_one_line_error(run_cli("predict", home=tmp_path), "--image")


@needs_model
def test_bad_inputs_exit_2_with_one_line(tmp_path):
    fake = tmp_path / "film.png"
    fake.write_bytes(b"this is not an image at all" * 10)
    assert_one_line_error(run_cli("predict", "--image", fake, "--json", home=tmp_path))
    labs = tmp_path / "labs.csv"
    labs.write_text("glucose,sodium\nabc,9999\n")
    proc = run_cli("predict", "--labs", labs, "--json", home=tmp_path)
    assert_one_line_error(proc, "glucose", "sodium")
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((300, 300, 3)) * 255).astype(np.uint8)).save(photo)
    assert_one_line_error(run_cli("predict", "--image", photo, home=tmp_path), "refused")


@needs_model
@pytest.mark.data
def test_predict_json_contract_on_a_real_film(tmp_path):
    image = next((config.kermany_dir() / "test" / "PNEUMONIA").glob("*.jpeg"))
    labs = ROOT / "assets" / "example_labs_pneumonia.csv"
    proc = run_cli("predict", "--image", image, "--labs", labs, "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert 0.0 <= out["probability"] <= 1.0
    assert out["label"] in ("PNEUMONIA", "NORMAL")
    assert out["label"] == ("PNEUMONIA" if out["probability"] >= out["threshold"] else "NORMAL")
    assert set(out["modality_contribution"]) == {"image", "labs"}
    assert isinstance(out["warnings"], list)
    assert out["model"]["name"] and out["model"]["version"]
    history = run_cli("history", home=tmp_path)
    assert history.returncode == 0 and out["label"] in history.stdout
    assert image.name not in history.stdout


@needs_model
def test_dicom_identifiers_never_reach_the_output(tmp_path):
    from dicom_support import chest_pixels

    from pneumo.qa.hostile_bytes import dicom_bytes

    data = dicom_bytes(256, 256, pixels=(chest_pixels(256) * 4095).astype("uint16"), PatientName="DOE^JANE",
                       PatientID="MRN998877",
                       PatientBirthDate="19700101", AccessionNumber="ACC445566")
    path = tmp_path / "DOE_JANE.dcm"
    path.write_bytes(data)
    proc = run_cli("predict", "--image", path, "--json", home=tmp_path)
    history = run_cli("history", home=tmp_path)
    assert proc.returncode == 0 and history.returncode == 0, proc.stderr[-500:]
    result = json.loads(proc.stdout)
    # born 1970: the header's age puts the case outside the intended use, so no label is given
    assert result["intended_use"] == "outside" and result["label"] == "" and 0 <= result["probability"] <= 1
    everything = proc.stdout + proc.stderr + history.stdout + b"".join(
        p.read_bytes() for p in tmp_path.glob("cases.sqlite*")).decode("latin-1")
    for secret in ("DOE", "JANE", "MRN998877", "19700101", "ACC445566"):
        assert secret not in everything
