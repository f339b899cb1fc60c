"""The frame around every page: the v1-pages guard, the style sheet, the sidebar."""
from __future__ import annotations

import html
from pathlib import Path

import streamlit as st

from pneumo import config
from pneumo.errors import PneumoError
from pneumo.models.bundle import read_meta
from pneumo.present.app_support import DISCLAIMER

ASSETS = config.REPO_ROOT / "assets"


def require_frame() -> None:
    """Every page calls this first. A process whose first session opens on a page URL runs
    the pages/ folder the old (v1) way: each file a page, app.py's frame skipped. Switch to
    app.py's st.navigation and run again."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_data(show_spinner=False, ttl=60)
def bundle_summary(bundle_dir: str) -> dict | None:
    """Name, version and threshold from the validated bundle.json: cheap, no TensorFlow."""
    try:
        meta = read_meta(Path(bundle_dir))
    except PneumoError:
        return None
    return {"name": meta["name"], "version": meta["version"], "threshold": meta["threshold"],
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
