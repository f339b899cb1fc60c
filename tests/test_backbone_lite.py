"""The EfficientNet-Lite0 trunk through the whole chain: an encoder from the ImageNet start (frozen
stem), a bundle trained on it through the CLI, that bundle rebuilt from bundle.json, exported to
LiteRT, and scored by `predict` with the same answer as the Keras model."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pneumo.models import efficientnet_lite as lite
from pneumo.models.network import build_image_encoder, freeze_layers_before

SIZE = 64


@pytest.fixture(scope="module")
def start_backbone(tmp_path_factory):
    """A saved 'backbone' that is the ImageNet start itself, with the sidecar pretrain writes."""
    folder = tmp_path_factory.mktemp("lite")
    encoder = build_image_encoder(SIZE, weights="imagenet", intensity="equalize", backbone="efficientnet-lite0")
    path = folder / "lite.weights.h5"
    encoder.save_weights(str(path))
    (folder / "lite.json").write_text(json.dumps({"backbone": "efficientnet-lite0", "size": SIZE, "alpha": 0.35,
                                                  "intensity": "equalize", "init": "imagenet"}))
    return path, encoder


def test_the_encoder_starts_from_the_converted_imagenet_weights(start_backbone):
    _, encoder = start_backbone
    source = lite.build_lite0_classifier(None)
    source.load_weights(str(lite_start()))
    for name in ("stem_conv", "block7_dw_conv", "head_bn"):
        for a, b in zip(encoder.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    early, late = encoder.outputs
    assert early.shape[-1] == 24 and late.shape[-1] == lite.HEAD


def test_freezing_stops_at_the_named_layer():
    encoder = build_image_encoder(SIZE, backbone="efficientnet-lite0")
    frozen = freeze_layers_before(encoder, "block5_expand_conv")
    names = [layer.name for layer in encoder.layers if layer.weights and not layer.trainable]
    assert frozen == len(names) and "stem_conv" in names and "block4_project_bn" in names
    assert encoder.get_layer("block5_expand_conv").trainable and encoder.get_layer("head_conv").trainable
    with pytest.raises(ValueError, match="no layer 'block99'"):
        freeze_layers_before(encoder, "block99")


def lite_start():
    from pneumo import config
    return config.starts_dir() / "efficientnet-lite0.weights.h5"


@pytest.mark.slow
def test_a_bundle_on_the_lite_trunk_trains_exports_and_scores_alike(start_backbone, tmp_path):
    path, _ = start_backbone
    out = tmp_path / "bundle"
    run = lambda *args: subprocess.run([sys.executable, "-m", "pneumo", *args], capture_output=True, text=True,
                                       timeout=900)
    done = run("train", "--cohort", "synthetic", "--out", str(out), "--image-size", str(SIZE), "--backbone", str(path),
               "--epochs", "2", "--bootstrap", "20")
    assert done.returncode == 0, done.stderr[-3000:]
    arch = json.loads((out / "bundle.json").read_text())["architecture"]
    assert arch["backbone"] == "efficientnet-lite0" and arch["early_layer"] == lite.EARLY_LAYER
    done = run("export-runtime", "--model", str(out))
    assert done.returncode == 0, done.stderr[-3000:]

    from pneumo.inference.lite_runner import LiteRunner, load_runner
    from pneumo.inference.runner import ModelRunner
    lite_runner, keras_runner = load_runner(out), ModelRunner.load(out)
    assert isinstance(lite_runner, LiteRunner)
    x = np.random.default_rng(1).random((3, SIZE, SIZE, 1)).astype("float32")
    (e1, l1), (e2, l2) = lite_runner.embed(x), keras_runner.embed(x)
    assert np.abs(e1 - e2).max() < 1e-4 and np.abs(l1 - l2).max() < 1e-4 * max(1.0, np.abs(l2).max())
    np.testing.assert_allclose(lite_runner.grad_cam(x[0], np.full((1, len(lite_runner.background[0])), np.nan)),
                               keras_runner.grad_cam(x[0], np.full((1, len(lite_runner.background[0])), np.nan)),
                               atol=1e-4)
    done = run("predict", "--image", str(_a_film(tmp_path)), "--model", str(out), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert 0 <= json.loads(done.stdout)["probability"] <= 1


def _a_film(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    film = tmp_path / "film.png"
    Image.fromarray((rng.random((200, 240)) * 255).astype("uint8")).save(film)
    return film
