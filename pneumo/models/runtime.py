"""A bundle's exported inference graph: two LiteRT flatbuffers run by XNNPACK, no TensorFlow.

  encoder.tflite: image (n, S, S, 1), already equalised -> early, late, convs (the last conv maps;
                  every member's, concatenated)
  head.tflite:    early, late, present, labs, missing   -> probs (n, 2), members (k, n, 2)
  cam.tflite:     convs, early, late, present, labs, missing (one film) -> cam (1, h, w): Grad-CAM's
                  map, from the head's gradient

Both are files of the bundle: their sha256 sits in bundle.json["weights"] beside the Keras
weights' (verified on load), and bundle.json["runtime"] says which weights and architecture they
were exported from, so a retrained or edited bundle's stale export is not used. Written by pneumo.models.runtime_export.

The per-film histogram equalisation (HistogramEqualize) sorts and ranks pixels, which LiteRT has
no kernel for; it has no weights, so the export starts after it and `equalize` below computes it
in numpy, to the same float32 values (tested against the layer)."""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np

from pneumo.errors import BundleError
from pneumo.models.bundle import WEIGHTS_FILE

RUNTIME_KEY = "runtime"
FORMAT = "litert/1"
ENCODER_FILE = "encoder.tflite"
HEAD_FILE = "head.tflite"
ENCODER_OUTPUTS = ("early", "late")
ENCODER_TRUNK = "trunk"    # the film trunk's features, where the encoder's stem is the trunk (TRUNK_WIDTH)
HEAD_INPUTS = ("early", "late", "present", "labs", "missing")
HEAD_OUTPUTS = ("probs", "members")
CAM_FILE = "cam.tflite"
CAM_INPUTS = ("convs", "early", "late", "present", "labs", "missing")
TRUNK_FILE = "film_trunk.tflite"       # the film check's own graph (pneumo.models.film_trunk writes it)
TRUNK_OUTPUT = "features"
TRUNK_START = "efficientnet-lite0 (ImageNet, models/starts)"
TRUNK_KINDS = {"trunk_grid2": (0, 384), "trunk_grid4": (384, 1024), "trunk_stats": (1024, 1104)}
"""The film trunk's features, by kind: columns of its one output."""
TRUNK_WIDTH = max(b for _, b in TRUNK_KINDS.values())
"""A 2.0.0-style encoder (frozen ImageNet stem) also gives the trunk's features, as its output TRUNK_OUTPUT."""


def runtime_files(directory, meta: dict) -> tuple[Path, Path, Path | None] | str:
    """(encoder, head, cam) of the bundle's exported graph, or why it has no usable one (the caller
    falls back to Keras). cam is None for an export made before Grad-CAM was exported (Grad-CAM
    then runs on Keras). Their digests are checked by the bundle's own verify_weights."""
    info = meta.get(RUNTIME_KEY)
    if not isinstance(info, dict):
        return "it has no exported runtime"
    if info.get("format") != FORMAT:
        return f"its exported runtime is {info.get('format')!r}, not {FORMAT}"
    verified = meta.get("weights") if isinstance(meta.get("weights"), dict) else {}
    if ENCODER_FILE not in verified or HEAD_FILE not in verified:
        return "its exported runtime is not among the files bundle.json verifies"
    if info.get("from_weights") != verified.get(WEIGHTS_FILE):
        return "its exported runtime was made from other weights (stale)"
    if info.get("architecture_sha256") != architecture_digest(meta):
        return "its exported runtime was made for another architecture"
    cam = Path(directory) / CAM_FILE if info.get("cam") == CAM_FILE and CAM_FILE in verified \
        and "convs" in info.get("encoder_outputs", {}) else None
    return Path(directory) / ENCODER_FILE, Path(directory) / HEAD_FILE, cam


def normalise_cam(raw: np.ndarray) -> np.ndarray:
    """The exported graph's raw Grad-CAM map (1, h, w) -> the heat (h, w) in [0, 1], as the Keras runner."""
    heat = np.maximum(np.asarray(raw, np.float32)[0], 0)
    return heat / (heat.max() + np.float32(1e-9))


def architecture_digest(meta: dict) -> str:
    """sha256 of bundle.json["architecture"] (canonical JSON): an export belongs to one network."""
    text = json.dumps(meta.get("architecture"), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def equalize(images: np.ndarray) -> np.ndarray:
    """pneumo.models.network.HistogramEqualize in numpy: each pixel -> the share of the film's
    pixels at or below it, the darkest value mapped to 0 (a constant film maps to 0).

    One argsort per film and the end of each run of equal values, ~4x faster than the layer's
    sort + searchsorted, with the same ranks and the same float32 division."""
    x = np.asarray(images, np.float32)
    flat = x.reshape(len(x), -1)
    out = np.empty_like(flat)
    n = flat.shape[1]
    for i, row in enumerate(flat):
        order = np.argsort(row)
        ordered = row[order]
        run_end = np.empty(n, bool)                 # the last of each run of equal values
        np.not_equal(ordered[1:], ordered[:-1], out=run_end[:-1])
        run_end[-1] = True
        ends = np.flatnonzero(run_end) + 1          # "right" rank: how many pixels are <= it
        rank = np.empty(n, np.float32)
        rank[order] = ends[np.cumsum(run_end) - run_end]
        low = rank.min()
        span = np.float32(n) - low
        out[i] = (rank - low) / span if span != 0 else 0.0
    return out.reshape(x.shape)


class LiteGraph:
    """One exported graph behind a LiteRT interpreter (XNNPACK): named numpy arrays in and out.

    The interpreter is not thread-safe and one Predictor serves every app session, so each run
    holds a lock; its tensors are re-planned only when the batch size changes. XNNPACK announces
    itself on file descriptor 2 when the graph is first planned: build it with that silenced."""

    def __init__(self, path, outputs: dict, threads: int, interpreter_cls=None):
        if interpreter_cls is None:
            from ai_edge_litert.interpreter import Interpreter as interpreter_cls   # no TensorFlow
        try:
            self._it = interpreter_cls(model_path=str(path), num_threads=int(threads))
            self._it.allocate_tensors()   # the delegate is made (and says so on fd 2) here, not on a user's call
        except (ValueError, RuntimeError) as err:
            raise BundleError(f"the exported runtime {Path(path).name} cannot be loaded: {err}") from None
        self._inputs = {d["name"]: d["index"] for d in self._it.get_input_details()}
        by_name = {d["name"]: d["index"] for d in self._it.get_output_details()}
        missing = [k for k, name in outputs.items() if name not in by_name]
        if missing:
            raise BundleError(f"the exported runtime {Path(path).name} lacks the outputs {missing}")
        self._outputs = {key: by_name[name] for key, name in outputs.items()}
        self._shapes: dict | None = None
        self._lock = threading.Lock()

    def input_shape(self, name: str) -> tuple[int, ...]:
        """The graph's input shape, -1 for the batch."""
        det = next(d for d in self._it.get_input_details() if d["name"] == name)
        return tuple(int(v) for v in det["shape_signature"])

    def run(self, feeds: dict, outputs=None) -> dict:
        """The named outputs (default: all) for the named inputs."""
        arrays = {k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()}
        shapes = {k: a.shape for k, a in arrays.items()}
        with self._lock:
            if shapes != self._shapes:
                for k, shape in shapes.items():
                    self._it.resize_tensor_input(self._inputs[k], shape)
                self._it.allocate_tensors()
                self._shapes = shapes
            for k, a in arrays.items():
                self._it.set_tensor(self._inputs[k], a)
            self._it.invoke()
            return {k: self._it.get_tensor(self._outputs[k]).copy() for k in (outputs or self._outputs)}
