"""The film check's own view of a film: the first stages of the ImageNet EfficientNet-Lite0 start
(as converted by `python -m pneumo import-start`, never trained here), pooled three ways, exported
as one LiteRT graph into the bundle (pneumo.inference.film_features.FilmTrunk reads it; its layout: pneumo.models.runtime).

Why a network of its own: the pneumonia encoder learned what tells pneumonia from a normal child,
and an adult film of a source it never saw lies among the children in its embedding; generic
ImageNet textures and layout (block2 and block4 maps, before any pneumonia training) tell a
child's film from anything else far better (leaving every adult source out, docs/model-history.md).

  graph: equalised film (n, S, S, 1) in [0, 1] -> features (n, 1104) =
         block2_add on a 4x4 grid (384) | block4_add on a 4x4 grid (640) | block4_add mean and sd (80)
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from pneumo.errors import BundleError  # noqa: E402
from pneumo.models.bundle import update_meta  # noqa: E402
from pneumo.models.runtime import TRUNK_FILE, TRUNK_KINDS, TRUNK_OUTPUT, TRUNK_START, equalize  # noqa: E402

GRID = 4
TOLERANCE = 1e-3
"""The most an exported feature may differ from the Keras graph's (features of order 0.1-10)."""


def build_trunk(size: int) -> keras.Model:
    """The pooled trunk with the ImageNet start's weights: equalised (n, S, S, 1) -> (n, 1104)."""
    from pneumo.models.efficientnet_lite import load_start
    from pneumo.models.network import build_image_encoder

    encoder = build_image_encoder(size, intensity="none", backbone="efficientnet-lite0")
    load_start(encoder)
    return pooled_trunk(encoder)


def pooled_trunk(encoder: keras.Model) -> keras.Model:
    """An EfficientNet-Lite0 encoder's block2 and block4 maps pooled three ways: its input -> (n, 1104)."""
    b2, b4 = encoder.get_layer("block2_add").output, encoder.get_layer("block4_add").output
    grid2 = layers.Flatten()(layers.AveragePooling2D(int(b2.shape[1]) // GRID)(b2))
    grid4 = layers.Flatten()(layers.AveragePooling2D(int(b4.shape[1]) // GRID)(b4))
    mean = layers.GlobalAveragePooling2D()(b4)
    sd = layers.Lambda(lambda t: tf.sqrt(tf.maximum(tf.reduce_mean(tf.square(t[0]), axis=[1, 2])
                                                    - tf.square(t[1]), 0.0) + 1e-12))([b4, mean])
    out = layers.Concatenate(name=TRUNK_OUTPUT)([grid2, grid4, mean, sd])
    model = keras.Model(encoder.input, out, name="film_trunk")
    widths = {k: b - a for k, (a, b) in TRUNK_KINDS.items()}
    if int(out.shape[-1]) != max(b for _, b in TRUNK_KINDS.values()) or widths["trunk_stats"] != 2 * int(b4.shape[-1]):
        raise BundleError(f"the film trunk gives {out.shape[-1]} features, not the {sorted(widths.items())} expected")
    return model


def shared_trunk(encoder: keras.Model, size: int) -> keras.Model | None:
    """The film trunk read off a bundle's own (plain, one-member) encoder where its block2 and block4
    maps are still the ImageNet start's (a frozen stem: 2.0.0), so the film check costs no second
    network; None where the encoder has no such layers or they were trained."""
    names = {layer.name for layer in encoder.layers}
    if not {"block2_add", "block4_add"} <= names:
        return None
    mine, start = pooled_trunk(encoder), build_trunk(size)
    probe = equalize(np.clip(np.random.default_rng(2).normal(0.5, 0.2, (3, size, size, 1)), 0, 1).astype(np.float32))
    a, b = (np.asarray(m(probe, training=False)) for m in (mine, start))
    # the same weights give the same float32 sums: a trained stem moves them by far more than 1e-5
    return mine if float(np.max(np.abs(a - b))) <= 1e-5 * max(1.0, float(np.max(np.abs(b)))) else None


def export_trunk(bundle_dir, size: int, log=print) -> Path:
    """Write film_trunk.tflite into the bundle, checked against the Keras graph on probe films, and
    record it (digest verified on load, with the start it came from)."""
    from ai_edge_litert.interpreter import Interpreter

    model = build_trunk(size)

    @tf.function(input_signature=[tf.TensorSpec((None, size, size, 1), tf.float32, name="image")])
    def trunk(image):
        return {TRUNK_OUTPUT: model(image, training=False)}

    d = Path(bundle_dir)
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([trunk.get_concrete_function()], trunk)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        path = Path(tmp) / TRUNK_FILE
        path.write_bytes(converter.convert())
        rng = np.random.default_rng(0)
        probe = equalize(np.clip(rng.normal(0.5, 0.2, (3, size, size, 1)), 0, 1).astype(np.float32))
        it = Interpreter(model_path=str(path))
        it.resize_tensor_input(it.get_input_details()[0]["index"], probe.shape)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], probe)
        it.invoke()
        got = it.get_tensor(it.get_output_details()[0]["index"])
        worst = float(np.max(np.abs(got - model.predict(probe, verbose=0))))
        if not worst <= TOLERANCE:
            raise BundleError(f"the exported film trunk differs from Keras by {worst:.2g} (allowed {TOLERANCE:g})")
        os.replace(path, d / TRUNK_FILE)
    update_meta(d, verified_file=TRUNK_FILE)
    log(f"film trunk exported ({TRUNK_FILE}, probe max |diff| {worst:.1e}, start {TRUNK_START})")
    return d / TRUNK_FILE
