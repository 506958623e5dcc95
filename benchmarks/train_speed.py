"""Training throughput: the original Keras 2 loop against ours, same network.

The original (asperti/Split-VAE) trains with a Python loop of
`train_on_batch([x, gamma], x)` on numpy slices, updating gamma in Python;
ours is `model.fit` on a tf.data pipeline with the GammaBalance callback (and
XLA where Keras enables it: on GPUs, not on CPU). Both run the same layers
(tests/keras2_original.py rebuilds the original with tf-keras), on the same
images, for the same number of batches after a warm-up.

    python benchmarks/train_speed.py --preset mnist --steps 5 --warmup 2

Prints a table of seconds and images/s, and as its last line
`speedup_vs_original: X.XX` (ours / original, images/s).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import numpy as np  # noqa: E402


def images_for(config, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n,) + tuple(config.image_shape)).astype("float32")


def time_original(config, x, steps, warmup):
    from keras2_original import compiled_for_training

    c = config
    vae = compiled_for_training(c)
    bs = c.batch_size
    gamma_in = np.ones(bs, "float32")
    running = gamma = 1.0
    t0 = None
    for j in range(warmup + steps):
        if j == warmup:
            t0 = time.perf_counter()
        batch = x[(j * bs) % len(x):(j * bs) % len(x) + bs]
        gamma_in[:] = gamma
        _, mse = vae.train_on_batch([batch, gamma_in], batch)
        running = 0.99 * running + 0.01 * mse
        gamma = min(gamma, running)
    return time.perf_counter() - t0


def time_ours(config, x, steps, warmup):
    import keras
    import tensorflow as tf

    from split_vae import GammaBalance, SplitVAE

    model = SplitVAE(config)
    model.compile()
    ds = tf.data.Dataset.from_tensor_slices(x).batch(config.batch_size, drop_remainder=True)
    ds = ds.repeat().prefetch(tf.data.AUTOTUNE)

    class Clock(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == warmup:
                self.t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.t1 = time.perf_counter()

    clock = Clock()
    model.fit(ds, epochs=1, steps_per_epoch=warmup + steps, verbose=0,
              callbacks=[GammaBalance(), clock])
    return clock.t1 - clock.t0


def main(argv=None):
    from split_vae import get_preset

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="mnist")
    p.add_argument("--steps", type=int, default=5, help="timed batches")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    args = p.parse_args(argv)
    config = get_preset(args.preset)
    x = images_for(config, config.batch_size * 4)
    n_img = args.steps * config.batch_size
    t_orig = time_original(config, x, args.steps, args.warmup)
    t_ours = time_ours(config, x, args.steps, args.warmup)
    import tensorflow as tf

    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    print(f"preset {args.preset}, batch {config.batch_size}, {args.steps} timed steps "
          f"after {args.warmup}, {device}")
    print(f"{'implementation':<42}{'seconds':>10}{'images/s':>12}")
    print(f"{'original loop (Keras 2, train_on_batch)':<42}{t_orig:>10.2f}{n_img / t_orig:>12.1f}")
    print(f"{'split_vae (Keras 3, fit + tf.data)':<42}{t_ours:>10.2f}{n_img / t_ours:>12.1f}")
    print(f"speedup_vs_original: {t_orig / t_ours:.2f}")


if __name__ == "__main__":
    main()
