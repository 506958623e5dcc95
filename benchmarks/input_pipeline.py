"""Is feeding the bottleneck? Images/s of the input pipeline vs. of training.

Claim: `split_vae.data.load` feeds images faster than a Split VAE
trains on them, so training time is the model's. This script measures, for the
mnist preset (32x32x1, batches of 100):

  1. the input pipeline alone: iterate `load(dataset, "train")` for an epoch
     (or --pipeline-batches batches), doing nothing with the batches;
  2. a training step alone: `train_on_batch` on one batch already in memory;
  3. `fit` fed by the pipeline: both together, as the CLI trains.

Training steps are timed after --warmup untimed steps (graph tracing). On a
CPU they are slow: --steps keeps the run short.

    python benchmarks/input_pipeline.py                    # Debian's Fashion-MNIST
    python benchmarks/input_pipeline.py --dataset mnist --data-dir DIR_OF_IDX_FILES
    python benchmarks/input_pipeline.py --steps 20 --warmup 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="fashion_mnist",
                   help="a 32x32x1 dataset for split_vae.data.load (mnist format)")
    p.add_argument("--data-dir", default=None, help="offline data (IDX files, .npz)")
    p.add_argument("--preset", default="mnist", help="model preset to train")
    p.add_argument("--batch-size", type=int, default=100, help="the paper's batch")
    p.add_argument("--pipeline-batches", type=int, default=None,
                   help="batches of the pipeline to time (default: one epoch)")
    p.add_argument("--steps", type=int, default=5, help="timed training steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def time_pipeline(ds, max_batches):
    """Images/s of iterating `ds` (after its first batch, which builds it)."""
    it = iter(ds)
    next(it)
    n, start = 0, time.perf_counter()
    for i, batch in enumerate(it):
        n += int(batch.shape[0])
        if max_batches is not None and i + 1 >= max_batches:
            break
    return n, time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit("--steps must be >= 1 and --warmup >= 0")

    import keras
    import tensorflow as tf

    from split_vae import data
    from split_vae.model import SplitVAE

    model = SplitVAE.from_preset(args.preset, seed=args.seed)
    shape = model.image_shape
    load = dict(batch_size=args.batch_size, data_dir=args.data_dir, seed=args.seed,
                image_shape=shape)
    rows = []

    # 1. The input pipeline alone.
    ds = data.load(args.dataset, "train", **load)
    n, secs = time_pipeline(ds, args.pipeline_batches)
    rows.append(("input pipeline alone (load, iterate)", n, secs))

    # 2. A training step alone, on a batch already in memory.
    keras.utils.set_random_seed(args.seed)
    model.compile()
    batch = next(iter(ds)).numpy()
    for _ in range(args.warmup):
        model.train_on_batch(batch)
    start = time.perf_counter()
    for _ in range(args.steps):
        model.train_on_batch(batch)
    rows.append((f"train step alone ({args.preset}, train_on_batch)",
                 args.steps * len(batch), time.perf_counter() - start))

    # 3. fit() fed by the pipeline: warm-up epoch, then a timed one.
    train = ds.repeat()
    model.fit(train, steps_per_epoch=max(args.warmup, 1), epochs=1, verbose=0,
              shuffle=False)  # the dataset shuffles itself
    start = time.perf_counter()
    model.fit(train, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False)
    rows.append(("fit fed by the pipeline", args.steps * args.batch_size,
                 time.perf_counter() - start))

    devices = ", ".join(d.device_type for d in tf.config.list_physical_devices()) or "?"
    print(f"\nsplit_vae input pipeline vs training: dataset {args.dataset}, preset "
          f"{args.preset} {shape}, batch {args.batch_size}, devices: {devices}, "
          f"{os.cpu_count()} CPU cores, keras {keras.__version__}, tf {tf.__version__}")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'images':>8}  {'seconds':>8}  {'images/s':>10}")
    for label, n, secs in rows:
        print(f"{label:<{width}}  {n:>8}  {secs:>8.2f}  {n / secs:>10.0f}")
    feed, step = rows[0][1] / rows[0][2], rows[1][1] / rows[1][2]
    verdict = "not the bottleneck" if feed > 2 * step else "A POSSIBLE BOTTLENECK"
    print(f"the pipeline feeds {feed / step:.0f}x faster than training consumes: "
          f"feeding is {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
