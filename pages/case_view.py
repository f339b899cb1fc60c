"""The widgets of one case on the Second opinion page: the lab form, the labs as read, the
verdict box and the explanation below. A helper module, not a page; the words come from
pneumo.present.case_words, so the page, the report and the CLI say the same thing."""
from __future__ import annotations

import json

import streamlit as st

from pages import common
from pneumo.explain.attribution import colour_bar, for_display, overlay, shrink_to
from pneumo.present import app_support as sup
from pneumo.present import case_words as words
from pneumo.present import figures as figs
from pneumo.present import lab_display
from pneumo.present.report import render_case_report
from pneumo.present.text_safe import md_escape

ss = st.session_state


def lab_form(panel) -> dict | None:
    """Twenty number fields; a value applies as soon as it is entered (no separate step)."""
    tests = list(panel)
    for row in range(0, len(tests), 5):  # one st.columns per row keeps the order when stacked
        for col, t in zip(st.columns(5), tests[row:row + 5]):
            flag = lab_display.range_flag(t, ss.get(f"lab_{t.key}"))
            col.number_input(f"{lab_display.short_name(t.key, t.name)} ({t.display_unit})" + (f" · {flag}" if flag else ""),
                             value=None, key=f"lab_{t.key}", help=lab_display.lab_help(t),
                             placeholder=lab_display.ref_text(t, unit=False), format="%g", step=0.1)
    values = lab_display.form_values({t.key: ss.get(f"lab_{t.key}") for t in panel})
    flagged = [f"{lab_display.short_name(t.key, t.name)} {lab_display.fmt_number(ss.get(f'lab_{t.key}'))} "
               f"({lab_display.range_flag(t, ss.get(f'lab_{t.key}'))})" for t in panel if lab_display.range_flag(t, ss.get(f"lab_{t.key}"))]
    if flagged:
        st.markdown(f"<span class='pneumo-flag'>Outside the reference range:</span> {', '.join(flagged)}",
                    unsafe_allow_html=True)
    st.caption(f"{len(values or {})} of {len(tests)} values entered; each applies as soon as you leave its "
               "field. Leave a test empty if it was not measured.")
    return values


def labs_as_read(case, panel) -> None:
    """What was read from a lab file: each value with its unit and range, and what was not used."""
    reading = case.labs
    if reading is None:
        return
    rows = [d for d in _lab_rows(case, panel) if d["value"] is not None]
    st.markdown(f"**Read from the file:** {len(rows)} of {len(panel)} panel tests")
    if rows:
        st.dataframe(lab_display.lab_display_frame(rows), hide_index=True, width="stretch")
    if reading.unknown:
        st.caption("Not used (not in the panel): " + md_escape(", ".join(reading.unknown[:20])))


def _lab_rows(case, panel) -> list[dict]:
    values, out = case.labs.values, set(case.labs.out_of_range)
    return [{"key": t.key, "name": t.name, "unit": t.display_unit, "value": values.get(t.key),
             "ref_low": t.ref_low, "ref_high": t.ref_high, "imputed": values.get(t.key) is None,
             "out_of_range": t.key in out} for t in panel]


def verdict(r) -> bool:
    """The answer at the top of the page. False when it is outside the intended use and the user
    has not asked to see the number anyway (then nothing below should be read as an opinion)."""
    if r.intended_use == "outside":
        st.error("**No second opinion: this case is outside the model's intended use.** "
                 + md_escape(words.capital(r.intended_use_reason)) + ".", icon=":material/block:")
        if not st.toggle("Show the number anyway (not validated for this case)", key="show_outside"):
            return False
        st.warning("Not validated: the model was never tested on cases like this one. "
                   "The number below is not a second opinion.", icon=":material/warning:")
    label = r.suggested_label
    c1, c2 = st.columns([1, 2], vertical_alignment="center")
    c1.markdown(f"<div class='pneumo-result {label}'>{label}</div><div class='pneumo-sub'>P(pneumonia) "
                f"<b>{r.probability:.2f}</b> · threshold {r.threshold:.2f} · {r.band}</div>",
                unsafe_allow_html=True)
    c2.plotly_chart(figs.probability_figure(r.probability, r.threshold, label), config={"displayModeBar": False})
    st.caption(f"**Rule:** {words.rule_sentence(r.threshold)}  \n"
               f"**Uncertainty ({r.band}):** {words.band_meaning(r.band)}; {r.uncertainty.get('words', '')}.  \n"
               f"**Intended use:** {md_escape(words.intended_use_line(r))}  \n"
               f"**Inputs:** {words.inputs_given(r)}" + (f" · {md_escape('; '.join(r.notes))}" if r.notes else ""))
    for w in r.warnings:
        st.warning(md_escape(w, 400), icon=":material/warning:")
    return True


def details(pred, case, expl, *, example: bool) -> None:
    """Below the inputs: where the film drove the answer, what the labs did, the what-if, downloads."""
    r = expl.result
    st.divider()
    st.markdown(words.attribution_sentence(r))
    over = None
    if case.image is not None:
        st.subheader("Where the film drove the answer")
        a, b, c = st.columns([2, 2, 1])
        film, heat = _display_copy(r.image_digest, case.image.pixels, expl.gradcam)
        a.image(film, caption="The film as read", clamp=True, width="stretch")
        if heat is not None:
            alpha = c.slider("Heat-map opacity", 0.0, 1.0, 0.45, 0.05)
            b.image(overlay(film, heat, alpha), caption="Grad-CAM: warmer = raised the pneumonia score",
                    width="stretch")
            c.image(colour_bar(200, 14), caption="low ← heat → high", width="stretch")
            over = expl.overlay
    st.subheader("What the labs contributed")
    if expl.shap_values:
        left, right = st.columns([3, 2], gap="large")
        frame = lab_display.shap_frame(expl.shap_values, expl.lab_display)
        left.plotly_chart(figs.shap_figure(frame), config={"displayModeBar": False})
        left.caption(words.shap_caption(r, len(frame), len(expl.lab_display)))
        with right:
            common.what_if(pred, case, r.probability)
    else:
        st.caption("No labs given, so there is nothing to attribute here.")
    d1, d2, _ = st.columns([3, 2, 2])
    d1.download_button("Download the case report (HTML)", file_name="pneumo-case-report.html", mime="text/html",
                       data=render_case_report(expl, case.image.pixels if case.image is not None else None, over,
                                               example_label=sup.SEMI_REAL_LABEL if example else None,
                                               population=pred.population.description
                                               if pred.population is not None else None),
                       icon=":material/download:")
    d2.download_button("Result as JSON", file_name="pneumo-result.json", mime="application/json",
                       data=json.dumps(expl.to_dict(), indent=2), icon=":material/data_object:")


def _display_copy(digest, pixels, heat):
    """The film and heat map at screen size, made once per case (the slider only re-blends)."""
    digest = (digest, id(heat))       # a new explanation (other labs move Grad-CAM too): a new copy
    cached = ss.get("display_copy")
    if cached is None or cached[0] != digest:
        cached = (digest, *(for_display(pixels, heat) if heat is not None else (shrink_to(pixels, 768), None)))
        ss["display_copy"] = cached
    return cached[1], cached[2]
