"""`python -m pneumo batch ... --engine ray [--address ray://HOST:10001] [--workers N]`: the batch's
decoding and scoring on Ray, its writing unchanged (pneumo.service.batch.run_batch).

The driver reads and checks the manifest, skips what a resumed OUT already holds, and hands the
remaining rows to Ray Data; `workers` actors each hold one loaded Predictor (LiteRT) and run the
same _prepare and _score (pneumo.service.batch_rows) as the in-process engine on batches of rows.
Rows come back in manifest order and the driver writes OUT and the case log as the in-process
batch does, so the columns, the resume after a kill and the isolation of a bad row are the same.
With no address, a local Ray is started with the process's cores, listening on 127.0.0.1 only
(_loopback_only), and stopped at the end; with one, the bundle folder, the manifest's image root
and the images must be readable at the same paths on every node."""
from __future__ import annotations

import ipaddress
import logging
import os
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pneumo.errors import PneumoError
from pneumo.inference.native_stderr import native_stderr_silenced
from pneumo.inference.predictor import Predictor
from pneumo.service.batch_rows import _error_text, _Item, _prepare, _score

RAY_LOGGERS = ("ray", "ray.data", "ray._private", "ray.util")


class RayUnavailable(PneumoError):
    """Ray is not installed, or the cluster cannot be reached."""


class _Scorer:
    """A Ray actor: one Predictor, loaded once, scoring pickled rows (the Case, with its pixels,
    never leaves the actor; the Result and the lab reading go back for OUT and the case log)."""

    def __init__(self, bundle_dir: str, root: str, lab_cols: list[str], threads: int):
        os.environ["PNEUMO_THREADS"] = str(threads)       # workers x threads = the node's cores
        self.predictor = Predictor.load(bundle_dir)
        self.root, self.lab_cols = Path(root), lab_cols

    def __call__(self, batch: dict) -> dict:
        items = [pickle.loads(b) for b in batch["item"]]
        for it in items:
            _prepare(it, self.root, self.lab_cols, self.predictor.panel)
        try:
            _score(items, self.predictor)
        except Exception as err:  # noqa: BLE001 - _score isolates rows; anything else is each row's error
            for it in items:
                it.error = it.error or _error_text(err)
        for it in items:
            it.case = None
        return {"item": [pickle.dumps(it) for it in items]}


class RayEngine:
    def __init__(self, bundle_dir, *, workers: int = 2, address: str | None = None):
        if workers < 1:
            raise PneumoError(f"--workers must be at least 1, got {workers}")
        self.bundle_dir, self.workers, self.address = str(bundle_dir), int(workers), address

    def scored_chunks(self, items: Iterator[_Item], root: Path, lab_cols: list[str],
                      chunk_size: int) -> Iterator[list[_Item]]:
        todo = [pickle.dumps(it) for it in items]
        if not todo:
            return
        ray, started = _start(self.address)
        try:
            import ray.data
            _quiet()                                         # ray.data configures its loggers on import
            ctx = ray.data.DataContext.get_current()
            ctx.execution_options.preserve_order = True      # OUT in manifest order, as the in-process engine
            ctx.enable_progress_bars = False                 # the batch's own progress line is on stderr
            cores = int(ray.cluster_resources().get("CPU", 1))
            threads = max(1, cores // self.workers) if self.address is None else 1
            ds = ray.data.from_items([{"item": b} for b in todo]).map_batches(
                _Scorer, fn_constructor_kwargs={"bundle_dir": self.bundle_dir, "root": str(root),
                                                "lab_cols": lab_cols, "threads": threads},
                batch_size=chunk_size, compute=ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=min(1, cores / self.workers))
            chunk: list[_Item] = []
            for row in ds.iter_rows():
                chunk.append(pickle.loads(row["item"]))
                if len(chunk) >= chunk_size:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
        finally:
            if started:                                      # a Ray the caller started stays up
                ray.shutdown()


def _start(address: str | None):
    """(ray, whether this call started it): the caller's running Ray, else a local one with this
    machine's cores, or the cluster at `address`."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray (pip install 'ray[data]', pinned in requirements.txt)") from None
    _quiet()
    if ray.is_initialized():
        return ray, False
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")   # Ray's C++ core writes its notes to fd 2 ...
    try:
        with native_stderr_silenced():                          # ... and says so there, once, at start
            if address is None:
                with _loopback_only():
                    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                             configure_logging=False, logging_level=logging.ERROR,
                             _node_ip_address=LOOPBACK, dashboard_host=LOOPBACK)
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise RayUnavailable(f"cannot start or reach Ray{f' at {address}' if address else ''}: "
                             f"{' '.join(str(err).split())[:200]}") from None
    if address is None:
        node_ip = ray.util.get_node_ip_address()
        if not ipaddress.ip_address(node_ip).is_loopback:      # fail closed: never an open local Ray
            ray.shutdown()
            raise RayUnavailable(f"the local Ray would listen on {node_ip}, not only on this machine; "
                                 "refused (give --address for a cluster)")
    return ray, True


# Ray's servers (GCS, raylet, workers, object manager, agents) listen on the node's IP address, and
# a Ray cluster has no authentication of its own worth trusting on a hospital network: a local Ray
# must keep to this machine. ray.init(_node_ip_address="127.0.0.1") alone is not enough on Linux
# (Ray 2.60 turns a loopback address into the machine's outward one); with
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 it keeps loopback, as it does on Windows and macOS. The
# setting is read by this process and by the processes ray.init starts, so it is set around it.
LOOPBACK = "127.0.0.1"
_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextmanager
def _loopback_only():
    from ray._private import ray_constants

    before_env, before_flag = os.environ.get(_CLUSTER_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_CLUSTER_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(_CLUSTER_ENV, None)
        else:
            os.environ[_CLUSTER_ENV] = before_env


def _quiet() -> None:
    """Ray's INFO and WARNING lines off stderr: the batch owes one summary line there."""
    for name in RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
