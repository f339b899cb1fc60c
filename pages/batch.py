"""Batch: score a manifest CSV of films (and optional lab columns) in one go."""
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from pages import common
from pneumo import app_support as sup
from pneumo.errors import PneumoError

common.require_frame()
ss = st.session_state
st.title("Batch")
st.caption("A manifest CSV with an `image_path` column (relative to the image folder) and, optionally, "
           "one column per lab (the panel's keys). Other columns are carried through. A bad row gets "
           "its reason in the `error` column; the other rows are still scored.")

source = st.radio("Images from", ["Upload", "A folder on this server"], horizontal=True)
if source == "Upload":
    manifest = st.file_uploader("Manifest (CSV)", type=["csv"], key="batch_manifest")
    images = st.file_uploader("Images: several files, or one zip (keeps sub-folders)", accept_multiple_files=True,
                              key="batch_images")
    ready = manifest is not None
else:
    manifest_path = st.text_input("Manifest CSV on the server", placeholder="/data/study/manifest.csv")
    ready = bool(manifest_path)

if not ready:
    st.info("Give a manifest to start.", icon=":material/table_rows:")
elif st.button("Score the batch", type="primary", key="batch_go"):
    pred = common.predictor_or_stop()
    from pneumo.audit import CaseLog
    from pneumo.batch import run_batch

    with tempfile.TemporaryDirectory(prefix="pneumo-batch-") as tmp:
        tmp = Path(tmp)
        try:
            if source == "Upload":
                root = tmp / "images"
                root.mkdir()
                man = tmp / "manifest.csv"
                man.write_bytes(manifest.getvalue())
                with st.spinner("Unpacking the images…"):
                    refused = sup.save_uploads([(f.name, f.getvalue()) for f in images or []], root)
                if refused:
                    st.warning(f"Skipped {len(refused)} archive member(s) with unsafe paths: "
                               f"{', '.join(refused[:5])}")
            else:
                man = Path(manifest_path).expanduser()
                if not man.is_file():
                    raise PneumoError(f"manifest not found: {man}")
                root = man.parent
            total = max(sup.count_rows(man), 1)
            bar = st.progress(0.0, text="Scoring…")
            done = []

            def on_row(row):
                done.append(row)
                bar.progress(min(len(done) / total, 1.0), text=f"Scored {len(done)} of {total}")

            summary = run_batch(man, tmp / "out.csv", root=root, predictor=pred, log=CaseLog(),
                                progress=False, on_row=on_row)
            bar.progress(1.0, text=f"Done: {len(done)} row(s)")
            ss["batch_result"] = pd.read_csv(tmp / "out.csv", dtype=str, keep_default_na=False)
            ss["batch_summary"] = f"{summary.scored} scored, {summary.errors} with errors, {summary.seconds:.1f} s"
        except PneumoError as err:
            st.error(str(err))

if "batch_result" in ss:
    frame = ss["batch_result"]
    first = [c for c in ("row", "image_path", "error", "probability", "label") if c in frame]
    frame = frame[first + [c for c in frame.columns if c not in first]]  # reasons in view, not off-screen
    st.success(ss["batch_summary"])
    errors = frame[frame.get("error", pd.Series(dtype=str)).astype(str).str.len() > 0] if "error" in frame else frame[:0]
    st.dataframe(frame, hide_index=True)
    if len(errors):
        st.warning(f"{len(errors)} row(s) could not be scored; see the `error` column.")
    st.download_button("Download results (CSV)", sup.csv_bytes(frame), file_name="pneumo-batch.csv",
                       mime="text/csv", icon=":material/download:")
