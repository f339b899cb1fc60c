"""The Predictor for the command line: loaded with TensorFlow's native start-up lines silenced
(pneumo.inference.native_stderr), where the bundle needs TensorFlow at all."""
from __future__ import annotations

from pneumo.inference.native_stderr import native_stderr_silenced
from pneumo.inference.predictor import Predictor

__all__ = ["load_predictor", "native_stderr_silenced"]


def load_predictor(bundle_dir=None):
    """Predictor.load; the Keras path, where it is taken, loads with the native chatter silenced
    (pneumo.inference.lite_runner.load_runner), so a fallback's one line still reaches stderr."""
    return Predictor.load(bundle_dir)
