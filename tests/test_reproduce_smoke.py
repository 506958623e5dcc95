"""`python -m split_vae reproduce --dataset digits --scale smoke` end to end, with a kill and a rerun.

Two reproductions of the same plan run side by side (the machine's two cores
trace their graphs in parallel): A without interruption; B killed (SIGKILL) in
the middle of its second training, then run again with the same command. B's
table must equal A's number for number: training, the ablation curves and
the evaluations are deterministic, and a rerun neither redoes nor skips work.
The resumed training's new graph may round its float sums in another order
(weights within 1e-5 of the uninterrupted run's: test_reproduce.py), so the
numbers are compared within RTOL, and the largest deviation is printed.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT

SMOKE = ["-m", "split_vae", "reproduce", "--dataset", "digits", "--scale", "smoke",
         "--no-progress"]
TIMEOUT = 420  # seconds for the whole test: a hang fails instead of blocking CI
# Timings differ between runs; everything else in table.json must not.
TIMING_KEYS = ("train_seconds", "seconds")
RTOL = 1e-3  # relative, on every number of table.json but timings


def _start(out, log):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, *SMOKE, "--out", str(out)], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def _wait(proc, deadline, log_path):
    try:
        code = proc.wait(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"reproduce did not finish in time; log:\n{open(log_path).read()[-3000:]}")
    assert code == 0, f"exit {code}; log:\n{open(log_path).read()[-3000:]}"


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items()
                if k not in TIMING_KEYS and not k.startswith("training time")}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}/")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _flatten(v, f"{prefix}{i}/")
    else:
        yield prefix, obj


@pytest.mark.slow
def test_a_killed_and_rerun_reproduction_writes_the_uninterrupted_table(tmp_path):
    start = time.time()
    deadline = start + TIMEOUT
    a_out, b_out = tmp_path / "a", tmp_path / "b"
    a_log, b_log = open(tmp_path / "a.log", "w"), open(tmp_path / "b.log", "w")
    a = _start(a_out, a_log)
    b = _start(b_out, b_log)
    # Kill B once the second training (vanilla, seed 0) has checkpointed its
    # first chunk: mid-run, with a finished model, a partial one and no
    # evaluation yet.
    target = b_out / "train" / "vanilla_seed0" / "checkpoint.keras"
    while not target.exists():
        assert b.poll() is None, f"B ended early:\n{open(tmp_path / 'b.log').read()[-3000:]}"
        assert time.time() < deadline, "B never reached its second training"
        time.sleep(0.2)
    b.send_signal(signal.SIGKILL)
    b.wait()
    killed_at = time.time() - start
    assert not (b_out / "table.json").exists()
    assert (b_out / "models" / "split_seed0" / "metadata.json").exists()
    assert not (b_out / "models" / "vanilla_seed0").exists()
    b_log.write("\n--- killed, rerun ---\n")
    b_log.flush()
    b = _start(b_out, b_log)
    _wait(a, deadline, tmp_path / "a.log")
    _wait(b, deadline, tmp_path / "b.log")
    print(f"killed B at {killed_at:.0f} s; both done at {time.time() - start:.0f} s")

    rerun_log = open(tmp_path / "b.log").read().split("--- killed, rerun ---")[1]
    assert "vanilla_seed0: resuming after chunk" in rerun_log
    assert "split_seed0: chunk" not in rerun_log        # the finished model was not retrained

    table_a = json.loads((a_out / "table.json").read_text())
    table_b = json.loads((b_out / "table.json").read_text())
    flat_a, flat_b = dict(_flatten(_without_timings(table_a))), \
        dict(_flatten(_without_timings(table_b)))
    assert flat_a.keys() == flat_b.keys()
    worst = 0.0
    for key, va in flat_a.items():
        vb = flat_b[key]
        if isinstance(va, float) and isinstance(vb, float):
            worst = max(worst, abs(va - vb) / max(abs(va), 1e-9))
        else:
            assert va == vb, key
    print(f"largest relative deviation, killed and rerun vs uninterrupted: {worst:.2e}")
    assert worst <= RTOL

    # Every file and every table cell.
    for out in (a_out, b_out):
        for name in ("split_seed0", "vanilla_seed0", "split_seed1", "vanilla_seed1"):
            assert (out / "models" / name / "metadata.json").exists()
            assert (out / "evaluations" / f"{name}.json").exists()
            assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        for name in ("ablation.png", "split_kinds.png"):
            assert (out / "figures" / name).stat().st_size > 1000
    md = (a_out / "table.md").read_text()
    assert "nan" not in md.lower()
    rows = [line for line in md.splitlines() if line.startswith("| Split VAE")
            or line.startswith("| vanilla VAE")]
    assert len(rows) == 5
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        assert len(cells) == 4 and cells[-1] == "n/a"      # GEN, GMM (3), GMM (6), paper
        assert all("±" in c for c in cells[:-1]), row
    hist = table_a["history"]
    assert set(hist) == {"split x_hat", "split x1", "split x2", "vanilla x_hat"}
    assert all(h["epoch"] == [1, 2] for h in hist.values())
