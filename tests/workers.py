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
