"""One training under a tf.distribute strategy, in a fresh process (devices and TF_CONFIG are fixed
when TensorFlow starts): tests/test_distribute.py runs it once per layout and compares the results.

    python tests/distribute_run.py --strategy mirrored --work DIR --out result.npz

A backbone (fit_backbone_films, films streamed from disk) then a bundle (fit.train: streamed
embeddings, the head under the strategy) on a synthetic cohort, without augmentation or dropout,
so every layout computes the same steps: only the order of float additions differs.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE, ROWS, BATCH = 64, 96, 8

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--strategy", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--backbone-epochs", type=int, default=1)
    ap.add_argument("--head-epochs", type=int, default=6, help="0: the backbone only")
    ap.add_argument("--lose-worker", action="store_true", help="worker 1 dies after the backbone (a lost machine)")
    ap.add_argument("--unsynced-batchnorm", action="store_true",
                    help="per-replica BatchNorm statistics (the mistake the tolerance must catch)")
    ap.add_argument("--reorder-within-batches", type=int, default=None, metavar="SEED",
                    help="the same backbone batches, rows permuted inside each: only the order of float additions "
                         "changes (the spread the layouts' tolerance is measured against)")
    a = ap.parse_args()
    from pneumo.errors import PneumoError
    from pneumo.training import distribute as D
    dist = D.make_strategy(a.strategy)
    if a.unsynced_batchnorm:
        _unsync(D)
    if a.reorder_within_batches is not None:
        _reorder_within_batches(D, a.reorder_within_batches)

    from pneumo.data.cohorts import synthetic
    from pneumo.training import fit
    from pneumo.training.backbone import fit_backbone_films, set_threads
    from pneumo.training.film_stream import stream_outputs
    set_threads()
    work = a.work / f"{a.strategy}-{dist.worker}"
    cohort = synthetic.make(ROWS, size=SIZE, seed=0, tmpdir=work / "films")
    frame = cohort.frame
    paths, y, split = frame["image_path"].to_numpy(str), frame["label"].to_numpy(int), frame["split"].to_numpy()
    tr, va = split == "train", split == "val"
    with _recorded_steps(D) as step_losses:       # the backbone's steps only
        encoder, history = fit_backbone_films(paths[tr], y[tr], paths[va], y[va], dist=dist, size=SIZE, batch=BATCH,
                                              epochs=a.backbone_epochs, lr=5e-4, patience=99, intensity="equalize",
                                              augment=None, dropout=0.0, log=lambda s: None)
    if a.lose_worker and dist.worker == 1:
        os._exit(1)
    _, late = stream_outputs(encoder, paths[va], SIZE)
    bundle = work / "bundle"     # on the seeded random encoder, the same in every process: the head alone is compared
    metrics = {"history": [], "test_probabilities": {"fusion": []}}
    if a.head_epochs:
        try:
            metrics = fit.train(cohort, bundle, image_size=SIZE, backbone=None, intensity="equalize",
                                head_kw={"dropout": 0.0, "attn_dropout": 0.0}, epochs=a.head_epochs,
                                batch_size=BATCH, patience=99, n_boot=20, dist=dist, log=lambda s: None)
        except PneumoError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    if not dist.is_chief:
        return 0
    flat = lambda ws: np.concatenate([np.ravel(np.asarray(w)) for w in ws])
    np.savez(a.out, encoder=flat(encoder.trainable_weights), encoder_stats=flat(encoder.non_trainable_weights),
             backbone_loss=np.array([h["loss"] for h in history]), backbone_step_loss=np.array(step_losses),
             backbone_val_embeddings=late,
             head_loss=np.array([h["loss"] for h in metrics["history"]]),
             test_probabilities=np.array(metrics["test_probabilities"]["fusion"]),
             replicas=dist.replicas, workers=dist.workers)
    print(json.dumps({"strategy": dist.name, "replicas": dist.replicas, "workers": dist.workers}))
    return 0


@contextlib.contextmanager
def _recorded_steps(D):
    """Each step's global-batch loss, as the chief sees it (the first is taken before any update)."""
    losses, run_epoch = [], D.run_epoch

    def recorded(step, batches):
        def one(batch):
            loss = step(batch)
            losses.append(float(loss))
            return loss
        return run_epoch(one, batches)
    D.run_epoch = recorded
    try:
        yield losses
    finally:
        D.run_epoch = run_epoch


def _reorder_within_batches(D, seed: int) -> None:
    epoch_order, rng = D.epoch_order, np.random.default_rng(seed)

    def reordered(n, global_batch, order_rng, pad):
        order, share = epoch_order(n, global_batch, order_rng, pad)
        if pad:                                  # the head: exact on every layout, left alone
            return order, share
        steps = len(order) // global_batch
        perm = np.concatenate([s * global_batch + rng.permutation(global_batch) for s in range(steps)])
        return order[perm], share[perm]
    D.epoch_order = reordered


def _unsync(D) -> None:
    import keras
    prepare = D.prepare

    def unsynced(dist, model, optimizer):
        prepare(dist, model, optimizer)
        for layer in D._layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = False
    D.prepare = unsynced


if __name__ == "__main__":
    sys.exit(main())
