"""The answer for one case on the Second opinion page: scoring it once, the verdict box, and the
explanation below (Grad-CAM, the labs' bars and what-if in pages.ui.lab_effects, downloads). The words come from
pneumo.present.case_words, so the page, the report and the CLI say the same thing."""
from __future__ import annotations

import hashlib
import json

import streamlit as st

from pages.ui import model
from pages.ui.lab_effects import lab_effects
from pneumo.data.dicom_io import looks_like_dicom
from pneumo.data.dicom_source import source_header
from pneumo.errors import PneumoError
from pneumo.explain.attribution import for_display, shrink_to
from pneumo.present import app_support as sup
from pneumo.present import case_words as words
from pneumo.present import figures as figs
from pneumo.present import lab_display
from pneumo.present.overlay_view import GRADCAM_CAVEAT, NO_REGION, blend_widget, no_region, widget_height
from pneumo.present.case_outputs import structured_report_bytes
from pneumo.present.pdf_report import render_case_pdf
from pneumo.present.report import render_case_report
from pneumo.inference.case import Case
from pneumo.inference.disclosure import shown
from pneumo.present.text_safe import md_escape

ss = st.session_state


def score_once(top, image_bytes, labs_source, age, age_answered: bool = True) -> tuple[str, dict]:
    """Score the case unless these very inputs were scored last run: (case key, {case, result,
    error, needs_age}). Only the answer here (milliseconds); the explanation follows in explanation().
    A film whose header does not settle the intended use gets no answer until the age, or "not
    known", is given (`age_answered`): then `needs_age`, no result to show or log (a refusal of the
    film itself is still said at once)."""
    key = lab_display.case_key(hashlib.sha256(image_bytes).hexdigest() if image_bytes else None,
                               labs_source if isinstance(labs_source, dict)
                               else hashlib.sha256(labs_source or b"").hexdigest())
    key = f"{key}:{age}:{'answered' if age_answered else 'no age'}"
    if ss.get("scored", {}).get("key") != key:
        with top, st.spinner("Scoring… (reading the film and the labs)"):
            pred = model.predictor_or_stop()
            try:
                case = Case.from_sources(image=image_bytes, labs=labs_source, panel=pred.panel, age=age)
                result = pred.predict(case, allow_outside=False)   # a refusal (a photo, a blank) is said first
                needs_age = not age_answered and case.image is not None and \
                    not sup.header_decides_use(pred.population, case)
                ss["scored"] = {"key": key, "case": case, "result": None if needs_age else result,
                                "error": None, "needs_age": needs_age}
            except PneumoError as err:
                ss["scored"] = {"key": key, "error": str(err), "case": None}
    return key, ss["scored"]


def explanation(pred, scored: dict, show):
    """The scored case's Explanation (Grad-CAM, SHAP, contributions), made once per case and
    request; None (and one line) if it cannot be made. The answer above does not wait for it."""
    if scored.get("expl") is None or scored["expl"].result.outside_allowed != show.asked:
        with st.spinner("Explaining… (where the film drove the answer, what the labs did)"):
            try:
                scored["expl"] = pred.explain(scored["case"], allow_outside=show.asked)
            except PneumoError as err:
                st.error("No explanation: " + md_escape(str(err)), icon=":material/block:")
                return None
    return scored["expl"]


def verdict(r, key: str):
    """The answer at the top of the page, as pneumo.inference.disclosure decides; returns what it
    showed (Shown), or None when the case is outside the intended use and the user has not asked,
    for this case, to see the number (then nothing below should be read as an opinion). The toggle
    is keyed on the case, so a new film or new labs start with it off."""
    show = shown(r, False)
    if show.outside:
        st.error("**No second opinion: this case is outside the model's intended use.** "
                 + md_escape(words.capital(show.lead_reason)) + ".", icon=":material/block:")
        if not st.toggle("Show the number anyway (not validated for this case)", key=f"show_outside:{key}"):
            return None
        show = shown(r, True)
        st.warning("Not validated: the model was never tested on cases like this one. "
                   "The number below is not a second opinion.", icon=":material/warning:")
    c1, c2 = st.columns([1, 2], vertical_alignment="center")
    labs_only = not r.modalities.get("image")
    if labs_only:           # weak evidence: words and a neutral colour, not a verdict
        c1.markdown(f"<div class='pneumo-weak'>{words.labs_only_headline(r.probability)}</div><div class='pneumo-sub'>"
                    f"{words.labs_only_sub(r.threshold, getattr(model.predictor_or_stop(), 'metrics', None))}</div>",
                    unsafe_allow_html=True)
    elif show.verdict_colour:
        c1.markdown(f"<div class='pneumo-result {show.label}'>{show.label}</div><div class='pneumo-sub'>"
                    f"P(pneumonia) <b>{r.probability:.2f}</b> · threshold {r.threshold:.2f} · {r.band}</div>",
                    unsafe_allow_html=True)
    else:   # the number only: no label word, no verdict colour
        c1.markdown(f"<div class='pneumo-result'>P(pneumonia) {r.probability:.2f}</div><div class='pneumo-sub'>"
                    f"threshold {r.threshold:.2f} · not validated for this case</div>", unsafe_allow_html=True)
    c2.plotly_chart(figs.probability_figure(r.probability, r.threshold,
                                            show.label if show.verdict_colour and not labs_only else None),
                    config={"displayModeBar": False})
    st.caption(f"**Rule:** {words.rule_sentence(r.threshold)}  \n"
               f"**Uncertainty ({r.band}):** {words.band_meaning(r.band)}; {r.uncertainty.get('words', '')}.  \n"
               f"**Intended use:** {md_escape(words.intended_use_line(r))}  \n"
               f"**Inputs:** {words.inputs_given(r)}" + (f" · {md_escape('; '.join(r.notes))}" if r.notes else ""))
    for w in r.warnings:
        st.warning(md_escape(w, 400), icon=":material/warning:")
    return show


def details(pred, case, expl, *, example: bool, image_bytes: bytes | None = None) -> None:
    """Below the inputs: where the film drove the answer, what the labs did, the what-if, downloads."""
    r = expl.result
    verdict_words = shown(r).verdict_colour and bool(r.modalities.get("image"))   # labs only: no verdict words
    st.divider()
    st.markdown(words.attribution_sentence(r))
    over = None
    if case.image is not None:
        st.subheader("Where the film drove the answer")
        a, b = st.columns([4, 5])
        film, widget = _display_copy(r.image_digest, case.image.pixels, expl.gradcam)
        a.image(film, caption="The film as read", clamp=True, width="stretch")
        if widget is not None:
            with b:   # an iframe runs the opacity slider's script in the browser: no rerun, nothing recomputed
                if no_region(expl.gradcam):
                    st.info(NO_REGION + ".", icon=":material/check_circle:")
                st.iframe(widget, height=widget_height(film.shape),
                          alt="The film with its Grad-CAM heat map, a colour scale and an opacity slider")
                st.caption(GRADCAM_CAVEAT)
            over = expl.overlay
    lab_effects(pred, case, expl, label_words=verdict_words)
    downloads(pred, case, expl, over, example=example, image_bytes=image_bytes)


def downloads(pred, case, expl, over, *, example: bool, image_bytes: bytes | None) -> None:
    """The case report (HTML, PDF), the DICOM SR for a PACS, and the raw JSON. The reports and the
    SR are made when clicked (a callable), not on every rerun, and a download does not rerun the page."""
    pixels = case.image.pixels if case.image is not None else None
    kw = dict(example_label=sup.SEMI_REAL_LABEL if example else None,
              population=pred.population.description if pred.population is not None else None)
    d1, d2, d3, d4 = st.columns([3, 2, 2, 2])
    d1.download_button("Download the case report (HTML)", file_name="pneumo-case-report.html", mime="text/html",
                       data=lambda: render_case_report(expl, pixels, over, **kw), icon=":material/download:",
                       on_click="ignore")
    d2.download_button("Report as PDF", file_name="pneumo-case-report.pdf", mime="application/pdf",
                       data=lambda: render_case_pdf(expl, pixels, over, **kw), icon=":material/picture_as_pdf:",
                       on_click="ignore")
    if pixels is not None:      # a DICOM film's SR carries its patient and study, for its PACS
        phi = bool(image_bytes) and looks_like_dicom(image_bytes[:132])
        d3.download_button("DICOM SR for the PACS" + (" (patient identifiers)" if phi else ""),
                           file_name="pneumo-sr.dcm", mime="application/dicom",
                           data=lambda: structured_report_bytes(expl.result, expl.overlay, source_header(image_bytes)),
                           icon=":material/description:", on_click="ignore",
                           help=("A DICOM Structured Report of this answer, for the PACS. It carries the patient's "
                                 "identifiers copied from the film's DICOM header (name, ID, birth date, study) so the "
                                 "PACS files it into the patient's study: keep it inside the hospital's systems."
                                 if phi else "A DICOM Structured Report of this answer, for a PACS. The film is not "
                                 "DICOM, so the report carries no patient identifiers and files as a new study."))
    d4.download_button("Result as JSON", file_name="pneumo-result.json", mime="application/json",
                       data=json.dumps(expl.to_dict(), indent=2), icon=":material/data_object:",
                       on_click="ignore")


def _display_copy(digest, pixels, heat):
    """The film at screen size and its blend widget, made once per case."""
    digest = (digest, id(heat))       # a new explanation (other labs move Grad-CAM too): a new copy
    cached = ss.get("display_copy")
    if cached is None or cached[0] != digest:
        if heat is None:
            cached = (digest, shrink_to(pixels, 768), None)
        else:
            film, shown = for_display(pixels, heat)
            cached = (digest, film, blend_widget(film, shown))
        ss["display_copy"] = cached
    return cached[1], cached[2]
