"""`python -m pneumo dicom-node`: a DICOM storage node for a PACS (see docs/hospital.md).

    python -m pneumo dicom-node --port 11112 --ae-title PNEUMO --forward PACS@10.0.0.5:104
        [--host 0.0.0.0] [--model DIR] [--accept-from AET ...] [--max-associations N] [--max-file-mb MB]

Each CR/DX chest film stored to it is scored, and its SR and Grad-CAM image are stored to
--forward. Stops cleanly on SIGTERM or Ctrl-C (finishing the films already received).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys

from pneumo.inference.predictor import Predictor
from pneumo.present.case_outputs import dicom_outputs
from pneumo.errors import PneumoError
from pneumo.service.dicom_node import Destination, DicomNode, Limits, check_ae_title


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pneumo dicom-node", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--ae-title", default="PNEUMO", help="this node's AE title (called AE title it answers to)")
    p.add_argument("--forward", required=True, help="where SR and Grad-CAM go: AET@HOST:PORT (often the PACS)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--model", help="bundle folder (default: the shipped model)")
    p.add_argument("--accept-from", action="append", default=[], metavar="AET",
                   help="accept associations only from this calling AE title (repeatable)")
    p.add_argument("--max-associations", type=int, default=Limits.associations, help="senders at once")
    p.add_argument("--max-file-mb", type=int, default=Limits.file_bytes >> 20, help="largest film accepted, MB")
    p.add_argument("--max-queued", type=int, default=Limits.queued, help="films received, not yet scored")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    forward = Destination.parse(args.forward)     # every argument checked before the model loads
    check_ae_title(args.ae_title)
    if not 0 < args.port < 65536 or min(args.max_associations, args.max_file_mb, args.max_queued) < 1:
        raise PneumoError("--port must be 1-65535 and each --max-* at least 1")
    # the node's own lines; the libraries' (highdicom, pynetdicom) only when something is wrong
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR, format="%(asctime)s dicom-node: %(message)s")
    logging.getLogger("pneumo").setLevel(logging.INFO)
    predictor = Predictor.load(args.model)
    predictor.warm_up(explain=True)     # plan every kernel (Keras too, for an export without a cam graph) before the first film
    node = DicomNode(predictor, ae_title=args.ae_title, port=args.port, forward=forward, host=args.host,
                     make_outputs=dicom_outputs, accept_from=tuple(args.accept_from),
                     limits=Limits(associations=args.max_associations, file_bytes=args.max_file_mb << 20,
                                   queued=args.max_queued))
    signal.signal(signal.SIGTERM, node.stop)
    signal.signal(signal.SIGINT, node.stop)
    node.start()
    node.run()
    return 0
