"""A bound on every training step of a job on several workers (`train --step-timeout`).

A worker that is frozen rather than dead (stopped with SIGSTOP, stuck in
I/O, swapping) keeps its connections open: the other workers wait for it in
the step's collective, and neither TensorFlow's heartbeat nor a Python
exception ends that wait. Each worker therefore runs a watchdog thread,
armed from the start of each training step to its end (Keras's
on_train_batch_begin / on_train_batch_end); when one step has lasted longer
than the bound, the thread logs the lost-worker message naming the last
complete checkpoint and ends the process with `distribute.EXIT_CLUSTER` (4),
as a worker that lost a peer does. The frozen worker cannot stop itself;
every live one does, and starting the same commands again resumes from the
checkpoint.

Slow but healthy runs are told apart from frozen ones by what is timed and
how the bound is set (`StepBound`):
- only training steps are timed. The first step of a run (tracing and
  compilation) is never timed, nor is anything between two steps: the end
  of an epoch (validation, the checkpoint, figures), whose length does not
  follow from the steps' and which on one machine no peer can freeze;
- the default bound is FACTOR times the slowest of the SAMPLE steps after
  the first, and never under FLOOR seconds; until those steps are done, the
  slowest step so far, the first (compiling) one included, stands in for
  them, so the bound of the first steps is generous.

Imports the standard library alone (the callback's base class comes from
Keras, imported when the callback is made).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

logger = logging.getLogger(__name__)

FLOOR = 120.0      # seconds: the default bound is never shorter
FACTOR = 50.0      # the default bound: FACTOR x the slowest of the first steps
UNTIMED = 1        # the first step of a run (tracing, compilation) has no bound
SAMPLE = 5         # the steps after it whose slowest sets the default


class StepBound:
    """The bound on the next training step, from the steps seen so far.

    timeout: the user's bound in seconds (`--step-timeout`), None for the
    default (derived from the steps), 0 for none at all. `bound()` is None
    (no bound) while the run is in its UNTIMED first steps, or when
    disabled; otherwise the explicit timeout, or `default_bound` of the
    steps after the untimed ones (the first SAMPLE of them), or, before
    SAMPLE of them are done, of every step so far.
    """

    def __init__(self, timeout=None, floor=FLOOR, factor=FACTOR, untimed=UNTIMED,
                 sample=SAMPLE):
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"the step timeout must be >= 0 seconds, received {timeout}")
        self.timeout, self.floor, self.factor = timeout, floor, factor
        self.untimed, self.sample = untimed, sample
        self.durations: list[float] = []

    def record(self, seconds: float) -> None:
        """One finished step took seconds (only the first untimed + sample are kept)."""
        if len(self.durations) < self.untimed + self.sample:
            self.durations.append(float(seconds))

    def bound(self):
        if self.timeout == 0 or len(self.durations) < self.untimed:
            return None
        if self.timeout is not None:
            return float(self.timeout)
        timed = self.durations[self.untimed:]
        basis = timed if len(timed) >= self.sample else self.durations
        return default_bound(basis, self.floor, self.factor)

    def expired(self, elapsed: float) -> bool:
        """Whether a step that has run elapsed seconds has passed the bound."""
        bound = self.bound()
        return bound is not None and elapsed > bound


def default_bound(durations, floor=FLOOR, factor=FACTOR) -> float:
    """max(floor, factor x the slowest of durations): the default step bound."""
    return max(float(floor), float(factor) * max(durations))


def timeout_message(bound: float, checkpoint) -> str:
    """The lost-worker message, for a step that passed the bound."""
    from .distribute import lost_worker_message

    return lost_worker_message(
        f"no training step finished within {bound:g}s: a worker is frozen or unreachable "
        "(--step-timeout)", checkpoint)


class Watchdog:
    """A daemon thread that calls on_expire(bound) when an armed deadline passes.

    `arm(bound)` starts a deadline bound seconds from now (None: disarm),
    `disarm()` ends it, `stop()` ends the thread. on_expire runs in the
    thread, once; the default logs `timeout_message` and ends the process
    (`end_process`): the main thread is waiting in native code, where no
    exception reaches it.
    """

    def __init__(self, on_expire, clock=time.monotonic):
        self.on_expire, self.clock = on_expire, clock
        self._lock = threading.Condition()
        self._deadline = self._bound = None
        self._stopped = False
        self.fired = False
        self._thread = threading.Thread(target=self._watch, name="split_vae-step-watchdog",
                                        daemon=True)
        self._thread.start()

    def arm(self, bound) -> None:
        with self._lock:
            self._bound = bound
            self._deadline = None if bound is None else self.clock() + bound
            self._lock.notify()

    def disarm(self) -> None:
        self.arm(None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify()
        self._thread.join()

    def _watch(self):
        with self._lock:
            while not self._stopped:
                if self._deadline is None:
                    self._lock.wait()
                    continue
                left = self._deadline - self.clock()
                if left > 0:
                    self._lock.wait(left)
                    continue
                bound, self._deadline = self._bound, None
                self.fired = True
                break
            else:
                return
        self.on_expire(bound)


def end_process(message: str, status: int, cleanup=()) -> None:
    """Log message, run cleanup (callables, errors ignored), flush, os._exit(status).

    os._exit: the main thread is blocked in a collective that only another
    worker could end; a normal exit would wait for it forever.
    """
    logger.error("%s", message)
    for fn in cleanup:
        try:
            fn()
        except Exception:  # noqa: BLE001 - ending anyway
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(status)


def step_timeout_callback(bound: StepBound, on_expire):
    """A Keras callback that arms a Watchdog for each training step with bound.

    on_expire(seconds) is called (in the watchdog's thread) when a step
    passes the bound. The watchdog starts with training and stops with it.
    """
    import keras

    class StepTimeout(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.bound, self.watchdog, self._started = bound, None, None

        def on_train_begin(self, logs=None):
            if self.watchdog is None:
                self.watchdog = Watchdog(on_expire)

        def on_train_batch_begin(self, batch, logs=None):
            self._started = time.monotonic()
            self.watchdog.arm(self.bound.bound())

        def on_train_batch_end(self, batch, logs=None):
            self.watchdog.disarm()
            if self._started is not None:
                self.bound.record(time.monotonic() - self._started)
            self._started = None

        def on_train_end(self, logs=None):
            if self.watchdog is not None:
                self.watchdog.stop()
                self.watchdog = None

    return StepTimeout()
