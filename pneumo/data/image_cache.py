"""Films preprocessed once (pneumo.data.imaging.load_for_model) into uint8 arrays, cached on disk
as one .npz per film list, so training, reference sets and robustness reports read them fast."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pneumo import config
from pneumo.data.cohorts import kermany
from pneumo.data.imaging import load_for_model

CACHE_DIR = config.cache_dir()


def film_uint8(path, size: int) -> np.ndarray:
    """One film preprocessed (load_for_model) and stored as uint8 (size, size): the cache's form,
    and what training's streaming input reads per film, so both see the same pixels."""
    arr, _ = load_for_model(str(path), size)
    return np.round(arr[..., 0] * 255.0).astype(np.uint8)


def image_cache(paths, size: int, cache_file: Path | None = None, log=print) -> np.ndarray:
    """(n, size, size) uint8 of the preprocessed images, cached in one .npz keyed by path list."""
    paths = [str(p) for p in paths]
    if cache_file is not None and cache_file.exists():
        z = np.load(cache_file, allow_pickle=False)
        if list(z["paths"]) == paths:
            return z["x"]
        log(f"image cache {cache_file.name} is for another image list: rebuilding")
    t0 = time.time()
    x = np.empty((len(paths), size, size), np.uint8)
    for i, p in enumerate(paths):
        x[i] = film_uint8(p, size)
        if (i + 1) % 1000 == 0:
            log(f"  preprocessed {i + 1}/{len(paths)} images ({time.time() - t0:.0f}s)")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache_file, x=x, paths=np.array(paths))
    log(f"preprocessed {len(paths)} images at {size}px in {time.time() - t0:.0f}s")
    return x


def kermany_cache(size: int, log=print):
    """The Kermany cohort and its uint8 image cache (row order = cohort.frame order)."""
    cohort = kermany.load()
    x = image_cache(cohort.frame["image_path"].tolist(), size, CACHE_DIR / f"kermany_{size}.npz", log)
    return cohort, x


def load_images(paths: list[str], size: int, log=print) -> np.ndarray:
    """uint8 (n, S, S) for the given paths, reusing the Kermany image cache where it covers them."""
    cache = CACHE_DIR / f"kermany_{size}.npz"
    known = {}
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        known = {p: i for i, p in enumerate(z["paths"].tolist())}
        xk = z["x"]
    todo = sorted({p for p in paths if p not in known})
    xt = image_cache(todo, size, None, log) if todo else np.empty((0, size, size), np.uint8)
    at = {p: i for i, p in enumerate(todo)}
    return np.stack([xk[known[p]] if p in known else xt[at[p]] for p in paths]) if paths else xt
