"""`python -m pneumo ...`: the command line. Each subcommand delegates to one library
module; this file only parses arguments and turns typed errors into one line on stderr.

Exit codes: 0 ok, 2 bad input (one line on stderr, never a traceback), 1 internal error.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pneumo.errors import PneumoError
from pneumo.inference.predictor import Case
from pneumo.inference.quiet import load_predictor
from pneumo.present import case_words as words
from pneumo.present.explanation_files import write_explanation
from pneumo.service.case_log import CaseLog, record_or_warn, record_refusal_or_warn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users


def _add_case_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", help="chest X-ray: PNG, JPEG, TIFF or DICOM")
    p.add_argument("--labs", help="lab panel: wide/long CSV or FHIR R4 JSON")
    p.add_argument("--model", help="bundle folder (default: the shipped model)")
    p.add_argument("--age", help="the patient's age in years, if known (a DICOM header's age wins)")
    p.add_argument("--allow-outside", action="store_true",
                   help="label a case outside the intended use too (not validated there)")


def _load_case(args):
    if not args.image and not args.labs:
        raise PneumoError("give --image, --labs or both")
    for flag, value in (("--image", args.image), ("--labs", args.labs)):
        if value and not Path(value).is_file():
            raise PneumoError(f"{flag} {value}: no such file")

    predictor = load_predictor(args.model)     # imports TensorFlow, silenced

    case = Case.from_sources(image=args.image, labs=args.labs, panel=predictor.panel,
                             name=Path(args.image).name if args.image else None, strict=True,
                             age=args.age)
    return predictor, case


def cmd_predict(args) -> int:
    predictor, case = _load_case(args)
    result = _refusal_logged(args, lambda: predictor.predict(case, allow_outside=args.allow_outside))
    _log(result, case, "cli", args)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0

    print(words.verdict_line(result) if result.label else
          words.verdict_line(result) + f" P(pneumonia) {result.probability:.3f} is not validated here "
          "(--allow-outside to label it).")
    print(f"  {words.attribution_sentence(result)}")
    print(f"  rule: {words.rule_sentence(result.threshold)}")
    print(f"  uncertainty: {result.uncertainty.get('words', '')}")
    print(f"  intended use: {words.intended_use_line(result)}")
    for note in result.notes:
        print(f"  note: {note}")
    for warning in result.warnings:
        print(f"  warning: {warning}")
    return 0


def cmd_explain(args) -> int:
    predictor, case = _load_case(args)
    explanation = _refusal_logged(args, lambda: predictor.explain(case, allow_outside=args.allow_outside))
    _log(explanation.result, case, "cli", args)
    paths = write_explanation(explanation, case, Path(args.out))
    for path in paths:
        print(path)
    return 0


def _refusal_logged(args, score):
    """score(); a case the model refuses (a refused film, nothing to read) is logged as refused."""
    try:
        return score()
    except PneumoError as err:
        if not getattr(args, "no_log", False):
            record_refusal_or_warn(str(err), origin="cli")
        raise


def _log(result, case, origin, args) -> None:
    if getattr(args, "no_log", False):
        return

    labs = case.labs.values if case.labs is not None else {}
    record_or_warn(result, labs=labs, origin=origin)


def cmd_history(args) -> int:
    if args.purge_before:
        removed = CaseLog().purge_before(args.purge_before)
        print(f"removed {removed} cases logged before {args.purge_before}")
        return 0
    frame = CaseLog().recent(args.limit)
    print(frame.to_string(index=False) if len(frame) else "no cases logged yet")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pneumo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="score one case")
    _add_case_args(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--no-log", action="store_true", help="do not write the case log")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("explain", help="score one case and write Grad-CAM, SHAP and contribution")
    _add_case_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-log", action="store_true")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("history", help="print the most recent logged cases")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--purge-before", metavar="DATE", help="delete the cases logged before DATE (YYYY-MM-DD)")
    p.set_defaults(func=cmd_history)

    for name, text in (
        ("batch", "score a manifest CSV (see `batch --help`)"),
        ("train", "train a model bundle (see `train --help`)"),
        ("ensemble", "average trained bundles into one seed-ensemble bundle"),
        ("experiment", "run the paper's protocol from a config"),
        ("tables", "print the paper's Tables 1-2 beside ours"),
        ("bench", "measure speed and memory, write JSON"),
    ):
        sub.add_parser(name, help=text, add_help=False)   # listed in --help; main() delegates
    return parser


DELEGATED = {"batch": "pneumo.service.batch", "train": "pneumo.training.fit", "ensemble": "pneumo.training.ensemble",
             "experiment": "pneumo.experiments.protocol",
             "tables": "pneumo.experiments.paper_tables", "bench": "pneumo.qa.bench"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] in DELEGATED:   # the module parses its own arguments, --help included
            import importlib

            return int(importlib.import_module(DELEGATED[argv[0]]).main(argv[1:]) or 0)
        args = build_parser().parse_args(argv)
        return args.func(args)
    except PneumoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the contract is one line, never a traceback
        if os.environ.get("PNEUMO_DEBUG"):
            raise
        print(f"internal error: {type(err).__name__}: {err} (set PNEUMO_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
