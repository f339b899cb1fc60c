"""ModelRunner: a loaded bundle behind three compiled calls (embed, head, Grad-CAM).

Everything model-shaped the Predictor needs lives here: the fixed-signature tf.functions
(no retracing per case), lab standardisation, temperature calibration, the validity gate
and the SHAP background. The Predictor itself only sees numpy arrays."""
from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from pneumo.inference.intended_use import Population, read_film_check  # noqa: E402
from pneumo.inference.reference_set import gate_features, read_reference  # noqa: E402
from pneumo.models.bundle import WEIGHTS_FILE, load_bundle, read_metrics, views_of_inputs  # noqa: E402
from pneumo.models.network import LAST_CONV_LAYER, member_encoders  # noqa: E402

HEAD_CHUNK = 1024
"""Rows per head call when one image's embeddings meet many lab rows (SHAP)."""


class ModelRunner:
    def __init__(self, bundle):
        import keras

        self.bundle = bundle
        self.panel = bundle.panel
        self.threshold = float(bundle.threshold)
        self.image_size = int(bundle.image_size)
        self.name, self.version = bundle.name, bundle.version
        self.meta = bundle.meta
        self.metrics = read_metrics(bundle.path)
        # the validity gate and the SHAP background (n, T raw training panels, NaN = missing)
        self.gate, self.background = read_reference(bundle.path)
        self.population = Population.from_meta(self.meta)
        self.film_check = read_film_check(bundle.path)
        if self.background is None:   # a bundle without a reference set: the panel medians
            self.background = np.array([[t.impute_value() for t in self.panel]], np.float32)
        encoder, head = bundle.image_encoder, bundle.fusion_head
        self.early_dim, self.late_dim = (int(t.shape[-1]) for t in encoder.outputs)
        n, s = len(self.panel), self.image_size
        # Grad-CAM reads each backbone's last conv maps (one, or each member of a seed ensemble)
        conv_models = [keras.Model(m.inputs, [m.get_layer(LAST_CONV_LAYER).output, *m.outputs])
                       for m in member_encoders(encoder)]

        def convs_and_embeddings(image):
            outs = [m(image, training=False) for m in conv_models]   # per member: conv, early, late
            return ([o[0] for o in outs], tf.concat([o[1] for o in outs], axis=-1),
                    tf.concat([o[2] for o in outs], axis=-1))

        @tf.function(input_signature=[tf.TensorSpec((None, s, s, 1), tf.float32)])
        def embed(images):
            return encoder(images, training=False)

        head_sig = [tf.TensorSpec((None, self.early_dim), tf.float32),
                    tf.TensorSpec((None, self.late_dim), tf.float32),
                    tf.TensorSpec((None, 1), tf.float32),
                    tf.TensorSpec((None, n), tf.float32),
                    tf.TensorSpec((None, n), tf.float32)]

        @tf.function(input_signature=head_sig)
        def head_fn(early, late, present, labs, missing):
            return head([early, late, present, labs, missing], training=False)

        # each seed member's own softmax (their mean is the answer): the ensemble's spread
        members = head.get_layer("probs").input if "probs" in [layer.name for layer in head.layers] else None
        self.n_members = len(members) if isinstance(members, (list, tuple)) else 1
        member_model = keras.Model(head.inputs, list(members)) if self.n_members > 1 else None

        @tf.function(input_signature=head_sig)
        def members_fn(early, late, present, labs, missing):
            if member_model is None:
                return tf.expand_dims(head([early, late, present, labs, missing], training=False), 0)
            return tf.stack(member_model([early, late, present, labs, missing], training=False))

        @tf.function(input_signature=[tf.TensorSpec((1, s, s, 1), tf.float32), *head_sig[2:]])
        def cam(image, present, labs, missing):
            with tf.GradientTape() as tape:
                convs, early, late = convs_and_embeddings(image)
                for conv in convs:
                    tape.watch(conv)
                probs = head([early, late, present, labs, missing], training=False)
                score = tf.math.log(probs[:, 1] + 1e-7) - tf.math.log(probs[:, 0] + 1e-7)
            grads = tape.gradient(score, convs)
            # the ensemble's score depends on every member's maps: their weighted sums add up
            cam_sum = tf.add_n([tf.reduce_sum(tf.reduce_mean(g, axis=(1, 2), keepdims=True) * c, axis=-1)
                                for g, c in zip(grads, convs)])
            heat = tf.nn.relu(cam_sum)[0]
            return heat / (tf.reduce_max(heat) + 1e-9)

        self._embed, self._head, self._cam = _TraceOnSecondUse(embed), _TraceOnSecondUse(head_fn), \
            _TraceOnSecondUse(cam)
        self._members = _TraceOnSecondUse(members_fn)

    def warm_up(self) -> None:
        """Trace every compiled call now (a long-lived process, e.g. the app, before its first
        user): each is called twice on made-up inputs, so none traces on a user's time."""
        n, s = len(self.panel), self.image_size
        x = np.full((1, s, s, 1), 0.5, np.float32)
        labs = np.full((1, n), np.nan, np.float32)
        for _ in range(2):
            early, late = self.embed(x)
            self.head(early, late, np.ones(1, np.float32), labs)
            self.grad_cam(x[0], labs)

    @classmethod
    def load(cls, bundle_dir) -> "ModelRunner":
        return cls(load_bundle(bundle_dir))

    def judge(self, early: np.ndarray, late: np.ndarray, verdict):
        """Add the embedding gate's opinion of one image to a Verdict (no gate: unchanged)."""
        if self.gate is not None:
            self.gate.judge(gate_features(early, late), verdict)
        return verdict

    def model_info(self) -> dict:
        return {"name": self.name, "version": self.version,
                "weights_sha256": self.meta["weights"][WEIGHTS_FILE]}

    def lab_inputs(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw values (n, T) with NaN = missing -> (standardised values, missing mask)."""
        return self.bundle.lab_inputs(matrix)

    def calibrate(self, p_raw: np.ndarray, views) -> np.ndarray:
        return self.bundle.calibrate(p_raw, views)

    def embed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, S, S, 1) float [0,1] -> (early, late) embeddings; batches of 64."""
        early, late = [], []
        for i in range(0, len(images), 64):
            e, l = self._embed(tf.constant(images[i:i + 64], tf.float32))
            early.append(e.numpy())
            late.append(l.numpy())
        return np.concatenate(early), np.concatenate(late)

    def head(self, early, late, present, labs_raw) -> np.ndarray:
        """Calibrated P(pneumonia) for rows of (embeddings, image present, raw lab values)."""
        present = np.asarray(present, np.float32).reshape(-1, 1)
        z, missing = self.lab_inputs(labs_raw)
        early = np.asarray(early, np.float32) * present
        late = np.asarray(late, np.float32) * present
        probs = self._head(early, late, present, z, missing).numpy()
        return self.calibrate(probs[:, 1], views_of_inputs(present, missing))

    def member_probabilities(self, early, late, present, labs_raw) -> np.ndarray:
        """(members, n) calibrated P(pneumonia) of each seed member for the head's rows, each at
        the row's view temperature: how far the members agree, beside their mean."""
        present = np.asarray(present, np.float32).reshape(-1, 1)
        z, missing = self.lab_inputs(labs_raw)
        early = np.asarray(early, np.float32) * present
        late = np.asarray(late, np.float32) * present
        probs = self._members(early, late, present, z, missing).numpy()[..., 1]
        views = views_of_inputs(present, missing)
        return np.stack([self.calibrate(p, views) for p in probs])

    def head_for_one_image(self, early, late, present: float, labs_raw: np.ndarray,
                           chunk: int = HEAD_CHUNK) -> np.ndarray:
        """head() for many lab rows (n, T) beside one image's embeddings (1, D), `chunk` rows at a
        time: SHAP asks for ~20,000 rows, and repeating a 3-member ensemble's embeddings that
        often would take ~600 MB at once; a chunk takes ~16 MB, with the same answers."""
        labs_raw = np.asarray(labs_raw, np.float32)
        out = []
        for i in range(0, len(labs_raw), chunk):
            rows = labs_raw[i:i + chunk]
            k = len(rows)
            out.append(self.head(np.repeat(early, k, 0), np.repeat(late, k, 0), np.full(k, present, np.float32), rows))
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def grad_cam(self, x: np.ndarray, labs_raw: np.ndarray) -> np.ndarray:
        """Coarse Grad-CAM heat (h, w) in [0,1] of the pneumonia log-odds for one image."""
        z, missing = self.lab_inputs(labs_raw)
        heat = self._cam(tf.constant(x[None], tf.float32), tf.ones((1, 1)), z, missing)
        return heat.numpy()


class _TraceOnSecondUse:
    """A tf.function that runs eagerly on its first call and traced from the second on: a
    one-shot process (the CLI's predict) skips ~1.5 s of tracing, a long-lived one pays it
    once, on the second call (or in warm_up)."""

    def __init__(self, function):
        self.function, self.calls = function, 0

    def __call__(self, *args):
        self.calls += 1
        if self.calls == 1:   # Keras wants tensors, not a numpy/tensor mix, when eager
            return self.function.python_function(*(tf.convert_to_tensor(a) for a in args))
        return self.function(*args)
