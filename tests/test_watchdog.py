"""The step bound of a job on several workers (`train --step-timeout`): its decision.

`StepBound` decides, from the steps seen so far, how long the next step may
take; `Watchdog` is the thread that acts when an armed step passes it. The
constants that decide a verdict (FLOOR, FACTOR, UNTIMED, SAMPLE, the bound
itself) are each pinned by inputs just on either side. The real processes
(a frozen worker, a killed JAX process) are in tests/test_multiworker.py and
tests/test_multiprocess_jax.py (slow tier).
"""

import subprocess
import sys
import threading
import time

import pytest

from helpers import ROOT
from split_vae import watchdog
from split_vae.watchdog import FACTOR, FLOOR, SAMPLE, UNTIMED, StepBound, default_bound


def test_the_constants_are_the_documented_ones():
    assert (FLOOR, FACTOR, UNTIMED, SAMPLE) == (120.0, 50.0, 1, 5)


# ---------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------
def test_an_explicit_bound_fires_just_over_it_and_not_just_under():
    bound = StepBound(timeout=10)
    bound.record(300.0)  # the first step (compilation) is longer than the bound
    assert bound.bound() == 10.0
    assert not bound.expired(9.999)
    assert not bound.expired(10.0)
    assert bound.expired(10.001)
    # Steps of any length after the first change nothing: the user said 10 s.
    for seconds in (0.1, 50.0, 0.2, 0.3, 0.4, 0.5):
        bound.record(seconds)
    assert bound.bound() == 10.0 and bound.expired(10.001) and not bound.expired(9.999)


def test_the_first_step_is_not_bounded():
    # UNTIMED = 1: before any step has finished, no bound, however small the
    # explicit one or the default; after one step, a bound.
    for timeout in (None, 0.5):
        bound = StepBound(timeout=timeout)
        assert bound.bound() is None and not bound.expired(1e9)
        bound.record(30.0)
        assert bound.bound() is not None and bound.expired(1e9)


def test_zero_disables_the_bound():
    bound = StepBound(timeout=0)
    for seconds in [0.1] * 10:
        bound.record(seconds)
    assert bound.bound() is None and not bound.expired(1e9)


@pytest.mark.parametrize("timeout", [-1, -1e-9, float("nan")])
def test_a_negative_or_nan_timeout_is_refused(timeout):
    with pytest.raises(ValueError, match="must be >= 0 seconds"):
        StepBound(timeout=timeout)


def test_the_default_is_factor_times_the_slowest_step_with_a_floor():
    # FLOOR / FACTOR = 2.4 s: slower steps raise the bound above the floor.
    assert default_bound([0.01, 2.3]) == 120.0
    assert default_bound([2.4]) == pytest.approx(120.0)
    assert default_bound([2.5, 0.01]) == pytest.approx(125.0)
    assert default_bound([1.0, 3.0, 2.0]) == pytest.approx(150.0)
    # The floor and the factor each decide on their side.
    assert default_bound([2.3], floor=100) == pytest.approx(115.0)
    assert default_bound([2.3], factor=60) == pytest.approx(138.0)


def test_the_default_comes_from_the_sample_steps_after_the_first():
    bound = StepBound()
    bound.record(40.0)  # the first step: tracing and compilation
    # Until SAMPLE steps after it are done, the slowest step so far (the
    # compiling one) stands in: a generous bound, 50 x 40 s.
    for _ in range(4):  # SAMPLE - 1
        bound.record(3.0)
        assert bound.bound() == pytest.approx(2000.0)
    bound.record(3.0)  # the 5th (SAMPLE): the default is now theirs
    assert bound.bound() == pytest.approx(150.0)
    assert bound.expired(150.001) and not bound.expired(149.999)
    # Later steps do not move it (a slow step later is not the norm).
    bound.record(100.0)
    bound.record(0.001)
    assert bound.bound() == pytest.approx(150.0)


def test_the_slowest_of_the_sample_steps_sets_the_default():
    bound = StepBound()
    for seconds in (9.0, 0.1, 0.1, 4.0, 0.1, 0.1):  # the 4 s step is one of SAMPLE
        bound.record(seconds)
    assert bound.bound() == pytest.approx(200.0)
    bound = StepBound()
    for seconds in (9.0, 0.1, 0.1, 0.1, 0.1, 0.1):  # fast steps: the floor
        bound.record(seconds)
    assert bound.bound() == 120.0


# ---------------------------------------------------------------------------
# The thread
# ---------------------------------------------------------------------------
def test_the_watchdog_fires_once_when_an_armed_step_passes_its_bound():
    fired = []
    dog = watchdog.Watchdog(lambda bound: fired.append((bound, time.monotonic())))
    try:
        armed = time.monotonic()
        dog.arm(0.3)
        time.sleep(1.5)
        assert len(fired) == 1 and fired[0][0] == 0.3
        assert 0.3 <= fired[0][1] - armed < 1.2
        assert dog.fired
    finally:
        dog.stop()


def test_the_watchdog_does_not_fire_for_a_step_that_ends_in_time_or_when_disarmed():
    fired = []
    dog = watchdog.Watchdog(fired.append)
    try:
        for _ in range(5):  # steps of 0.05 s under a bound of 0.4 s
            dog.arm(0.4)
            time.sleep(0.05)
            dog.disarm()
        dog.arm(None)  # an untimed step
        time.sleep(0.6)
        assert fired == [] and not dog.fired
    finally:
        dog.stop()
    assert not dog._thread.is_alive()


def step_timeout(timeout, fired):
    return watchdog.step_timeout_callback(StepBound(timeout=timeout), fired.append)


def test_the_callback_bounds_the_steps_after_the_first():
    fired = []
    callback = step_timeout(0.3, fired)
    callback.on_train_begin()
    try:
        callback.on_train_batch_begin(0)
        time.sleep(0.6)  # the first step, longer than the bound: not timed
        callback.on_train_batch_end(0)
        for batch in (1, 2):  # in time
            callback.on_train_batch_begin(batch)
            time.sleep(0.05)
            callback.on_train_batch_end(batch)
        time.sleep(0.6)  # between steps (an epoch's end): not timed
        assert fired == []
        callback.on_train_batch_begin(3)
        time.sleep(1.2)  # passes the bound
        assert fired == [0.3]
    finally:
        callback.on_train_end()
    assert callback.watchdog is None


def test_a_disabled_bound_never_fires():
    fired = []
    callback = step_timeout(0, fired)
    callback.on_train_begin()
    for batch in range(3):
        callback.on_train_batch_begin(batch)
        time.sleep(0.3)
        callback.on_train_batch_end(batch)
    callback.on_train_end()
    assert fired == []


# What the command line does when the bound is passed: the main thread waits
# where no exception reaches it (here: on a lock no one releases).
ENDS = r"""
import os, sys, threading, time
from split_vae import watchdog
scratch = sys.argv[1]
os.makedirs(scratch)
dog = watchdog.Watchdog(lambda bound: watchdog.end_process(
    watchdog.timeout_message(bound, scratch + "/checkpoint.keras (epoch 2)"), 4,
    [lambda: os.rmdir(scratch), lambda: 1 / 0]))
dog.arm(0.2)
lock = threading.Lock()
lock.acquire()
lock.acquire()  # never returns
"""


def test_a_passed_bound_ends_a_blocked_process_with_status_4_naming_the_checkpoint(tmp_path):
    scratch = str(tmp_path / "scratch")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c",
                           "import logging, sys; logging.basicConfig(stream=sys.stderr)\n"
                           + ENDS, scratch],
                          cwd=ROOT, env={"PYTHONPATH": ROOT, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert time.monotonic() - started < 30
    assert ("a worker stopped answering, so training stopped (no training step finished "
            "within 0.2s: a worker is frozen or unreachable (--step-timeout)). The last "
            f"complete checkpoint is {scratch}/checkpoint.keras (epoch 2). Start the same "
            "command again on every worker to resume from it.") in proc.stderr
    # The cleanup ran (an error in one does not stop the exit).
    import os
    assert not os.path.exists(scratch)


# ---------------------------------------------------------------------------
# The command line's option
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["-1", "-0.001", "abc", "nan", "inf", ""])
def test_a_wrong_step_timeout_is_an_argparse_error_naming_the_option(text, capsys):
    from split_vae.cli.main import build_parser

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", "--step-timeout", text])
    assert e.value.code == 2
    assert f"argument --step-timeout: expected a number of seconds >= 0 (0: no bound), " \
           f"received {text!r}" in capsys.readouterr().err


@pytest.mark.parametrize("text, seconds", [("0", 0.0), ("0.001", 0.001), ("600", 600.0)])
def test_a_step_timeout_of_zero_or_more_seconds_is_read(text, seconds):
    from split_vae.cli.main import build_parser

    args = build_parser().parse_args(["train", "--step-timeout", text])
    assert args.step_timeout == seconds
    assert build_parser().parse_args(["train"]).step_timeout is None  # the default


def test_a_jax_error_counts_as_a_lost_worker_only_when_it_says_so(monkeypatch):
    import jax
    import keras
    import tensorflow as tf

    from split_vae import distribute

    assert distribute.is_lost_worker(tf.errors.UnavailableError(None, None, "gone"))
    assert not distribute.is_lost_worker(ValueError("Connection reset by peer"))
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    lost = jax.errors.JaxRuntimeError(
        "UNKNOWN: Gloo all-reduce failed: [pair.cc:538] Read error [127.0.0.1]:64727: "
        "Connection reset by peer")
    assert distribute.is_lost_worker(lost)
    assert "Connection reset by peer" in distribute.lost_worker_message(lost)
    assert not distribute.is_lost_worker(jax.errors.JaxRuntimeError(
        "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB"))
    assert not distribute.is_lost_worker(tf.errors.UnavailableError(None, None, "gone"))
    # The same failure as a ValueError carrying the runtime's text (seen in CI),
    # and ValueErrors of our own, which must still be raised.
    assert distribute.is_lost_worker(ValueError(
        "UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/pair.cc:538] "
        "Read error [127.0.0.1]:41906: Connection reset by peer"))
    assert not distribute.is_lost_worker(ValueError("Connection reset by peer"))
    assert not distribute.is_lost_worker(ValueError("images contain NaN"))
