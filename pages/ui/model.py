"""The model every app session shares: loaded once per process in a background thread, warmed
up before the first user, and the lab panel the form draws before it has loaded."""
from __future__ import annotations

import threading

import streamlit as st

from pneumo import config
from pneumo.data.imaging import ImageMeta, XRay
from pneumo.data.labs import default_panel, parse_labs
from pneumo.errors import PneumoError
from pneumo.inference.case import Case
from pneumo.inference.predictor import Predictor


STARTED: list = []
"""Every loader this process started: whoever ends the process can wait for their threads."""


class ModelLoader:
    """Loads the Predictor in a background thread, so the first page draws at once. It is
    published as soon as it can score (LiteRT: about a second); the explanation path (Grad-CAM,
    SHAP's JIT; Keras only for a bundle without an exported cam graph) warms up after that on the
    same thread, while the first user reads."""

    def __init__(self, bundle_dir: str):
        self._done = threading.Event()
        self.explain_warm = threading.Event()
        self.predictor = None
        self.error: str | None = None
        STARTED.append(self)
        threading.Thread(target=self._load, args=(bundle_dir,), daemon=True, name="pneumo-model").start()

    def _load(self, bundle_dir: str) -> None:
        try:
            predictor = Predictor.load(bundle_dir)
            if hasattr(predictor, "warm_up"):
                predictor.warm_up(explain=False)
            self.predictor = predictor
        except PneumoError as err:
            self.error = str(err)
        except ImportError as err:
            self.error = f"the model code is not available ({err})"
        except Exception as err:  # noqa: BLE001 - shown as one line, the app stays up
            self.error = f"the model could not be loaded: {type(err).__name__}: {err}"
        finally:
            self._done.set()
        if self.predictor is not None:
            try:
                _warm_up(self.predictor)
            except Exception:  # noqa: BLE001 - a failed warm-up only costs the first user time
                pass
        self.explain_warm.set()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None):
        self._done.wait(timeout)
        return self.predictor


def _warm_up(predictor) -> None:
    """Explain one made-up case before the first user does: the first call pays for graph
    tracing and SHAP's JIT (tens of seconds on a busy CPU), later ones take a fraction of a second."""
    import numpy as np

    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    film = (0.3 + 0.4 * np.exp(-((xx - 0.5) / 0.15) ** 2) + 0.1 * yy).astype(np.float32)
    meta = ImageMeta(source_format="png", width=256, height=256, bit_depth=8, mode="L", photometric=None,
                     modality=None, view_position=None, body_part=None, was_color=False, color_spread=0.0)
    labs = parse_labs({t.key: t.impute_value() for t in predictor.panel}, predictor.panel)
    if hasattr(predictor, "warm_up"):
        predictor.warm_up(explain=True)      # Grad-CAM's graph now, not on the first user's time
    for case in (Case(XRay(film, meta), labs), Case(None, labs)):
        try:
            predictor.explain(case)
            return
        except PneumoError:
            continue  # a refused made-up film: warm the labs path alone


class _OneLoader:
    """One ModelLoader per bundle folder for the life of the process, behind a lock. Not
    st.cache_resource: any browser (signed in or not) can send `clear_cache`, which empties that
    cache, and each clear would start another loader, Predictor and thread that is never freed."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_dir: dict[str, ModelLoader] = {}

    def __call__(self, bundle_dir: str) -> ModelLoader:
        with self._lock:
            ld = self._by_dir.get(bundle_dir)
            if ld is None:
                ld = self._by_dir[bundle_dir] = ModelLoader(bundle_dir)
            return ld

    def drop_failed(self, ld: ModelLoader) -> None:
        """Forget a loader that ended without a model, so the next run tries again."""
        with self._lock:
            if ld.ready and ld.predictor is None:
                self._by_dir = {k: v for k, v in self._by_dir.items() if v is not ld}
                if ld in STARTED:
                    STARTED.remove(ld)

    def clear(self) -> None:
        """Tests only: forget every loader (their threads still finish; STARTED keeps them)."""
        with self._lock:
            self._by_dir.clear()


_loader = _OneLoader()


def loader() -> ModelLoader:
    return _loader(str(config.default_model_dir()))


def predictor_or_stop():
    """The loaded Predictor; without one, say why in one line and stop the page."""
    ld = loader()
    if not ld.ready:
        with st.spinner("Loading the model (once after start-up)…"):
            ld.wait()
    if ld.predictor is None:
        st.error(f"No model available: {ld.error}")
        _loader.drop_failed(ld)  # try again on the next run: the bundle may appear later
        st.stop()
    return ld.predictor


def panel():
    """The model's lab panel: from the loaded Predictor, else the default panel (same keys),
    so the form draws before the model has finished loading."""
    ld = loader()
    if ld.ready and ld.predictor is not None:
        return ld.predictor.panel
    return default_panel()
