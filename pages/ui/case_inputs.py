"""The inputs of one case on the Second opinion page: the film (upload, example, age), the labs
(form or file), and the labs as read back from a file."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from pneumo import config
from pneumo.data.labs import parse_labs
from pneumo.data.labs.paediatric_ranges import panel_for_age
from pneumo.data.labs.parse import display_rows
from pneumo.present import app_support as sup
from pneumo.present import lab_display
from pneumo.present.text_safe import md_escape

ss = st.session_state


def _examples() -> dict:
    """The example films, listed once per data folder, not on every rerun (hundreds of files)."""
    return _examples_in(str(config.kermany_dir()))


@st.cache_data(show_spinner=False, ttl=300)
def _examples_in(root: str) -> dict:
    return sup.example_images(Path(root))


def film(panel) -> tuple[bytes | None, float | None, bool]:
    """The film's bytes (uploaded, else the example loaded), the age typed in, and whether the
    film is the (semi-real) example."""
    ss.setdefault("upload_gen", 0)
    examples = _examples()
    left, right = st.columns(2, gap="large")
    upload = left.file_uploader("PNG, JPEG or DICOM (frontal chest film)", key=f"image_{ss.upload_gen}",
                                on_change=lambda: ss.update(example=None))
    a1, a2 = left.columns([3, 2], vertical_alignment="bottom")
    age = a1.number_input("Age in years (a DICOM header's age is used first)", min_value=0.0,
                          max_value=130.0, value=None, step=1.0, format="%g", key="age",
                          help="Used only to check the intended use (children aged 1-5); never shown or stored.")
    a2.checkbox("Age not known", key="age_unknown",
                help="Then a film without an age in its DICOM header is checked by the learned film check alone.")
    with right:
        if examples:
            c1, c2 = st.columns([1, 1], vertical_alignment="bottom")
            c1.selectbox("Or try an example", ["pneumonia", "normal"], key="example_kind",
                         format_func=lambda k: f"{k.capitalize()} example")
            c2.button("Load an example case", on_click=_load_example, args=(panel,), type="primary")
        if ss.get("example") and not upload:
            st.markdown(f"<div class='pneumo-semi'>{sup.SEMI_REAL_LABEL}</div>", unsafe_allow_html=True)
    if upload:
        return upload.getvalue(), age, False
    if ss.get("example") in examples:
        return examples[ss.example].read_bytes(), age, True
    return None, age, False


def start_hint() -> str:
    """What to do on an empty page (examples only where the data folder holds them)."""
    return "Upload a chest X-ray (and the labs, if you have them)" + \
        (", or load an example case." if _examples() else ".")


def _load_example(panel) -> None:
    """Button callback: the example film plus its lab panel, typed into the form."""
    kind = ss["example_kind"]
    ss["example"] = kind
    ss["upload_gen"] += 1  # a fresh uploader: the example replaces any uploaded film
    values = parse_labs(sup.example_labs(kind), panel).values
    for t in panel:
        ss[f"lab_{t.key}"] = values.get(t.key)
    ss["labs_mode"] = "Form"
    ss["age_unknown"] = True   # the examples are Kermany's children aged 1-5, by film only: no age per film


def age_answered(age) -> bool:
    """An age typed in, or an explicit "not known": either lets a film without a header age be scored."""
    return age is not None or bool(ss.get("age_unknown"))


AGE_PROMPT = ("**How old is the patient?** This film carries no age (no DICOM header age), and the model is "
              "validated on children aged 1-5 only. Type the age under the upload, or tick *Age not known* "
              "to let the learned film check decide.")


def labs(panel, age: float | None = None) -> tuple[dict | bytes | None, bool]:
    """The labs as typed (a dict) or as a file's bytes, and whether they came from a file. The
    ranges shown and flagged are the age's (children 1-5: paediatric ones; an unknown age too)."""
    mode = st.radio("Labs from", ["Form", "File (CSV or FHIR JSON)"], horizontal=True, key="labs_mode")
    if mode == "Form":
        return lab_form(panel_for_age(panel, age), age), False
    lab_file = st.file_uploader("A wide or long CSV, or a FHIR R4 Bundle", type=["csv", "json"], key="labs_file")
    return (lab_file.getvalue() if lab_file else None), True


def lab_form(panel, age: float | None = None) -> dict | None:
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
               "field. Leave a test empty if it was not measured. " + lab_display.ranges_caption(age))
    return values


def labs_as_read(case, panel, age: float | None = None) -> None:
    """What was read from a lab file: each value with its unit and the age's range, and what was not
    used and why (a test outside the panel, like CRP, is not a model input)."""
    reading = case.labs
    if reading is None:
        return
    header_age = getattr(getattr(case.image, "meta", None), "age_years", None)
    age = header_age if header_age is not None else age
    rows = [d for d in display_rows(reading, panel_for_age(panel, age)) if d["value"] is not None]
    st.markdown(f"**Read from the file:** {len(rows)} of {len(panel)} panel tests")
    if rows:
        st.dataframe(lab_display.lab_display_frame(rows), hide_index=True, width="stretch")
    if rows:
        st.caption(lab_display.ranges_caption(age))
    if reading.unknown:
        st.caption("Not used: " + "; ".join(lab_display.not_used_lines(reading.unknown[:20], panel, md_escape)))
