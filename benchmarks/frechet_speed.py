"""How fast is our Fréchet distance, and how fast is InceptionV3 here?

Claim measured: `split_vae.metrics.frechet_distance` (eigenvalues of a
symmetric form of S1 S2) is at least 3x faster than the usual formula with
scipy.linalg.sqrtm, for the paper's setting (2048 features, covariances of
10,000 samples), and gives the same value to 1e-6 (relative).

Also printed: InceptionV3 throughput at 299x299 on this machine (random
weights: the ImageNet weights cost the same per image).

Usage: python benchmarks/frechet_speed.py [--samples 10000] [--dim 2048]
The last line is `speedup_vs_sqrtm: X.XX`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from split_vae.metrics import (feature_statistics, frechet_distance,  # noqa: E402
                               frechet_distance_sqrtm)


def fake_features(rng, n, d, shift):
    """Correlated, non-negative features like pooled ReLU activations."""
    mix = rng.standard_normal((d, d)) / np.sqrt(d)
    return np.maximum(rng.standard_normal((n, d)) @ mix + shift, 0.0).astype("float32")


def best_of(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value


def inception_rate(n_images: int, batch: int) -> float:
    from split_vae.metrics import inception_extractor

    ext = inception_extractor(weights=None, batch_size=batch)
    x = np.random.default_rng(0).random((n_images, 32, 32, 3)).astype("float32")
    ext.features(x[:batch], progress=False)  # warm-up
    t = time.perf_counter()
    ext.features(x, desc="InceptionV3 299x299")
    return n_images / (time.perf_counter() - t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--repeat", type=int, default=2, help="best of this many timings")
    p.add_argument("--inception-images", type=int, default=64)
    p.add_argument("--inception-batch", type=int, default=32)
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    print(f"statistics of {args.samples} samples x {args.dim} features ...", flush=True)
    s1 = feature_statistics(fake_features(rng, args.samples, args.dim, 0.0))
    s2 = feature_statistics(fake_features(rng, args.samples, args.dim, 0.1))

    t_ours, v_ours = best_of(lambda: frechet_distance(*s1, *s2), args.repeat)
    t_sqrtm, v_sqrtm = best_of(lambda: frechet_distance_sqrtm(*s1, *s2), args.repeat)
    rel = abs(v_ours - v_sqrtm) / abs(v_sqrtm)

    rate = inception_rate(args.inception_images, args.inception_batch)
    speedup = t_sqrtm / t_ours
    print(f"{'method':<34}{'seconds':>10}{'distance':>18}")
    print(f"{'ours (eigenvalues of B^T S2 B)':<34}{t_ours:>10.3f}{v_ours:>18.9f}")
    print(f"{'scipy.linalg.sqrtm(S1 S2)':<34}{t_sqrtm:>10.3f}{v_sqrtm:>18.9f}")
    print(f"relative difference: {rel:.2e} ({'within' if rel <= 1e-6 else 'ABOVE'} 1e-6)")
    print(f"InceptionV3 299x299 images/s (batch {args.inception_batch}, "
          f"{os.cpu_count()} CPU cores): {rate:.1f}")
    print(f"speedup_vs_sqrtm: {speedup:.2f}")
    return 0 if rel <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
