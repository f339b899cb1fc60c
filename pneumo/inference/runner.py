"""ModelRunner: a loaded bundle behind three compiled Keras calls (embed, head, Grad-CAM).

The fixed-signature tf.functions (no retracing per case) over the bundle's Keras model; what
every runtime shares (lab standardisation, calibration, the gate, the SHAP background) is
pneumo.inference.runner_base. The TF-free runtime for everything without gradients is
pneumo.inference.lite_runner, which loads this one only for Grad-CAM."""
from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from pneumo.inference.runner_base import RunnerBase  # noqa: E402
from pneumo.models.bundle import load_bundle  # noqa: E402
from pneumo.models.grad_cam import grad_cam_function  # noqa: E402


class ModelRunner(RunnerBase):
    runtime = "keras"

    def __init__(self, bundle):
        import keras

        encoder, head = bundle.image_encoder, bundle.fusion_head
        early_dim, late_dim = (int(t.shape[-1]) for t in encoder.outputs)
        # each seed member's own softmax (their mean is the answer): the ensemble's spread
        members = head.get_layer("probs").input if "probs" in [layer.name for layer in head.layers] else None
        super().__init__(bundle, early_dim, late_dim, len(members) if isinstance(members, (list, tuple)) else 1)
        n, s = len(self.panel), self.image_size

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

        member_model = keras.Model(head.inputs, list(members)) if self.n_members > 1 else None

        @tf.function(input_signature=head_sig)
        def members_fn(early, late, present, labs, missing):
            if member_model is None:
                return tf.expand_dims(head([early, late, present, labs, missing], training=False), 0)
            return tf.stack(member_model([early, late, present, labs, missing], training=False))

        cam = grad_cam_function(encoder, head, s, n)   # Grad-CAM reads each backbone's last conv maps

        self._embed, self._head, self._cam = _TraceOnSecondUse(embed), _TraceOnSecondUse(head_fn), \
            _TraceOnSecondUse(cam)
        self._members = _TraceOnSecondUse(members_fn)

    def warm_up(self, explain: bool = True) -> None:
        """Trace every compiled call now (a long-lived process, e.g. the app, before its first
        user): each is called twice on made-up inputs, so none traces on a user's time. The Keras
        path traces Grad-CAM either way (its scoring is slow anyway); `explain` is the runners' one signature."""
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

    def _embed_batch(self, images):
        e, l = self._embed(tf.constant(images, tf.float32))
        return e.numpy(), l.numpy()

    def _probs(self, early, late, present, z, missing):
        return self._head(early, late, present, z, missing).numpy()

    def _member_probs(self, early, late, present, z, missing):
        return self._members(early, late, present, z, missing).numpy()

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
