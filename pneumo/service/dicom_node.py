"""A DICOM storage node (pynetdicom): a PACS sends it chest films by C-STORE; each CR/DX film is
scored through the Predictor (the validity gate and the intended-use check apply) and its SR and
Grad-CAM image are sent on by C-STORE to one destination. A film outside the intended use, or one
that cannot be read, gets an SR that says so and no score. Each case is logged without
identifiers (the case log, and one line on the log stream); the DICOM outputs alone carry the
film's patient and study, back to the hospital's own systems.

The C-STORE handler only checks and queues (a sender's timeout must not wait for Grad-CAM); one
worker scores the queue in order. Limits: associations at once, bytes per film, films queued."""
from __future__ import annotations

import logging
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass

from pneumo.data.dicom_source import source_header
from pneumo.data.dicom_terms import DIGITAL_MODALITIES
from pneumo.errors import PneumoError
from pneumo.inference.case import Case
from pneumo.service.case_log import CaseLog, record_refusal_or_warn, warn_not_logged

log = logging.getLogger("pneumo.dicom_node")

CR = "1.2.840.10008.5.1.4.1.1.1"                 # Computed Radiography Image Storage
DX = "1.2.840.10008.5.1.4.1.1.1.1"               # Digital X-Ray Image Storage - For Presentation
ACCEPTED_SOP_CLASSES = {CR: "CR", DX: "DX"}
ACCEPTED_MODALITIES = DIGITAL_MODALITIES   # stricter than the decoder: only what a PACS sends as a chest film
# C-STORE statuses (PS3.4 B.2.3 and pynetdicom's docs)
SUCCESS, OUT_OF_RESOURCES, NOT_SUPPORTED, DOES_NOT_MATCH, CANNOT_UNDERSTAND = 0x0000, 0xA700, 0x0122, 0xA900, 0xC210
_AET = re.compile(r"^[ -~]{1,16}$")


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
class Limits:
    associations: int = 4                 # senders at once
    file_bytes: int = 128 * 1024 * 1024   # one film as received (a 50 MP, 16-bit film is 100 MB)
    queued: int = 16                      # films received but not yet scored
    drain_seconds: float = 20.0           # on SIGTERM: time left to score what is queued


class DicomNode:
    """One node: start() listens, run() scores the queue until stop(); make_outputs(result,
    overlay, source, refusal=, model=) -> [(file name, Dataset)] builds what is sent on
    (pneumo.present.case_outputs.dicom_outputs; passed in, the layers go that way)."""

    def __init__(self, predictor, *, ae_title: str, port: int, forward: Destination, make_outputs,
                 host: str = "127.0.0.1", limits: Limits = Limits(), accept_from: tuple[str, ...] = ()):
        self.predictor, self.make_outputs, self.forward = predictor, make_outputs, forward
        self.ae_title, self.host, self.port, self.limits = check_ae_title(ae_title), host, port, limits
        self.accept_from = tuple(check_ae_title(a) for a in accept_from)
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
        # every storage class is negotiated, so a non-radiograph is refused with a status and a line
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        ae.maximum_associations = self.limits.associations
        ae.require_called_aet = True
        if self.accept_from:
            ae.require_calling_aet = list(self.accept_from)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
        try:
            self.server = ae.start_server((self.host, self.port), block=False,
                                          evt_handlers=[(evt.EVT_C_STORE, self._on_store)])
        except OSError as err:
            raise PneumoError(f"cannot listen on {self.host}:{self.port}: {err.strerror or err}") from None
        log.info("listening as %s on %s:%d; sending SR and Grad-CAM to %s",
                 self.ae_title, self.host, self.port, self.forward)

    def _on_store(self, event) -> int:
        """Check one C-STORE and queue it; the status says why a film is refused."""
        sop = str(event.request.AffectedSOPClassUID)
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
            log.info("refused: modality %s in a %s object", modality if modality.isalpha() and len(modality) <= 4
                     else "unrecognised", ACCEPTED_SOP_CLASSES[sop])
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
        if self.server is not None:
            self.server.shutdown()
        deadline = time.monotonic() + self.limits.drain_seconds
        while not self.queue.empty() and time.monotonic() < deadline:
            self._next(timeout=0)
        if not self.queue.empty():
            log.info("stopped with %d films not scored (the sender may send them again)", self.queue.qsize())
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
            if result.label:         # within (or unknown) intended use: the heat map too
                overlay = self.predictor.explain(case, shap=False, allow_outside=False).overlay
        except PneumoError as err:   # refused or unreadable: the SR says why, with no score
            refusal = str(err)
        outputs = self.make_outputs(result, overlay, source, refusal=refusal,
                                    model=self.predictor.runner.model_info())
        self._log_case(result, refusal)
        sent = self._send(outputs)
        what = (f"{result.label} P(pneumonia) {result.probability:.3f}" if result is not None and result.label
                else f"no score ({'outside the intended use' if result is not None else 'not read'})")
        log.info("case %d: %s; %s", self.cases, what, sent)
        return outputs

    def _log_case(self, result, refusal) -> None:
        try:
            if result is None:
                record_refusal_or_warn(refusal or "not read", origin="batch")
            else:   # the node's run is the log's batch: one row per film received
                CaseLog().record(result, labs={}, origin="batch", batch_id=self.session, row_index=self.cases)
        except Exception as err:   # noqa: BLE001 - the answer matters more than its record
            warn_not_logged(err, "this case was not logged")

    def _send(self, outputs) -> str:
        from pynetdicom import AE

        ae = AE(ae_title=self.ae_title)
        for sop in {str(ds.SOPClassUID) for _, ds in outputs}:
            ae.add_requested_context(sop)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        assoc = ae.associate(self.forward.host, self.forward.port, ae_title=self.forward.ae_title)
        if not assoc.is_established:
            return f"NOT sent: {self.forward} did not accept the association"
        try:
            failed = []
            for name, ds in outputs:
                status = assoc.send_c_store(ds)
                if not status or int(status.get("Status", 0xFFFF)) != SUCCESS:
                    failed.append(name)
        finally:
            assoc.release()
        names = ", ".join(name for name, _ in outputs)
        return f"NOT sent to {self.forward}: {', '.join(failed)}" if failed else f"sent {names} to {self.forward}"


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
