"""Training throughput of the mnist preset on every engine, against the original.

Rows, each measured in a process of its own (so that no backend, XLA cache or
memory pool of one row helps or hinders another), all in one run:

- original: the authors' network under Keras 2 (tests/keras2_original.py),
  trained as they train it, a Python loop of `train_on_batch([x, gamma], x)`
  with gamma fed in and updated by the balance rule between batches;
- split_vae under TensorFlow as a user gets it with no flags (float32, the
  GammaBalance callback, `fit` on a tf.data pipeline), and the same without
  the balance (it reads the batch MSE on the host after every batch: a
  device-to-host sync, which costs on accelerators);
- TensorFlow with XLA (`jit_compile=True`), PyTorch, JAX;
- TensorFlow with mixed_bfloat16.

A row trains `--warmup` batches, then `--repeats` windows of `--window`
batches; each window ends by reading the loss on the host, and images/s is
the batch size times the window length over the median window time. The
machine's float32 matmul speed (TensorFlow, square matrices) is measured in
the same run; achieved GFLOP/s is images/s times the FLOPs of training on one
image, counted from the layer shapes (multiply-adds of every Conv2D,
Conv2DTranspose and Dense, x2 for FLOPs, x3 for the forward pass and the two
products of the backward pass). Peak memory is the row's process peak RSS on
CPU, the device's peak allocation on a GPU.

    python benchmarks/train_throughput.py                 # every row
    python benchmarks/train_throughput.py --window 1 --repeats 1 --warmup 1   # quick check

The last two lines are `speedup_vs_original: X.XX` (the no-flag row) and
`speedup_mixed_vs_original: Y.YY` (TensorFlow, mixed_bfloat16). CPU speeds
differ several-fold between machines: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (KERAS_BACKEND, description, options of the split_vae row)
ROWS = {
    "original": ("tensorflow", "original (Keras 2, train_on_batch, gamma fed)", {}),
    "tf": ("tensorflow", "split_vae TF, no flags (float32, balance)", {}),
    "tf_no_balance": ("tensorflow", "split_vae TF, balance off", {"balance": False}),
    "tf_xla": ("tensorflow", "split_vae TF + XLA (jit_compile=True)", {"jit_compile": True}),
    "torch": ("torch", "split_vae torch", {}),
    "jax": ("jax", "split_vae JAX", {}),
    "tf_bf16": ("tensorflow", "split_vae TF mixed_bfloat16", {"precision": "mixed_bfloat16"}),
}


# ---------------------------------------------------------------------------
# FLOPs from layer shapes
# ---------------------------------------------------------------------------
def forward_flops_per_image(model) -> int:
    """2 x multiply-adds of every Conv2D, Conv2DTranspose and Dense, one image."""
    import math

    from keras import layers

    total = 0
    for sub in (model.encoder, model.latent, model.decoder):
        for layer in sub.layers:
            if isinstance(layer, layers.Conv2DTranspose):
                # each input pixel is spread over a k x k window of every output channel
                _, h, w, cin = layer.input.shape
                total += h * w * math.prod(layer.kernel_size) * cin * layer.filters
            elif isinstance(layer, layers.Conv2D):
                _, h, w, cout = layer.output.shape
                cin = layer.input.shape[-1]
                total += h * w * math.prod(layer.kernel_size) * cin * cout
            elif isinstance(layer, layers.Dense):
                total += layer.input.shape[-1] * layer.units
    return 2 * total


def training_flops_per_image(config) -> int:
    """Forward + backward (input and weight gradients): 3 x the forward FLOPs."""
    from split_vae import SplitVAE

    return 3 * forward_flops_per_image(SplitVAE(config))


# ---------------------------------------------------------------------------
# Rows (each runs in its own process)
# ---------------------------------------------------------------------------
def images(config, n, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n,) + tuple(config.image_shape)).astype("float32")


def peak_memory_mib(backend) -> tuple[float, str]:
    gpu = _gpu_peak_bytes(backend)
    if gpu is not None:
        return gpu / 2**20, "device"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "host RSS"


def _gpu_peak_bytes(backend):
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"]
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.max_memory_allocated()
        elif backend == "jax":
            import jax

            d = jax.devices()[0]
            if d.platform != "cpu":
                return d.memory_stats().get("peak_bytes_in_use")
    except Exception:  # a backend without the query: fall back to the host
        return None
    return None


def windows(warmup, window, repeats):
    """Batch indices at which timed windows start and end."""
    starts = [warmup + i * window for i in range(repeats)]
    return starts, [s + window - 1 for s in starts]


def window_clock(warmup, window, repeats):
    """A Keras callback timing the `windows` of a fit: `.times`, the seconds of
    each window, each ended by reading the loss on the host (the device has
    then finished); `.first`, the seconds from the start of training to the
    end of the warm-up (compilation included)."""
    import keras

    starts, ends = windows(warmup, window, repeats)

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times, self.t0, self.first, self.begin = [], None, None, None

        def on_train_begin(self, logs=None):
            self.begin = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            if batch in starts:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if batch in ends or batch == warmup - 1:
                float(logs["loss"])  # wait for the device: the window is done
            if batch == warmup - 1:
                self.first = time.perf_counter() - self.begin
            if batch in ends:
                self.times.append(time.perf_counter() - self.t0)

    return Clock()


def run_original(config, args):
    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from keras2_original import compiled_for_training

    c = config
    vae = compiled_for_training(c)
    bs = c.batch_size
    x = images(c, bs * 4)
    gamma_in = np.ones(bs, "float32")
    running = gamma = 1.0
    starts, ends = windows(args.warmup, args.window, args.repeats)
    times, t0 = [], None
    for j in range(ends[-1] + 1):
        if j in starts:
            t0 = time.perf_counter()
        batch = x[(j * bs) % len(x):(j * bs) % len(x) + bs]
        gamma_in[:] = gamma
        _, mse = vae.train_on_batch([batch, gamma_in], batch)  # returns numpy: synced
        running = 0.99 * running + 0.01 * mse
        gamma = min(gamma, running)
        if j in ends:
            times.append(time.perf_counter() - t0)
    return times


def run_split_vae(config, args, balance=True, jit_compile="auto", precision="float32"):
    import tensorflow as tf

    from split_vae import GammaBalance, SplitVAE

    config = config.replace(precision=precision)
    model = SplitVAE(config)
    model.compile(jit_compile=jit_compile)
    x = images(config, config.batch_size * 4)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(config.batch_size, drop_remainder=True)
    ds = ds.repeat().prefetch(tf.data.AUTOTUNE)
    _, ends = windows(args.warmup, args.window, args.repeats)
    clock = window_clock(args.warmup, args.window, args.repeats)
    callbacks = ([GammaBalance()] if balance else []) + [clock]
    model.fit(ds, epochs=1, steps_per_epoch=ends[-1] + 1, verbose=0, callbacks=callbacks)
    return clock.times


def run_row(name, args):
    from split_vae import get_preset

    backend, _, options = ROWS[name]
    config = get_preset(args.preset).replace(batch_size=args.batch_size)
    times = run_original(config, args) if name == "original" else \
        run_split_vae(config, args, **options)
    seconds = statistics.median(times)
    mem, where = peak_memory_mib(backend)
    return {"images_per_s": config.batch_size * args.window / seconds,
            "window_seconds": times, "peak_mib": mem, "memory": where}


def matmul_gflops(n=2048, repeats=5):
    """float32 n x n matmul under TensorFlow: the machine's dense ceiling."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    (a @ b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        (a @ b).numpy()
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------
def child(args, *extra, backend="tensorflow"):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, os.path.abspath(__file__), "--preset", args.preset,
           "--batch-size", str(args.batch_size), "--warmup", str(args.warmup),
           "--window", str(args.window), "--repeats", str(args.repeats), *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(extra)} failed (exit {proc.returncode}):\n"
                         f"{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def device_name():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU ({len(gpus)}: {tf.config.experimental.get_device_details(gpus[0]).get('device_name', '?')})"
    from split_vae.precision import BF16_FLAGS, cpu_flags

    bf16 = sorted(cpu_flags() & BF16_FLAGS)
    return f"CPU ({os.cpu_count()} cores; bfloat16: {', '.join(bf16) or 'none'})"


def skip_reason(name) -> str | None:
    """Why a row is not measured here, or None: a 16-bit policy this device only
    emulates would run many times longer than the float32 rows."""
    from split_vae.precision import emulated

    precision = ROWS[name][2].get("precision")
    return emulated(precision) if precision else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="mnist")
    p.add_argument("--batch-size", type=int, default=100, help="the paper's 100")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    p.add_argument("--window", type=int, default=3, help="batches per timed window")
    p.add_argument("--repeats", type=int, default=5, help="timed windows (median taken)")
    p.add_argument("--rows", default=",".join(ROWS),
                   help=f"comma-separated subset of {','.join(ROWS)}")
    p.add_argument("--row", help=argparse.SUPPRESS)       # internal: measure one row
    p.add_argument("--matmul", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, ROOT)
    if args.row:
        print("RESULT " + json.dumps(run_row(args.row, args)), flush=True)
        return
    if args.matmul:
        print("RESULT " + json.dumps({"gflops": matmul_gflops()}), flush=True)
        return

    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown or "original" not in rows:
        raise SystemExit(f"--rows: unknown {unknown}; the original row is required "
                         f"(choices: {', '.join(ROWS)})")
    from split_vae import get_preset

    config = get_preset(args.preset).replace(batch_size=args.batch_size)
    flops = training_flops_per_image(config)
    load0 = os.getloadavg()
    gflops_matmul = child(args, "--matmul")["gflops"]
    results, skipped = {}, {}
    for name in rows:
        reason = skip_reason(name)
        if reason:
            skipped[name] = reason
            print(f"... {name}: skipped, {reason}", file=sys.stderr, flush=True)
            continue
        print(f"... {name}", file=sys.stderr, flush=True)
        results[name] = child(args, "--row", name, backend=ROWS[name][0])
    load1 = os.getloadavg()

    orig = results["original"]["images_per_s"]
    print(f"preset {args.preset}, batch {args.batch_size}, {args.warmup} warm-up batches, "
          f"median of {args.repeats} windows of {args.window} batches; {device_name()}")
    print(f"load average (1 min) {load0[0]:.2f} at start, {load1[0]:.2f} at end; "
          f"float32 matmul {gflops_matmul:.1f} GFLOP/s; "
          f"training FLOPs per image {flops / 1e9:.3f} GFLOP")
    print(f"{'row':<48}{'images/s':>10}{'vs orig':>9}{'GFLOP/s':>9}{'of matmul':>11}"
          f"{'peak MiB':>10}")
    for name in rows:
        if name in skipped:
            print(f"{ROWS[name][1]:<48}  skipped: {skipped[name]}")
            continue
        r = results[name]
        ips = r["images_per_s"]
        achieved = ips * flops / 1e9
        print(f"{ROWS[name][1]:<48}{ips:>10.2f}{ips / orig:>8.2f}x{achieved:>9.1f}"
              f"{achieved / gflops_matmul:>10.0%} {r['peak_mib']:>9.0f}")
    print(f"(peak memory: {results['original']['memory']})")
    for key, name in (("speedup_vs_original", "tf"), ("speedup_mixed_vs_original", "tf_bf16")):
        value = (f"{results[name]['images_per_s'] / orig:.2f}" if name in results else
                 f"n/a (skipped: {skipped[name]})" if name in skipped else "n/a")
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
