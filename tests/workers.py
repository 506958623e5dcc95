"""Several processes on 127.0.0.1 as the workers of one TensorFlow job, and
the comparison of a distributed step with one device's.

`start_workers` gives every process its own TF_CONFIG over free ports and
`finish` waits for them all with a deadline, killing (SIGKILL: TensorFlow
ignores SIGTERM while it waits for a peer) whatever is still running, so a
hang fails a test instead of blocking CI.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

from helpers import ROOT


def free_ports(n):
    """n TCP ports that nothing listens on now (the kernel picks them)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def start(argv, env=None, log=None):
    """`python ARGV` from the repository root, stderr (and stdout) into log files."""
    full = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT,
                KERAS_BACKEND="tensorflow")
    full.update(env or {})
    out = open(f"{log}.out", "w") if log else subprocess.DEVNULL
    err = open(f"{log}.err", "w") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, *map(str, argv)], cwd=ROOT, env=full,
                            stdout=out, stderr=err)


def start_workers(argvs, logs, env=None, ports=None):
    """One process per argv, worker i of a cluster on free ports of 127.0.0.1."""
    ports = ports or free_ports(len(argvs))
    return [start(argv, dict(env or {}, TF_CONFIG=tf_config(ports, i)), log)
            for i, (argv, log) in enumerate(zip(argvs, logs))]


def finish(procs, logs, timeout):
    """Wait for every process (timeout seconds in all); [(returncode, stdout, stderr)].

    A process still running at the deadline is killed and the test fails,
    with the end of every log.
    """
    deadline = time.monotonic() + timeout
    hung = []
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            hung.append(p)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    results = [(p.returncode, read(f"{log}.out"), read(f"{log}.err"))
               for p, log in zip(procs, logs)]
    if hung:
        tails = "\n".join(f"--- worker {i}\n{err[-3000:]}" for i, (_, _, err) in
                          enumerate(results))
        raise AssertionError(f"{len(hung)} worker(s) still running after {timeout}s\n{tails}")
    return results


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


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


def assert_same_updates(d1, d2, names, rel=2e-3, floor=1e-6):
    """Every weight moved by the same amount in two runs of the same steps.

    d1, d2: lists of weight updates (after - before), one device and several.
    Each update agrees with one device's to rel of its largest entry, with
    floor as an absolute bound for the biases of convolutions followed by
    BatchNorm, whose gradient is zero up to rounding (BatchNorm removes a
    constant shift). Returns the worst difference / tolerance; checks that
    the steps moved more than half of the weights.
    """
    worst = 0.0
    for a, b, name in zip(d1, d2, names):
        atol = max(rel * float(np.abs(a).max()), floor)
        worst = max(worst, float(np.abs(a - b).max()) / atol)
        np.testing.assert_allclose(b, a, rtol=0, atol=atol, err_msg=name)
    moved = [name for a, name in zip(d1, names) if np.abs(a).max() > 0]
    assert len(moved) > len(names) // 2  # the steps did change the network
    return worst


def load_result(result):
    """(RESULT.json, weight updates, final weights) written by a training script."""
    import json

    with open(result + ".json") as f:
        out = json.load(f)
    arrays = np.load(result + ".npz")
    deltas = [arrays[f"arr_{i}"] for i in range(len(out["names"]))]
    return out, deltas, arrays["final"]


def two_against_one(script, t, env=None, timeout=300):
    """script run as two workers (out0, out1) and alone (out_one); their results."""
    logs = [f"{t}/w0", f"{t}/w1", f"{t}/one"]
    argvs = [["-c", script, f"{t}/out{i}", f"{t}/r{i}"] for i in range(2)]
    procs = start_workers(argvs, logs[:2], env=env)
    procs.append(start(["-c", script, f"{t}/out_one", f"{t}/one"], env, log=logs[2]))
    for rc, _, err in finish(procs, logs, timeout=timeout):
        assert rc == 0, err[-3000:]
    return load_result(f"{t}/r0"), load_result(f"{t}/r1"), load_result(f"{t}/one")


def assert_same_steps_as_one(w0, w1, one, what):
    """Two workers' 2 steps on 64 images (global batches of 32) against one's.

    Each of w0, w1, one is load_result's triple. gamma after every batch is
    bit for bit the same on both workers (each computes it from the same
    reduced batch MSE) and one process's to 1e-6; the loss to 1e-5; every
    weight update as assert_same_updates; each worker's share of every
    tf.data batch is one half of the one-process batch (none in both, one
    pass over the 64 examples). Prints and returns the worst update ratio.
    """
    (r0, d0, f0), (r1, _, f1), (r_one, d_one, _) = w0, w1, one
    assert len(r0["losses"]) == len(r1["losses"]) == len(r_one["losses"]) == 2
    assert r0["gammas"] == r1["gammas"]
    np.testing.assert_allclose(r0["gammas"], r_one["gammas"], rtol=1e-6)
    assert r_one["gammas"][-1] < 1
    assert r0["losses"] == r1["losses"]
    np.testing.assert_allclose(r0["losses"], r_one["losses"], rtol=1e-5)
    np.testing.assert_array_equal(f0, f1)
    worst = assert_same_updates(d_one, d0, r_one["names"])
    print(f"{what}: largest update difference / tolerance = {worst:.2e}")
    assert len(r0["shares"]) == len(r1["shares"]) == len(r_one["shares"]) == 2
    for s0, s1, whole in zip(r0["shares"], r1["shares"], r_one["shares"]):
        assert len(s0) == len(s1) == 16 and not set(s0) & set(s1)
        assert sorted(s0 + s1) == whole
    assert sorted(i for s in r_one["shares"] for i in s) == list(range(64))
    return worst


def assert_only_the_chief_wrote(t, results):
    """After two_against_one: worker 0 (the chief) wrote into out0 a
    checkpoint that holds the trained weights; worker 1's out1 was never
    created and its scratch directory was removed when it ended."""
    import keras

    (w0, _, f0), (w1, _, _), _ = results
    assert w0["write"] == f"{t}/out0" and w1["write"] != f"{t}/out1"
    assert not os.path.exists(f"{t}/out1") and not os.path.exists(w1["write"])
    saved = keras.saving.load_model(f"{t}/out0/checkpoint.keras")
    np.testing.assert_array_equal(
        np.concatenate([w.ravel() for w in saved.get_weights()]), f0)
