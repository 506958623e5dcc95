"""Training the study's models: split and vanilla for each seed, paired.

The two models of a seed are paired: the same seed is set before building
them, so every layer but the last convolution (the only one that differs)
starts from the same weights, and they see the same batches in the same
order. Training is checkpointed after every chunk (a third of an epoch) with
the library's checkpoint: the study's progress (chunks done, training time,
history) is the checkpoint's state, inside the same file as the weights, so a
kill at any moment resumes on weights and progress that belong together.
"""

from __future__ import annotations

import os
import time

import numpy as np

from split_vae.checkpoint import (check_resumable, load_checkpoint, previous_path,
                                  save_checkpoint)

from . import SEEDS, WEIGHTS_DIR, WORK_DIR

# === The reduced configuration ===
# Everything not listed is the paper's fashion_mnist preset: 32x32x1 input
# (28x28 zero-padded), latent_dim 32, beta 8, kernel 3, 4 scales
# (num_scale 4: the decoder runs 4, 8, 16, 32 as the paper's), one residual
# block of depth 2 per scale, batches of 100, 20 GMM components.
REDUCED = dict(
    # A quarter of the paper's width (64 -> 16, 512 -> 128): 0.81M instead of
    # 12.8M parameters, which trains on two CPU cores.
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
CHUNKS_PER_EPOCH = 3  # a checkpoint every third of an epoch


def study_config(split: bool):
    import split_vae

    return split_vae.get_preset("fashion_mnist").replace(split=split, **REDUCED)


def model_names(seeds=SEEDS):
    """(name, split, seed) in training order: the two models of a seed one after the other."""
    return [(f"{kind}_seed{seed}", kind == "split", seed)
            for seed in seeds for kind in ("split", "vanilla")]


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training images in an epoch: a function of (seed,
    epoch) alone, so a resumed run and the paired model see the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def start_or_resume(name: str, config, seed: int, ckpt: str):
    """(model, state): the checkpoint at ckpt (or the one kept before it) and
    its study state, or a new compiled model and an empty state."""
    import keras

    from split_vae import SplitVAE

    if os.path.exists(ckpt) or os.path.exists(previous_path(ckpt)):
        model, state, source = load_checkpoint(ckpt)
        if "chunk" not in state:
            raise SystemExit(f"[study] {source} holds no study state (an older format); "
                             f"delete {os.path.dirname(ckpt)} to train {name} afresh")
        check_resumable(model.config, config, source)
        print(f"[study] {name}: resuming after chunk {state['chunk']} "
              f"({state['train_seconds']:.0f} s of training so far)", flush=True)
        return model, state
    keras.utils.set_random_seed(seed)  # same init of the shared layers in a pair
    model = SplitVAE(config, seed=seed)
    model.compile()
    return model, {"chunk": 0, "train_seconds": 0.0, "history": []}


def train_one(name: str, split: bool, seed: int, train_images: np.ndarray,
              weights_dir: str = WEIGHTS_DIR, work_dir: str = WORK_DIR, config=None) -> None:
    """Train one model of the study into the preset directory weights_dir/name,
    resuming from work_dir/name/checkpoint.keras; a finished model is skipped."""
    from split_vae import GammaBalance, StopOnNonFinite

    preset_dir = os.path.join(weights_dir, name)
    if os.path.exists(os.path.join(preset_dir, "metadata.json")):
        print(f"[study] {name}: finished, skipped ({preset_dir})", flush=True)
        return
    ckpt = os.path.join(work_dir, name, "checkpoint.keras")
    os.makedirs(os.path.dirname(ckpt), exist_ok=True)
    config = config or study_config(split)
    model, state = start_or_resume(name, config, seed, ckpt)
    n = len(train_images)
    if state["chunk"] == 0:
        print(f"[study] {name}: {model.count_params():,} parameters, "
              f"{config.epochs} epochs of {n} images", flush=True)
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
        state = {"chunk": chunk + 1, "train_seconds": state["train_seconds"] + seconds,
                 "history": state["history"] + [{"chunk": chunk + 1, "epoch": epoch + 1,
                                                 "seconds": round(seconds, 2), **logs}]}
        save_checkpoint(model, ckpt, state)
        print(f"[study] {name}: chunk {chunk + 1}/{total} in {seconds:.0f} s, "
              f"loss {logs['loss']:.2f} mse {logs['mse']:.5f} kl {logs['kl']:.2f} "
              f"gamma {logs['gamma']:.5f}", flush=True)

    source = {"study": "benchmarks/fashion_mnist_study.py", "seed": seed,
              "train_images": n, "steps": int(total * np.ceil(n / CHUNKS_PER_EPOCH
                                                             / config.batch_size)),
              "train_seconds": round(state["train_seconds"], 1),
              "final": state["history"][-1]}
    save_without_optimizer(model, preset_dir, source)
    print(f"[study] {name}: saved {preset_dir} "
          f"({state['train_seconds']:.0f} s of training)", flush=True)


def save_without_optimizer(model, preset_dir: str, source: dict) -> None:
    """Save a preset of the network alone. A compiled model's weights file also
    holds Adam's two moments (3x the size); an uncompiled copy with the same
    weights (gamma included) writes the network alone."""
    from split_vae import SplitVAE

    slim = SplitVAE(model.config, seed=model.seed)
    for mine, theirs in zip(slim.weights, model.weights):
        if mine.path != theirs.path:
            raise RuntimeError(f"weights out of order: {mine.path} vs {theirs.path}")
        mine.assign(theirs)
    slim.save_to_preset(preset_dir, dataset="fashion_mnist", source=source)


def train_all(seeds=SEEDS) -> None:
    from split_vae import data

    train_images = data.load("fashion_mnist", "train", as_numpy=True)
    for name, split, seed in model_names(seeds):
        train_one(name, split, seed, train_images)
    print("[study] every model is trained", flush=True)


def train_fd_fmnist_classifier(epochs: int = 8) -> None:
    """Train the FD-FMNIST classifier and ship it in split_vae/assets/."""
    from split_vae.metrics import fd_fmnist

    model, card = fd_fmnist.train_classifier(epochs=epochs)
    path = fd_fmnist.save_classifier(model, card)
    print(f"[study] FD-FMNIST classifier: test accuracy {100 * card['test_accuracy']:.2f}% "
          f"after {epochs} epochs ({card['train_seconds']:.0f} s) -> {path}", flush=True)
