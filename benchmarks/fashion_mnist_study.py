"""Split VAE vs vanilla VAE on real Fashion-MNIST: does splitting help?

The paper (Asperti, Bugo, Filippini, IEEE Access 2022, arXiv 2202.02738)
reports that the Split VAE generates better than the "vanilla" VAE with the
same layers, and that its parts x1, x2 often beat x_hat itself. This script
tests that claim on the real Fashion-MNIST test set with a reduced network
that trains on two CPU cores, several seeds, paired models.

    python benchmarks/fashion_mnist_study.py --train            # resumable
    python benchmarks/fashion_mnist_study.py --evaluate-only    # the table
    python benchmarks/fashion_mnist_study.py --evaluate-only --subset   # CI size

--train trains every model of the study (split and vanilla for each seed) and
saves each as a preset directory under weights/fashion_mnist/<name>/. Running
it again skips finished models and resumes a partial one from its last
checkpoint (runs/fashion_mnist_study/<name>/, written after every chunk of a
third of an epoch). The two models of a seed are paired: the same seed is set
before building them, so every layer but the last convolution (the only one
that differs) starts from the same weights, and they see the same batches in
the same order.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

WEIGHTS_DIR = os.path.join(ROOT, "weights", "fashion_mnist")
WORK_DIR = os.path.join(ROOT, "runs", "fashion_mnist_study")

# === The reduced configuration ===
# Everything not listed is the paper's fashion_mnist preset: 32x32x1 input
# (28x28 zero-padded), latent_dim 32, beta 8, kernel 3, 4 scales
# (num_scale 4: the decoder runs 4, 8, 16, 32 as the paper's), one residual
# block of depth 2 per scale, batches of 100, 20 GMM components.
REDUCED = dict(
    # A quarter of the paper's width (64 -> 16, 512 -> 128): 0.81M instead of
    # 12.8M parameters, ~450 images/s on two idle CPU cores instead of ~20.
    base_dim=16,
    emb_dim=128,
    # 2 epochs (1,200 steps) instead of 300: six trainings must fit in about
    # an hour of a shared two-core machine.
    epochs=2,
    # A short run needs a larger step and a faster BatchNorm average (the
    # paper's 1e-4 and 0.999 are tuned for hundreds of thousands of steps;
    # 0.999 would leave the inference statistics nearly at their init).
    learning_rate=1e-3,
    bn_momentum=0.99,
)
SEEDS = (0, 1, 2)
CHUNKS_PER_EPOCH = 3  # a checkpoint every third of an epoch


def study_config(split: bool):
    import split_vae

    return split_vae.get_preset("fashion_mnist").replace(split=split, **REDUCED)


def model_names(seeds=SEEDS):
    """Training order: the two models of a seed one after the other."""
    return [(f"{kind}_seed{seed}", kind == "split", seed)
            for seed in seeds for kind in ("split", "vanilla")]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training images in an epoch: a function of (seed,
    epoch) alone, so a resumed run and the paired model see the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------
def _read_json(path, default):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def train_one(name: str, split: bool, seed: int, train_images: np.ndarray) -> None:
    import keras

    from split_vae import GammaBalance, SplitVAE, StopOnNonFinite
    from split_vae.training import atomic_write, atomic_write_text

    preset_dir = os.path.join(WEIGHTS_DIR, name)
    if os.path.exists(os.path.join(preset_dir, "metadata.json")):
        print(f"[study] {name}: finished, skipped ({preset_dir})", flush=True)
        return
    work = os.path.join(WORK_DIR, name)
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "checkpoint.keras")
    state_file = os.path.join(work, "state.json")
    config = study_config(split)
    state = _read_json(state_file, {"chunk": 0, "train_seconds": 0.0, "history": []})
    if state["chunk"] > 0 and os.path.exists(ckpt):
        model = keras.saving.load_model(ckpt)
        print(f"[study] {name}: resuming after chunk {state['chunk']} "
              f"({state['train_seconds']:.0f} s of training so far)", flush=True)
    else:
        state = {"chunk": 0, "train_seconds": 0.0, "history": []}
        keras.utils.set_random_seed(seed)  # same init of the shared layers in a pair
        model = SplitVAE(config, seed=seed)
        model.compile()
        print(f"[study] {name}: {model.count_params():,} parameters, "
              f"{config.epochs} epochs of {len(train_images)} images", flush=True)

    n = len(train_images)
    bounds = np.linspace(0, n, CHUNKS_PER_EPOCH + 1).astype(int)
    total = config.epochs * CHUNKS_PER_EPOCH
    balance, stop = GammaBalance(), StopOnNonFinite()
    for chunk in range(state["chunk"], total):
        epoch, part = divmod(chunk, CHUNKS_PER_EPOCH)
        order = epoch_order(seed, epoch, n)[bounds[part]:bounds[part + 1]]
        start = time.time()
        hist = model.fit(train_images[order], batch_size=config.batch_size, epochs=1,
                         shuffle=False, verbose=0, callbacks=[balance, stop])
        seconds = time.time() - start
        if stop.stopped_at is not None:
            raise SystemExit(f"[study] {name}: non-finite loss in chunk {chunk}; "
                             f"{ckpt} keeps the last good state")
        logs = {k: float(v[-1]) for k, v in hist.history.items()}
        state["chunk"] = chunk + 1
        state["train_seconds"] += seconds
        state["history"].append({"chunk": chunk + 1, "epoch": epoch + 1,
                                 "seconds": round(seconds, 2), **logs})
        atomic_write(ckpt, model.save)
        atomic_write_text(state_file, json.dumps(state, indent=1))
        print(f"[study] {name}: chunk {chunk + 1}/{total} in {seconds:.0f} s, "
              f"loss {logs['loss']:.2f} mse {logs['mse']:.5f} kl {logs['kl']:.2f} "
              f"gamma {logs['gamma']:.5f}", flush=True)

    source = {"study": "benchmarks/fashion_mnist_study.py", "seed": seed,
              "train_images": n, "steps": int(total * np.ceil(n / CHUNKS_PER_EPOCH
                                                             / config.batch_size)),
              "train_seconds": round(state["train_seconds"], 1),
              "final": state["history"][-1]}
    model.save_to_preset(preset_dir, dataset="fashion_mnist", source=source)
    print(f"[study] {name}: saved {preset_dir} "
          f"({state['train_seconds']:.0f} s of training)", flush=True)


def train_all(seeds=SEEDS) -> None:
    from split_vae import data

    train_images = data.load("fashion_mnist", "train", as_numpy=True)
    for name, split, seed in model_names(seeds):
        train_one(name, split, seed, train_images)
    print("[study] every model is trained", flush=True)


def train_fd_fmnist_classifier(epochs: int = 8) -> None:
    """Train the FD-FMNIST classifier and ship it in split_vae/assets/."""
    from split_vae import fd_fmnist

    model, card = fd_fmnist.train_classifier(epochs=epochs)
    path = fd_fmnist.save_classifier(model, card)
    print(f"[study] FD-FMNIST classifier: test accuracy {100 * card['test_accuracy']:.2f}% "
          f"after {epochs} epochs ({card['train_seconds']:.0f} s) -> {path}", flush=True)


# ---------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true",
                        help="train every model of the study (resumes, skips finished ones)")
    parser.add_argument("--train-classifier", action="store_true",
                        help="(re)train the FD-FMNIST classifier shipped in split_vae/assets/")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args(argv)
    if args.train_classifier:
        train_fd_fmnist_classifier()
    if args.train:
        train_all(args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
