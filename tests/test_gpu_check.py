"""benchmarks/gpu_check.py: its statuses, table and process handling with fake
rows (fast), that its parent and the library's JAX path import no TensorFlow,
and the --cpu-smoke form end to end (slow; CI runs it)."""

import json
import os
import sys
import textwrap
import time

import pytest

from helpers import ROOT, run_python

SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.py")
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import gpu_check  # noqa: E402

# Python code that makes the named top-level modules fail to import in the
# process that runs it (importlib.util.find_spec still finds them: they look
# installed, and any import of them fails). Many GPU machines lack TensorFlow.
BLOCKER = textwrap.dedent("""
    import importlib.abc, importlib.machinery, sys
    class Blocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return importlib.machinery.ModuleSpec(name, self)
        def create_module(self, spec):
            raise ImportError(f"{spec.name} is blocked in this test")
        def exec_module(self, module):
            pass
    sys.meta_path.insert(0, Blocker())
""")


def row(part="train", engine="jax", precision="float32", batch=100, what="mnist", **fields):
    return {"part": part, "engine": engine, "precision": precision, "batch": batch,
            "what": what, **fields}


# ---------------------------------------------------------------------------
# Statuses
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("type_name, message", [
    ("ResourceExhaustedError", "OOM when allocating tensor with shape[2000,64,64,64]"),
    ("ResourceExhaustedError", "anything"),                      # the type decides
    ("OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB"),
    ("XlaRuntimeError", "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1 GB"),
    ("RuntimeError", "CUDA error: out of memory"),
])
def test_out_of_memory_errors_are_out_of_memory(type_name, message):
    assert gpu_check.error_status(type_name, message) == gpu_check.OOM


@pytest.mark.parametrize("type_name, message, expected", [
    # Near misses of the markers: memory named, but no out-of-memory.
    ("ValueError", "out of range: memory address 3",
     "failed: ValueError: out of range: memory address 3"),
    ("RuntimeError", "\n\n  resource busy\nsecond line", "failed: RuntimeError: resource busy"),
    ("XlaRuntimeError", "INTERNAL: exhausted retries", "failed: XlaRuntimeError: INTERNAL: "
                                                       "exhausted retries"),
])
def test_other_errors_fail_with_their_first_line(type_name, message, expected):
    assert gpu_check.error_status(type_name, message) == expected


def test_long_error_lines_are_cut():
    status = gpu_check.error_status("ValueError", "x" * 500)
    assert status == "failed: ValueError: " + "x" * 160


def test_exit_status_of_a_process_that_ended_early():
    assert gpu_check.exit_status(1, "", timeout=30.0) == "failed: no result within 30 s (killed)"
    assert gpu_check.exit_status(-6, "F ... CUDA out of memory\n") == gpu_check.OOM
    assert gpu_check.exit_status(-9, "") == ("failed: killed by SIGKILL (the host's "
                                             "out-of-memory killer?)")
    assert gpu_check.exit_status(-11, "a\nSegmentation fault\n\n") == (
        "failed: the process exited with -11: Segmentation fault")


# ---------------------------------------------------------------------------
# The plan and the table
# ---------------------------------------------------------------------------
def test_plan_has_every_engine_precision_preset_and_batch():
    scale = gpu_check.GPU_SCALE
    rows = gpu_check.plan(["tensorflow-xla", "torch"], scale, "torch")
    train = [(r["engine"], r["precision"], r["what"], r["batch"]) for r in rows
             if r["part"] == "train"]
    expected = {(e, p, w, b) for e in ("tensorflow-xla", "torch")
                for p in ("float32", "mixed_bfloat16", "mixed_float16")
                for w in ("mnist", "celeba") for b in (100, 500, 2000)}
    assert len(train) == len(expected) == 36 and set(train) == expected
    # float32 rows of an engine come before its 16-bit ones (a budget cut
    # falls on those)
    torch_precisions = [p for e, p, _, _ in train if e == "torch"]
    assert torch_precisions == sorted(torch_precisions, key=gpu_check.PRECISIONS.index)
    assert [r["what"] for r in rows if r["part"] == "extractor"] == [
        "inception-random", "inception", "fid-inception", "fd-fmnist"]
    assert [r["part"] for r in rows].count("reproduce") == 1
    assert {r["engine"] for r in rows if r["part"] != "train"} == {"torch"}


def test_table_shows_every_row_with_its_status():
    rows = [row(images_per_s=1234.56, peak_mib=2048.4, memory="device", first_steps_s=12.34,
                status="ok"),
            row(batch=2000, status=gpu_check.OOM),
            row(engine="tensorflow-xla", precision="mixed_float16", status="skipped: why"),
            row(part="reproduce", batch=None, what="reproduce", engine="jax", status="ok",
                note="12 s wall"),
            row(batch=500)]  # no result at all: a bug, shown, not dropped
    lines = gpu_check.format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    assert lines[2] == ("| train | jax (XLA) | float32 | 100 | mnist | 1234.6 | 2048 (device) | "
                        "12.3 | ok |  |")
    assert "| 2000 | mnist |  |  |  | out of memory |" in lines[3]
    assert "| tensorflow + XLA | mixed_float16 |" in lines[4] and "skipped: why" in lines[4]
    assert "| reproduce | jax (XLA) | float32 |  | reproduce |" in lines[5]
    assert "failed: no result (a bug)" in lines[6]


def test_engines_found_without_importing_them():
    installed = {"jax", "torch"}
    engines, skipped = gpu_check.available_engines(
        smoke=False, find_spec=lambda name: object() if name in installed else None)
    assert engines == ["jax", "torch"]
    assert skipped == ["tensorflow: skipped: tensorflow is not installed here",
                       "tensorflow-xla: skipped: tensorflow is not installed here"]
    engines, skipped = gpu_check.available_engines(smoke=True, find_spec=lambda name: object())
    assert engines == ["tensorflow", "jax", "torch"]
    assert skipped == ["tensorflow-xla: skipped: --cpu-smoke measures one engine per backend"]


def test_no_gpu_is_refused_unless_asked(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "gpu_present", lambda: None)
    assert gpu_check.main([]) == 2
    err = capsys.readouterr().err
    assert "no GPU found" in err and "--cpu-smoke" in err
    assert gpu_check.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "| planned |" in out and "GPU: none found" in out
    with pytest.raises(SystemExit, match="unknown"):
        gpu_check.main(["--list", "--engines", "jax,cuda"])


# ---------------------------------------------------------------------------
# Inside a row's process, with a fake measurement
# ---------------------------------------------------------------------------
def emitted(capsys):
    return [json.loads(ln[4:]) for ln in capsys.readouterr().out.splitlines()
            if ln.startswith("ROW ")]


def train_spec(rows, deadline=float("inf")):
    return {"part": "train", "engine": "jax", "rows": rows, "need_gpu": False,
            "deadline": deadline, "budget": 100.0}


def test_out_of_memory_skips_the_larger_batches_of_that_precision_and_preset(
        monkeypatch, capsys):
    def measure(self, config, batch):
        if config.image_shape == (32, 32, 1) and batch >= 500:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating")
        return {"images_per_s": float(batch)}

    monkeypatch.setattr(gpu_check.Models, "measure", measure)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    rows = [row(batch=b, what=w) for w in ("mnist", "celeba") for b in (100, 500, 2000)]
    gpu_check.train_rows(train_spec(rows), gpu_check.GPU_SCALE)
    got = {(r["what"], r["batch"]): r["status"] for r in emitted(capsys)}
    assert got == {("mnist", 100): "ok", ("mnist", 500): gpu_check.OOM,
                   ("mnist", 2000): "skipped: batch 500 ran out of memory",
                   ("celeba", 100): "ok", ("celeba", 500): "ok", ("celeba", 2000): "ok"}


def test_rows_past_the_deadline_are_skipped_with_the_budget(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check.Models, "measure", lambda self, c, b: {})
    gpu_check.train_rows(train_spec([row(), row(batch=500)], deadline=0.0),
                         gpu_check.GPU_SCALE)
    assert [r["status"] for r in emitted(capsys)] == [
        "skipped: the time budget (100 s) is spent"] * 2


def test_tensorflow_imported_under_another_backend_is_the_rows_status(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorflow", object())
    gpu_check.finish(row(), "jax", status="ok")
    gpu_check.finish(row(), "tensorflow", status="ok")
    gpu_check.finish(row(), "torch", status="skipped: not measured")
    monkeypatch.delitem(sys.modules, "tensorflow")
    gpu_check.finish(row(), "torch", status="ok")
    statuses = [(r["status"], r.get("note")) for r in emitted(capsys)]
    assert statuses == [("imported TensorFlow", "(status was ok)"), ("ok", None),
                        ("skipped: not measured", None), ("ok", None)]


# ---------------------------------------------------------------------------
# The parent's handling of processes that end early (a fake process)
# ---------------------------------------------------------------------------
class FakeProcess:
    """Prints the scripted lines, then ends with `returncode`."""

    def __init__(self, script, stderr_text=""):
        self.script, self.stderr_text = script, stderr_text

    def __call__(self, argv, stdout, stderr, text, env):
        lines, self.returncode = self.script.pop(0)
        stderr.write(self.stderr_text)
        self.stdout = iter(lines)
        self.env = env
        return self

    def wait(self):
        return self.returncode

    def kill(self):
        pass


def test_a_crash_fails_its_row_and_a_new_process_runs_the_rest(monkeypatch):
    rows = [row(batch=b) for b in (100, 500, 2000)]
    first, second, third = (json.dumps(r) for r in rows)
    fake = FakeProcess([
        ([f"ROW {json.dumps({**rows[0], 'status': 'ok'})}\n", f"RUNNING {second}\n"], -11),
        ([f"ROW {json.dumps({**rows[2], 'status': 'ok'})}\n"], 0),
    ], stderr_text="Fatal Python error: Segmentation fault\n")
    monkeypatch.setattr(gpu_check.subprocess, "Popen", fake)
    args = gpu_check.parse_args(["--cpu-smoke"])
    results = gpu_check.Runner(rows, gpu_check.SMOKE_SCALE, args).run()
    assert [r["status"] for r in results] == [
        "ok", "failed: the process exited with -11: Fatal Python error: Segmentation fault",
        "ok"]
    assert fake.env["KERAS_BACKEND"] == "jax" and fake.script == []


# ---------------------------------------------------------------------------
# No TensorFlow on the JAX path (processes where it cannot be imported)
# ---------------------------------------------------------------------------
def test_the_parent_imports_no_engine():
    code = BLOCKER.replace("BLOCKED", repr({"tensorflow", "jax", "torch", "keras"})) + \
        textwrap.dedent(f"""
        sys.argv = [{SCRIPT!r}, "--list", "--cpu-smoke"]
        sys.path.insert(0, {os.path.dirname(SCRIPT)!r})
        import gpu_check
        code = gpu_check.main()
        assert code == 0, code
        loaded = sorted({{"tensorflow", "jax", "torch", "keras", "split_vae"}} & set(sys.modules))
        print("LOADED", loaded)
        """)
    proc = run_python(["-c", code], env={"KERAS_BACKEND": "jax"}, check=True, timeout=60)
    assert "LOADED []" in proc.stdout
    assert "| train | jax (XLA) | float32 | 8 | celeba |" in proc.stdout
    proc = run_python(["-c", BLOCKER.replace("BLOCKED", "{'tensorflow'}") +
                       f"sys.argv = ['gpu_check', '--help']\nimport runpy\n"
                       f"runpy.run_path({SCRIPT!r}, run_name='__main__')"],
                      timeout=60)
    assert proc.returncode == 0 and "--cpu-smoke" in proc.stdout, proc.stderr[-2000:]


@pytest.mark.parametrize("backend", [
    "torch",  # seconds
    pytest.param("jax", marks=pytest.mark.slow),  # a minute or more: each weight's
])                                                # initialiser compiles on its own
def test_the_library_needs_no_tensorflow(backend):
    """import, the bundled digits and Fashion-MNIST's IDX files as numpy, a fit
    step with the balance, FD-FMNIST features: with TensorFlow unimportable."""
    code = BLOCKER.replace("BLOCKED", "{'tensorflow'}") + textwrap.dedent("""
        import os
        import numpy as np
        import split_vae
        from split_vae import GammaBalance, SplitVAE, data, get_preset
        from split_vae.metrics import get_extractor
        x = data.load("digits", "test", as_numpy=True, limit=32)
        if os.path.isdir(data.DEBIAN_FASHION_MNIST):
            f = data.load("fashion_mnist", "test", as_numpy=True, limit=8)
            assert f.shape == (8, 32, 32, 1), f.shape
            print("FASHION_MNIST", f.shape)
        config = get_preset("digits").replace(base_dim=4, emb_dim=8, latent_dim=2)
        model = SplitVAE(config)
        model.compile()
        model.fit(x, batch_size=16, epochs=1, verbose=0, callbacks=[GammaBalance()])
        features = get_extractor("fd-fmnist").features(np.zeros((4, 32, 32, 1), "float32"),
                                                       progress=False)
        assert features.shape[0] == 4
        print("TENSORFLOW", "tensorflow" in sys.modules)
    """)
    proc = run_python(["-c", code], env={"KERAS_BACKEND": backend}, check=True, timeout=300)
    assert "TENSORFLOW False" in proc.stdout
    if os.path.isdir("/usr/share/datasets/fashion-mnist"):
        assert "FASHION_MNIST" in proc.stdout


# ---------------------------------------------------------------------------
# End to end (slow)
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_cpu_smoke_end_to_end_under_jax(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = run_python([SCRIPT, "--cpu-smoke", "--json", out], env={"KERAS_BACKEND": "jax"},
                      timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    engines = [e for e in ("tensorflow", "jax", "torch")
               if __import__("importlib").util.find_spec(e) is not None]
    expected = {("train", e, p, 8, w) for e in engines for p in gpu_check.PRECISIONS
                for w in ("mnist", "celeba")}
    expected |= {("extractor", "jax", "float32", 8, n) for n in gpu_check.EXTRACTORS}
    got = {(r["part"], r["engine"], r["precision"], r["batch"], r["what"]): r for r in rows
           if r["part"] != "reproduce"}
    assert set(got) == expected
    assert [r["part"] for r in rows].count("reproduce") == 1
    for r in rows:  # every row has a status, and a skip says why
        status = r["status"]
        assert status == "ok" or status.startswith("skipped: ") and len(status) > 12, r
    for e in engines:  # float32 trains on every engine, both presets
        for w in ("mnist", "celeba"):
            r = got[("train", e, "float32", 8, w)]
            assert r["images_per_s"] > 0 and "narrowed for --cpu-smoke" in r["note"], r
    assert got[("extractor", "jax", "float32", 8, "fd-fmnist")]["status"] == "ok"
    # The table on stdout has every row, progress went to stderr.
    assert proc.stdout.count("\n| ") == len(rows) + 1
    assert "[gpu_check] " in proc.stderr and "rows," in proc.stderr


# ---------------------------------------------------------------------------
# The timing and the data of a training row, without training
# ---------------------------------------------------------------------------
def test_window_clock_times_each_window_and_the_warm_up():
    from train_throughput import window_clock

    clock = window_clock(warmup=2, window=3, repeats=2)  # batches 2-4 and 5-7 timed
    clock.on_train_begin()
    read = []

    class Loss:
        def __float__(self):
            read.append(batch)
            return 1.0

    for batch in range(8):
        clock.on_train_batch_begin(batch)
        time.sleep(0.02 if batch in (2, 3, 4) else 0.001)
        clock.on_train_batch_end(batch, {"loss": Loss()})
    assert read == [1, 4, 7]  # the host waits at the end of the warm-up and of each window
    assert len(clock.times) == 2
    assert 0.06 <= clock.times[0] < 0.06 + 0.05  # three batches of 20 ms
    assert clock.times[1] < 0.02                 # three of 1 ms
    assert 0.002 <= clock.first < clock.times[0]


def test_batch_cycle_serves_the_batches_in_turn():
    import numpy as np

    x = np.arange(6, dtype="float32").reshape(6, 1, 1, 1)
    cycle = gpu_check.batch_cycle(x, batch=2, steps=5)
    assert len(cycle) == 5
    assert [cycle[i].ravel().tolist() for i in range(5)] == [
        [0, 1], [2, 3], [4, 5], [0, 1], [2, 3]]


# ---------------------------------------------------------------------------
# The reproduce row, with a fake command in place of the real one
# ---------------------------------------------------------------------------
def fake_reproduce(exit_code, write_table):
    import types

    def add_arguments(p):
        for flag in ("--dataset", "--scale", "--runs", "--out"):
            p.add_argument(flag, required=True)

    def run(args):
        if write_table:
            with open(os.path.join(args.out, "table.md"), "w") as f:
                f.write("| table |\n")
        return exit_code

    return types.SimpleNamespace(NAME="reproduce", HELP="", DESCRIPTION="",
                                 add_arguments=add_arguments, run=run)


@pytest.mark.parametrize("command, expected", [
    (None, "skipped: reproduce not available in this version"),
    (fake_reproduce(0, True), "ok"),
    (fake_reproduce(0, False), "failed: exit 0, no table.md written"),
    (fake_reproduce(1, True), "failed: exit 1"),
])
def test_reproduce_row(monkeypatch, capsys, command, expected):
    import importlib

    cli = importlib.import_module("split_vae.cli.main")
    monkeypatch.setattr(cli, "COMMANDS", (command,) if command else ())
    monkeypatch.setattr(gpu_check, "reproduce_dataset", lambda: ("digits", "digits (test)"))
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    spec = {"part": "reproduce", "engine": "jax", "rows": [row(part="reproduce", batch=None,
                                                             what="reproduce")]}
    gpu_check.reproduce_row(spec, gpu_check.SMOKE_SCALE)
    (result,) = emitted(capsys)
    assert result["status"] == expected
    if command:
        assert result["note"].startswith("reproduce --dataset digits --scale smoke --runs 1; "
                                         "digits (test); ")


def test_tensorflow_made_unimportable_the_way_pytorch_can_ask():
    """A row's process under JAX or PyTorch: `import tensorflow` fails, and
    importlib.util.find_spec (which PyTorch's compiler calls while Keras
    imports it) answers None instead of raising."""
    code = textwrap.dedent(f"""
        import importlib.util, sys
        sys.path.insert(0, {os.path.dirname(SCRIPT)!r})
        import gpu_check
        gpu_check.make_tensorflow_unimportable()
        import keras
        assert importlib.util.find_spec("tensorflow") is None
        try:
            import tensorflow
        except ImportError:
            print("REFUSED")
        print("IMPORTED", gpu_check.tensorflow_imported("torch"))
    """)
    proc = run_python(["-c", code], env={"KERAS_BACKEND": "torch"}, check=True, timeout=300)
    assert "REFUSED" in proc.stdout and "IMPORTED False" in proc.stdout
