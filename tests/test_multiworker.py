"""Several machines: MultiWorkerMirroredStrategy with real processes on 127.0.0.1.

Two worker processes (TF_CONFIG each, free ports, a deadline: tests/workers.py)
train a tiny model from Python; a third process trains the same model on one
device on the same global batches. What must agree, and why it can:
- the loss and every weight update, to the tolerance of two devices in one
  process (tests/test_distribute.py): synchronized BatchNorm, the loss of
  each replica divided by the replicas, and each replica's sampling noise
  taken from the noise one device draws for the global batch;
- gamma, the same on both workers after every batch;
- the data: each global batch is split between the workers (no example on
  both), and the epoch is one pass over the data, for in-memory arrays and
  for tf.data pipelines;
- only the chief writes, and what it writes holds the trained weights.
The slow tests run the command line: two workers, a worker killed in the
middle of an epoch, a relaunch that resumes.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from helpers import TINY_TRAIN_FLAGS, run_cli
from workers import (assert_same_updates, finish, free_ports, read, start, start_workers,
                     tf_config)

# One worker, or the one-device reference when TF_CONFIG is unset: the same
# seed, model, data and steps. Writes RESULT.json and RESULT.npz.
TRAIN = r"""
import json, os, sys
import numpy as np
sys.path.insert(0, "tests")
import keras
from helpers import tiny_config, tiny_images
from split_vae import GammaBalance, SplitVAE, data, distribute
from split_vae.training import AtomicCheckpoint, HistoryWriter

out, result = sys.argv[1], sys.argv[2]
several = bool(os.environ.get("TF_CONFIG"))
scope, what = (distribute.data_parallel(32, startup_timeout=120) if several
               else (distribute.contextlib.nullcontext, "one device"))
import tensorflow as tf

class Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.gammas, self.losses = [], []
    def on_train_batch_end(self, batch, logs=None):
        self.gammas.append(float(self.model.gamma.numpy()))
        self.losses.append(float(logs["loss"]))

x = tiny_images(64)
with scope():
    keras.utils.set_random_seed(0)
    model = SplitVAE(tiny_config(), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05))
    before = [w.copy() for w in model.get_weights()]
    record = Record()
    write = distribute.output_dir(out)
    callbacks = [GammaBalance(), record, AtomicCheckpoint(os.path.join(write, "checkpoint.keras")),
                 HistoryWriter(os.path.join(write, "history.csv"))]
    model.fit(x, epochs=1, batch_size=32, shuffle=True, verbose=0, callbacks=callbacks)

# Which examples each worker gets from a tf.data pipeline, step by step, as
# Keras's trainer distributes it: image i is filled with i / 100.
ids = np.repeat(np.arange(64, dtype="float32")[:, None, None, None] / 100, 16 * 16, axis=1)
pipeline = data.array_pipeline(ids.reshape(64, 16, 16, 1), batch_size=32, seed=3)
with scope():
    strategy = tf.distribute.get_strategy()
    batches = [strategy.experimental_local_results(b)[0]
               for b in strategy.experimental_distribute_dataset(pipeline)]
    shares = [sorted(np.rint(np.asarray(b)[:, 0, 0, 0] * 100).astype(int).tolist())
              for b in batches]

np.savez(result + ".npz", *[w - b for w, b in zip(model.get_weights(), before)],
         final=np.concatenate([w.ravel() for w in model.get_weights()]))
json.dump({"what": what, "gammas": record.gammas, "losses": record.losses,
           "names": [w.path for w in model.weights], "shares": shares,
           "write": write}, open(result + ".json", "w"))
"""


def load(result):
    with open(result + ".json") as f:
        out = json.load(f)
    arrays = np.load(result + ".npz")
    deltas = [arrays[f"arr_{i}"] for i in range(len(out["names"]))]
    return out, deltas, arrays["final"]


def test_two_workers_take_the_same_steps_as_one_process(tmp_path):
    t = str(tmp_path)
    logs = [f"{t}/w0", f"{t}/w1", f"{t}/one"]
    argvs = [["-c", TRAIN, f"{t}/out{i}", f"{t}/r{i}"] for i in range(2)]
    procs = start_workers(argvs, logs[:2])
    procs.append(start(["-c", TRAIN, f"{t}/out_one", f"{t}/one"], log=logs[2]))
    for rc, _, err in finish(procs, logs, timeout=300):
        assert rc == 0, err[-3000:]
    (w0, d0, f0), (w1, d1, f1) = load(f"{t}/r0"), load(f"{t}/r1")
    one, d_one, _ = load(f"{t}/one")
    assert w0["what"] == "MultiWorkerMirroredStrategy, 2 workers"

    # 64 images, global batches of 32: two steps on every worker.
    assert len(w0["losses"]) == len(w1["losses"]) == len(one["losses"]) == 2
    # gamma after every batch: bit for bit the same on both workers (each
    # computes it from the same all-reduced batch MSE), and one device's.
    assert w0["gammas"] == w1["gammas"]
    np.testing.assert_allclose(w0["gammas"], one["gammas"], rtol=1e-6)
    assert one["gammas"][-1] < 1
    # The loss (the mean over the global batches so far) as on one device.
    assert w0["losses"] == w1["losses"]
    np.testing.assert_allclose(w0["losses"], one["losses"], rtol=1e-5)
    # Every weight update: the same on both workers, and one device's to
    # the tolerance of tests/test_distribute.py.
    np.testing.assert_array_equal(f0, f1)
    worst = assert_same_updates(d_one, d0, one["names"])
    print(f"two workers: largest update difference / tolerance = {worst:.2e}")

    # The tf.data pipeline: at each step the workers get the two halves of
    # the global batch one device gets (the same seeded shuffle everywhere),
    # no example twice; the epoch is one pass over the 64 examples.
    for s0, s1, whole in zip(w0["shares"], w1["shares"], one["shares"]):
        assert len(s0) == len(s1) == 16 and not set(s0) & set(s1)
        assert sorted(s0 + s1) == whole
    assert sorted(i for s in one["shares"] for i in s) == list(range(64))

    # Only the chief wrote: worker 1's directory was never created, and its
    # files went to a scratch directory, removed when it ended.
    assert w0["write"] == f"{t}/out0" and w1["write"] != f"{t}/out1"
    assert not os.path.exists(f"{t}/out1") and not os.path.exists(w1["write"])
    import keras
    saved = keras.saving.load_model(f"{t}/out0/checkpoint.keras")
    np.testing.assert_array_equal(
        np.concatenate([w.ravel() for w in saved.get_weights()]), f0)
    with open(f"{t}/out0/history.json") as f:
        assert [round(r["loss"], 4) for r in json.load(f)] == [round(w0["losses"][-1], 4)]


# ---------------------------------------------------------------------------
# TF_CONFIG, checked before anything starts
# ---------------------------------------------------------------------------
def cluster_json(workers=2, index=0, kind="worker", **task):
    spec = {"cluster": {"worker": [f"127.0.0.1:{2000 + i}" for i in range(workers)]},
            "task": dict({"type": kind, "index": index}, **task)}
    return json.dumps(spec)


@pytest.mark.parametrize("raw, message", [
    ("{'cluster': 1}", "TF_CONFIG is not valid JSON"),
    ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG needs a "cluster"'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}}', 'TF_CONFIG needs "task"'),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker"}}',
     'TF_CONFIG needs "task"'),
    (cluster_json(index=2), "task index 2 is out of range: the cluster has 2 'worker' "
                            "tasks, indices 0 to 1"),
    (cluster_json(index=-1), "task index -1 is out of range"),
    (cluster_json(index="1"), "task index '1' is out of range"),
    (cluster_json(index=True), "task index True is out of range"),
    (cluster_json(kind="chief"), "task type 'chief' is not in the cluster"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     "cluster has ['ps'] tasks"),
    ('{"cluster": {"worker": ["a:1", "a"]}, "task": {"type": "worker", "index": 0}}',
     'cluster["worker"][1] is \'a\', not HOST:PORT'),
    ('{"cluster": {"worker": ["a:1", "b:65536"]}, "task": {"type": "worker", "index": 0}}',
     "not HOST:PORT with a port from 1 to 65535"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
     "lists an address twice"),
])
def test_a_wrong_tf_config_is_refused_naming_the_problem(raw, message):
    from split_vae.distribute import read_tf_config

    with pytest.raises(ValueError, match=re.escape(message)):
        read_tf_config(raw)


def test_the_chief_and_the_workers_read_from_tf_config():
    from split_vae.distribute import read_tf_config

    assert read_tf_config("") is None and read_tf_config("  ") is None
    last = read_tf_config(cluster_json(index=1))  # the last index in range
    assert (last.num_workers, last.rank, last.address) == (2, 1, "127.0.0.1:2001")
    assert read_tf_config(cluster_json(index=0)).is_chief and not last.is_chief
    # With a "chief" task, it is the chief and worker 0 is not; TensorFlow
    # numbers the chief first.
    spec = {"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]},
            "task": {"type": "worker", "index": 0}}
    worker0 = read_tf_config(json.dumps(spec))
    assert not worker0.is_chief and worker0.rank == 1 and worker0.num_workers == 3
    spec["task"] = {"type": "chief", "index": 0}
    assert read_tf_config(json.dumps(spec)).is_chief


def test_output_dir_is_the_run_directory_on_the_chief_only(tmp_path, monkeypatch):
    from split_vae.distribute import output_dir

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert output_dir(tmp_path / "run") == str(tmp_path / "run")
    monkeypatch.setenv("TF_CONFIG", cluster_json(index=0))
    assert output_dir(tmp_path / "run") == str(tmp_path / "run")
    monkeypatch.setenv("TF_CONFIG", cluster_json(index=1))
    scratch = output_dir(tmp_path / "run")
    assert os.path.isdir(scratch) and not os.listdir(scratch)
    assert not scratch.startswith(str(tmp_path)) and not (tmp_path / "run").exists()


def test_a_port_in_use_is_refused_and_a_free_one_passes():
    import socket

    from split_vae.distribute import check_port_free, read_tf_config

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cluster = read_tf_config(json.dumps(
            {"cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]},
             "task": {"type": "worker", "index": 0}}))
        with pytest.raises(ValueError, match=f"port {port} of this worker .* is taken"):
            check_port_free(cluster)
    check_port_free(cluster)  # closed: free again


def test_the_cli_refuses_a_wrong_tf_config_before_training(tmp_path):
    proc = run_cli("train", *TINY_TRAIN_FLAGS, "--epochs", "1", "--distribute",
               "--out", str(tmp_path / "run"),
               env={"TF_CONFIG": cluster_json(index=2), "KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "task index 2 is out of range" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_several_workers_under_jax_are_refused_before_training(tmp_path):
    proc = run_cli("train", *TINY_TRAIN_FLAGS, "--epochs", "1", "--distribute",
                   "--out", str(tmp_path / "run"),
                   env={"TF_CONFIG": cluster_json(index=0), "KERAS_BACKEND": "jax",
                        "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "TF_CONFIG names 2 workers, which only the tensorflow backend" in proc.stderr
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------
# Start-up: a worker that never comes up
# ---------------------------------------------------------------------------
def test_a_worker_that_never_comes_up_stops_the_others_after_the_startup_timeout(tmp_path):
    """Each of two clusters has one worker running, the other never starts.

    Worker 1 gets TensorFlow's deadline error after the timeout and exits
    with status 4. Worker 0 leads TensorFlow's coordination service, which
    waits in native code: the watchdog ends it (SIGKILL) WATCHDOG_GRACE
    seconds later. Both say why.
    """
    from split_vae.distribute import WATCHDOG_GRACE

    timeout = 4
    procs, logs, started = [], [], time.monotonic()
    for index in (0, 1):
        logs.append(f"{tmp_path}/w{index}")
        procs.append(start(["-m", "split_vae", "train", *TINY_TRAIN_FLAGS, "--epochs", "1",
                            "--distribute", "--startup-timeout", timeout,
                            "--out", f"{tmp_path}/out{index}"],
                           env={"TF_CONFIG": tf_config(free_ports(2), index)}, log=logs[-1]))
    procs[0].wait(timeout=timeout + WATCHDOG_GRACE + 120)
    elapsed = time.monotonic() - started
    results = finish(procs, logs, timeout=60)
    assert results[0][0] == -signal.SIGKILL and results[1][0] == 4, results
    for _, _, err in results:
        assert "the 2 workers of TF_CONFIG did not all come up within 4s" in err, err[-2000:]
    # The watchdog waits the timeout and its grace (plus start-up, seconds).
    assert timeout + WATCHDOG_GRACE <= elapsed < timeout + WATCHDOG_GRACE + 120
    print(f"worker 0 ended {elapsed:.1f} s after it was started")
    assert not os.path.exists(f"{tmp_path}/out0/checkpoint.keras")


def wait_for_line(path, text, proc, timeout=120):
    """The time at which text appeared in the file (polled), proc still running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and text in read(path):
            return time.monotonic()
        if proc.poll() is not None:
            raise AssertionError(f"ended ({proc.returncode}) before {text!r}:\n{read(path)}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no {text!r} within {timeout}s:\n{read(path)}")


# ---------------------------------------------------------------------------
# The command line: two workers, one killed, a relaunch that resumes
# ---------------------------------------------------------------------------
CLI_RUN = ["-m", "split_vae", "train", *TINY_TRAIN_FLAGS[:2], "--limit", "1024",
           *TINY_TRAIN_FLAGS[4:], "--epochs", "3", "--verbose", "2", "--distribute"]
STEPS = 1024 // 32  # digits has 1,438 training images


@pytest.mark.slow
def test_a_killed_worker_stops_the_other_and_a_relaunch_resumes(tmp_path):
    """Two workers train through the CLI into one directory; worker 1 is
    killed (SIGKILL) in the epoch after the chief's first checkpoint. The
    chief stops with status 4 within seconds, saying which checkpoint is
    complete; the same two commands started again resume from it (epoch,
    gamma, optimizer state) and finish the run."""
    from split_vae.checkpoint import read_checkpoint_state

    t, out = str(tmp_path), str(tmp_path / "run")
    logs = [f"{t}/a0", f"{t}/a1"]
    procs = start_workers([CLI_RUN + ["--out", out]] * 2, logs)
    try:
        wait_for_line(f"{out}/history.json", '"epoch": 1', procs[0], timeout=300)
        time.sleep(0.5)  # into the next epoch
        assert procs[1].poll() is None, read(f"{logs[1]}.err")[-2000:]
        procs[1].kill()
        killed = time.monotonic()
        procs[0].wait(timeout=120)
        stopped = time.monotonic() - killed
    finally:
        finish(procs, logs, timeout=10)
    err = read(f"{logs[0]}.err")
    assert procs[0].returncode == 4, err[-3000:]
    assert stopped < 60, stopped
    print(f"worker 0 stopped {stopped:.1f} s after worker 1 was killed")
    state = read_checkpoint_state(f"{out}/checkpoint.keras")
    assert 1 <= state["epoch"] < 3
    assert "a worker stopped answering, so training stopped" in err
    assert (f"The last complete checkpoint is {out}/checkpoint.keras "
            f"(epoch {state['epoch']})") in err
    assert "Traceback" not in err

    logs = [f"{t}/b0", f"{t}/b1"]
    results = finish(start_workers([CLI_RUN + ["--out", out]] * 2, logs), logs, timeout=400)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
        assert (f"resuming from {out}/checkpoint.keras after epoch {state['epoch']} "
                f"(gamma={state['gamma']:.5g})") in err
    import keras
    final = keras.saving.load_model(f"{out}/model.keras")
    # The optimizer's state came back with the weights: its step count goes on.
    assert int(final.optimizer.iterations.numpy()) == 3 * STEPS
    with open(f"{out}/history.json") as f:
        assert [r["epoch"] for r in json.load(f)] == [1, 2, 3]  # epochs done
    assert read_checkpoint_state(f"{out}/checkpoint.keras")["epoch"] == 3
    for name in ("generated.png", "reconstructed.png", "config.json"):
        assert os.path.getsize(f"{out}/{name}") > 0
