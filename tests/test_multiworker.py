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
from workers import (assert_only_the_chief_wrote, assert_same_steps_as_one, finish, free_ports, read, start,
                     start_workers, tf_config, two_against_one, wait_for_line)

# One worker, or the one-device reference when TF_CONFIG is unset: the same
# seed, model, data and steps. Writes RESULT.json and RESULT.npz.
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
scope, what = (distribute.data_parallel(32, startup_timeout=120) if several
               else (distribute.contextlib.nullcontext, "one device"))
import tensorflow as tf


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


def test_two_workers_take_the_same_steps_as_one_process(tmp_path):
    t = str(tmp_path)
    results = two_against_one(TRAIN, t)
    w0 = results[0][0]
    assert w0["what"] == "MultiWorkerMirroredStrategy, 2 workers"
    # 64 images, global batches of 32: two steps on every worker, each the
    # one-process step (the loss, gamma, every weight update to the tolerance
    # of tests/test_distribute.py); at each step the workers get the two
    # halves of the tf.data global batch one process gets (the same seeded
    # shuffle everywhere), no example twice, one pass over the 64 examples.
    assert_same_steps_as_one(*results, "two workers")

    assert_only_the_chief_wrote(t, results)
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


# ---------------------------------------------------------------------------
# Start-up: a worker that never comes up
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw, grace", [("", 30.0), ("  ", 30.0), ("8", 8.0), ("0", 0.0),
                                         ("2.5", 2.5)])
def test_the_watchdog_grace_is_30_s_unless_the_environment_says(raw, grace, monkeypatch):
    from split_vae import distribute

    monkeypatch.setenv("SPLIT_VAE_WATCHDOG_GRACE", raw)
    assert distribute.watchdog_grace() == grace


@pytest.mark.parametrize("raw", ["-0.001", "nan", "inf", "ten", "8s"])
def test_a_watchdog_grace_that_is_not_seconds_is_refused(raw, monkeypatch):
    from split_vae import distribute

    monkeypatch.setenv("SPLIT_VAE_WATCHDOG_GRACE", raw)
    with pytest.raises(distribute.ClusterError, match=f"SPLIT_VAE_WATCHDOG_GRACE='{raw}'"):
        distribute.watchdog_grace()


def test_a_worker_that_never_comes_up_stops_the_others_after_the_startup_timeout(tmp_path):
    """Each of two clusters has one worker running, the other never starts.

    Worker 1 gets TensorFlow's deadline error after the timeout and exits
    with status 4. Worker 0 leads TensorFlow's coordination service, which
    waits in native code: the watchdog ends it (SIGKILL) WATCHDOG_GRACE
    seconds later (SPLIT_VAE_WATCHDOG_GRACE). Both say why.
    """
    # The default grace is 30 s; 8 s here keeps the fast tier short and is
    # still longer than worker 1 takes to get TensorFlow's deadline error.
    grace, timeout = 8, 4
    procs, logs, started = [], [], time.monotonic()
    for index in (0, 1):
        logs.append(f"{tmp_path}/w{index}")
        procs.append(start(["-m", "split_vae", "train", *TINY_TRAIN_FLAGS, "--epochs", "1",
                            "--distribute", "--startup-timeout", timeout,
                            "--out", f"{tmp_path}/out{index}"],
                           env={"TF_CONFIG": tf_config(free_ports(2), index),
                                "SPLIT_VAE_WATCHDOG_GRACE": str(grace)}, log=logs[-1]))
    procs[0].wait(timeout=timeout + grace + 120)
    elapsed = time.monotonic() - started
    results = finish(procs, logs, timeout=60)
    assert results[0][0] == -signal.SIGKILL and results[1][0] == 4, results
    for _, _, err in results:
        assert "the 2 workers of TF_CONFIG did not all come up within 4s" in err, err[-2000:]
    # The watchdog waits the timeout and its grace (plus start-up, seconds).
    assert timeout + grace <= elapsed < timeout + grace + 120
    print(f"worker 0 ended {elapsed:.1f} s after it was started")
    assert not os.path.exists(f"{tmp_path}/out0/checkpoint.keras")


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


# ---------------------------------------------------------------------------
# A frozen worker: the step bound ends the others, a relaunch resumes
# ---------------------------------------------------------------------------
FROZEN_RUN = ["-m", "split_vae", "train", *TINY_TRAIN_FLAGS[:2], "--limit", "512",
              *TINY_TRAIN_FLAGS[4:], "--epochs", "2", "--verbose", "2", "--distribute"]
FROZEN_STEPS = 512 // 32
STEP_TIMEOUT = 10

# Worker 1 of the "stuck" case: the command line, whose training thread stops
# for good after batch 3 of the second epoch (as in a read that never
# returns), after the step's end; its other threads, TensorFlow's heartbeat
# among them, go on. It first creates the file argv[1].
STUCK = r"""
import sys, threading
from split_vae import training
from split_vae.cli.main import console_main

flag, sys.argv = sys.argv[1], ["split_vae"] + sys.argv[2:]
epochs, batch_end = [], training.GammaBalance.on_train_batch_end

def on_train_batch_end(self, batch, logs=None):
    batch_end(self, batch, logs)
    if len(epochs) == 2 and batch == 3:
        open(flag, "w").close()
        threading.Event().wait()

training.GammaBalance.on_epoch_begin = lambda self, epoch, logs=None: epochs.append(epoch)
training.GammaBalance.on_train_batch_end = on_train_batch_end
sys.exit(console_main())
"""


def wait_for_file(path, proc, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {path} (worker ended: {proc.returncode})")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("freeze", ["stuck", "sigstop"])
def test_a_frozen_worker_stops_the_other_after_the_step_timeout(tmp_path, freeze):
    """Two workers with `--step-timeout 10`; worker 1 freezes in the epoch
    after the chief's first checkpoint, its connections open:
    - "stuck": its training thread stops after a step, its other threads go
      on. TensorFlow's heartbeat sees nothing wrong: without the bound the
      chief waits in the next step's collective for ever;
    - "sigstop": the whole process is stopped. TensorFlow's heartbeat
      (30 s) would end the chief's wait too; the bound, 10 s, comes first.
    The chief's watchdog ends it with status 4 about 10 s later, naming the
    checkpoint; the frozen worker, which cannot, is then killed. In the
    "stuck" case the same commands without the option (the default bound,
    derived from the steps: it must not fire on the healthy run) resume
    and finish the run."""
    from split_vae.checkpoint import read_checkpoint_state

    t, out = str(tmp_path), str(tmp_path / "run")
    logs = [f"{t}/f0", f"{t}/f1"]
    argv = FROZEN_RUN + ["--step-timeout", STEP_TIMEOUT, "--out", out]
    flag = f"{t}/stuck"
    first = argv if freeze == "sigstop" else ["-c", STUCK, flag] + argv[2:]
    procs = start_workers([argv, first], logs)
    try:
        if freeze == "stuck":
            wait_for_file(flag, procs[1], timeout=300)
        else:
            wait_for_line(f"{out}/history.json", '"epoch": 1', procs[0], timeout=300)
            time.sleep(0.5)  # into the next epoch
            assert procs[1].poll() is None, read(f"{logs[1]}.err")[-2000:]
            os.kill(procs[1].pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        procs[0].wait(timeout=STEP_TIMEOUT + 120)
        stopped = time.monotonic() - frozen_at
        assert procs[1].poll() is None  # frozen: it does not stop by itself
    finally:
        for p in procs:  # the frozen worker (SIGKILL ends a stopped process too)
            if p.poll() is None:
                p.kill()
        finish(procs, logs, timeout=10)
    err = read(f"{logs[0]}.err")
    assert procs[0].returncode == 4, err[-3000:]
    # The chief's step in progress started at most a step before the freeze.
    assert STEP_TIMEOUT - 2 < stopped < STEP_TIMEOUT + 30, stopped
    print(f"{freeze}: worker 0 stopped {stopped:.1f} s after worker 1 froze "
          f"(--step-timeout {STEP_TIMEOUT})")
    state = read_checkpoint_state(f"{out}/checkpoint.keras")
    assert state["epoch"] == 1
    assert ("a worker stopped answering, so training stopped (no training step finished "
            f"within {STEP_TIMEOUT}s: a worker is frozen or unreachable (--step-timeout)). "
            f"The last complete checkpoint is {out}/checkpoint.keras (epoch 1). Start the "
            "same command again on every worker to resume from it.") in err
    assert "Traceback" not in err
    if freeze == "sigstop":
        return

    logs = [f"{t}/g0", f"{t}/g1"]
    results = finish(start_workers([FROZEN_RUN + ["--out", out]] * 2, logs), logs,
                     timeout=400)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
        assert "step timeout: 50 x the slowest of the 5 steps after the first" in err
        assert (f"resuming from {out}/checkpoint.keras after epoch 1 "
                f"(gamma={state['gamma']:.5g})") in err
    import keras
    final = keras.saving.load_model(f"{out}/model.keras")
    assert int(final.optimizer.iterations.numpy()) == 2 * FROZEN_STEPS  # it went on
    with open(f"{out}/history.json") as f:
        assert [r["epoch"] for r in json.load(f)] == [1, 2]
