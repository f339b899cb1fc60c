"""`python -m pneumo predict` and `python -m pneumo explain`: score one case, and on request write
its explanation (Grad-CAM overlay, SHAP and the modality contribution) to a folder.

    python -m pneumo predict --image FILM [--labs LABS] [--model DIR] [--age YEARS] [--json]
    python -m pneumo explain --image FILM [--labs LABS] --out DIR
        (overlay, SHAP and contribution JSON, report.html/.pdf, sr.dcm, gradcam.dcm, diagnostic-report.json;
         outside the intended use no overlay or gradcam.dcm and no number unless --allow-outside)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pneumo.data.dicom_source import source_header
from pneumo.errors import PneumoError
from pneumo.inference.case import Case
from pneumo.inference.disclosure import shown
from pneumo.inference.predictor import Predictor
from pneumo.present import case_words as words
from pneumo.present.explanation_files import write_explanation
from pneumo.service.case_log import record_or_warn, record_refusal_or_warn


def _case_parser(command: str, text: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m pneumo {command}", description=text)
    p.add_argument("--image", help="chest X-ray: PNG, JPEG, TIFF or DICOM")
    p.add_argument("--labs", help="lab panel: wide/long CSV or FHIR R4 JSON")
    p.add_argument("--model", help="bundle folder (default: the shipped model)")
    p.add_argument("--age", help="the patient's age in years, if known (a DICOM header's age wins)")
    p.add_argument("--allow-outside", action="store_true",
                   help="show this case's number and label even outside the intended use (not validated there)")
    p.add_argument("--no-log", action="store_true", help="do not write the case log")
    return p


def _load_case(args):
    if not args.image and not args.labs:
        raise PneumoError("give --image, --labs or both")
    for flag, value in (("--image", args.image), ("--labs", args.labs)):
        if value and not Path(value).is_file():
            raise PneumoError(f"{flag} {value}: no such file")

    predictor = Predictor.load(args.model)     # LiteRT, Grad-CAM too: no TensorFlow for a current export
    case = Case.from_sources(image=args.image, labs=args.labs, panel=predictor.panel,
                             name=Path(args.image).name if args.image else None, strict=True,
                             age=args.age)
    return predictor, case


def _refusal_logged(args, score):
    """score(); a case the model refuses (a refused film, nothing to read) is logged as refused."""
    try:
        return score()
    except PneumoError as err:
        if not args.no_log:
            record_refusal_or_warn(str(err), origin="cli")
        raise


def _log(result, case, args) -> None:
    if not args.no_log:
        record_or_warn(result, labs=case.labs.values if case.labs is not None else {}, origin="cli")


def predict(argv: list[str] | None = None) -> int:
    parser = _case_parser("predict", "Score one case.")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    predictor, case = _load_case(args)
    result = _refusal_logged(args, lambda: predictor.predict(case, allow_outside=args.allow_outside))
    _log(result, case, args)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0

    show = shown(result)     # outside the intended use: the reason, and a number only with --allow-outside
    print(words.verdict_line(result) + ("" if show.probability is not None else
                                        " (--allow-outside to see the number; not validated here)"))
    if show.probability is not None:
        print(f"  {words.attribution_sentence(result)}")
    print(f"  rule: {words.rule_sentence(result.threshold)}")
    if show.probability is not None:
        print(f"  uncertainty: {result.uncertainty.get('words', '')}")
    print(f"  intended use: {words.intended_use_line(result)}")
    for note in result.notes:
        print(f"  note: {note}")
    for warning in result.warnings:
        print(f"  warning: {warning}")
    return 0


def explain(argv: list[str] | None = None) -> int:
    parser = _case_parser("explain", "Score one case and write Grad-CAM, SHAP and the modality contribution.")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    predictor, case = _load_case(args)
    explanation = _refusal_logged(args, lambda: predictor.explain(case, allow_outside=args.allow_outside))
    _log(explanation.result, case, args)
    # the film's own header, so sr.dcm and gradcam.dcm file into its study (nothing else reads it)
    source = source_header(args.image) if args.image else None
    population = predictor.population.description if predictor.population is not None else None
    for path in write_explanation(explanation, case, Path(args.out), source=source, population=population):
        print(path)
    return 0
