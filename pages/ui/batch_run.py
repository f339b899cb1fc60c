"""The Batch page's pieces: where the manifest and films come from, one run, and its result table."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from pages.ui import model
from pneumo.errors import PneumoError
from pneumo.present.text_safe import md_escape, md_list
from pneumo.service import auth, server_roots, uploads
from pneumo.service.batch import run_batch
from pneumo.service.case_log import CaseLog

ss = st.session_state


@dataclass
class Source:
    """Either uploads (a manifest and image files) or a manifest path on the server."""
    manifest: object = None          # an UploadedFile
    images: list | None = None
    server_path: str = ""
    roots: list | None = None

    @property
    def ready(self) -> bool:
        return self.manifest is not None or bool(self.server_path)


def source() -> Source:
    roots = server_roots.allowed_roots()   # the server-folder mode exists only where an administrator allowed folders
    modes = ["Upload", "A folder on this server"] if roots else ["Upload"]
    mode = st.radio("Images from", modes, horizontal=True) if len(modes) > 1 else "Upload"
    if mode == "Upload":
        return Source(manifest=st.file_uploader("Manifest (CSV)", type=["csv"], key="batch_manifest"),
                      images=st.file_uploader("Images: several files, or one zip (keeps sub-folders)",
                                              accept_multiple_files=True, key="batch_images"))
    st.caption("Allowed folders: " + ", ".join(md_escape(r, 200) for r in roots))
    return Source(server_path=st.text_input("Manifest CSV on the server", placeholder=str(roots[0] / "manifest.csv")),
                  roots=roots)


def run(src: Source) -> None:
    """Score in a scratch folder; a refusal is one line and keeps the last result."""
    with tempfile.TemporaryDirectory(prefix="pneumo-batch-") as tmp:
        try:
            _score(src, Path(tmp))
        except PneumoError as err:
            st.error(md_escape(err))


def _score(src: Source, tmp: Path) -> None:
    if src.manifest is not None:
        root = tmp / "images"
        root.mkdir()
        man = tmp / "manifest.csv"
        man.write_bytes(src.manifest.getvalue())
        with st.spinner("Unpacking the images…"):
            upload = uploads.unpack_uploads([(f.name, f.getvalue()) for f in src.images or []], root)
        for problem in upload.problems:
            st.error(md_escape(problem), icon=":material/block:")
        if upload.refused:
            st.warning(f"Skipped {len(upload.refused)} archive member(s) with unsafe paths: "
                       f"{md_list(upload.refused)}")
        if upload.problems:
            return
    else:
        man = server_roots.resolve_manifest(src.server_path, src.roots)
        root = man.parent
    pred = model.predictor_or_stop()
    total = max(uploads.count_rows(man), 1)
    bar = st.progress(0.0, text="Scoring…")
    done = []

    def on_row(row):
        done.append(row)
        bar.progress(min(len(done) / total, 1.0), text=f"Scored {len(done)} of {total}")

    log = CaseLog(user=auth.current_user(ss))   # each row names who scored it (None without sign-in)
    summary = run_batch(man, tmp / "out.csv", root=root, predictor=pred, log=log, progress=False, on_row=on_row)
    bar.progress(1.0, text=f"Done: {len(done)} row(s)")
    ss["batch_result"] = pd.read_csv(tmp / "out.csv", dtype=str, keep_default_na=False)
    ss["batch_summary"] = f"{summary.scored} scored, {summary.errors} with errors, {summary.seconds:.1f} s"
    if summary.log_error:   # the answers stand; the audit trail has a gap, and the user is told
        st.warning("These cases were not logged: " + md_escape(summary.log_error))


def last_result() -> None:
    """The last run's rows, reasons first, and the CSV download."""
    if "batch_result" not in ss:
        return
    frame = ss["batch_result"]
    first = [c for c in ("row", "image_path", "error", "probability", "label") if c in frame]
    frame = frame[first + [c for c in frame.columns if c not in first]]  # reasons in view, not off-screen
    st.success(ss["batch_summary"])
    errors = frame[frame["error"].astype(str).str.len() > 0] if "error" in frame else frame[:0]
    st.dataframe(frame, hide_index=True)
    if len(errors):
        st.warning(f"{len(errors)} row(s) could not be scored; see the `error` column.")
    st.download_button("Download results (CSV)", uploads.csv_bytes(frame), file_name="pneumo-batch.csv",
                       mime="text/csv", icon=":material/download:")
