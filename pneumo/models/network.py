"""The intermediate-fusion network (paper section 2.3) as Keras models.

Two Keras models composed into one:
  image_encoder: image (S,S,1) in [0,1] -> img_early, img_late   (MobileNetV2 branch)
  fusion_head:   img_early, img_late, image_present, labs, lab_missing -> probs (2,)
so image embeddings can be cached (experiments, SHAP, what-if) and the head reused.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from pneumo.models import efficientnet_lite
from pneumo.models.features import Features

EARLY_LAYER = "block_2_add"     # end of the first residual bottleneck stage (stride 4)
LAST_CONV_LAYER = "out_relu"    # last conv activation: Grad-CAM target (the same name in every backbone)
# The film network's trunk -> its early layer (the stride-4 stage's end). "alpha" widens MobileNetV2 only.
BACKBONES = {"mobilenetv2": EARLY_LAYER, "efficientnet-lite0": efficientnet_lite.EARLY_LAYER}
DEFAULT_BACKBONE = "mobilenetv2"   # a bundle without architecture.backbone
INPUT_NAMES = ("image", "image_present", "labs", "lab_missing")
HEAD_INPUT_NAMES = ("img_early", "img_late", "image_present", "labs", "lab_missing")


def _set_seed(seed: int | None) -> None:
    if seed is not None:
        keras.utils.set_random_seed(int(seed))


# ----------------------------------------------------------------------------- image branch
INTENSITY_MODES = ("none", "equalize")
DEFAULT_INTENSITY = "equalize"   # for new training; a bundle without the key means "none"


@keras.saving.register_keras_serializable(package="pneumo")
class HistogramEqualize(layers.Layer):
    """Per-film histogram equalisation inside the graph: each pixel -> the share of the film's
    pixels at or below it, rescaled so the darkest value maps to 0 and the brightest to 1.

    Any monotone change of grey levels (exposure, window, detector gamma) leaves the output
    unchanged, so films from another machine or export look alike to the network; training and
    inference cannot disagree because it is part of the model. A constant image maps to 0."""

    def call(self, x):
        import tensorflow as tf  # the Keras backend here; sort + searchsorted are batched in TF
        shape = tf.shape(x)
        flat = tf.reshape(x, (shape[0], -1))
        rank = tf.cast(tf.searchsorted(tf.sort(flat, axis=-1), flat, side="right"), x.dtype)
        low = tf.reduce_min(rank, axis=-1, keepdims=True)
        n = tf.cast(tf.shape(flat)[1], x.dtype)
        return tf.reshape(tf.math.divide_no_nan(rank - low, n - low), shape)

    def compute_output_shape(self, input_shape):
        return input_shape


def build_image_encoder(size: int = 224, alpha: float = 0.35, weights: str | None = None,
                        intensity: str = "none", name: str = "image_encoder",
                        backbone: str = DEFAULT_BACKBONE, freeze_before: str | None = None) -> keras.Model:
    """image (S,S,1) float [0,1] -> (img_early, img_late), both global-average-pooled.

    weights: None (random), "imagenet" (MobileNetV2: needs internet once; EfficientNet-Lite0: the
    start converted by `python -m pneumo import-start`), or a path to a saved encoder `.weights.h5`.
    intensity: "none" or "equalize" (HistogramEqualize on the input; it has no weights, so
    the bundle's architecture must say which one its weights were trained with).
    freeze_before: a layer name; every weight layer before it is frozen (BatchNorm in inference mode)."""
    if intensity not in INTENSITY_MODES:
        raise ValueError(f"intensity must be one of {INTENSITY_MODES}, got {intensity!r}")
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(BACKBONES)}, got {backbone!r}")
    image = keras.Input((size, size, 1), name="image")
    x = HistogramEqualize(name="equalize")(image) if intensity == "equalize" else image
    rgb = layers.Concatenate(axis=-1, name="gray_to_rgb")([x, x, x])
    scaled = layers.Rescaling(2.0, offset=-1.0, name="to_pm1")(rgb)   # both trunks expect [-1, 1]
    imagenet = weights == "imagenet"
    if backbone == "mobilenetv2":
        base = keras.applications.MobileNetV2(input_tensor=scaled, alpha=alpha, include_top=False,
                                              weights="imagenet" if imagenet else None)
        early_out, late_out = base.get_layer(EARLY_LAYER).output, base.get_layer(LAST_CONV_LAYER).output
    else:
        early_out, late_out = efficientnet_lite.lite0_features(scaled)
    early = layers.GlobalAveragePooling2D(name="img_early")(early_out)
    late = layers.GlobalAveragePooling2D(name="img_late")(late_out)
    encoder = keras.Model(image, [early, late], name=name)
    if imagenet and backbone != "mobilenetv2":
        efficientnet_lite.load_start(encoder)
    elif weights not in (None, "imagenet", "none"):
        encoder.load_weights(str(weights))
    if freeze_before:
        freeze_layers_before(encoder, freeze_before)
    return encoder


def freeze_layers_before(encoder: keras.Model, name: str) -> int:
    """Freeze every layer that comes before `name` in the encoder's order; returns how many hold weights."""
    names = [layer.name for layer in encoder.layers]
    if name not in names:
        raise ValueError(f"no layer {name!r} in {encoder.name}")
    frozen = 0
    for layer in encoder.layers[:names.index(name)]:
        if layer.weights:
            layer.trainable = False
            frozen += 1
    return frozen


# ----------------------------------------------------------------------------- lab branch
@keras.saving.register_keras_serializable(package="pneumo")
class LabTokens(layers.Layer):
    """Per-test tokens: value * w_t + b_t + e_t, or a learned per-test missing token m_t + e_t."""

    def __init__(self, n_tests: int, d_model: int, **kw):
        super().__init__(**kw)
        self.n_tests, self.d_model = int(n_tests), int(d_model)

    def build(self, input_shape):
        shape = (self.n_tests, self.d_model)
        self.value_w = self.add_weight(name="value_w", shape=shape, initializer="glorot_uniform")
        self.value_b = self.add_weight(name="value_b", shape=shape, initializer="zeros")
        self.test_emb = self.add_weight(name="test_emb", shape=shape, initializer="glorot_uniform")
        self.missing_tok = self.add_weight(name="missing_tok", shape=shape, initializer="glorot_uniform")

    def call(self, inputs):
        labs, missing = inputs
        value_tok = labs[:, :, None] * self.value_w + self.value_b
        m = ops.broadcast_to(missing[:, :, None] > 0.5, ops.shape(value_tok))
        return ops.where(m, self.missing_tok, value_tok) + self.test_emb   # where: NaN-safe

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.n_tests, self.d_model)

    def get_config(self):
        return {**super().get_config(), "n_tests": self.n_tests, "d_model": self.d_model}


def _transformer_block(x, d_model: int, heads: int, dropout: float, i: int):
    att = layers.MultiHeadAttention(heads, key_dim=max(1, d_model // heads), dropout=dropout,
                                    name=f"lab_attention_{i}")(x, x)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"lab_norm_a_{i}")(layers.Add(name=f"lab_res_a_{i}")([x, att]))
    ff = layers.Dense(2 * d_model, activation="relu", name=f"lab_ff1_{i}")(x)
    ff = layers.Dense(d_model, name=f"lab_ff2_{i}")(layers.Dropout(dropout, name=f"lab_ff_drop_{i}")(ff))
    return layers.LayerNormalization(epsilon=1e-6, name=f"lab_norm_b_{i}")(layers.Add(name=f"lab_res_b_{i}")([x, ff]))


def build_fusion_head(n_tests: int, early_dim: int, late_dim: int, d_model: int = 32, heads: int = 4,
                      layers_n: int = 1, pooled_dim: int = 16, fusion_units: int = 64,
                      dropout: float = 0.3, attn_dropout: float = 0.1, name: str = "fusion_head") -> keras.Model:
    """(img_early, img_late, image_present, labs, lab_missing) -> probs (2,) softmax."""
    img_early = keras.Input((early_dim,), name="img_early")
    img_late = keras.Input((late_dim,), name="img_late")
    present = keras.Input((1,), name="image_present")
    labs = keras.Input((n_tests,), name="labs")
    missing = keras.Input((n_tests,), name="lab_missing")

    # lab branch: tests as tokens through a small transformer
    x = LabTokens(n_tests, d_model, name="lab_tokens")([labs, missing])
    for i in range(layers_n):
        x = _transformer_block(x, d_model, heads, attn_dropout, i)
    lab_tokens = layers.Flatten(name="lab_emb_tokens")(x)
    lab_pooled = layers.Dense(pooled_dim, activation="relu", name="lab_emb_pooled")(
        layers.GlobalAveragePooling1D(name="lab_pool")(x))

    # image branch: an absent image contributes zeros, and its absence is an input itself
    early = layers.Multiply(name="img_early_gated")([img_early, present])
    late = layers.Multiply(name="img_late_gated")([img_late, present])

    fused = layers.Concatenate(name="fusion_concat")([early, late, present, lab_tokens, lab_pooled])
    h = layers.Dense(fusion_units, activation="relu", name="fusion_dense")(fused)
    h = layers.Dropout(dropout, name="fusion_dropout")(h)
    probs = layers.Dense(2, activation="softmax", name="probs")(h)
    return keras.Model([img_early, img_late, present, labs, missing], probs, name=name)


def build_fusion_model(size: int = 224, n_tests: int = 20, alpha: float = 0.35,
                       weights: str | None = None, encoder: keras.Model | None = None, intensity: str = "none",
                       head: keras.Model | None = None, members: int = 1, backbone: str = DEFAULT_BACKBONE,
                       **head_kw) -> keras.Model:
    """image_encoder + fusion_head composed: inputs {image, image_present, labs, lab_missing}.
    members > 1: a seed ensemble of that many whole fusion models (build_ensemble_parts)."""
    if members > 1 and encoder is None and head is None:
        encoder, head = build_ensemble_parts(size, n_tests, alpha, intensity, members, backbone=backbone, **head_kw)
    encoder = encoder or build_image_encoder(size, alpha, weights, intensity, backbone=backbone)
    if head is None:
        e_dim, l_dim = (int(t.shape[-1]) for t in encoder.outputs)
        head = build_fusion_head(n_tests, e_dim, l_dim, **head_kw)
    size = int(encoder.inputs[0].shape[1])
    n_tests = int(head.get_layer("labs").output.shape[-1])
    inputs = {"image": keras.Input((size, size, 1), name="image"),
              "image_present": keras.Input((1,), name="image_present"),
              "labs": keras.Input((n_tests,), name="labs"),
              "lab_missing": keras.Input((n_tests,), name="lab_missing")}
    early, late = encoder(inputs["image"])
    probs = head([early, late, inputs["image_present"], inputs["labs"], inputs["lab_missing"]])
    return keras.Model(inputs, probs, name="pneumo_fusion")


# ----------------------------------------------------------------------------- seed ensemble
@keras.saving.register_keras_serializable(package="pneumo")
class LabRestandardise(layers.Layer):
    """Lab values standardised the ensemble's way -> standardised the way one member was trained:
    z * scale + offset per test. Fixed (non-trainable) weights, set when the ensemble is composed
    and saved with the weights, so members trained on differently paired panels agree exactly."""

    def __init__(self, n_tests: int, **kw):
        super().__init__(**kw)
        self.n_tests = int(n_tests)

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(self.n_tests,), initializer="ones", trainable=False)
        self.offset = self.add_weight(name="offset", shape=(self.n_tests,), initializer="zeros", trainable=False)

    def call(self, z):
        return z * self.scale + self.offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "n_tests": self.n_tests}


def member_name(kind: str, k: int) -> str:
    """The layer name of member k's image encoder ("image_encoder") or head ("fusion_head")."""
    return f"{kind}_{k}"


def build_ensemble_parts(size: int, n_tests: int, alpha: float, intensity: str, members: int,
                         backbone: str = DEFAULT_BACKBONE, **head_kw) -> tuple[keras.Model, keras.Model]:
    """A prediction-averaging ensemble of `members` whole fusion models, as one encoder and one head
    with the single model's interface, so caching, SHAP, the gate and Grad-CAM work unchanged:
      image_encoder: image -> (img_early, img_late) = every member's embeddings, concatenated
      fusion_head:   slices each member's embeddings back out, restandardises the labs for each
                     member, runs each member's own head and averages the softmax outputs."""
    image = keras.Input((size, size, 1), name="image")
    encoders = [build_image_encoder(size, alpha, None, intensity, name=member_name("image_encoder", k), backbone=backbone)
                for k in range(members)]
    outs = [enc(image) for enc in encoders]
    early = layers.Concatenate(name="img_early_members")([o[0] for o in outs])
    late = layers.Concatenate(name="img_late_members")([o[1] for o in outs])
    encoder = keras.Model(image, [early, late], name="image_encoder")

    e_dim, l_dim = (int(t.shape[-1]) for t in encoders[0].outputs)
    img_early = keras.Input((members * e_dim,), name="img_early")
    img_late = keras.Input((members * l_dim,), name="img_late")
    present = keras.Input((1,), name="image_present")
    labs = keras.Input((n_tests,), name="labs")
    missing = keras.Input((n_tests,), name="lab_missing")
    probs = []
    for k in range(members):
        head_k = build_fusion_head(n_tests, e_dim, l_dim, name=member_name("fusion_head", k), **head_kw)
        z_k = LabRestandardise(n_tests, name=f"lab_restandardise_{k}")(labs)
        probs.append(head_k([img_early[:, k * e_dim:(k + 1) * e_dim], img_late[:, k * l_dim:(k + 1) * l_dim],
                             present, z_k, missing]))
    mean = layers.Average(name="probs")(probs)
    head = keras.Model([img_early, img_late, present, labs, missing], mean, name="fusion_head")
    return encoder, head


def member_encoders(encoder: keras.Model) -> list[keras.Model]:
    """The single-backbone encoders inside an image encoder: itself, or an ensemble's members."""
    try:
        encoder.get_layer(LAST_CONV_LAYER)
        return [encoder]
    except ValueError:
        n = sum(isinstance(layer, keras.Model) for layer in encoder.layers)
        return [encoder.get_layer(member_name("image_encoder", k)) for k in range(n)]


def compile_for_training(model: keras.Model, lr: float = 1e-3) -> keras.Model:
    """Categorical cross-entropy (paper eq. 1) with Adam."""
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy")
    return model


def predict_head(head: keras.Model, X: Features, batch_size: int = 512) -> np.ndarray:
    """P(pneumonia) from the head on cached embeddings, shape (n,)."""
    inputs = X.head_inputs()
    arrays = [inputs[k] for k in HEAD_INPUT_NAMES]
    # a direct call: Keras' predict() costs ~100 ms per call in set-up, and fit_head calls this every epoch
    out = [np.asarray(head([a[i:i + batch_size] for a in arrays], training=False))
           for i in range(0, len(X), batch_size)]
    return np.concatenate(out)[:, 1].astype("float64") if out else np.zeros(0)


def embed_images(encoder: keras.Model, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Encoder embeddings for (n,S,S[,1]) images; uint8 (0-255) or float [0,1] accepted."""
    x = images.astype("float32") / 255.0 if images.dtype == np.uint8 else images.astype("float32")
    if x.ndim == 3:
        x = x[..., None]
    early, late = encoder.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(early, "float32"), np.asarray(late, "float32")
