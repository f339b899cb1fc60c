"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variants: ReLU6, no squeeze-excitation, fixed stem
and head) as a Keras functional model, and the loading of its ImageNet weights from the layout of
the PyTorch state dict (`_blocks.N._expand_conv.weight`, ...).

Layer names follow Keras' own applications where a reader looks for them: `out_relu` is the last
conv activation (the Grad-CAM target) and `block2_add` ends the stride-4 stage (the early embedding)."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from pneumo import config
from pneumo.errors import PneumoError

# (repeats, kernel, first stride, expansion, output channels) per stage: efficientnet_lite_builder.py, lite0
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280
BN_EPS = 1e-3
EARLY_LAYER = "block2_add"
LAST_CONV_LAYER = "out_relu"


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, act: bool = True):
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, momentum=0.99, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if act else x


def block_specs(stages=LITE0_STAGES) -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expansion, in channels, out channels) of every block, in order."""
    specs, channels = [], STEM
    for repeats, kernel, stride, expand, out in stages:
        for r in range(repeats):
            specs.append((kernel, stride if r == 0 else 1, expand, channels, out))
            channels = out
    return specs


def lite0_features(x, name_prefix: str = "") -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The convolutional trunk on x (N,H,W,3) scaled to [-1, 1]: stem, 16 blocks, head
    -> (the early layer's output, out_relu)."""
    p, early = name_prefix, None
    x = _conv_bn(x, STEM, 3, 2, f"{p}stem")
    for i, (kernel, stride, expand, cin, cout) in enumerate(block_specs()):
        inputs = x
        if expand != 1:
            x = _conv_bn(x, cin * expand, 1, 1, f"{p}block{i}_expand")
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{p}block{i}_dw_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPS, momentum=0.99, name=f"{p}block{i}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{p}block{i}_dw_relu")(x)
        x = _conv_bn(x, cout, 1, 1, f"{p}block{i}_project", act=False)
        if stride == 1 and cin == cout:
            x = layers.Add(name=f"{p}block{i}_add")([inputs, x])
            early = x if f"block{i}_add" == EARLY_LAYER else early
    x = layers.Conv2D(HEAD, 1, padding="same", use_bias=False, name=f"{p}head_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPS, momentum=0.99, name=f"{p}head_bn")(x)
    return early, layers.ReLU(6.0, name=f"{p}{LAST_CONV_LAYER}")(x)


def build_lite0_classifier(size: int | None = 224) -> keras.Model:
    """The ImageNet classifier as published: RGB in [-1, 1] -> 1000 logits (for checking a conversion)."""
    rgb = keras.Input((size, size, 3), name="rgb_pm1")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(lite0_features(rgb)[1])
    return keras.Model(rgb, layers.Dense(1000, name="predictions")(x), name="efficientnet_lite0")


def load_start(model: keras.Model, start_file=None) -> int:
    """Copy the converted ImageNet start (`python -m pneumo import-start efficientnet-lite0`) into
    the trunk layers of `model` by name; the classifier's top is not copied. Returns layers copied."""
    path = Path(start_file) if start_file else config.starts_dir() / "efficientnet-lite0.weights.h5"
    if not path.is_file():
        raise PneumoError(f"no ImageNet start at {path}: run `python -m pneumo import-start efficientnet-lite0`")
    source = build_lite0_classifier(None)
    source.load_weights(str(path))
    copied = 0
    for layer in model.layers:
        if layer.weights and layer.name != "predictions":
            try:
                layer.set_weights(source.get_layer(layer.name).get_weights())
            except ValueError:
                continue       # a layer of the model that the trunk does not have (a head, a classifier)
            copied += 1
    if copied != sum(1 for layer in source.layers if layer.weights) - 1:
        raise PneumoError(f"the start filled {copied} layers of {model.name}: not an EfficientNet-Lite0 trunk")
    return copied


def _torch_name(keras_layer: str) -> tuple[str, str]:
    """Keras layer name -> (state-dict prefix, kind) for the layers that hold weights."""
    if keras_layer.startswith("stem_"):
        return ("_conv_stem", "conv") if keras_layer.endswith("conv") else ("_bn0", "bn")
    if keras_layer.startswith("head_"):
        return ("_conv_head", "conv") if keras_layer.endswith("conv") else ("_bn1", "bn")
    if keras_layer == "predictions":
        return "_fc", "dense"
    block, part = keras_layer.split("_", 1)
    i = int(block[len("block"):])
    torch_part = {"expand_conv": ("_expand_conv", "conv"), "expand_bn": ("_bn0", "bn"),
                  "dw_conv": ("_depthwise_conv", "dwconv"), "dw_bn": ("_bn1", "bn"),
                  "project_conv": ("_project_conv", "conv"), "project_bn": ("_bn2", "bn")}[part]
    return f"_blocks.{i}.{torch_part[0]}", torch_part[1]


def keras_weights(kind: str, state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    """The state dict's arrays for one layer, in Keras' layout and order."""
    if kind == "conv":       # torch (out, in, kh, kw) -> keras (kh, kw, in, out)
        return [state[f"{prefix}.weight"].transpose(2, 3, 1, 0)]
    if kind == "dwconv":     # torch (channels, 1, kh, kw) -> keras (kh, kw, channels, 1)
        return [state[f"{prefix}.weight"].transpose(2, 3, 0, 1)]
    if kind == "bn":
        return [state[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
    return [state[f"{prefix}.weight"].T, state[f"{prefix}.bias"]]   # dense


def load_state_dict(model: keras.Model, state: dict[str, np.ndarray], name_prefix: str = "",
                    with_top: bool = True) -> int:
    """Copy an EfficientNet-Lite0 state dict into the layers lite0_features built (and `predictions`
    when with_top). Every weight layer must find its arrays; returns the number of arrays copied."""
    copied = 0
    for layer in model.layers:
        name = layer.name[len(name_prefix):] if layer.name.startswith(name_prefix) else None
        if name is None or not layer.weights or (name == "predictions" and not with_top):
            continue
        if not (name.startswith(("stem_", "head_", "block")) or name == "predictions"):
            continue
        prefix, kind = _torch_name(name)
        arrays = keras_weights(kind, state, prefix)
        layer.set_weights([a.astype("float32") for a in arrays])
        copied += len(arrays)
    return copied
