"""`python -m pneumo dicom-node`: a DICOM storage node for a PACS (see docs/hospital.md).

    python -m pneumo dicom-node --port 11112 --ae-title PNEUMO --forward PACS@10.0.0.5:104
        [--host 0.0.0.0 --accept-from AET@ADDRESS ...] [--model DIR] [--max-associations N]
        [--max-per-peer N] [--max-file-mb MB]

Each CR/DX chest film stored to it is scored, and its SR and Grad-CAM image are stored to
--forward. Beyond loopback (--host other than 127.0.0.1) every sender must be named by
--accept-from AET@ADDRESS (an IP address or a network), or the node does not start. Stops cleanly on SIGTERM or Ctrl-C (finishing the films already received).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings

from pneumo.inference.predictor import Predictor
from pneumo.present.case_outputs import dicom_outputs
from pneumo.errors import PneumoError
from pneumo.config import home_dir
from pneumo.service.node_outbox import Outbox, OutboxLimits
from pneumo.service.dicom_node import Destination, DicomNode, Limits, Peer, check_ae_title, check_exposure


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pneumo dicom-node", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    p.add_argument("--ae-title", default="PNEUMO", help="this node's AE title (called AE title it answers to)")
    p.add_argument("--forward", required=True, help="where SR and Grad-CAM go: AET@HOST:PORT (often the PACS)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--model", help="bundle folder (default: the shipped model)")
    p.add_argument("--accept-from", action="append", default=[], metavar="AET@ADDRESS",
                   help="accept associations only from this calling AE title at this IP address or "
                        "network (repeatable; required beyond loopback; AET alone: any address, loopback only)")
    p.add_argument("--max-associations", type=int, default=Limits.associations, help="senders at once")
    p.add_argument("--max-per-peer", type=int, default=Limits.per_peer,
                   help="connections at once from one address (idle ones too)")
    p.add_argument("--max-file-mb", type=int, default=Limits.file_bytes >> 20, help="largest film accepted, MB")
    p.add_argument("--max-queued", type=int, default=Limits.queued, help="films received, not yet scored")
    p.add_argument("--retry-seconds", type=float, default=OutboxLimits.retry_seconds,
                   help="how often outputs the destination did not take are sent again")
    p.add_argument("--max-retry-mb", type=int, default=OutboxLimits.max_bytes >> 20,
                   help="outputs kept for a retry (PNEUMO_HOME/node-outbox), MB")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    forward = Destination.parse(args.forward)     # every argument checked before the model loads
    check_ae_title(args.ae_title)
    if not 0 < args.port < 65536 or min(args.max_associations, args.max_file_mb, args.max_queued,
                                         args.max_per_peer) < 1:
        raise PneumoError("--port must be 1-65535 and each --max-* at least 1")
    if not 0 < args.retry_seconds <= 86400 or args.max_retry_mb < 1:
        raise PneumoError("--retry-seconds must be above 0 (at most a day) and --max-retry-mb at least 1")
    peers = tuple(Peer.parse(text) for text in args.accept_from)
    check_exposure(args.host, peers)               # an open write path into the PACS: refused
    # the node's own lines; the libraries' (highdicom, pynetdicom) only when something is wrong
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR, format="%(asctime)s dicom-node: %(message)s")
    logging.getLogger("pneumo").setLevel(logging.INFO)
    # pydicom's own warnings quote header values (a name in PatientSex): never on the node's log
    import pydicom  # noqa: F401 - imported first: its config sets its logger's level on import
    logging.getLogger("pydicom").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module="pydicom")
    warnings.filterwarnings("ignore", module="highdicom")
    predictor = Predictor.load(args.model)
    predictor.warm_up(explain=True)     # plan every kernel (Keras too, for an export without a cam graph) before the first film
    node = DicomNode(predictor, ae_title=args.ae_title, port=args.port, forward=forward, host=args.host,
                     make_outputs=dicom_outputs, accept_from=peers,
                     limits=Limits(associations=args.max_associations, file_bytes=args.max_file_mb << 20,
                                   queued=args.max_queued, per_peer=args.max_per_peer),
                     outbox=Outbox(home_dir() / "node-outbox",
                                   OutboxLimits(max_bytes=args.max_retry_mb << 20, retry_seconds=args.retry_seconds)))
    signal.signal(signal.SIGTERM, node.stop)
    signal.signal(signal.SIGINT, node.stop)
    node.start()
    node.run()
    return 0
