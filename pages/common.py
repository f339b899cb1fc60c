"""Shared pieces of the pages: the cached model, the sidebar, small widgets. A helper
module, not a page (only the files st.navigation lists are pages)."""
from __future__ import annotations

import html
import json
import threading
from pathlib import Path

import streamlit as st

from pneumo import config
from pneumo.data.imaging import ImageMeta, XRay
from pneumo.data.labs import default_panel, parse_labs
from pneumo.errors import PneumoError
from pneumo.inference.case import Case
from pneumo.inference.predictor import Predictor
from pneumo.present.app_support import DISCLAIMER
from pneumo.present.lab_display import fmt_number, short_name, what_if_range
from pneumo.present.text_safe import md_escape
from pneumo.service import auth
from pneumo.service.case_log import CaseLog

ASSETS = config.REPO_ROOT / "assets"


def require_frame() -> None:
    """Every page calls this first. A process whose first session opens on a page URL runs
    the pages/ folder the old (v1) way: each file a page, app.py's frame skipped. Switch to
    app.py's st.navigation and run again."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


class ModelLoader:
    """Loads the Predictor in a background thread, so the first page draws at once."""

    def __init__(self, bundle_dir: str):
        self._done = threading.Event()
        self.predictor = None
        self.error: str | None = None
        threading.Thread(target=self._load, args=(bundle_dir,), daemon=True, name="pneumo-model").start()

    def _load(self, bundle_dir: str) -> None:
        try:

            predictor = Predictor.load(bundle_dir)
            _warm_up(predictor)
            self.predictor = predictor
        except PneumoError as err:
            self.error = str(err)
        except ImportError as err:
            self.error = f"the model code is not available ({err})"
        except Exception as err:  # noqa: BLE001 - shown as one line, the app stays up
            self.error = f"the model could not be loaded: {type(err).__name__}: {err}"
        finally:
            self._done.set()

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
        predictor.warm_up()      # trace the compiled calls now, not on the first user's time
    for case in (Case(XRay(film, meta), labs), Case(None, labs)):
        try:
            predictor.explain(case)
            return
        except PneumoError:
            continue  # a refused made-up film: warm the labs path alone


@st.cache_resource(show_spinner=False)
def _loader(bundle_dir: str) -> ModelLoader:
    return ModelLoader(bundle_dir)


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
        _loader.clear()  # try again on the next run: the bundle may appear later
        st.stop()
    return ld.predictor


@st.cache_data(show_spinner=False, ttl=60)
def bundle_summary(bundle_dir: str) -> dict | None:
    """Name, version and threshold straight from bundle.json: cheap, no TensorFlow."""
    path = Path(bundle_dir) / "bundle.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {"name": meta.get("name", "?"), "version": meta.get("version", "?"),
            "threshold": meta.get("threshold"),
            "population": (meta.get("intended_use") or {}).get("description")}


def sidebar() -> None:
    st.logo(str(ASSETS / "logo.svg"), size="large")
    with st.sidebar:
        st.markdown(f"<div class='pneumo-disclaimer'><b>{DISCLAIMER}</b></div>", unsafe_allow_html=True)
        summary = bundle_summary(str(config.default_model_dir()))
        if summary is None:
            st.caption("Model: no bundle found (see the Model card page).")
        else:
            thr = summary["threshold"]
            rule = f"<br>PNEUMONIA at P ≥ {thr:.2f}, every case" if isinstance(thr, (int, float)) else ""
            st.markdown(f"<div class='pneumo-meta'>Model <b>{html.escape(str(summary['name']))}</b> "
                        f"v{html.escape(str(summary['version']))}{rule}</div>", unsafe_allow_html=True)
            if summary["population"]:
                st.caption(f"Validated on {summary['population']} only.")
        data_ok = config.kermany_dir().is_dir()
        st.caption("Example data: available" if data_ok else
                   "Example data: not found (set PNEUMO_DATA_DIR to enable examples)")


def style() -> None:
    css = (ASSETS / "style.css").read_text()
    st.markdown(f"<style>{css}</style>", unsafe_allow_html=True)


def panel():
    """The model's lab panel: from the loaded Predictor, else the default panel (same keys),
    so the form draws before the model has finished loading."""
    ld = loader()
    if ld.ready and ld.predictor is not None:
        return ld.predictor.panel

    return default_panel()


def log_once(key: str, result, case) -> None:
    """Record a scored case in the case log once, not on every rerun of the page."""
    logged = st.session_state.setdefault("logged_cases", set())
    if key in logged:
        return

    try:
        CaseLog().record(result, labs=case.labs, origin="app", user=current_user())
    except PneumoError as err:
        st.warning(f"The case was not logged: {md_escape(str(err))}")
    logged.add(key)


def log_refusal_once(key: str, reason: str) -> None:
    """A refused case is logged too (the reason only: no pixels, no values), once per case."""
    logged = st.session_state.setdefault("logged_cases", set())
    if key in logged:
        return

    try:
        CaseLog().record_refusal(reason, origin="app", user=current_user())
    except PneumoError as err:
        st.warning(f"The refusal was not logged: {md_escape(str(err))}")
    logged.add(key)


def current_user() -> str | None:
    """The signed-in user's name, when a login is configured."""

    return st.session_state.get(auth.SESSION_USER)


def what_if(pred, case, probability: float) -> None:
    """Change one lab and see the probability, and the label the rule gives, move (Predictor.what_if)."""

    st.markdown("**What if a lab were different?**")
    keys = list(pred.panel.keys)
    values = case.labs.values if case.labs is not None else {}
    default = max(keys, key=lambda k: values.get(k) is not None)  # a given lab, if any
    k = st.selectbox("Lab", keys, index=keys.index(default), key="whatif_lab",
                     format_func=lambda k: f"{pred.panel[k].name} ({pred.panel[k].display_unit})")
    t = pred.panel[k]
    current = values.get(k)
    lo, hi, step = what_if_range(t, current)
    start = current if current is not None else t.impute_value()
    new = st.slider(f"{short_name(t.key, t.name)} ({t.display_unit})", lo, hi, float(min(max(start, lo), hi)), step,
                    key=f"whatif_{k}", help=f"now {fmt_number(current) if current is not None else 'not given'}")
    try:
        answer = pred.what_if(case, {k: float(new)})
    except PneumoError as err:
        st.error(md_escape(str(err)))
        return
    st.metric(f"With this value: {answer['label']}", f"P {answer['probability']:.3f}",
              delta=f"{answer['probability'] - probability:+.3f}", delta_color="inverse",
              help=f"The same rule: PNEUMONIA at P >= {answer['threshold']:.2f}.")
    st.caption(f"{answer['label']} at threshold {answer['threshold']:.2f} (the film and every other value unchanged).")
