"""A GPU check: does everything work on this machine, and how fast?

Run on a machine with one GPU (it takes under 8 minutes; --budget):

    KERAS_BACKEND=jax python benchmarks/gpu_check.py --json gpu_check.json

It measures, in a process per engine (an out-of-memory or a crash is one
row's status; a new process takes the rows left):

- the training throughput (images/s) of the mnist (32x32x1) and celeba
  (64x64x3) presets on every engine installed here: TensorFlow without and
  with XLA (`jit_compile=True`), JAX (always XLA), PyTorch (eager); in every
  precision (float32, mixed_bfloat16, mixed_float16); at batch sizes 100,
  500 and 2000. A batch that runs out of memory is reported as such; the
  larger batches of that precision and preset are then not tried (nothing
  is searched around). A 16-bit precision that the device would only
  emulate (a CPU without that arithmetic, `split_vae.precision.emulated`)
  is skipped with the reason. Training is `SplitVAE.fit` with the GammaBalance callback, as a
  user trains, on random images of the preset's shape made in numpy (no
  download), one model per preset and precision reused across batch sizes;
  a few warm-up batches (the column "first steps s": building the model
  where the row built it, compiling, warming up), then timed windows each
  ending with a read of the loss on the host; images/s from the median
  window; peak memory of the device (reset per row under TensorFlow and
  PyTorch; JAX's and the host's are the process's peak so far);
- the FID extractors' images/s (`split_vae.metrics.get_extractor(name)
  .features`): inception-random (InceptionV3 untrained), inception (only if
  its ImageNet weights are already in Keras's cache), fid-inception (only if
  pytorch-fid's weights file is already in split_vae's cache), fd-fmnist
  (shipped); nothing is downloaded;
- one short `python -m split_vae reproduce` at its smoke scale on
  Fashion-MNIST when its IDX files are readable, else on the bundled digits.

One table at the end, every row with its engine, precision and batch, and
its status: ok, "skipped: why", "out of memory", "failed: error", or
"imported TensorFlow" (machines with JAX or PyTorch often have no TensorFlow:
under JAX or PyTorch each row's process runs with TensorFlow made unimportable,
as there, and every row checks afterwards that nothing imported it).
Rows that the time budget leaves no time for say so. This script imports no
engine itself; each row's process gets KERAS_BACKEND.

On a machine without a GPU it refuses (exit 2) unless given --cpu-smoke (a
reduced form, minutes on 2 cores: batch 8, narrowed networks, three training
batches per row, TensorFlow without XLA only, no InceptionV3, 8 images per
extractor; CI runs it) or
--allow-cpu (the full form on the CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import glob
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name -> (KERAS_BACKEND, compile's jit_compile, what the table says)
ENGINES = {
    "tensorflow": ("tensorflow", False, "tensorflow"),
    "tensorflow-xla": ("tensorflow", True, "tensorflow + XLA"),
    "jax": ("jax", "auto", "jax (XLA)"),
    "torch": ("torch", False, "torch (eager)"),
}
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
PRESETS = ("mnist", "celeba")
EXTRACTORS = ("inception-random", "inception", "fid-inception", "fd-fmnist")


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big the check is: the GPU form or the --cpu-smoke form."""

    batches: tuple
    warmup: int            # untimed batches first (compilation happens here)
    window: int            # batches per timed window
    repeats: int           # timed windows; images/s from the median
    extractor_images: int  # timed images per extractor (after a warm-up batch)
    skip_extractors: dict  # name -> why this scale does not measure it
    narrowed: dict         # preset -> SplitVAEConfig fields changed


GPU_SCALE = Scale(batches=(100, 500, 2000), warmup=3, window=5, repeats=3,
                  extractor_images=1000, narrowed={},
                  skip_extractors={})
# Two CPU cores: compiling the training step for one model and batch shape
# takes 10-35 s there, so the smoke measures one batch size; the paper's
# widths (base_dim 64, emb_dim 512) take seconds per batch at 64x64, so it
# narrows both networks (and each row says so).
SMOKE_NO_INCEPTION = ("--cpu-smoke builds no InceptionV3 (one to two minutes of compiling "
                      "on 2 cores under JAX); the full form measures it")
SMOKE_SCALE = Scale(batches=(8,), warmup=1, window=1, repeats=2, extractor_images=8,
                    narrowed={"mnist": {"base_dim": 16, "emb_dim": 64},
                              "celeba": {"base_dim": 8, "emb_dim": 64}},
                    skip_extractors={"inception-random": SMOKE_NO_INCEPTION})

OOM = "out of memory"
# What the engines' out-of-memory errors say: TensorFlow's ResourceExhaustedError
# ("OOM when allocating"), XLA's RESOURCE_EXHAUSTED (JAX, TF with XLA),
# PyTorch's torch.OutOfMemoryError ("CUDA out of memory").
OOM_TYPES = ("ResourceExhaustedError", "OutOfMemoryError")
OOM_MARKERS = ("resource_exhausted", "out of memory", "oom when allocating")


# ---------------------------------------------------------------------------
# Statuses and the table (no engine needed)
# ---------------------------------------------------------------------------
def error_status(type_name: str, message: str) -> str:
    """"out of memory" for an engine's out-of-memory error, else "failed: ..."."""
    lowered = message.lower()
    if type_name in OOM_TYPES or any(m in lowered for m in OOM_MARKERS):
        return OOM
    first = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    return f"failed: {type_name}: {first[:160]}"


def exit_status(returncode: int, stderr: str, timeout: float | None = None) -> str:
    """The status of the row a child process was running when it ended abnormally."""
    if timeout is not None:
        return f"failed: no result within {timeout:.0f} s (killed)"
    if any(m in stderr.lower() for m in OOM_MARKERS):
        return OOM
    if returncode == -9:
        return "failed: killed by SIGKILL (the host's out-of-memory killer?)"
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    return f"failed: the process exited with {returncode}: {last[:160]}"


def plan(engines, scale: Scale, main_backend: str) -> list[dict]:
    """Every row of the check, in the order they run, none measured yet."""
    rows = [{"part": "extractor", "engine": main_backend, "precision": "float32",
             "batch": min(50, scale.extractor_images), "what": name} for name in EXTRACTORS]
    rows.append({"part": "reproduce", "engine": main_backend, "precision": "float32",
                 "batch": None, "what": "reproduce --scale smoke --runs 1"})
    for engine in engines:  # float32 first: what a budget cut leaves out matters least
        for precision in PRECISIONS:
            for preset in PRESETS:
                for batch in scale.batches:
                    rows.append({"part": "train", "engine": engine, "precision": precision,
                                 "batch": batch, "what": preset})
    return rows


def row_key(row) -> tuple:
    return row["part"], row["engine"], row["precision"], row["batch"], row["what"]


def engine_label(row) -> str:
    return ENGINES[row["engine"]][2] if row["engine"] in ENGINES else row["engine"]


def format_table(rows) -> str:
    """The check's table: one line per row, every row with a status."""
    head = ("| part | engine | precision | batch | what | images/s | peak MiB | "
            "first steps s | status | note |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ips = f"{r['images_per_s']:.1f}" if r.get("images_per_s") is not None else ""
        mem = f"{r['peak_mib']:.0f} ({r['memory']})" if r.get("peak_mib") is not None else ""
        first = f"{r['first_steps_s']:.1f}" if r.get("first_steps_s") is not None else ""
        lines.append(f"| {r['part']} | {engine_label(r)} | {r['precision']} | "
                     f"{'' if r['batch'] is None else r['batch']} | {r['what']} | {ips} | "
                     f"{mem} | {first} | {r.get('status', 'failed: no result (a bug)')} | "
                     f"{r.get('note', '')} |")
    return "\n".join(lines)


def available_engines(smoke: bool, find_spec=importlib.util.find_spec) -> tuple[list, list]:
    """(engines to measure, lines saying which are skipped and why), without
    importing any of them."""
    engines, skipped = [], []
    for name, (backend, _, _) in ENGINES.items():
        if find_spec(backend) is None:
            skipped.append(f"{name}: skipped: {backend} is not installed here")
        elif smoke and name == "tensorflow-xla":
            skipped.append(f"{name}: skipped: --cpu-smoke measures one engine per backend")
        else:
            engines.append(name)
    return engines, skipped


def gpu_present() -> str | None:
    """What shows that this machine has a GPU (driver devices, nvidia-smi), or None.

    Read from the system, not from an engine: the parent imports none. Each
    row's process then asks its own engine, which may be a CPU-only build.
    """
    nvidia = sorted(glob.glob("/dev/nvidia[0-9]*"))
    if nvidia:
        return f"{len(nvidia)} NVIDIA device(s) ({', '.join(nvidia)})"
    if os.path.exists("/dev/kfd"):
        return "an AMD ROCm device (/dev/kfd)"
    if shutil.which("nvidia-smi"):
        return "nvidia-smi is installed"
    return None


# ---------------------------------------------------------------------------
# Inside a row's process
# ---------------------------------------------------------------------------
def emit(row, **fields):
    """Hand one row's result to the parent (a line on stdout)."""
    print("ROW " + json.dumps({**row, **fields}), flush=True)


def tensorflow_imported(backend: str) -> bool:
    return backend != "tensorflow" and sys.modules.get("tensorflow") is not None


def finish(row, backend, **fields):
    """Emit a row, its status overridden where TensorFlow was imported under
    another backend (the check's promise: JAX and PyTorch need no TensorFlow)."""
    if tensorflow_imported(backend) and not fields.get("status", "").startswith("skipped"):
        fields["note"] = (fields.get("note", "") + f" (status was {fields.get('status')})").strip()
        fields["status"] = "imported TensorFlow"
    emit(row, **fields)


def reset_peak_memory(backend) -> str:
    """Start a row's peak-memory count where the engine can; what the count covers."""
    try:
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
                return "device"
        elif backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                tf.config.experimental.reset_memory_stats("GPU:0")
                return "device"
    except Exception:  # noqa: BLE001 - an engine without the call: say so below
        pass
    return "process peak"


def batch_cycle(x, batch, steps):
    """A keras.utils.PyDataset of `steps` batches of x, in turn (numpy: no
    tf.data, which JAX and PyTorch users need not have)."""
    import keras

    class Cycle(keras.utils.PyDataset):
        def __len__(self):
            return steps

        def __getitem__(self, i):
            start = (i % (len(x) // batch)) * batch
            return x[start:start + batch]

    return Cycle()


def timed_fit(model, x, batch, scale):
    """Fit on `x` in batches: (seconds of each timed window, seconds until the
    warm-up ended)."""
    from split_vae import GammaBalance
    from train_throughput import window_clock, windows

    _, ends = windows(scale.warmup, scale.window, scale.repeats)
    clock = window_clock(scale.warmup, scale.window, scale.repeats)
    model.fit(batch_cycle(x, batch, ends[-1] + 1), epochs=1, verbose=0,
              callbacks=[GammaBalance(), clock])
    return clock.times, clock.first


class Models:
    """The model of each preset and precision in a row's process, built once and
    reused for every batch size (building one costs a minute under JAX on a
    CPU: each weight's initialiser compiles on its own)."""

    def __init__(self, engine, scale):
        self.engine, self.scale = engine, scale
        self.backend, self.jit_compile, _ = ENGINES[engine]
        self.key, self.model = None, None

    def get(self, config):
        import keras

        from split_vae import SplitVAE

        key = (config.image_shape, config.base_dim, config.precision)
        if key != self.key:
            self.drop()
            self.model = SplitVAE(config)
            self.model.compile(jit_compile=self.jit_compile)
            self.key = key
        return self.model

    def drop(self):
        import keras

        self.key, self.model = None, None
        keras.backend.clear_session()
        gc.collect()

    def measure(self, config, batch):
        """One training row: the fields its result adds."""
        from train_throughput import images, peak_memory_mib

        covers = reset_peak_memory(self.backend)
        t0 = time.perf_counter()
        model = self.get(config)
        built = time.perf_counter() - t0
        times, first = timed_fit(model, images(config, 2 * batch), batch, self.scale)
        mib, where = peak_memory_mib(self.backend)
        return {"images_per_s": batch * self.scale.window / statistics.median(times),
                "first_steps_s": built + first, "peak_mib": mib,
                "memory": where if covers == "device" else f"{where}, process peak"}


def preset_config(preset, scale):
    """(the preset's config, as narrowed for the scale; what the row notes)."""
    from split_vae import get_preset

    narrowed = scale.narrowed.get(preset)
    if not narrowed:
        return get_preset(preset), ""
    return (get_preset(preset).replace(**narrowed),
            "narrowed for --cpu-smoke: " + ", ".join(f"{k} {v}" for k, v in narrowed.items()))


def train_rows(spec, scale):
    """A process's rows: one engine, every precision, preset and batch."""
    from split_vae.precision import accelerators, emulated

    backend = ENGINES[spec["engine"]][0]
    models = Models(spec["engine"], scale)
    no_gpu = spec["need_gpu"] and not accelerators()
    out_of_memory = {}  # (precision, preset) -> the batch that ran out of memory
    for row in spec["rows"]:
        group = (row["precision"], row["what"])
        reason = emulated(row["precision"])  # a CPU without 16-bit arithmetic
        if no_gpu:
            reason = f"{backend} sees no GPU here (a CPU-only build?)"
        elif time.time() > spec["deadline"]:
            reason = f"the time budget ({spec['budget']:.0f} s) is spent"
        elif group in out_of_memory:
            reason = f"batch {out_of_memory[group]} ran out of memory"
        if reason:
            emit(row, status=f"skipped: {reason}")
            continue
        print(f"RUNNING {json.dumps(row)}", flush=True)
        config, note = preset_config(row["what"], scale)
        config = config.replace(precision=row["precision"], batch_size=row["batch"])
        try:
            fields = {**models.measure(config, row["batch"]), "status": "ok"}
        except Exception as e:  # noqa: BLE001 - every error is this row's status
            fields = {"status": error_status(type(e).__name__, str(e))}
            if fields["status"] == OOM:
                out_of_memory[group] = row["batch"]
            models.drop()
        finish(row, backend, note=note, **fields)


def extractor_unavailable(name) -> str | None:
    """Why an extractor cannot be measured offline here, or None."""
    from split_vae.metrics import INCEPTION_WEIGHTS_FILE
    from split_vae.metrics.fid_inception import resolve_weights
    from split_vae.paths import keras_models_dir

    if name == "inception":
        path = os.path.join(keras_models_dir(), INCEPTION_WEIGHTS_FILE)
        if not os.path.isfile(path):
            return f"its ImageNet weights are not in {path} (nothing is downloaded here)"
    if name == "fid-inception":
        try:
            resolve_weights(download=False)
        except FileNotFoundError as e:
            return f"{e} (nothing is downloaded here)"
    return None


def extractor_rows(spec, scale):
    """Images/s of each extractor after a warm-up batch, on random 32x32x1 images."""
    import numpy as np

    from split_vae.metrics import get_extractor

    backend = spec["engine"]
    rng = np.random.default_rng(0)
    for row in spec["rows"]:
        reason = scale.skip_extractors.get(row["what"]) or extractor_unavailable(row["what"])
        if reason:
            emit(row, status=f"skipped: {reason}")
            continue
        print(f"RUNNING {json.dumps(row)}", flush=True)
        try:
            t0 = time.perf_counter()
            extractor = get_extractor(row["what"], batch_size=row["batch"])
            x = rng.uniform(size=(scale.extractor_images, 32, 32, 1)).astype("float32")
            extractor.features(x[:row["batch"]], progress=False)  # build, compile
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            extractor.features(x, progress=False)
            fields = {"images_per_s": len(x) / (time.perf_counter() - t0),
                      "first_steps_s": first, "status": "ok",
                      "note": f"{len(x)} images, 32x32x1"}
        except Exception as e:  # noqa: BLE001 - every error is this row's status
            fields = {"status": error_status(type(e).__name__, str(e))}
        finish(row, backend, **fields)


def reproduce_dataset() -> tuple[str, str]:
    """(dataset, why): fashion_mnist where its IDX files are readable, else digits."""
    from split_vae import data

    try:
        data.load("fashion_mnist", "test", as_numpy=True, limit=10,
                  data_dir=data.DEBIAN_FASHION_MNIST)
        return "fashion_mnist", f"Fashion-MNIST from {data.DEBIAN_FASHION_MNIST}"
    except (OSError, ValueError) as e:
        return "digits", f"digits (Fashion-MNIST unreadable: {e})"


def reproduce_row(spec, scale):
    """`python -m split_vae reproduce` at its smoke scale, in this process (so
    that the TensorFlow check covers it); its wall time."""
    import importlib

    cli = importlib.import_module("split_vae.cli.main")  # the module, not its main()
    row, backend = spec["rows"][0], spec["engine"]
    if "reproduce" not in [c.NAME for c in cli.COMMANDS]:
        emit(row, status="skipped: reproduce not available in this version")
        return
    dataset, why = reproduce_dataset()
    with tempfile.TemporaryDirectory(prefix="gpu_check_reproduce_") as out:
        argv = ["reproduce", "--dataset", dataset, "--scale", "smoke", "--runs", "1",
                "--out", out]
        print(f"RUNNING {json.dumps(row)}", flush=True)
        t0 = time.perf_counter()
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse refusing the arguments
            code = e.code
        except Exception as e:  # noqa: BLE001 - every error is this row's status
            finish(row, backend, status=error_status(type(e).__name__, str(e)))
            return
        seconds = time.perf_counter() - t0
        wrote = os.path.isfile(os.path.join(out, "table.md"))
    status = "ok" if code == 0 and wrote else (
        f"failed: exit {code}" + ("" if wrote else ", no table.md written"))
    finish(row, backend, status=status, note=f"{' '.join(argv[:-2])}; {why}; "
           f"{seconds:.0f} s wall; table.md {'written' if wrote else 'missing'}")


def make_tensorflow_unimportable() -> None:
    """Make TensorFlow unimportable in this process, as on the JAX or PyTorch
    machines this check is for: a None entry in sys.modules is Python's "not
    importable" (an import raises ImportError, importlib.util.find_spec gives
    None, as PyTorch's compiler asks). Keras probes for TensorFlow when it is
    installed (serializing a layer's dtype policy asks whether it is
    available) and takes the refusal as "not installed"; anything of ours that
    needed it would fail its row instead."""
    if sys.modules.get("tensorflow") is None:
        sys.modules["tensorflow"] = None


def child_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        make_tensorflow_unimportable()
    scale = Scale(**{**spec["scale"], "batches": tuple(spec["scale"]["batches"])})
    sys.path.insert(0, HERE)  # train_throughput, beside this file
    {"train": train_rows, "extractor": extractor_rows,
     "reproduce": reproduce_row}[spec["part"]](spec, scale)


# ---------------------------------------------------------------------------
# The parent: runs the rows' processes, prints progress and the table
# ---------------------------------------------------------------------------
def groups(rows) -> list[list[dict]]:
    """Rows that share a process: one per part and engine."""
    out = {}
    for r in rows:
        out.setdefault((r["part"], r["engine"]), []).append(r)
    return list(out.values())


class Runner:
    """Runs every group of rows in child processes within the time budget."""

    GRACE_S = 300  # past its share, a process gets this long to finish its row

    def __init__(self, rows, scale, args):
        self.rows, self.scale, self.args = rows, scale, args
        self.results = {}
        self.start = time.time()
        self.budget = args.budget if args.budget > 0 else float("inf")

    def progress(self, row):
        done = len(self.results)
        elapsed = time.time() - self.start
        left = elapsed / done * (len(self.rows) - done)
        left = min(left, max(0.0, self.budget - elapsed))
        ips = f", {row['images_per_s']:.1f} images/s" if row.get("images_per_s") else ""
        print(f"[gpu_check] {done}/{len(self.rows)} rows, {elapsed:.0f} s, about "
              f"{left:.0f} s left: {row['part']} {engine_label(row)} {row['what']} "
              f"{row['precision']} batch {row['batch']}: {row['status']}{ips}",
              file=sys.stderr, flush=True)

    def run(self):
        todo = groups(self.rows)
        for i, group in enumerate(todo):
            elapsed = time.time() - self.start
            share = max(0.0, self.budget - elapsed) / (len(todo) - i)
            pending = group
            while pending:  # a process that dies leaves its remaining rows to a new one
                self.run_group(pending, share)
                pending = [r for r in pending if row_key(r) not in self.results]
        return [self.results[row_key(r)] for r in self.rows]

    def run_group(self, rows, share):
        first = rows[0]
        backend = ENGINES[first["engine"]][0] if first["part"] == "train" else first["engine"]
        spec = {"part": first["part"], "engine": first["engine"], "rows": rows, "scale": dataclasses.asdict(self.scale),
                "need_gpu": not (self.args.cpu_smoke or self.args.allow_cpu),
                "deadline": time.time() + share, "budget": self.args.budget}
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        if os.path.isdir(os.path.join(ROOT, "split_vae")):  # run from a clone
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child",
                                     json.dumps(spec)], stdout=subprocess.PIPE,
                                    stderr=err, text=True, env=env)
            running, timeout = None, share + self.GRACE_S
            timer = _Killer(proc, timeout)
            for line in proc.stdout:
                if line.startswith("RUNNING "):
                    running = json.loads(line[len("RUNNING "):])
                elif line.startswith("ROW "):
                    row = json.loads(line[len("ROW "):])
                    self.results[row_key(row)] = row
                    running = None
                    self.progress(row)
            proc.wait()
            timer.cancel()
            err.seek(0)
            stderr = err.read()
        missing = [r for r in rows if row_key(r) not in self.results]
        if missing:
            # The process ended before all its rows: the one it was running (or
            # else the first not done) takes the blame; the others are retried.
            victim = running or missing[0]
            status = exit_status(proc.returncode, stderr, timeout if timer.fired else None)
            self.results[row_key(victim)] = {**victim, "status": status}
            self.progress(self.results[row_key(victim)])


class _Killer:
    """Kill a process that runs past its time (the row it was on then fails)."""

    def __init__(self, proc, seconds):
        import threading

        self.fired = False

        def kill():
            self.fired = True
            proc.kill()

        self.timer = threading.Timer(seconds, kill) if seconds != float("inf") else None
        if self.timer:
            self.timer.daemon = True
            self.timer.start()

    def cancel(self):
        if self.timer:
            self.timer.cancel()


def write_json(path, obj) -> None:
    """Atomically, through split_vae.fileio, loaded from its file: importing the
    package would import Keras and its default engine into this process."""
    spec = importlib.util.find_spec("split_vae")
    location = os.path.join(spec.submodule_search_locations[0], "fileio.py")
    module_spec = importlib.util.spec_from_file_location("_split_vae_fileio", location)
    fileio = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(fileio)  # it imports the standard library alone
    fileio.atomic_write_json(path, obj)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Each engine's rows run in a child process with KERAS_BACKEND set; this "
               "process imports no engine. Output: progress on stderr, the table on stdout.")
    p.add_argument("--cpu-smoke", action="store_true",
                   help="the reduced form for a CPU (CI): batch 8, narrowed networks, "
                        "one engine per backend, no InceptionV3, 8 images per extractor")
    p.add_argument("--allow-cpu", action="store_true",
                   help="run the full form although no GPU is found (slow)")
    p.add_argument("--list", action="store_true", help="print the planned rows and exit")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON there")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for every row together (default 420; --cpu-smoke: none, "
                        "0 = none); rows left without time say so")
    p.add_argument("--engines", help=f"comma-separated subset of {','.join(ENGINES)}")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: a row's process
    args = p.parse_args(argv)
    if args.budget is None:
        args.budget = 0.0 if args.cpu_smoke else 420.0
    return args


def choose_engines(args, scale):
    engines, skipped = available_engines(args.cpu_smoke)
    if args.engines:
        wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
        unknown = sorted(set(wanted) - set(ENGINES))
        if unknown:
            raise SystemExit(f"--engines: unknown {unknown}; choose from {', '.join(ENGINES)}")
        skipped += [f"{e}: skipped: not in --engines" for e in engines if e not in wanted]
        engines = [e for e in engines if e in wanted]
    return engines, skipped


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.path.isdir(os.path.join(ROOT, "split_vae")):  # run from a clone
        sys.path.insert(0, ROOT)
    if args.child:
        child_main(args.child)
        return 0
    scale = SMOKE_SCALE if args.cpu_smoke else GPU_SCALE
    engines, skipped = choose_engines(args, scale)
    backends = {ENGINES[e][0] for e in engines}
    if not engines:
        print("no engine to measure:\n  " + "\n  ".join(skipped), file=sys.stderr)
        return 2
    requested = os.environ.get("KERAS_BACKEND")
    main_backend = requested if requested in backends else ENGINES[engines[0]][0]
    rows = plan(engines, scale, main_backend)
    gpu = gpu_present()
    header = [f"gpu_check: {'--cpu-smoke' if args.cpu_smoke else 'full'} form; GPU: "
              f"{gpu or 'none found'}; engines {', '.join(engines)}; extractors and "
              f"reproduce under {main_backend}; batches {', '.join(map(str, scale.batches))}; "
              f"{scale.warmup} warm-up batches, median of {scale.repeats} windows of "
              f"{scale.window}", *skipped]
    if args.list:
        print("\n".join(header))
        print(format_table([{**r, "status": "planned"} for r in rows]))
        return 0
    if gpu is None and not (args.cpu_smoke or args.allow_cpu):
        print("gpu_check: no GPU found on this machine (no /dev/nvidia*, /dev/kfd or "
              "nvidia-smi). Pass --cpu-smoke for the reduced CPU form, or --allow-cpu "
              "for the full form on the CPU (slow).", file=sys.stderr)
        return 2
    print("\n".join(f"[gpu_check] {h}" for h in header), file=sys.stderr, flush=True)
    results = Runner(rows, scale, args).run()
    print("\n".join(header))
    print(format_table(results))
    if args.json:
        write_json(args.json, {"header": header, "rows": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
