"""What the prior on the maps (SplitVAEConfig.map_entropy) does to the split.

Trains the digits preset with K components (default 3) once per weight, same
seed, and prints a table of the learned maps on the test images: their mean
entropy per pixel (0: each pixel taken by one component; log K: an even
blend), how often a pixel's largest map exceeds 0.9, each component's share,
the reconstruction MSE and the split kind. Digits are bundled with
scikit-learn: it runs offline on a CPU in minutes.

    python benchmarks/map_prior.py                       # weights 0, 0.1, 1, -0.1
    python benchmarks/map_prior.py --weights 0,0.5 --components 4 --epochs 30
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def measure(weight: float, components: int, epochs: int, seed: int) -> dict:
    import split_vae  # first: it quiets TensorFlow's start-up lines
    import keras
    import numpy as np
    from split_vae import GammaBalance, SplitVAE, data
    from split_vae.parts import maps_of
    from split_vae.split_kind import split_kind_of_parts

    config = split_vae.get_preset("digits").replace(components=components, map_entropy=weight,
                                                    epochs=epochs)
    train = data.load("digits", "train", as_numpy=True)
    test = data.load("digits", "test", as_numpy=True)
    keras.utils.set_random_seed(seed)
    model = SplitVAE(config, seed=seed)
    model.compile()
    start = time.time()
    model.fit(train, epochs=epochs, batch_size=config.batch_size, verbose=0,
              callbacks=[GammaBalance()])
    seconds = time.time() - start
    parts = model.reconstruct(test)
    maps = maps_of(parts)
    entropy = -np.sum(maps * np.log(np.maximum(maps, 1e-12)), axis=-1)
    return {"weight": weight, "entropy": float(entropy.mean()),
            "hard": float((maps.max(axis=-1) > 0.9).mean()),
            "shares": maps.mean(axis=(0, 1, 2)).tolist(),
            "mse": float(np.mean(np.square(parts["x_hat"] - test))),
            "kind": split_kind_of_parts(parts), "seconds": seconds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="0,0.1,1,-0.1", help="map_entropy values, comma-separated")
    p.add_argument("--components", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30, help="default: the digits preset's 30")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    weights = [float(w) for w in args.weights.split(",")]
    k = args.components
    print(f"digits, K = {k}, {args.epochs} epochs, seed {args.seed}; maps of the test "
          f"reconstructions (entropy in nats; an even blend is log {k} = {math.log(k):.3f})")
    print("| map_entropy | entropy / pixel | pixels with a map > 0.9 | share of each map "
          "| reconstruction MSE | split kind | training (s) |")
    print("|---|---|---|---|---|---|---|")
    for w in weights:
        r = measure(w, k, args.epochs, args.seed)
        kind = r["kind"]
        print(f"| {w:g} | {r['entropy']:.3f} | {100 * r['hard']:.1f}% | "
              + ", ".join(f"{s:.2f}" for s in r["shares"])
              + f" | {r['mse']:.4f} | {kind['kind']} ({100 * kind['high_frequency_fraction']:.0f}%)"
              f" | {r['seconds']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
