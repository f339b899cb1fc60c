"""LiteRunner: the bundle's exported LiteRT graph (pneumo.models.runtime) behind the runner's
interface, with no TensorFlow: embed, head and each member's answer in XNNPACK kernels.

Grad-CAM runs on the exported cam graph (the head's gradient, exported with it); a bundle exported
before that graph existed loads the Keras runner (pneumo.inference.runner) for Grad-CAM, on its
first use. `load_runner` picks the runtime: the exported graph where the bundle has one, else the
Keras path with one line saying so (a bundle made before the export existed keeps working)."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from pneumo import config
from pneumo.errors import BundleError
from pneumo.inference.native_stderr import native_stderr_silenced
from pneumo.inference.runner_base import EMBED_BATCH, RunnerBase
from pneumo.models.bundle import open_bundle, with_keras_model
from pneumo.models.runtime import (CAM_INPUTS, ENCODER_OUTPUTS, ENCODER_TRUNK, HEAD_INPUTS, RUNTIME_KEY, LiteGraph, equalize,
                                   normalise_cam, runtime_files)

log = logging.getLogger("pneumo")


class LiteRunner(RunnerBase):
    runtime = "litert"

    def __init__(self, bundle, encoder_file, head_file, cam_file=None, threads: int | None = None):
        info = bundle.meta[RUNTIME_KEY]
        super().__init__(bundle, info["early_dim"], info["late_dim"], info["members"])
        threads = threads or config.inference_threads()
        with native_stderr_silenced():      # XNNPACK's "Created delegate" line: the CLI owes one line on stderr
            self._encoder = LiteGraph(encoder_file, info["encoder_outputs"], threads)
            self._graph = LiteGraph(head_file, info["head_outputs"], threads)
            self._cam = LiteGraph(cam_file, info["cam_outputs"], threads) if cam_file else None
        self._equalize = bool(info["equalize"])
        self._has_trunk = ENCODER_TRUNK in info["encoder_outputs"]
        s, n = self.image_size, len(self.panel)
        if self._encoder.input_shape("image")[1:] != (s, s, 1) or self._graph.input_shape("labs")[1:] != (n,):
            raise BundleError(f"the exported runtime of {Path(bundle.path).name} does not fit its "
                              f"bundle.json ({s} px, {n} lab tests)")
        self._keras = None
        self._keras_lock = threading.Lock()

    def _embed_batch(self, images):
        out = self._encoder.run({"image": self._equalised(images)}, ENCODER_OUTPUTS)
        return out["early"], out["late"]

    def embed_with_trunk(self, images):
        """One encoder call gives the embeddings and, where exported with them, the film trunk's features."""
        if not self._has_trunk:
            return super().embed_with_trunk(images)
        outs = [self._encoder.run({"image": self._equalised(np.ascontiguousarray(images[i:i + EMBED_BATCH],
                                                                                   np.float32))},
                                  (*ENCODER_OUTPUTS, ENCODER_TRUNK)) for i in range(0, len(images), EMBED_BATCH)]
        return tuple(np.concatenate([o[k] for o in outs]) for k in (*ENCODER_OUTPUTS, ENCODER_TRUNK))

    def _equalised(self, images):
        return equalize(images) if self._equalize else images

    def _probs(self, *inputs):
        return self._graph.run(dict(zip(HEAD_INPUTS, inputs)))["probs"]

    def _member_probs(self, *inputs):
        return self._graph.run(dict(zip(HEAD_INPUTS, inputs)))["members"]

    def _probs_and_members(self, *inputs):
        out = self._graph.run(dict(zip(HEAD_INPUTS, inputs)))
        return out["probs"], out["members"]

    def keras_runner(self):
        """The Keras ModelRunner of the same (already verified) bundle, built on first use."""
        with self._keras_lock:
            if self._keras is None:
                self._keras = _keras_runner(self.bundle)
            return self._keras

    def grad_cam(self, x: np.ndarray, labs_raw: np.ndarray) -> np.ndarray:
        """Coarse Grad-CAM heat (h, w) in [0,1] of the pneumonia log-odds for one image (S, S, 1):
        the exported cam graph, or Keras for an export without one."""
        if self._cam is None:
            return self.keras_runner().grad_cam(x, labs_raw)
        z, missing = self.lab_inputs(np.asarray(labs_raw, np.float32).reshape(1, -1))
        out = self._encoder.run({"image": self._equalised(np.asarray(x, np.float32)[None])})
        feeds = (out["convs"], out["early"], out["late"], np.ones((1, 1), np.float32), z, missing)
        return normalise_cam(self._cam.run(dict(zip(CAM_INPUTS, feeds)))["cam"])

    @property
    def grad_cam_runtime(self) -> str:
        return "keras" if self._cam is None else self.runtime

    def warm_up(self, explain: bool = True) -> None:
        """For long-lived processes: plan the kernels now and, with `explain`, Grad-CAM's too (its
        Keras path where the export has no cam graph), so no user waits for either."""
        n, s = len(self.panel), self.image_size
        x = np.full((1, s, s, 1), 0.5, np.float32)
        labs = np.full((1, n), np.nan, np.float32)
        early, late = self.embed(x)
        self.head(early, late, np.ones(1, np.float32), labs)
        if explain:
            for _ in range(2):   # the Keras fallback traces its Grad-CAM on the second call
                self.grad_cam(x[0], labs)


def _keras_runner(bundle):
    with native_stderr_silenced():          # TensorFlow's native start-up lines
        from pneumo.inference.runner import ModelRunner   # TensorFlow loads here, and only here
        return ModelRunner(with_keras_model(bundle))


def load_runner(bundle_dir) -> RunnerBase:
    """The runner for a bundle folder: LiteRunner where it has a usable exported runtime, else
    the Keras ModelRunner (said in one line on stderr), or Keras when PNEUMO_RUNTIME=keras.
    BundleError for a bad bundle."""
    bundle = open_bundle(bundle_dir)        # every recorded file's sha256 checked, once
    if config.runtime() == "keras":         # asked for (PNEUMO_RUNTIME=keras): no note
        return _keras_runner(bundle)
    files = runtime_files(bundle.path, bundle.meta)
    if isinstance(files, str):
        log.warning("note: bundle %s: %s; using the slower Keras path "
                    "(python -m pneumo export-runtime --model %s)", Path(bundle.path).name, files, bundle.path)
        return _keras_runner(bundle)
    return LiteRunner(bundle, *files)
