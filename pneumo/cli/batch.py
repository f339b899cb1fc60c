"""Score a manifest CSV of cases into OUT.csv (pneumo.service.batch).

    python -m pneumo batch MANIFEST.csv --out OUT.csv [--root DIR] [--model DIR] [--resume]
                          [--engine ray [--workers N] [--address ray://HOST:10001]]
        [--outputs DIR]   (each scored row's standard outputs in DIR/row-N/: see pneumo.present.case_outputs)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pneumo.errors import PneumoError, one_line
from pneumo.data.dicom_source import source_header
from pneumo.inference.predictor import Predictor
from pneumo.present.case_outputs import write_case_outputs
from pneumo.service.batch import check_manifest, run_batch
from pneumo.service.batch_output import os_reason
from pneumo.service.batch_ray import RayEngine
from pneumo.service.case_log import CaseLog, warn_not_logged


def main(argv: list[str] | None = None) -> int:
    """`python -m pneumo batch`: exit 0 when every row was handled (row errors are in OUT), 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m pneumo batch",
                                     description="Score a manifest CSV of cases into OUT.csv.")
    parser.add_argument("manifest", help="CSV with an image_path column and optional lab columns")
    parser.add_argument("--out", required=True, help="output CSV (rows are written as they are scored)")
    parser.add_argument("--root", help="folder image paths are relative to (default: the manifest's)")
    parser.add_argument("--model", help="bundle folder (default: the shipped model)")
    parser.add_argument("--resume", action="store_true", help="keep OUT's finished rows, score the rest")
    parser.add_argument("--no-log", action="store_true", help="do not write the case log")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--allow-outside", action="store_true",
                        help="label cases outside the intended use too (not validated there)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local (this process) or ray (actors holding the model; a local Ray by default)")
    parser.add_argument("--workers", type=int, default=2, help="ray: actors, each with one loaded model (default 2)")
    parser.add_argument("--address", help="ray: a running cluster (ray://HOST:10001); default: start a local Ray")
    parser.add_argument("--outputs", metavar="DIR",
                        help="also write each scored row's report.html/.pdf, sr.dcm, gradcam.dcm and "
                             "diagnostic-report.json to DIR/row-N/ (Grad-CAM: slower)")
    args = parser.parse_args(argv)
    try:
        check_manifest(args.manifest)     # a bad or oversized manifest fails before the model loads

        predictor = Predictor.load(args.model)
        log, unlogged = None, None
        if not args.no_log:
            try:
                log = CaseLog()
            except (PneumoError, OSError) as err:     # score anyway; said once, after the batch
                unlogged = err
        engine = None
        if args.engine == "ray":
            engine = RayEngine(predictor.runner.bundle.path, workers=args.workers, address=args.address)
        s = run_batch(args.manifest, args.out, root=args.root, predictor=predictor, resume=args.resume,
                      log=log, progress=not args.quiet, allow_outside=args.allow_outside, engine=engine,
                      on_case=_outputs_writer(predictor, Path(args.outputs), args.allow_outside)
                      if args.outputs else None)
    except PneumoError as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:                # any other I/O failure: one line, never a traceback
        name = f" {err.filename}" if err.filename else ""
        print(f"error: {one_line(f'{os_reason(err)}{name}')}", file=sys.stderr)
        return 2
    if unlogged is not None:             # after, so a failing batch still prints one line
        warn_not_logged(unlogged, "this batch is not logged")
    if s.log_error:
        print(f"warning: the case log stopped taking rows, {s.unlogged} scored rows are not logged "
              f"(run again with --resume to log them): {s.log_error}", file=sys.stderr)
    if s.outputs_failed:
        print(f"warning: the outputs of {s.outputs_failed} scored rows were not written: {s.outputs_error}",
              file=sys.stderr)
    resumed = f", {s.skipped_resumed} already done" if s.skipped_resumed else ""
    resumed += f" ({s.backfilled} of them logged now)" if s.backfilled else ""
    print(f"scored {s.scored}, errors {s.errors}{resumed} in {s.seconds:.1f} s "
          f"({s.cases_per_second:.1f} cases/s) -> {s.out}", file=sys.stderr)
    return 0


def _outputs_writer(predictor, folder: Path, allow_outside: bool):
    """on_case for --outputs: explain the row's case and write its standard outputs to row-N/
    (named by the row, never by the film: a file name can name the patient)."""
    population = predictor.population.description if predictor.population is not None else None

    def write(index: int, case, result, path) -> None:
        explanation = predictor.explain(case, allow_outside=allow_outside)
        source = source_header(path) if path is not None else None
        write_case_outputs(explanation, case, folder / f"row-{index}", source=source, population=population)

    return write
