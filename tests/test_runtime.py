"""The exported LiteRT runtime: the same answers as the Keras path, verified like the weights,
a graceful Keras fallback for a bundle without it, and no TensorFlow in predict or batch."""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pneumo import config
from pneumo.errors import BundleError
from pneumo.inference.lite_runner import LiteRunner, load_runner
from pneumo.models.runtime import CAM_FILE, ENCODER_FILE, RUNTIME_KEY, equalize


@pytest.fixture(scope="module")
def exported(tiny_bundle, tmp_path_factory):
    from pneumo.models.runtime_export import export_runtime

    d = tmp_path_factory.mktemp("exported") / "bundle"
    shutil.copytree(tiny_bundle, d)
    export_runtime(d, log=lambda _: None)
    return d


def _films(n, s, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:s, 0:s] / s
    base = 0.4 + 0.3 * np.sin(5 * xx) * np.cos(3 * yy)
    return np.stack([np.clip(base + 0.1 * rng.normal(size=(s, s)), 0, 1) for _ in range(n)]
                    ).astype(np.float32)[..., None]


def test_numpy_equalize_is_the_layer_to_the_bit():
    from pneumo.models.network import HistogramEqualize

    x = _films(3, 48)
    x[1] = np.round(x[1] * 8) / 8          # many ties
    x[2] = 0.25                            # a constant film maps to 0
    want = np.asarray(HistogramEqualize()(x))
    got = equalize(x)
    assert got.dtype == np.float32 and np.array_equal(got, want)


def test_the_exported_runtime_answers_as_keras(exported):
    from pneumo.inference.runner import ModelRunner

    lite = load_runner(exported)
    assert isinstance(lite, LiteRunner)
    keras_runner = ModelRunner.load(exported)
    x = _films(5, lite.image_size)
    (e1, l1), (e2, l2) = lite.embed(x), keras_runner.embed(x)
    assert np.abs(e1 - e2).max() < 1e-4 and np.abs(l1 - l2).max() < 1e-4
    labs = np.tile(lite.background[:5], (2, 1))
    present = np.array([1, 0] * 5, np.float32)
    ee, ll = np.repeat(e2, 2, 0), np.repeat(l2, 2, 0)
    np.testing.assert_allclose(lite.head(ee, ll, present, labs), keras_runner.head(ee, ll, present, labs), atol=1e-5)
    np.testing.assert_allclose(lite.member_probabilities(ee, ll, present, labs),
                               keras_runner.member_probabilities(ee, ll, present, labs), atol=1e-5)
    # Grad-CAM runs on the exported cam graph: Keras's gradients, and Keras never loaded
    assert lite.grad_cam_runtime == "litert"
    for row in (labs[:1], np.full_like(labs[:1], np.nan)):
        np.testing.assert_allclose(lite.grad_cam(x[0], row), keras_runner.grad_cam(x[0], row), atol=1e-5)
    assert lite._keras is None
    # the Bundle's predict_proba contract (what robustness scores with), film / labs / both, raw and calibrated
    bundle = keras_runner.bundle
    for images, values in ((x, None), (None, labs[:5]), (x, labs[:5])):
        for calibrated in (False, True):
            np.testing.assert_allclose(lite.predict_proba(images, values, n=5, calibrated=calibrated),
                                       bundle.predict_proba(images, values, n=5, calibrated=calibrated), atol=1e-5)
    assert lite.calibration_for("image_only") == bundle.calibration_for("image_only")


def test_a_tampered_export_is_refused_in_one_line(exported, tmp_path):
    d = tmp_path / "b"
    shutil.copytree(exported, d)
    data = bytearray((d / ENCODER_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / ENCODER_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{ENCODER_FILE} does not match its sha256") as err:
        load_runner(d)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit", ["absent", "stale"])
def test_a_bundle_without_a_usable_export_falls_back_to_keras(exported, tmp_path, caplog, edit):
    from pneumo.inference.runner import ModelRunner

    d = tmp_path / "b"
    shutil.copytree(exported, d)
    meta = json.loads((d / "bundle.json").read_text())
    if edit == "absent":
        del meta[RUNTIME_KEY]
    else:
        meta[RUNTIME_KEY]["from_weights"] = "0" * 64
    (d / "bundle.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="pneumo"):
        runner = load_runner(d)
    assert isinstance(runner, ModelRunner)
    assert len(caplog.records) == 1 and "Keras path" in caplog.records[0].getMessage()


def test_an_export_without_the_cam_graph_explains_through_keras(exported, tmp_path):
    """An export made before Grad-CAM was exported still scores on LiteRT; Grad-CAM loads Keras."""
    d = tmp_path / "b"
    shutil.copytree(exported, d)
    meta = json.loads((d / "bundle.json").read_text())
    del meta[RUNTIME_KEY]["cam"], meta["weights"][CAM_FILE]
    (d / "bundle.json").write_text(json.dumps(meta))
    (d / CAM_FILE).unlink()
    lite = load_runner(d)
    assert isinstance(lite, LiteRunner) and lite.grad_cam_runtime == "keras"
    x, row = _films(1, lite.image_size), np.full((1, len(lite.panel)), np.nan, np.float32)
    np.testing.assert_allclose(lite.grad_cam(x[0], row), load_runner(exported).grad_cam(x[0], row), atol=1e-5)
    assert lite._keras is not None


def _no_tensorflow_run(argv):
    """Run the CLI in-process in a fresh interpreter; fail if TensorFlow or Keras got imported."""
    code = ("import sys; from pneumo.cli.main import main; rc = main(sys.argv[1:]); "
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')); "
            "print('HEAVY', heavy[:3], file=sys.stderr); sys.exit(rc or (3 if heavy else 0))")
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300,
                          cwd=config.REPO_ROOT)


@pytest.mark.data
def test_predict_explain_and_batch_never_import_tensorflow(tmp_path, shipped_bundle):
    # a real film: the shipped gate refuses a made-up one before the model's answer is read
    film = tmp_path / "film.png"
    first = sorted((config.kermany_dir() / "test" / "NORMAL").glob("*.jpeg"))[0]
    Image.open(first).convert("L").resize((256, 256)).save(film)
    run = _no_tensorflow_run(["predict", "--image", str(film), "--json", "--no-log"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert 0 <= json.loads(run.stdout)["probability"] <= 1
    # asked for even if the film check finds it outside, so that Grad-CAM runs (on LiteRT)
    run = _no_tensorflow_run(["explain", "--image", str(film), "--no-log", "--allow-outside",
                              "--out", str(tmp_path / "why")])
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "why" / "overlay.png").is_file()
    (tmp_path / "m.csv").write_text("image_path,wbc\nfilm.png,14\nfilm.png,\n")
    run = _no_tensorflow_run(["batch", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out.csv"),
                              "--no-log", "--quiet"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "scored 2, errors 0" in run.stderr


def test_an_export_from_another_architecture_is_not_used(exported, tmp_path):
    """bundle.json edited to another network: the export is not trusted, and the Keras weights refuse."""
    d = tmp_path / "b"
    shutil.copytree(exported, d)
    meta = json.loads((d / "bundle.json").read_text())
    meta["architecture"]["head"]["fusion_units"] += 8
    (d / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="do not fit the architecture"):
        load_runner(d)
