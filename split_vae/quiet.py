"""Quiet TensorFlow's C++ start-up log lines, in the library and on the command line.

TensorFlow writes lines such as "oneDNN custom operations are on", "Could not
find cuda drivers" and "failed call to cuInit" to file descriptor 2 from C++,
most of them while it is imported and before it reads TF_CPP_MIN_LOG_LEVEL
(absl's "All log messages before absl::InitializeLog()" lines). So we set
TF_CPP_MIN_LOG_LEVEL (only where the user has not: 0 brings every line back)
and pass descriptor 2 through a filter that drops the native log records the
level hides: the command line (`python -m split_vae`, the `split-vae`
script) for the whole command, the library (`import split_vae`) for the
import of TensorFlow alone (`importhooks`). Python's own stderr (our
messages, warnings, tracebacks, tqdm) does not go through it.

The filter is a process of its own (this file run as a script), not a
thread: when the command dies natively (an abort, a segmentation fault, a
kill), what it wrote last is still in the pipe, and the filter, which
outlives it, passes every remaining line on before it ends.

Imports the standard library alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys

DEFAULT_LEVEL = "3"  # "failed call to cuInit" is an ERROR record of TensorFlow's

# An absl/glog record: severity letter, MMDD, time, thread id, file:line].
_RECORD = re.compile(rb"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\s:\]]+:\d+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog()"
_CPU_GUARD_TAIL = b"To enable the following instructions:"
_HIDDEN_BY_LEVEL = {b"I": 1, b"W": 2, b"E": 3}
_ACTIVE = False  # a filter is in place (a nested one, e.g. an import inside a command, adds none)


def set_log_level() -> int:
    """Set TF_CPP_MIN_LOG_LEVEL unless the user did; the level in force."""
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LEVEL)
    try:
        return int(level)
    except ValueError:
        return 0


def is_hidden(line: bytes, level: int) -> bool:
    """Whether a line of native stderr is a log record that `level` hides."""
    if level < 1:
        return False
    if line.startswith(_ABSL_PREAMBLE) or line.startswith(_CPU_GUARD_TAIL):
        return True
    m = _RECORD.match(line)
    return bool(m) and level >= _HIDDEN_BY_LEVEL.get(m.group(1), 99)


@contextlib.contextmanager
def filtered_native_stderr(level: int):
    """Pass file descriptor 2 through `is_hidden` for the duration.

    Python's sys.stderr is pointed at the real stderr meanwhile, so that only
    output written by native code (TensorFlow's C++) is filtered; inside a
    filter already in place this adds none. The filter
    runs in a child process that reads the pipe to its end, so nothing
    written before a crash of this process is lost.
    """
    global _ACTIVE
    if level < 1 or _ACTIVE:
        yield
        return
    sys.stderr.flush()
    real = os.dup(2)
    # -I -S: the standard library alone, whatever the environment says.
    filter_process = subprocess.Popen(
        [sys.executable, "-I", "-S", os.path.abspath(__file__), str(level)],
        stdin=subprocess.PIPE, stdout=real, stderr=real)
    os.dup2(filter_process.stdin.fileno(), 2)
    filter_process.stdin.close()          # fd 2 is now the pipe's only write end here
    python_stderr = sys.stderr
    sys.stderr = open(real, "w", buffering=1, encoding=python_stderr.encoding,
                      errors="backslashreplace", closefd=False)
    _ACTIVE = True
    try:
        yield
    finally:
        _ACTIVE = False
        sys.stderr.flush()
        os.dup2(real, 2)                  # closes the pipe: the filter drains it and ends
        try:
            filter_process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # a child of ours still holds the pipe open
            pass
        sys.stderr = python_stderr
        os.close(real)


def _filter(level: int, source=0, sink=1) -> None:
    """Copy `source` to `sink` line by line, without the lines `level` hides."""
    # Ctrl-C reaches the whole process group: the command handles it, and the
    # filter keeps passing lines on until the pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pending = b""
    while True:
        chunk = os.read(source, 1 << 16)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not is_hidden(line, level))
        if kept:
            os.write(sink, kept)
    if pending and not is_hidden(pending, level):
        os.write(sink, pending)


if __name__ == "__main__":
    _filter(int(sys.argv[1]))
