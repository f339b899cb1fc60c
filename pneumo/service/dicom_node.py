"""A DICOM storage node (pynetdicom): a PACS sends it chest films by C-STORE; each CR/DX film is
scored through the Predictor (the validity gate and the intended-use check apply) and its SR and
Grad-CAM image are sent on by C-STORE to one destination. A film outside the intended use, or one
that cannot be read, gets an SR that says so and no score. Each case is logged without
identifiers (the case log, and one line on the log stream); the DICOM outputs alone carry the
film's patient and study, back to the hospital's own systems.

The C-STORE handler only checks and queues (a sender's timeout must not wait for Grad-CAM); one
worker scores the queue in order. Limits: associations at once and per peer address, seconds a
connection may take to ask for an association, bytes per film, films queued. Beyond loopback only
the peers named by --accept-from (AE title at an address) may connect. Deflated transfer syntaxes
are not negotiated (a deflate bomb inflates in pynetdicom before any check could run). Outputs the
destination does not take wait in a bounded retry queue on disk (pneumo.service.node_outbox)."""
from __future__ import annotations

import ipaddress
import logging
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pneumo import config
from pneumo.data.decode_limits import DEFLATED_SYNTAXES
from pneumo.data.dicom_source import source_header
from pneumo.data.dicom_terms import DIGITAL_MODALITIES, shown_modality
from pneumo.errors import PneumoError
from pneumo.inference.case import Case
from pneumo.inference.disclosure import shown
from pneumo.service.case_log import CaseLog, record_refusal_or_warn, warn_not_logged
from pneumo.service.node_outbox import Outbox

log = logging.getLogger("pneumo.dicom_node")

CR = "1.2.840.10008.5.1.4.1.1.1"                 # Computed Radiography Image Storage
DX = "1.2.840.10008.5.1.4.1.1.1.1"               # Digital X-Ray Image Storage - For Presentation
ACCEPTED_SOP_CLASSES = {CR: "CR", DX: "DX"}
ACCEPTED_MODALITIES = DIGITAL_MODALITIES   # stricter than the decoder: only what a PACS sends as a chest film
# C-STORE statuses (PS3.4 B.2.3 and pynetdicom's docs)
SUCCESS, OUT_OF_RESOURCES, NOT_SUPPORTED, DOES_NOT_MATCH, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0x0122, 0xA900, 0xC210
_AET = re.compile(r"^[ -~]{1,16}$")
RETRY_BATCH = 20                                 # files sent from the retry queue per try


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Destination":
        """'AET@HOST:PORT' -> Destination; PneumoError saying what is wrong otherwise."""
        match = re.match(r"^([^@]{1,16})@([^:@]+):(\d{1,5})$", text or "")
        if not match or not _AET.match(match.group(1)) or not 0 < int(match.group(3)) < 65536:
            raise PneumoError(f"--forward must be AET@HOST:PORT (AE title of 1-16 characters), not {text!r}")
        return cls(match.group(1).strip(), match.group(2), int(match.group(3)))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def check_ae_title(text: str) -> str:
    if not _AET.match(text or "") or not text.strip():
        raise PneumoError(f"an AE title is 1-16 printable ASCII characters, not {text!r}")
    return text.strip()


@dataclass(frozen=True)
class Peer:
    """One --accept-from entry: a calling AE title, and the address or network it must come from
    (None: any address; allowed only while the node listens on loopback)."""
    ae_title: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, text: str) -> "Peer":
        """'AET' or 'AET@ADDRESS' (an IP address or a network such as 10.20.0.0/16)."""
        aet, at, where = (text or "").rpartition("@") if "@" in (text or "") else (text, "", "")
        try:
            network = ipaddress.ip_network(where.strip(), strict=False) if at else None
        except ValueError:
            raise PneumoError(f"--accept-from must be AET@ADDRESS (an IP address or network), not {text!r}") from None
        return cls(check_ae_title(aet), network)

    def admits(self, ae_title: str, address: str) -> bool:
        return ae_title.strip() == self.ae_title and (self.network is None or _in(address, self.network))


def _in(address: str, network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_exposure(host: str, peers: tuple[Peer, ...]) -> None:
    """Beyond loopback the node is a write path into the PACS: every sender must be named, by
    AE title and address. PneumoError (one line) otherwise."""
    if is_loopback(host):
        return
    if not peers:
        raise PneumoError(f"listening on {host} (beyond this machine) requires --accept-from AET@ADDRESS "
                          "for each sender; without it any device could store films under any patient")
    if any(p.network is None for p in peers):
        raise PneumoError(f"listening on {host} (beyond this machine), each --accept-from must name the "
                          "sender's address too: AET@ADDRESS (an IP address or network)")


@dataclass(frozen=True)
class Limits:
    associations: int = 4                 # senders at once
    file_bytes: int = 128 * 1024 * 1024   # one film as received (a 50 MP, 16-bit film is 100 MB)
    queued: int = 16                      # films received but not yet scored
    drain_seconds: float = 20.0           # on SIGTERM: time left to score what is queued
    per_peer: int = 2                     # connections at once from one address (idle ones too)
    request_seconds: float = 8.0          # a connection that sends no A-ASSOCIATE-RQ in this time is closed
    idle_seconds: float = 60.0            # an association that sends nothing for this long is aborted


class DicomNode:
    """One node: start() listens, run() scores the queue until stop(); make_outputs(result,
    overlay, source, refusal=, model=) -> [(file name, Dataset)] builds what is sent on
    (pneumo.present.case_outputs.dicom_outputs; passed in, the layers go that way)."""

    def __init__(self, predictor, *, ae_title: str, port: int, forward: Destination, make_outputs,
                 host: str = "127.0.0.1", limits: Limits = Limits(), accept_from: tuple[str, ...] = (),
                 outbox: Outbox | None = None):
        self.predictor, self.make_outputs, self.forward = predictor, make_outputs, forward
        self.ae_title, self.host, self.port, self.limits = check_ae_title(ae_title), host, port, limits
        self.accept_from = tuple(a if isinstance(a, Peer) else Peer.parse(a) for a in accept_from)
        check_exposure(host, self.accept_from)
        self.outbox = outbox if outbox is not None else Outbox(config.home_dir() / "node-outbox")
        self._next_retry = 0.0
        self._refused_at = 0.0
        self._conns: dict = {}                 # open sockets -> peer address (the per-peer limit)
        self._conn_lock = threading.Lock()
        self.queue: queue.Queue = queue.Queue(maxsize=limits.queued)
        self.stopping = threading.Event()
        self.session = f"dicom-node-{uuid.uuid4().hex[:12]}"   # the case log's batch id for this run
        self.cases = 0
        self.server = None

    # --- receiving --------------------------------------------------------------------------
    def start(self) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        # every storage class is negotiated, so a non-radiograph is refused with a status and a line;
        # never a deflated syntax: pynetdicom would inflate it whole before the handler sees a byte
        syntaxes = [ts for ts in AllStoragePresentationContexts[0].transfer_syntax if ts not in DEFLATED_SYNTAXES]
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, syntaxes)
        ae.add_supported_context(Verification, syntaxes)
        ae.maximum_associations = self.limits.associations
        ae.require_called_aet = True
        ae.acse_timeout = self.limits.request_seconds     # also the wait for the A-ASSOCIATE-RQ
        ae.dimse_timeout = ae.network_timeout = self.limits.idle_seconds
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_REQUESTED, self._on_requested)]
        try:
            self.server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        except OSError as err:
            raise PneumoError(f"cannot listen on {self.host}:{self.port}: {err.strerror or err}") from None
        self.server.verify_request = self._verify_connection    # before any association thread starts
        log.info("listening as %s on %s:%d; sending SR and Grad-CAM to %s",
                 self.ae_title, self.host, self.port, self.forward)

    def _verify_connection(self, request, client_address) -> bool:
        """socketserver's hook, per TCP connection before any thread: an address not in
        --accept-from, or one that already holds its share of the associations, is closed at once."""
        address = str(client_address[0]) if isinstance(client_address, tuple) else str(client_address)
        nets = [p.network for p in self.accept_from if p.network is not None]
        if nets and not any(_in(address, n) for n in nets):
            self._refusal(f"refused a connection from {address}: not in --accept-from")
            return False
        with self._conn_lock:   # sockets still open (an association's thread may not exist yet)
            self._conns = {sock: addr for sock, addr in self._conns.items() if sock.fileno() != -1}
            held = sum(1 for addr in self._conns.values() if addr == address)
            if held >= self.limits.per_peer:
                self._refusal(f"refused a connection from {address}: it already holds {held} "
                              f"(the limit per address is {self.limits.per_peer})")
                return False
            self._conns[request] = address
        return True

    def _on_requested(self, event) -> None:
        """An A-ASSOCIATE-RQ: with --accept-from, the calling AE title must be named for this address."""
        if not self.accept_from:
            return
        requestor = event.assoc.requestor
        title, address = str(requestor.primitive.calling_ae_title or "").strip(), str(requestor.address)
        if not any(p.admits(title, address) for p in self.accept_from):
            self._refusal(f"refused an association from {address}: its calling AE title is not in --accept-from")
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)    # rejected permanent: calling AE title not recognised

    def _refusal(self, line: str) -> None:
        """A refused connection's line, at most one a second (a flood must not flood the log)."""
        now = time.monotonic()
        if now - self._refused_at >= 1.0:
            self._refused_at = now
            log.info("%s", line)

    def _on_store(self, event) -> int:
        """Check one C-STORE and queue it; the status says why a film is refused."""
        sop = str(event.request.AffectedSOPClassUID)
        if str(event.context.transfer_syntax) in DEFLATED_SYNTAXES:   # never negotiated; never trusted either
            log.info("refused: a deflated transfer syntax")
            return CANNOT_UNDERSTAND
        if sop not in ACCEPTED_SOP_CLASSES:
            log.info("refused: SOP class %s is not a CR/DX chest radiograph", _sop_name(sop))
            return NOT_SUPPORTED
        size = event.request.DataSet.getbuffer().nbytes if event.request.DataSet is not None else 0
        if size > self.limits.file_bytes:
            log.info("refused: a film of %d MB, over the limit of %d MB", size >> 20, self.limits.file_bytes >> 20)
            return OUT_OF_RESOURCES
        try:
            ds = event.dataset
            ds.file_meta = event.file_meta
            modality = str(ds.get("Modality") or "").strip().upper()
        except Exception as exc:   # noqa: BLE001 - any malformed dataset: a status, not a crash
            log.info("refused: the dataset cannot be decoded (%s)", type(exc).__name__)
            return CANNOT_UNDERSTAND
        if modality not in ACCEPTED_MODALITIES:
            log.info("refused: modality %s in a %s object", shown_modality(modality, "unrecognised"),
                     ACCEPTED_SOP_CLASSES[sop])
            return DOES_NOT_MATCH
        try:
            self.queue.put_nowait(_part10(ds))
        except queue.Full:
            log.info("refused: %d films already waiting to be scored", self.limits.queued)
            return OUT_OF_RESOURCES
        return SUCCESS

    # --- scoring and sending on --------------------------------------------------------------
    def run(self) -> None:
        """Score the queue until stop(); then stop listening and finish what is queued, within the
        drain time. Each film's failure is its own line; the node goes on."""
        while not self.stopping.is_set():
            self._next(timeout=0.2)
            self._retry_outbox()
        if self.server is not None:
            self.server.shutdown()
        deadline = time.monotonic() + self.limits.drain_seconds
        while not self.queue.empty() and time.monotonic() < deadline:
            self._next(timeout=0)
        if not self.queue.empty():
            log.info("stopped with %d films not scored (the sender may send them again)", self.queue.qsize())
        waiting, _ = self.outbox.size()
        if waiting:
            log.info("%d output files wait in the retry queue; sent when the node runs again", waiting)
        log.info("stopped after %d cases", self.cases)

    def stop(self, *_) -> None:
        self.stopping.set()

    def _next(self, timeout: float) -> None:
        try:
            data = self.queue.get(timeout=timeout) if timeout else self.queue.get_nowait()
        except queue.Empty:
            return
        try:
            self.process(data)
        except Exception as exc:   # noqa: BLE001 - one bad film must not stop the node
            log.info("case failed (%s); the node goes on", _error_kind(exc))

    def process(self, data: bytes) -> list:
        """Score one film (DICOM bytes), send its outputs on; returns them."""
        self.cases += 1
        source = source_header(data)
        result, overlay, refusal = None, None, None
        try:
            case = Case.from_sources(image=data, panel=self.predictor.panel)
            result = self.predictor.predict(case, allow_outside=False)
            if shown(result).gradcam:    # within (or unknown) intended use: the heat map too
                overlay = self.predictor.explain(case, shap=False, allow_outside=False).overlay
        except PneumoError as err:   # refused or unreadable: the SR says why, with no score
            refusal = str(err)
        self._log_case(result, refusal)     # first: a failure making the outputs must not lose the record
        outputs = self.make_outputs(result, overlay, source, refusal=refusal,
                                    model=self.predictor.runner.model_info())
        sent = self._send(outputs)
        what = (f"{result.label} P(pneumonia) {result.probability:.3f}" if result is not None and shown(result).verdict_colour
                else f"no score ({'outside the intended use' if result is not None else 'not read'})")
        log.info("case %d: %s; %s", self.cases, what, sent)
        return outputs

    def _log_case(self, result, refusal) -> None:
        try:
            if result is None:
                record_refusal_or_warn(refusal or "not read", origin="dicom-node")
            else:   # the node's run is the log's batch: one row per film received
                CaseLog().record(result, labs={}, origin="dicom-node", batch_id=self.session, row_index=self.cases)
        except Exception as err:   # noqa: BLE001 - the answer matters more than its record
            warn_not_logged(err, "this case was not logged")

    def _send(self, outputs) -> str:
        """Store the outputs to --forward; what it does not take waits in the retry queue."""
        taken = self._store_all(outputs)
        failed = [(name, ds) for name, ds in outputs if name not in taken]
        names = ", ".join(name for name, _ in outputs)
        if not failed:
            return f"sent {names} to {self.forward}"
        items = [(Path(name).stem, _part10(ds)) for name, ds in failed]
        if self.outbox.put(items):
            count, used = self.outbox.size()
            return (f"NOT sent to {self.forward}: {', '.join(n for n, _ in failed)} kept in the retry queue "
                    f"({count} files, {used >> 20} MB waiting; retried every {self.outbox.limits.retry_seconds:.0f} s)")
        return (f"NOT sent to {self.forward} and DROPPED: {', '.join(n for n, _ in failed)} (the retry queue is "
                f"full: {self.outbox.limits.max_files} files or {self.outbox.limits.max_bytes >> 20} MB)")

    def _store_all(self, outputs) -> set:
        """C-STORE each (name, Dataset) in one association; the names the destination took."""
        from pynetdicom import AE

        ae = AE(ae_title=self.ae_title)
        for sop in {str(ds.SOPClassUID) for _, ds in outputs}:
            ae.add_requested_context(sop)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        assoc = ae.associate(self.forward.host, self.forward.port, ae_title=self.forward.ae_title)
        if not assoc.is_established:
            return set()
        taken = set()
        try:
            for name, ds in outputs:
                status = assoc.send_c_store(ds)
                if status and int(status.get("Status", 0xFFFF)) == SUCCESS:
                    taken.add(name)
        finally:
            assoc.release()
        return taken

    def _retry_outbox(self, force: bool = False) -> None:
        """Every retry_seconds: send what waits in the retry queue (a few at a time), log counts."""
        now = time.monotonic()
        if not force and now < self._next_retry:
            return
        self._next_retry = now + self.outbox.limits.retry_seconds

        def send(paths):
            import pydicom

            batch = {str(p): pydicom.dcmread(p) for p in paths[:RETRY_BATCH]}
            taken = self._store_all(list(batch.items()))
            return [p for p in paths if str(p) in taken]

        try:
            sent, left = self.outbox.retry(send)
        except Exception as exc:   # noqa: BLE001 - the queue must not stop the node
            log.info("retry queue: not retried (%s)", type(exc).__name__)
            return
        if sent:
            log.info("retry queue: %d files sent to %s, %d waiting", sent, self.forward, left)


def _part10(ds) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _sop_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name != uid else "an unrecognised SOP class"


def _error_kind(exc: BaseException) -> str:
    """The error's type only: an unexpected error's text may quote a header value (a name)."""
    return type(exc).__name__
