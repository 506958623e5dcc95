"""JAX across processes: keras.distribution.DataParallel over two processes.

The same TF_CONFIG as under TensorFlow names the processes (the first task is
JAX's coordinator, distribute.jax_processes). Two processes on 127.0.0.1
(free ports, a deadline: tests/workers.py) train a tiny model from Python on
a tf.data pipeline; a third process trains it without distribution on the
same global batches. The loss, gamma after every batch and every weight
update agree to the tolerance of two devices in one process
(tests/test_distribute.py); Keras gives each process one half of every
global batch (its auto-sharding of tf.data: rebatch, then shard by process);
only the chief writes. The slow test of the command line runs `train
--distribute` on two processes.
"""

import json
import os
import re

import numpy as np
import pytest

from helpers import TINY_TRAIN_FLAGS, run_cli
from workers import (assert_only_the_chief_wrote, assert_same_steps_as_one, finish, free_ports, start, start_workers,
                     two_against_one)

JAX = {"KERAS_BACKEND": "jax"}

# One process of two, or the reference when TF_CONFIG is unset: the same
# seed, model, data pipeline and steps. Writes RESULT.json and RESULT.npz.
TRAIN = r"""
import json, os, sys
import numpy as np
sys.path.insert(0, "tests")
import keras
from helpers import RecordSteps as Record, tiny_config, tiny_images
from split_vae import GammaBalance, SplitVAE, data, distribute
from split_vae.training import AtomicCheckpoint, HistoryWriter

out, result = sys.argv[1], sys.argv[2]
several = bool(os.environ.get("TF_CONFIG"))
if several:
    scope, what = distribute.data_parallel(32, startup_timeout=120)


# Image i holds tiny_images(64)[i]; its corner pixel is replaced by i / 100
# so that each process's share of a batch can be told apart.
x = tiny_images(64).copy()
x[:, 0, 0, 0] = np.arange(64) / 100
keras.utils.set_random_seed(0)
model = SplitVAE(tiny_config(), seed=0)
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
before = [np.array(w) for w in model.get_weights()]
record = Record()
write = distribute.output_dir(out)
callbacks = [GammaBalance(), record, AtomicCheckpoint(os.path.join(write, "checkpoint.keras")),
             HistoryWriter(os.path.join(write, "history.csv"))]
model.fit(data.array_pipeline(x, batch_size=32, seed=3), epochs=1, verbose=0,
          callbacks=callbacks)

# What this process feeds of each global batch, as Keras's trainer shards it.
pipeline = data.array_pipeline(x, batch_size=32, seed=3)
dist = keras.distribution.distribution()
if dist is not None:
    pipeline = dist.distribute_dataset(pipeline)
shares = [sorted(np.rint(np.asarray(b)[:, 0, 0, 0] * 100).astype(int).tolist())
          for b in pipeline]

np.savez(result + ".npz", *[np.array(w) - b for w, b in zip(model.get_weights(), before)],
         final=np.concatenate([np.ravel(w) for w in model.get_weights()]))
json.dump({"what": what if several else "one process", "gammas": record.gammas,
           "losses": record.losses, "names": [w.path for w in model.weights],
           "shares": shares, "write": write}, open(result + ".json", "w"))
"""


@pytest.mark.slow
def test_two_jax_processes_take_the_same_steps_as_one(tmp_path):
    t = str(tmp_path)
    results = two_against_one(TRAIN, t, env=JAX)
    assert results[0][0]["what"] == "keras.distribution.DataParallel on 2 devices, 2 processes"
    # 64 images, global batches of 32: two steps in every process, each the
    # one-process step; each process feeds one half of every global batch.
    assert_same_steps_as_one(*results, "two JAX processes")

    assert_only_the_chief_wrote(t, results)


@pytest.mark.slow
def test_the_cli_trains_on_two_jax_processes(tmp_path):
    t, out = str(tmp_path), str(tmp_path / "run")
    logs = [f"{t}/c0", f"{t}/c1"]
    argv = ["-m", "split_vae", "train", *TINY_TRAIN_FLAGS, "--epochs", "2", "--verbose", "2",
            "--distribute", "--out", out]
    procs = start_workers([argv] * 2, logs, env=JAX)
    # The reference: one process, no --distribute, the same global batches
    # (96 images: 3 whole batches of 32, none dropped).
    logs.append(f"{t}/one")
    procs.append(start(argv[:-3] + ["--out", f"{t}/one_run"], JAX, log=logs[-1]))
    results = finish(procs, logs, timeout=300)
    assert results[2][0] == 0, results[2][2][-3000:]
    for rc, _, err in results[:2]:
        assert rc == 0, err[-3000:]
        assert "DataParallel on 2 devices, 2 processes" in err
        assert "ran out of data" not in err and "Traceback" not in err
    assert "not the chief: writes no files" in results[1][2]
    import keras
    import split_vae  # noqa: F401  (registers SplitVAE for loading)
    final = keras.saving.load_model(f"{out}/model.keras")
    # --limit 96, batches of 32: 3 global steps an epoch, 2 epochs.
    assert int(final.optimizer.iterations.numpy()) == 6
    one = keras.saving.load_model(f"{t}/one_run/model.keras")
    rows = [json.load(open(f"{d}/history.json")) for d in (out, f"{t}/one_run")]
    assert [r["epoch"] for r in rows[0]] == [1, 2]
    for r, r_one in zip(*rows):
        assert r["loss"] == pytest.approx(r_one["loss"], rel=1e-4)
    assert float(final.gamma.numpy()) == pytest.approx(float(one.gamma.numpy()), rel=1e-5)
    assert float(final.gamma.numpy()) < rows[0][-1]["gamma"]  # the last batch's update
    for name in ("generated.png", "reconstructed.png", "config.json", "checkpoint.keras"):
        assert os.path.getsize(f"{out}/{name}") > 0


JAX_STEPS = 256 // 32  # steps an epoch with --limit 256


@pytest.mark.slow
def test_a_killed_jax_process_stops_the_other_and_a_relaunch_resumes(tmp_path):
    """Two JAX processes train through the CLI into one directory; process 1
    is killed (SIGKILL) in the epoch after the chief's first checkpoint. The
    chief's next collective fails (gloo: the connection is reset): it stops
    with status 4 and the lost-worker message naming the checkpoint, as
    under TensorFlow, before JAX's heartbeat (30 s) would end it with
    SIGABRT. The same two commands started again resume from it (epoch,
    gamma, optimizer state) and finish the run."""
    import signal
    import time

    from split_vae.checkpoint import read_checkpoint_state
    from workers import read, wait_for_line

    t, out = str(tmp_path), str(tmp_path / "run")
    argv = ["-m", "split_vae", "train", *TINY_TRAIN_FLAGS[:2], "--limit", "256",
            *TINY_TRAIN_FLAGS[4:], "--epochs", "2", "--verbose", "2", "--distribute",
            "--out", out]
    logs = [f"{t}/k0", f"{t}/k1"]
    procs = start_workers([argv] * 2, logs, env=JAX)
    try:
        wait_for_line(f"{out}/history.json", '"epoch": 1', procs[0], timeout=300)
        time.sleep(0.5)  # into the next epoch
        assert procs[1].poll() is None, read(f"{logs[1]}.err")[-2000:]
        os.kill(procs[1].pid, signal.SIGKILL)
        killed = time.monotonic()
        procs[0].wait(timeout=120)
        stopped = time.monotonic() - killed
    finally:
        finish(procs, logs, timeout=10)
    err = read(f"{logs[0]}.err")
    assert procs[0].returncode == 4, err[-3000:]
    assert stopped < 30, stopped  # JAX's heartbeat timeout: our exit came first
    print(f"JAX process 0 stopped {stopped:.1f} s after process 1 was killed")
    state = read_checkpoint_state(f"{out}/checkpoint.keras")
    assert state["epoch"] == 1
    assert "a worker stopped answering, so training stopped (" in err
    assert "Connection reset by peer" in err or "Connection closed by peer" in err, err
    assert (f"The last complete checkpoint is {out}/checkpoint.keras (epoch 1). Start the "
            "same command again on every worker to resume from it.") in err
    assert "Traceback" not in err and "SIGABRT" not in err

    logs = [f"{t}/r0", f"{t}/r1"]
    results = finish(start_workers([argv] * 2, logs, env=JAX), logs, timeout=400)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
        assert (f"resuming from {out}/checkpoint.keras after epoch 1 "
                f"(gamma={state['gamma']:.5g})") in err
    import keras
    import split_vae  # noqa: F401  (registers SplitVAE for loading)
    final = keras.saving.load_model(f"{out}/model.keras")
    # The optimizer's state came back with the weights: its step count goes on.
    assert int(final.optimizer.iterations.numpy()) == 2 * JAX_STEPS
    with open(f"{out}/history.json") as f:
        assert [r["epoch"] for r in json.load(f)] == [1, 2]
    assert read_checkpoint_state(f"{out}/checkpoint.keras")["epoch"] == 2


# ---------------------------------------------------------------------------
# Fast: the split of the data and the checks before anything starts
# ---------------------------------------------------------------------------
def test_each_process_gets_its_part_of_every_whole_global_batch():
    import tensorflow as tf

    from split_vae.distribute import process_shard

    # 70 examples in global batches of 32: 32, 32 and a partial 6 (dropped).
    ds = tf.data.Dataset.range(70).batch(32).map(lambda b: b * 1)
    parts = [[b.numpy().tolist() for b in process_shard(ds, 32, 2, i)] for i in (0, 1)]
    assert parts[0] == [list(range(0, 16)), list(range(32, 48))]
    assert parts[1] == [list(range(16, 32)), list(range(48, 64))]
    # Exactly one whole batch (64 = 2 x 32): nothing dropped.
    ds = tf.data.Dataset.range(64).batch(32)
    assert [len(b) for b in process_shard(ds, 32, 2, 1)] == [16, 16]
    # One example over (65): the partial batch of 1 is dropped on both.
    ds = tf.data.Dataset.range(65).batch(32)
    assert [len(b) for b in process_shard(ds, 32, 2, 0)] == [16, 16]
    assert [b.numpy()[0] for b in process_shard(ds, 32, 4, 3)] == [24, 56]


def cluster(port0, port1=2001, index=0):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port0}", f"127.0.0.1:{port1}"]},
                       "task": {"type": "worker", "index": index}})


def test_the_coordinator_port_in_use_is_refused_before_joining():
    import socket

    from split_vae.distribute import jax_processes, read_tf_config

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} of this worker .* is taken"):
            jax_processes(read_tf_config(cluster(port)), startup_timeout=1)


def test_the_cli_under_jax_refuses_a_wrong_tf_config_before_training(tmp_path):
    proc = run_cli("train", *TINY_TRAIN_FLAGS, "--epochs", "1", "--distribute",
                   "--out", str(tmp_path / "run"),
                   env=dict(JAX, TF_CONFIG=cluster(2000, index=2)))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "task index 2 is out of range" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("index", [0, 1])
def test_a_jax_process_whose_peer_never_comes_up_ends_after_the_startup_timeout(
        tmp_path, index):
    """One process of two, the other never started. JAX gives no exception
    to catch: after the start-up timeout its runtime ends the process
    (SIGABRT, "DEADLINE_EXCEEDED"), before any training or file."""
    import signal
    import time

    port0, port1 = free_ports(2)
    log = f"{tmp_path}/alone"
    started = time.monotonic()
    proc = start(["-m", "split_vae", "train", *TINY_TRAIN_FLAGS, "--epochs", "1",
                  "--distribute", "--startup-timeout", "3", "--out", f"{tmp_path}/run"],
                 dict(JAX, TF_CONFIG=cluster(port0, port1, index=index)), log=log)
    (rc, _, err), = finish([proc], [log], timeout=120)
    elapsed = time.monotonic() - started
    assert rc == -signal.SIGABRT, err[-3000:]
    assert "waiting up to 3s for 2 processes" in err and "DEADLINE_EXCEEDED" in err, err
    print(f"process {index} alone ended {elapsed:.1f} s after it was started")
    assert elapsed >= 3
    assert not os.path.exists(f"{tmp_path}/run/checkpoint.keras")
