"""Training under a tf.distribute strategy: which strategy, how each worker's batches are cut from
one global order, and the one distributed training step both the backbone and the head use.

Every worker computes the same global order of rows per epoch (a seeded NumPy shuffle), and step s
trains on rows [s*G, (s+1)*G) of it whatever the layout (one device, R local replicas, W workers):
worker w reads its contiguous share of each global batch, its replicas split that share. With the
loss summed over the global batch and divided by its size, and BatchNorm statistics synchronised
over replicas, a distributed step is the single-device step up to the order of float additions.

Keras 3.15's model.fit fails under MultiWorkerMirroredStrategy (and its BatchNorm statistics are
per replica), so the step here is ours: a GradientTape under strategy.run, Keras' optimizer sums
the replicas' gradients.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
from dataclasses import dataclass

import numpy as np

from pneumo.errors import PneumoError

STRATEGIES = ("auto", "one", "mirrored", "multi-worker")
STRATEGY_HELP = ("auto (default): multi-worker under a TF_CONFIG of several workers, mirrored over several "
                 "GPUs, else the single-process path; one | mirrored | multi-worker force one "
                 "(films then stream from disk; docs/cluster.md)")
CPU_REPLICAS_ENV = "PNEUMO_CPU_REPLICAS"   # split the CPU into N logical devices (mirrored without GPUs)


@dataclass
class Distribution:
    """A strategy and where this process sits in it."""
    strategy: object
    name: str
    workers: int = 1
    worker: int = 0

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def is_chief(self) -> bool:
        """The one process that writes files (the backbone, the bundle); the others compute alongside."""
        return self.worker == 0

    def barrier(self) -> None:
        """Wait until every replica of every worker reaches this point (one all-reduce)."""
        import tensorflow as tf
        with collectives(self):
            self.strategy.reduce(tf.distribute.ReduceOp.SUM, self.strategy.run(lambda: tf.constant(1.0)), axis=None)

    def describe(self) -> dict:
        return {"strategy": self.name, "workers": self.workers, "replicas": self.replicas}


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise PneumoError(f"TF_CONFIG is not JSON: {err.msg}") from None


def _split_cpu(n: int) -> None:
    """N logical CPU devices, so MirroredStrategy has replicas on a machine without GPUs."""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        pass   # TF is already initialised: keep its devices


def make_strategy(name: str = "auto") -> Distribution | None:
    """auto: multi-worker when TF_CONFIG names several workers, mirrored over local GPUs when there
    are several, else None (the default single-process path, exactly as without a strategy).
    one: one device (a GPU if any) through the distributed step, the reference for the others.
    mirrored: every local GPU, else PNEUMO_CPU_REPLICAS logical CPUs. multi-worker: TF_CONFIG's cluster.
    Call before TensorFlow runs anything: devices and collectives are fixed at start."""
    if name not in STRATEGIES:
        raise PneumoError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    cfg = _tf_config()
    workers = len(cfg.get("cluster", {}).get("worker", [])) + len(cfg.get("cluster", {}).get("chief", []))
    replicas_env = os.environ.get(CPU_REPLICAS_ENV)
    if replicas_env and name == "mirrored":
        if not replicas_env.isdigit() or int(replicas_env) < 1:
            raise PneumoError(f"{CPU_REPLICAS_ENV} must be a positive whole number, not {replicas_env!r}")
        _split_cpu(int(replicas_env))
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "multi-worker" if workers > 1 else "mirrored" if len(gpus) > 1 else ""
        if not name:
            return None
    if name == "one":
        return Distribution(tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0"), "one")
    if name == "mirrored":
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        return Distribution(tf.distribute.MirroredStrategy(devices), "mirrored")
    if workers < 1 or "task" not in cfg:
        raise PneumoError("multi-worker needs TF_CONFIG with the cluster's workers and this process's task "
                          "(docs/cluster.md)")
    task = cfg["task"]
    worker = int(task.get("index", 0)) + (len(cfg["cluster"].get("chief", [])) if task.get("type") == "worker" else 0)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return Distribution(strategy, "multi-worker", workers=workers, worker=worker)


def scope(dist: Distribution | None):
    """Where a model to train under `dist` is built (nothing special without one)."""
    return dist.strategy.scope() if dist is not None else contextlib.nullcontext()


# ----------------------------------------------------------------------------- the global order
def epoch_order(n: int, global_batch: int, rng: np.random.Generator | None, pad: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of one epoch in global-batch order, and each row's share of its step's loss.
    pad: fill the last batch with weight-0 rows (every row trains; for small head cohorts); else
    drop the remainder (the backbone: thousands of films, a new shuffle each epoch)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    steps = -(-n // global_batch) if pad else n // global_batch
    if steps == 0:
        raise PneumoError(f"{n} rows cannot fill one global batch of {global_batch}")
    real = np.ones(steps * global_batch, "float32")
    if pad and len(order) < steps * global_batch:
        real[len(order):] = 0.0
        order = np.resize(order, steps * global_batch)    # repeats the rows: a batch larger than the cohort fills too
    order = order[:steps * global_batch]
    per_step = real.reshape(steps, global_batch).sum(1, keepdims=True)
    return order, (real.reshape(steps, global_batch) / per_step).ravel()


def worker_share(values: np.ndarray, global_batch: int, workers: int, worker: int) -> np.ndarray:
    """This worker's contiguous share of every global batch of `values` (in epoch order)."""
    if global_batch % workers:
        raise PneumoError(f"the global batch {global_batch} does not split over {workers} workers")
    steps = len(values) // global_batch
    shaped = values.reshape((steps, workers, global_batch // workers) + values.shape[1:])
    return shaped[:, worker].reshape((-1,) + values.shape[1:])


def distributed_batches(dist: Distribution, global_batch: int, make):
    """The strategy's dataset: make(worker_rows_slicer, per_replica_batch) -> tf.data of this
    worker's rows batched per replica; consecutive batches go to this worker's replicas."""
    import tensorflow as tf
    if global_batch % dist.replicas:
        raise PneumoError(f"the batch {global_batch} does not split over {dist.replicas} replicas")

    def fn(ctx: tf.distribute.InputContext):
        share = lambda values: worker_share(values, global_batch, ctx.num_input_pipelines, ctx.input_pipeline_id)
        return make(share, ctx.get_per_replica_batch_size(global_batch))
    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    return dist.strategy.distribute_datasets_from_function(fn, options)


# ----------------------------------------------------------------------------- the step
def prepare(dist: Distribution, model, optimizer) -> None:
    """Variables built in the strategy's scope and BatchNorm statistics taken over the global batch."""
    import keras
    with dist.strategy.scope():
        optimizer.build(model.trainable_variables)
    for layer in _layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)


def train_step_fn(dist: Distribution, model, optimizer, loss_fn):
    """One compiled step on a distributed batch (x, y, w) -> the global batch's loss. w: each row's
    share of its step's loss (class weight / rows in the step), so replicas' losses add to the mean."""
    import tensorflow as tf
    strategy = dist.strategy

    def replica(x, y, w):
        with tf.GradientTape() as tape:
            out = model(list(x) if isinstance(x, tuple) else x, training=True)
            loss = tf.reduce_sum(loss_fn(y, out) * w)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def step(batch):
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica, args=batch), axis=None)
    return step


def fit_epoch(dist: Distribution, step, sample_weight: np.ndarray, global_batch: int, rng, pad: bool, rows) -> float:
    """One epoch over len(sample_weight) rows in the global order: each row's loss weight is its
    sample weight times its share of its step; rows(order, weights, mine, per_replica) -> this
    worker's dataset of (x, y, w) batched per replica (mine: cuts this worker's share of an array)."""
    order, share = epoch_order(len(sample_weight), global_batch, rng, pad)
    weights = (sample_weight[order] * share).astype("float32")
    batches = distributed_batches(dist, global_batch, lambda mine, per_replica: rows(order, weights, mine, per_replica))
    return run_epoch(step, batches)


def run_epoch(step, batches) -> float:
    """Every step of one epoch; the mean of the steps' losses."""
    losses = [float(step(batch)) for batch in batches]
    return float(np.mean(losses)) if losses else float("nan")


def across_workers(fn):
    """fn(..., dist=...) with collectives(dist) around it."""
    @functools.wraps(fn)
    def run(*args, dist, **kw):
        with collectives(dist):
            return fn(*args, dist=dist, **kw)
    return run


@contextlib.contextmanager
def collectives(dist: Distribution | None = None):
    """Where workers talk (variables made in the scope, steps, barriers): a worker lost mid-run
    (killed, its machine gone) makes the others' collectives fail, and that becomes one line."""
    if dist is None or dist.workers < 2:
        yield
        return
    import tensorflow as tf
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.DeadlineExceededError) as err:
        raise PneumoError(f"the cluster lost a worker ({type(err).__name__}): the run stops here; "
                          "start every worker again (nothing was written)") from None
