"""Training one run of a reproduction: paired, chunked, resumable at any moment.

The split and vanilla models of a seed are paired: the same seed is set
before building them, so every layer but the last convolution (the only one
that differs) starts from the same weights, and they see the same batches in
the same order (`epoch_order`, a function of the seed and the epoch alone).
Training goes in chunks (a fraction of an epoch); after each one the model
and the run's progress (chunks done, training time, per-chunk logs, the
ablation curve) are written into one checkpoint file through one atomic
rename (`checkpoint.save_checkpoint`), so a kill at any moment resumes on
weights and progress that belong together, and a resumed run ends with the
weights of an uninterrupted one.

The ablation curve (the paper's Figures 14 and 15) is measured at the end of
every `history_every`-th epoch, before that epoch's checkpoint: the
Fréchet distance of x_hat, x1, x2 of samples drawn from a GMM fitted on z_mean
of the reference images. It lives in the checkpoint's state and then in the
finished model's metadata, never in memory only.

Batches come from a `keras.utils.PyDataset` over the images in memory, which
every backend reads: no TensorFlow on this path under JAX or PyTorch.
"""

from __future__ import annotations

import logging
import math
import os
import time

import keras
import numpy as np

from ..checkpoint import check_resumable, load_checkpoint, previous_path, save_checkpoint
from ..model import SplitVAE
from ..training import GammaBalance, StopOnNonFinite

logger = logging.getLogger(__name__)


class DivergedError(RuntimeError):
    """A non-finite loss; the checkpoint keeps the last good chunk."""


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the training images in an epoch: a function of (seed,
    epoch) alone, so a resumed run and the paired model see the same batches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class OrderedBatches(keras.utils.PyDataset):
    """Batches of images[indices] in the given order (the last one may be short).

    uint8 images are scaled to [0, 1] batch by batch, so a large dataset is
    held in memory as bytes.
    """

    def __init__(self, images: np.ndarray, indices: np.ndarray, batch_size: int):
        super().__init__()
        self.images, self.indices, self.batch_size = images, indices, batch_size

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, i):
        batch = self.images[self.indices[i * self.batch_size:(i + 1) * self.batch_size]]
        if batch.dtype == np.uint8:
            batch = batch.astype("float32") / 255.0
        return batch


def chunk_bounds(n: int, chunks_per_epoch: int) -> np.ndarray:
    """Where each chunk of an epoch of n images starts and ends."""
    return np.linspace(0, n, chunks_per_epoch + 1).astype(int)


def start_or_resume(name: str, config, seed: int, ckpt: str):
    """(model, state): the checkpoint at ckpt (or the one kept before it) and
    its state, or a new compiled model and an empty state."""
    if os.path.exists(ckpt) or os.path.exists(previous_path(ckpt)):
        model, state, source = load_checkpoint(ckpt)
        if "chunk" not in state:
            raise ValueError(f"{source} holds no reproduction state (a checkpoint of "
                             f"`train`?); delete {os.path.dirname(ckpt)} to train {name} "
                             "afresh")
        check_resumable(model.config, config, source)
        model.config = model.config.replace(epochs=config.epochs)
        logger.info("%s: resuming after chunk %d (%.0f s of training so far)", name,
                    state["chunk"], state["train_seconds"])
        return model, state
    keras.utils.set_random_seed(seed)  # same init of the shared layers in a pair
    model = SplitVAE(config, seed=seed)
    model.compile()
    return model, {"chunk": 0, "train_seconds": 0.0, "history": [], "fid_history": {}}


def train_run(name: str, config, seed: int, train_images: np.ndarray, ckpt: str,
              chunks_per_epoch: int = 1, history=None, history_every: int = 1,
              on_chunk=None):
    """Train one run to config.epochs, resuming from ckpt; (model, state).

    Args:
        history: None, or a callable model -> {"x_hat": fd, ...} measured at
            the end of every `history_every`-th epoch (and the last); its
            values are stored in state["fid_history"] before the checkpoint.
        on_chunk: called with (chunk done, total chunks, seconds) after each
            checkpoint (progress bars).
    Raises:
        DivergedError at a non-finite loss (the checkpoint is left as it was).
    """
    os.makedirs(os.path.dirname(ckpt) or ".", exist_ok=True)
    model, state = start_or_resume(name, config, seed, ckpt)
    state.setdefault("fid_history", {})
    n = len(train_images)
    if n < 1:
        raise ValueError(f"{name}: no training images")
    bounds = chunk_bounds(n, chunks_per_epoch)
    total = config.epochs * chunks_per_epoch
    balance, stop = GammaBalance(), StopOnNonFinite()
    for chunk in range(state["chunk"], total):
        epoch, part = divmod(chunk, chunks_per_epoch)
        order = epoch_order(seed, epoch, n)[bounds[part]:bounds[part + 1]]
        start = time.time()
        # shuffle=False: fit would reorder the batches with Python's `random`,
        # whose state a resumed process does not share.
        hist = model.fit(OrderedBatches(train_images, order, config.batch_size), epochs=1,
                         shuffle=False, verbose=0, callbacks=[balance, stop])
        seconds = time.time() - start
        if stop.stopped_at is not None:
            raise DivergedError(f"{name}: non-finite loss in chunk {chunk + 1}; {ckpt} "
                                "keeps the last good state")
        logs = {k: float(v[-1]) for k, v in hist.history.items()}
        state = dict(state, chunk=chunk + 1,
                     train_seconds=state["train_seconds"] + seconds,
                     history=state["history"] + [{"chunk": chunk + 1, "epoch": epoch + 1,
                                                  "seconds": round(seconds, 2), **logs}])
        epoch_done = part == chunks_per_epoch - 1
        if history is not None and epoch_done and \
                ((epoch + 1) % history_every == 0 or chunk + 1 == total):
            state["fid_history"] = _append_history(state["fid_history"], epoch + 1,
                                                   history(model))
        save_checkpoint(model, ckpt, state)
        logger.info("%s: chunk %d/%d in %.0f s, loss %.2f mse %.5f kl %.2f gamma %.5f", name,
                    chunk + 1, total, seconds, logs["loss"], logs["mse"], logs["kl"],
                    logs["gamma"])
        if on_chunk is not None:
            on_chunk(chunk + 1, total, seconds)
    return model, state


def _append_history(history: dict, epoch: int, values: dict) -> dict:
    """history with one more point; a point of the same epoch (measured before
    a kill, then again) is replaced, not repeated."""
    epochs = list(history.get("epoch", []))
    out = {k: list(v) for k, v in history.items()}
    if epoch in epochs:
        i = epochs.index(epoch)
        for k, v in values.items():
            out[k][i] = float(v)
        return out
    out["epoch"] = epochs + [epoch]
    for k, v in values.items():
        out[k] = out.get(k, []) + [float(v)]
    return out


def save_without_optimizer(model, preset_dir: str, dataset: str, source: dict) -> None:
    """Save a preset directory of the network alone. A compiled model's weights
    also hold Adam's two moments (3x the size); an uncompiled copy with the
    same weights (gamma included) writes the network alone."""
    slim = SplitVAE(model.config, seed=model.seed)
    for mine, theirs in zip(slim.weights, model.weights):
        if mine.path != theirs.path:
            raise RuntimeError(f"weights out of order: {mine.path} vs {theirs.path}")
        mine.assign(theirs)
    slim.save_to_preset(preset_dir, dataset=dataset, source=source)
