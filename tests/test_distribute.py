"""Training under tf.distribute (pneumo.training.distribute): how each worker's rows are cut from
the global order, and whole trainings on three layouts (one device; MirroredStrategy over two
logical CPUs; MultiWorkerMirroredStrategy with two local worker processes on 127.0.0.1) that must
give the single-device model. What is exact (the head; the backbone's first step) is held to float
rounding; what is chaotic (the backbone after Adam's first steps) to a multiple of the drift that
reordering the same batches' additions gives on this machine, measured by the test itself. Each
training runs in its own process (tests/distribute_run.py): devices and TF_CONFIG are fixed when
TensorFlow starts."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pneumo.errors import PneumoError
from pneumo.training import distribute as D

RUNNER = Path(__file__).with_name("distribute_run.py")
ROOT = RUNNER.parents[1]

# The head trains on fixed embeddings with no BatchNorm: every layout adds the same numbers in
# another order, so its test probabilities agree to float rounding (measured: 0.0 and 3e-8).
HEAD_PROB_TOL = 1e-4
# Before any update every layout computes the same forward pass on the same 8 films; only the order
# of float32 additions differs (eps 1.2e-7 over ~1e3 terms), so the first step's loss agrees to 1e-4.
FIRST_STEP_RTOL = 1e-4
# After the first step the backbone is chaotic: Adam turns float-rounding differences in gradients
# whose true value is 0 (a BatchNorm's beta feeding another BatchNorm) into whole steps, so how far
# a layout drifts from one device depends on the CPU's kernels. The test measures that drift on one
# device by permuting the rows inside each batch (the same sums, added in another order) and allows
# a layout SPREAD_MULTIPLE times the largest of REORDERINGS such drifts.
REORDERINGS = 3
SPREAD_MULTIPLE = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", D.CPU_REPLICAS_ENV)}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _run(strategy: str, work: Path, out: Path, env: dict, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(RUNNER), "--strategy", strategy, "--work", str(work),
                             "--out", str(out), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait(*procs, timeout=600) -> None:
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        assert p.returncode == 0, out[-3000:]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict:
    """Each layout's result: {name: npz}. Runs one at a time: the machine has two cores."""
    work = tmp_path_factory.mktemp("distribute")
    reordered = [f"one-reordered-{i}" for i in range(REORDERINGS)]
    res = {name: work / f"{name}.npz" for name in ("one", "mirrored", "multi-worker", "mirrored-unsynced", *reordered)}
    _wait(_run("one", work, res["one"], _env()))
    for i, name in enumerate(reordered):      # the backbone only: the head is exact on every layout
        _wait(_run("one", work / name, res[name], _env(), "--reorder-within-batches", str(i), "--head-epochs", "0"))
    _wait(_run("mirrored", work, res["mirrored"], _env(**{D.CPU_REPLICAS_ENV: "2"})))
    ports = [_free_port(), _free_port()]
    workers = [_run("multi-worker", work, res["multi-worker"], _env(PNEUMO_TF_THREADS="1", TF_CONFIG=json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": i}})))
        for i in range(2)]
    _wait(*workers)
    _wait(_run("mirrored", work / "unsynced", res["mirrored-unsynced"], _env(**{D.CPU_REPLICAS_ENV: "2"}),
               "--unsynced-batchnorm", "--head-epochs", "0"))
    return {name: np.load(path) for name, path in res.items()}


def _embed_gap(a, b) -> float:
    ea, eb = a["backbone_val_embeddings"], b["backbone_val_embeddings"]
    return float(np.linalg.norm(ea - eb) / np.linalg.norm(ea))


def _loss_gap(a, b) -> float:
    return float(np.max(np.abs(a["backbone_loss"] - b["backbone_loss"]) / np.abs(a["backbone_loss"])))


def _first_step_gap(a, b) -> float:
    return float(abs(b["backbone_step_loss"][0] / a["backbone_step_loss"][0] - 1))


def _spread(layouts, gap) -> float:
    """The largest drift from one device that reordering the additions of the same batches gives."""
    one = layouts["one"]
    return max(gap(one, layouts[f"one-reordered-{i}"]) for i in range(REORDERINGS))


def _margins(layouts, layout) -> dict:
    """How much of its allowance a layout uses (below 1 passes), for the log and the closing figures."""
    one, other = layouts["one"], layouts[layout]
    return {"first_step": _first_step_gap(one, other) / FIRST_STEP_RTOL,
            "embeddings": _embed_gap(one, other) / (SPREAD_MULTIPLE * _spread(layouts, _embed_gap)),
            "epoch_loss": _loss_gap(one, other) / (SPREAD_MULTIPLE * _spread(layouts, _loss_gap))}


@pytest.mark.slow
def test_reordering_the_additions_is_a_measurable_drift_of_float_rounding_only(layouts):
    """The spread the tolerances are built from: not zero (so a multiple of it allows something),
    and each reordered run's first step still agrees with one device's to rounding."""
    one = layouts["one"]
    for i in range(REORDERINGS):
        again = layouts[f"one-reordered-{i}"]
        assert len(again["backbone_step_loss"]) == len(one["backbone_step_loss"]) == 7
        assert _first_step_gap(one, again) < FIRST_STEP_RTOL
    assert _spread(layouts, _embed_gap) > 0 and _spread(layouts, _loss_gap) > 0


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["mirrored", "multi-worker"])
def test_a_distributed_training_gives_the_single_device_model(layouts, layout):
    one, other = layouts["one"], layouts[layout]
    assert int(other["replicas"]) == 2 and int(other["workers"]) == (2 if layout == "multi-worker" else 1)
    margins = _margins(layouts, layout)
    print(f"{layout}: share of each tolerance used {json.dumps(margins)}")
    assert margins["first_step"] < 1, margins
    assert margins["embeddings"] < 1, margins
    assert margins["epoch_loss"] < 1, margins
    np.testing.assert_allclose(other["head_loss"], one["head_loss"], rtol=1e-5)
    assert np.abs(other["test_probabilities"] - one["test_probabilities"]).max() < HEAD_PROB_TOL


@pytest.mark.slow
def test_two_workers_and_two_local_replicas_compute_the_same_steps(layouts):
    """The same global batches cut two ways (two processes, or two devices of one) differ only by
    how TensorFlow adds the replicas' sums: inside the single-device reordering spread."""
    assert _embed_gap(layouts["mirrored"], layouts["multi-worker"]) <= _spread(layouts, _embed_gap)


@pytest.mark.slow
def test_the_first_step_catches_per_replica_batchnorm_statistics(layouts):
    """Per-replica statistics (4 films each) change the very first forward pass: no chaos to hide in
    (measured 8e-2 against the 1e-4 allowed)."""
    assert _first_step_gap(layouts["one"], layouts["mirrored-unsynced"]) > 10 * FIRST_STEP_RTOL


@pytest.mark.slow
def test_a_lost_worker_stops_the_others_with_one_line(tmp_path):
    ports = [_free_port(), _free_port()]
    workers = [_run("multi-worker", tmp_path, tmp_path / "out.npz", _env(PNEUMO_TF_THREADS="1", TF_CONFIG=json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": i}})),
        "--lose-worker") for i in range(2)]
    out = [p.communicate(timeout=300)[0] for p in workers]
    assert [p.returncode for p in workers] == [2, 1], out[0][-2000:]
    assert out[0].strip().splitlines()[-1].startswith("error: the cluster lost a worker (")
    assert not (tmp_path / "out.npz").exists()


# ----------------------------------------------------------------------------- the global order
@pytest.mark.parametrize("workers", [1, 2, 4])
def test_each_step_trains_the_single_device_rows_whatever_the_workers(workers):
    order, share = D.epoch_order(50, 8, np.random.default_rng(3), pad=False)
    assert len(order) == 48 and len(set(order)) == 48          # the remainder is dropped, no row twice
    mine = [D.worker_share(order, 8, workers, w) for w in range(workers)]
    for step in range(6):
        per = 8 // workers
        got = np.concatenate([m[step * per:(step + 1) * per] for m in mine])
        assert sorted(got) == sorted(order[step * 8:(step + 1) * 8])
    np.testing.assert_allclose(share.reshape(6, 8).sum(1), 1.0)


def test_padding_rows_weigh_nothing_and_each_step_sums_to_one():
    order, share = D.epoch_order(10, 4, None, pad=True)
    assert len(order) == 12 and list(order[:10]) == list(range(10))
    steps = share.reshape(3, 4)
    np.testing.assert_allclose(steps.sum(1), 1.0)
    assert (steps[2, 2:] == 0).all() and np.allclose(steps[2, :2], 0.5)
    order, share = D.epoch_order(3, 8, None, pad=True)           # a batch larger than the cohort
    assert len(order) == 8 and set(order) == {0, 1, 2} and np.allclose(share, [1 / 3] * 3 + [0] * 5)


def test_batches_that_cannot_split_are_refused():
    with pytest.raises(PneumoError, match="global batch"):
        D.epoch_order(3, 8, None, pad=False)
    with pytest.raises(PneumoError, match="does not split over 3 workers"):
        D.worker_share(np.arange(16), 8, 3, 0)


def test_strategy_names_and_the_cluster_are_checked(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv(D.CPU_REPLICAS_ENV, raising=False)
    with pytest.raises(PneumoError, match="unknown strategy 'horovod'"):
        D.make_strategy("horovod")
    assert D.make_strategy("auto") is None                      # no cluster, no GPUs: the default path
    with pytest.raises(PneumoError, match="multi-worker needs TF_CONFIG"):
        D.make_strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(PneumoError, match="TF_CONFIG is not JSON"):
        D.make_strategy("auto")
    monkeypatch.delenv("TF_CONFIG")
    monkeypatch.setenv(D.CPU_REPLICAS_ENV, "two")
    with pytest.raises(PneumoError, match="positive whole number"):
        D.make_strategy("mirrored")


# ----------------------------------------------------------------------------- through the CLI
@pytest.mark.slow
def test_the_real_pairs_cohort_trains_mirrored_through_the_cli_and_the_bundle_scores(tmp_path, capsys):
    from mimic_fixture import score_a_test_case, write_release
    mimic, cxr = write_release(tmp_path / "release")
    out = tmp_path / "bundle"
    cmd = [sys.executable, "-m", "pneumo", "train", "--cohort", "mimic-cxr", "--mimic-dir", str(mimic),
           "--cxr-dir", str(cxr), "--out", str(out), "--image-size", "64", "--epochs", "3", "--backbone", "none",
           "--bootstrap", "20", "--strategy", "mirrored"]
    done = subprocess.run(cmd, env=_env(**{D.CPU_REPLICAS_ENV: "2"}), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["training"]["distribution"] == {"strategy": "mirrored", "workers": 1, "replicas": 2}
    assert meta["semi_real"] is False
    from pneumo.data.cohorts import real_pairs
    rc, answer = score_a_test_case(out, real_pairs.load(mimic, cxr, seed=0), tmp_path, capsys)
    assert rc == 0 and 0 <= answer["probability"] <= 1


def test_a_cluster_mistake_is_one_line_from_the_cli(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pneumo", "train", "--cohort", "synthetic", "--out",
                           str(tmp_path / "b"), "--strategy", "multi-worker"], env=_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: multi-worker needs TF_CONFIG")


@pytest.mark.data
@pytest.mark.slow
def test_pretrain_streams_the_kermany_films_under_a_strategy(tmp_path):
    out = tmp_path / "backbone.weights.h5"
    done = subprocess.run([sys.executable, "-m", "pneumo", "pretrain", "--size", "64", "--epochs", "1", "--strategy",
                           "one", "--out", str(out)], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "preprocessed" not in done.stdout                     # no image cache: every film came off the disk
    info = json.loads(out.with_name("backbone.json").read_text())
    assert info["distribution"] == {"strategy": "one", "workers": 1, "replicas": 1}
    assert info["train_images"] == 4348 and len(info["history"]) == 1
    assert info["history"][0]["val_auc"] > 0.6                   # it learned from the stream (0.68 measured; chance 0.5)


def test_streamed_embeddings_are_the_in_memory_ones(tmp_path):
    """Under a strategy the head's embeddings come off the disk in one pass (plain and augmented
    copies together): the plain ones must be the image cache's."""
    from pneumo.data.cohorts import synthetic
    from pneumo.data.labs.standardisation import LabStandardisation
    from pneumo.models.network import build_image_encoder
    from pneumo.training.fit import cohort_features
    cohort = synthetic.make(12, size=64, seed=0, tmpdir=tmp_path)
    encoder = build_image_encoder(64, 0.35, intensity="equalize")
    std = LabStandardisation.fit(cohort.frame[cohort.lab_keys].to_numpy("float64"), cohort.lab_keys)
    memory, _ = cohort_features(cohort, encoder, 64, std, log=lambda s: None)
    streamed, copies = cohort_features(cohort, encoder, 64, std, aug_copies=2, log=lambda s: None, stream=True)
    gap = lambda a, b: float(np.linalg.norm(a - b) / np.linalg.norm(b))   # a random encoder's values are tiny
    assert gap(streamed.img_late, memory.img_late) < 1e-4 and gap(streamed.img_early, memory.img_early) < 1e-4
    assert len(copies) == 2 and all(late.shape == memory.img_late.shape for _, late in copies)
    assert gap(copies[0][1], memory.img_late) > 1e-2                  # the copies are augmented
    assert gap(copies[0][1], copies[1][1]) > 1e-2                      # and each draws its own
