"""Frozen-backbone image embeddings, computed once per image and cached on disk.

With the image encoder frozen, every experiment fit (runs x regimes x models) sees the same two
embeddings per image (img_early, img_late), so they are computed once and reused: this is what
makes the paper's full grid fit in minutes on a CPU. Images are decoded only through
pneumo.data.imaging.load_for_model (read_image + preprocess), the one preprocessing path.

Key: sha256 of (the image file's bytes, the encoder's weights sha256, image size) ->
cache/embeddings/<weights sha[:16]>-<size>/<key>.npz. The file's content rather than its path:
an image changed in place is recomputed, the same image under another path (a regenerated
synthetic cohort) is reused. The weights hash is over the encoder's actual weight arrays, so a
retrained or different encoder never reads stale rows. A `tag` names what the weights do not say
(pneumo.experiments.film_per_run caches the frozen stem's cut-point maps with tag = intensity + cut
layer: the equalisation layer has no weights); it joins the key and the folder name.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pneumo import config
from pneumo.data.imaging import load_for_model
from pneumo.errors import PneumoError


def weights_sha256(model) -> str:
    """sha256 over a Keras model's weight arrays (shapes and float bytes, in order)."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        arr = np.ascontiguousarray(w)
        digest.update(repr((arr.shape, str(arr.dtype))).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


@dataclass
class Embeddings:
    """Row i belongs to paths[i]: img_early (n, C1), img_late (n, C2) float32."""

    paths: list[str]
    img_early: np.ndarray
    img_late: np.ndarray
    computed: int          # images encoded now (the rest came from the cache)
    seconds: float

    def rows(self, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(early, late) for these paths, in this order (each must have been embedded)."""
        index = {p: i for i, p in enumerate(self.paths)}
        try:
            idx = np.array([index[str(p)] for p in paths], dtype=int)
        except KeyError as err:
            raise PneumoError(f"no embedding for image {Path(str(err.args[0])).name}") from None
        return self.img_early[idx], self.img_late[idx]


class EmbeddingCache:
    """Embeds image files with a frozen encoder: image (S, S, 1) -> (img_early, img_late)."""

    def __init__(self, encoder, *, size: int = 224, root: str | os.PathLike | None = None,
                 batch_size: int = 32, weights_sha: str | None = None, tag: str = ""):
        self.encoder = encoder
        self.size = int(size)
        self.batch_size = int(batch_size)
        self.weights_sha = weights_sha or weights_sha256(encoder)
        self.folder = Path(root) if root is not None else config.embedding_cache_dir()
        self.tag = str(tag)
        self.folder = self.folder / (f"{self.weights_sha[:16]}-{self.size}" + (f"-{self.tag}" if self.tag else ""))

    def key(self, path: str) -> str:
        digest = hashlib.sha256(f"{self.weights_sha}|{self.size}|".encode() + (f"{self.tag}|".encode() if self.tag else b""))
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as err:
            raise PneumoError(f"cannot read image {Path(path).name}: {err.strerror or err}") from None
        return digest.hexdigest()

    def _encode(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.encoder(batch, training=False)
        if isinstance(out, dict):
            out = (out["img_early"], out["img_late"])
        early, late = out
        return np.asarray(early, dtype=np.float32), np.asarray(late, dtype=np.float32)

    def embed(self, paths: Sequence[str], progress: Callable[[str], None] | None = None) -> Embeddings:
        """Embeddings for every path (deduplicated); cached rows are read, missing ones computed."""

        start = time.perf_counter()
        paths = list(dict.fromkeys(str(p) for p in paths))
        self.folder.mkdir(parents=True, exist_ok=True)
        early: dict[str, np.ndarray] = {}
        late: dict[str, np.ndarray] = {}
        todo = []
        keys = {p: self.key(p) for p in paths}
        for p in paths:
            file = self.folder / f"{keys[p]}.npz"
            if file.is_file():
                try:
                    with np.load(file) as z:
                        early[p], late[p] = z["img_early"], z["img_late"]
                    continue
                except (OSError, ValueError, KeyError):
                    pass   # a torn write from an interrupted run: recompute it
            todo.append(p)
        for i in range(0, len(todo), self.batch_size):
            chunk = todo[i:i + self.batch_size]
            batch = np.stack([load_for_model(p, self.size)[0] for p in chunk])
            e, l = self._encode(batch)
            for p, ei, li in zip(chunk, e, l):
                early[p], late[p] = ei, li
                tmp = self.folder / f"{keys[p]}.tmp.npz"
                np.savez(tmp, img_early=ei, img_late=li)
                os.replace(tmp, self.folder / f"{keys[p]}.npz")   # atomic: no half-written cache rows
            if progress:
                progress(f"embedded {min(i + self.batch_size, len(todo))}/{len(todo)} images "
                         f"({len(paths) - len(todo)} cached)")
        if not paths:
            raise PneumoError("no images to embed")
        return Embeddings(paths, np.stack([early[p] for p in paths]), np.stack([late[p] for p in paths]),
                          len(todo), time.perf_counter() - start)
