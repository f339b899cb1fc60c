"""Export a bundle's inference graph to LiteRT (pneumo.models.runtime): the image encoder without
its equalising step, the head with each member's softmax beside the mean, and Grad-CAM's map.

Run by `python -m pneumo export-runtime` for a bundle made before the runtime existed, and by
`train` / `ensemble` at the end. Each export is checked against the Keras model on probe
inputs before it is recorded, so a bundle never carries a graph that answers differently."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from pneumo.errors import BundleError  # noqa: E402
from pneumo.models.bundle import WEIGHTS_FILE, load_bundle, update_meta  # noqa: E402
from pneumo.models.film_trunk import TOLERANCE as TRUNK_TOLERANCE, shared_trunk  # noqa: E402
from pneumo.models.grad_cam import conv_models as backbone_conv_models, grad_cam_function  # noqa: E402
from pneumo.models.network import DEFAULT_BACKBONE, build_ensemble_parts, build_image_encoder  # noqa: E402
from pneumo.models.runtime import (CAM_FILE, CAM_INPUTS, ENCODER_FILE, ENCODER_OUTPUTS, FORMAT, HEAD_FILE,  # noqa: E402
                                   ENCODER_TRUNK, HEAD_INPUTS, HEAD_OUTPUTS, RUNTIME_KEY, TRUNK_WIDTH, LiteGraph,
                                   architecture_digest, equalize, normalise_cam)

TOLERANCE = 1e-4
"""The most a probe's probability may differ from the Keras model's."""
CAM_TOLERANCE = 1e-3
"""The most a probe's Grad-CAM heat (in [0, 1]) may differ from the Keras path's."""


def export_runtime(bundle_dir, log=print) -> dict:
    """Write encoder.tflite and head.tflite into the bundle, check them, record them in
    bundle.json; returns bundle.json["runtime"]. BundleError when the export disagrees."""
    from ai_edge_litert.interpreter import Interpreter   # the runtime itself, to check the export

    bundle = load_bundle(bundle_dir)
    d = Path(bundle.path)
    encoder, head = _plain_encoder(bundle), bundle.fusion_head
    s, n = bundle.image_size, len(bundle.panel)
    early_dim, late_dim = (int(t.shape[-1]) for t in encoder.outputs)
    members = head.get_layer("probs").input if "probs" in [layer.name for layer in head.layers] else None
    members = list(members) if isinstance(members, (list, tuple)) else None
    with_members = keras.Model(head.inputs, [head.output, *(members or [])])

    conv_models = backbone_conv_models(encoder)
    trunk = shared_trunk(encoder, s)    # the film check's trunk, where the encoder's stem still is it

    @tf.function(input_signature=[tf.TensorSpec((None, s, s, 1), tf.float32, name="image")])
    def encode(image):
        outs = [m(image, training=False) for m in conv_models]     # per member: conv, early, late
        early, late, convs = (tf.concat([o[i] for o in outs], axis=-1) for i in (1, 2, 0))
        return {"early": early, "late": late, "convs": convs,
                **({ENCODER_TRUNK: trunk(image, training=False)} if trunk is not None else {})}

    @tf.function(input_signature=[tf.TensorSpec((None, dim), tf.float32, name=name) for name, dim in
                                  zip(HEAD_INPUTS, (early_dim, late_dim, 1, n, n))])
    def fuse(early, late, present, labs, missing):
        outs = with_members([early, late, present, labs, missing], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return {"probs": outs[0], "members": tf.stack(outs[1:] if members else outs[:1], axis=0)}

    cam = _cam_function(head, int(conv_models[0].outputs[0].shape[1]), early_dim, late_dim, n)
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        files = {}
        for name, fn in ((ENCODER_FILE, encode), (HEAD_FILE, fuse), (CAM_FILE, cam)):
            with _builtin_gradients():      # traced here: the cam's gradient in LiteRT's own kernels
                concrete = fn.get_concrete_function()
            converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]   # no TF kernels at run time
            files[name] = Path(tmp) / name
            files[name].write_bytes(converter.convert())
        enc_out = _output_names(Interpreter(model_path=str(files[ENCODER_FILE])),
                                {"early": (2, early_dim), "late": (2, late_dim), "convs": (4, late_dim),
                                 **({ENCODER_TRUNK: (2, TRUNK_WIDTH)} if trunk is not None else {})})
        head_out = _output_names(Interpreter(model_path=str(files[HEAD_FILE])), {"probs": (2, 2), "members": (3, 2)})
        cam_out = _output_names(Interpreter(model_path=str(files[CAM_FILE])), {"cam": (3, None)})
        worst = _check(bundle, files, enc_out, head_out, Interpreter)
        if not worst <= TOLERANCE:
            raise BundleError(f"the exported runtime differs from the Keras model by {worst:.2g} "
                              f"on probe cases (allowed {TOLERANCE:g}); not written")
        worst_cam = _check_cam(bundle, files, enc_out, cam_out, Interpreter)
        if not worst_cam <= CAM_TOLERANCE:
            raise BundleError(f"the exported Grad-CAM differs from the Keras model's by {worst_cam:.2g} "
                              f"on probe films (allowed {CAM_TOLERANCE:g}); not written")
        worst_trunk = _check_trunk(trunk, files, enc_out, s, Interpreter) if trunk is not None else None
        if worst_trunk is not None and not worst_trunk <= TRUNK_TOLERANCE:
            raise BundleError(f"the encoder's film-trunk output differs from Keras by {worst_trunk:.2g} "
                              f"(allowed {TRUNK_TOLERANCE:g}); not written")
        for name, path in files.items():
            os.replace(path, d / name)
    info = {"format": FORMAT, "encoder": ENCODER_FILE, "head": HEAD_FILE, "cam": CAM_FILE,
            "cam_outputs": cam_out, "cam_probe_max_abs_diff": float(worst_cam),
            "equalize": bundle.meta["architecture"].get("intensity", "none") == "equalize",
            "encoder_outputs": enc_out, "head_outputs": head_out, "members": len(members or [None]),
            "trunk_in_encoder": trunk is not None,
            **({"trunk_probe_max_abs_diff": worst_trunk} if trunk is not None else {}),
            "early_dim": early_dim, "late_dim": late_dim, "probe_max_abs_diff": float(worst),
            "encoder_macs_per_film": macs_per_film(encoder),
            "from_weights": bundle.meta["weights"][WEIGHTS_FILE],
            "architecture_sha256": architecture_digest(bundle.meta),
            "exported_with": f"tensorflow {tf.__version__}"}
    update_meta(d, verified_file=ENCODER_FILE)
    update_meta(d, verified_file=CAM_FILE)
    update_meta(d, verified_file=HEAD_FILE, **{RUNTIME_KEY: info})
    log(f"exported the LiteRT runtime of {d.name}: {ENCODER_FILE} + {HEAD_FILE} + {CAM_FILE} "
        f"(probe max |diff| {worst:.1e}, Grad-CAM {worst_cam:.1e})")
    return info


def _cam_function(head: keras.Model, side: int, early_dim: int, late_dim: int, n: int):
    """Grad-CAM of the pneumonia log-odds for one film from the encoder's outputs, as the Keras
    runner computes it. The late embedding is the global average of the last conv maps and nothing
    else reads those maps, so d score / d map = (d score / d late) / (h * w) at every position: the
    head's gradient alone (no backbone backward pass) gives each map's Grad-CAM weight."""
    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=name) for name, shape in
                                  zip(CAM_INPUTS, ((1, side, side, late_dim), (1, early_dim), (1, late_dim),
                                                   (1, 1), (1, n), (1, n)))])
    def cam(convs, early, late, present, labs, missing):
        with tf.GradientTape() as tape:
            tape.watch(late)
            probs = head([early, late, present, labs, missing], training=False)
            score = tf.math.log(probs[:, 1] + 1e-7) - tf.math.log(probs[:, 0] + 1e-7)
        weights = tape.gradient(score, late) / float(side * side)
        return {"cam": tf.reduce_sum(convs * weights[:, None, None, :], axis=-1)}

    return cam


def _relu_grad(op, grad):
    return grad * tf.cast(op.outputs[0] > 0, grad.dtype)


def _strided_slice_grad(op, grad):
    """The slice's gradient as a scatter of the slice of an index grid (static shapes: the export
    fixes the batch), where TensorFlow's own uses StridedSliceGrad, which LiteRT has no kernel for."""
    shape = op.inputs[0].shape.as_list()
    n = int(np.prod(shape))
    attrs = {k: op.get_attr(k) for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    picked = tf.strided_slice(tf.reshape(tf.range(n), shape), *op.inputs[1:4], **attrs)
    flat = tf.scatter_nd(tf.reshape(picked, (-1, 1)), tf.reshape(grad, (-1,)), (n,))
    return tf.reshape(flat, shape), None, None, None


@contextlib.contextmanager
def _builtin_gradients():
    """Relu's and StridedSlice's gradients in ops LiteRT has builtin kernels for, while a graph is
    traced (ReluGrad and StridedSliceGrad are TF-only kernels). TensorFlow offers no public way to
    swap a registered gradient for a tape (gradient_override_map is graph-mode only), so this swaps
    the registry's entries and puts them back."""
    from tensorflow.python.framework import ops as tf_ops

    registry = tf_ops._gradient_registry._registry
    saved = {op: registry[op] for op in ("Relu", "StridedSlice")}
    registry["Relu"] = dict(saved["Relu"], type=_relu_grad)
    registry["StridedSlice"] = dict(saved["StridedSlice"], type=_strided_slice_grad)
    try:
        yield
    finally:
        registry.update(saved)


def _plain_encoder(bundle) -> keras.Model:
    """The bundle's image encoder with the same weights and no equalising layer (done in numpy)."""
    arch = bundle.meta["architecture"]
    size, alpha, k = int(arch["image_size"]), float(arch["alpha"]), int(arch.get("members", 1))
    trunk = str(arch.get("backbone", DEFAULT_BACKBONE))
    if k > 1:
        plain, _ = build_ensemble_parts(size, int(arch["n_tests"]), alpha, "none", k, backbone=trunk,
                                        **dict(arch["head"]))
    else:
        plain = build_image_encoder(size, alpha, None, "none", backbone=trunk)
    weights = bundle.image_encoder.get_weights()
    if len(weights) != len(plain.weights):
        raise BundleError("the bundle's image encoder does not match its architecture")
    plain.set_weights(weights)   # the equalising layer has no weights: the order is unchanged
    return plain


def macs_per_film(model: keras.Model) -> int:
    """Multiply-accumulates one film costs in the model's convolutions and dense layers (every
    member): the work no runtime can skip, for the benchmark's physical limit."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += macs_per_film(layer)
            continue
        out = getattr(layer, "output", None)
        if out is None or not hasattr(layer, "kernel"):
            continue
        spatial = int(np.prod(out.shape[1:-1])) if len(out.shape) > 2 else 1
        kernel = tuple(int(k) for k in layer.kernel.shape)
        if isinstance(layer, keras.layers.DepthwiseConv2D):   # (kh, kw, C, multiplier): one filter per channel
            total += spatial * int(np.prod(kernel))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            total += spatial * int(np.prod(kernel))           # (kh, kw, Cin, Cout) or (in, out)
    return total


def _output_names(interpreter, wanted: dict) -> dict:
    """{our output name: LiteRT tensor name}, told apart by (rank, last dimension or None: any)."""
    found = {}
    for det in interpreter.get_output_details():
        shape = list(det["shape_signature"])
        for key, (rank, last) in wanted.items():
            if len(shape) == rank and last in (None, shape[-1]):
                found[key] = det["name"]
    if sorted(found) != sorted(wanted):
        raise BundleError(f"the exported graph's outputs are not {sorted(wanted)}")
    return found


def _check(bundle, files: dict, enc_out: dict, head_out: dict, interpreter_cls) -> float:
    """The largest |P(pneumonia)| difference between the export and the Keras model on probes:
    two made-up films and noise, each with no labs, training lab panels, and no film at all."""
    s, n = bundle.image_size, len(bundle.panel)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:s, 0:s] / s
    films = np.stack([0.3 + 0.4 * np.exp(-((xx - 0.5) / 0.15) ** 2) + 0.1 * yy, xx * yy,
                      rng.uniform(0, 1, (s, s))]).astype(np.float32)[..., None]
    labs = np.full((len(films), n), np.nan)
    labs[1] = [t.impute_value() for t in bundle.panel]
    labs[2, ::2] = labs[1, ::2]
    z, missing = bundle.lab_inputs(labs)
    worst = 0.0
    for present in (1.0, 0.0):
        p = np.full((len(films), 1), present, np.float32)
        keras_p = np.asarray(bundle.model({"image": films * present, "image_present": p, "labs": z,
                                           "lab_missing": missing}, training=False))[:, 1]
        enc = LiteGraph(files[ENCODER_FILE], enc_out, 1, interpreter_cls)
        head = LiteGraph(files[HEAD_FILE], head_out, 1, interpreter_cls)
        x = films * present
        x = equalize(x) if bundle.meta["architecture"].get("intensity", "none") == "equalize" else x
        e, l = (enc.run({"image": x}, ENCODER_OUTPUTS)[k] for k in ENCODER_OUTPUTS)
        out = head.run(dict(zip(HEAD_INPUTS, (e * p, l * p, p, z, missing))))
        worst = max(worst, float(np.abs(out[HEAD_OUTPUTS[0]][:, 1] - keras_p).max()),
                    float(np.abs(out[HEAD_OUTPUTS[1]].mean(axis=0)[:, 1] - keras_p).max()))
    return worst


def _check_trunk(trunk, files: dict, enc_out: dict, size: int, interpreter_cls) -> float:
    """The largest difference between the encoder's exported film-trunk output and Keras's, on probes."""
    probe = equalize(np.clip(np.random.default_rng(3).normal(0.5, 0.2, (3, size, size, 1)), 0, 1).astype(np.float32))
    got = LiteGraph(files[ENCODER_FILE], enc_out, 1, interpreter_cls).run({"image": probe})[ENCODER_TRUNK]
    return float(np.max(np.abs(got - np.asarray(trunk(probe, training=False)))))


def _check_cam(bundle, files: dict, enc_out: dict, cam_out: dict, interpreter_cls) -> float:
    """The largest heat difference between the exported Grad-CAM and the Keras runner's, on a
    made-up film and noise, each without labs and with a training panel."""
    s, n = bundle.image_size, len(bundle.panel)
    reference = grad_cam_function(bundle.image_encoder, bundle.fusion_head, s, n)   # Keras, with its gradients
    enc = LiteGraph(files[ENCODER_FILE], enc_out, 1, interpreter_cls)
    graph = LiteGraph(files[CAM_FILE], cam_out, 1, interpreter_cls)
    eq = bundle.meta["architecture"].get("intensity", "none") == "equalize"
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:s, 0:s] / s
    films = [(0.3 + 0.4 * np.exp(-((xx - 0.3) / 0.2) ** 2) + 0.2 * yy).astype(np.float32)[..., None],
             rng.uniform(0, 1, (s, s, 1)).astype(np.float32)]
    panels = [np.full((1, n), np.nan, np.float32), np.array([[t.impute_value() for t in bundle.panel]], np.float32)]
    worst = 0.0
    for film in films:
        out = enc.run({"image": equalize(film[None]) if eq else film[None]})
        for labs in panels:
            z, missing = bundle.lab_inputs(labs)
            feeds = (out["convs"], out["early"], out["late"], np.ones((1, 1), np.float32), z, missing)
            raw = graph.run(dict(zip(CAM_INPUTS, feeds)))["cam"]
            want = reference(film[None], np.ones((1, 1), np.float32), z, missing).numpy()
            worst = max(worst, float(np.abs(normalise_cam(raw) - want).max()))
    return worst
