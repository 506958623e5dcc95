"""Training helpers: input checks, the KL balance ("beta decay"), safe checkpoints.

The balance is the rule of Asperti & Trentin, "Balancing reconstruction error
and Kullback-Leibler divergence in Variational Autoencoders", IEEE Access 2020:
gamma tracks the reconstruction MSE, and since the loss is
rec/gamma + beta*KL, the effective KL weight beta*gamma shrinks as the
reconstruction improves (the paper's "beta progressively reduced").
"""

from __future__ import annotations

import json
import math
import os
import uuid
import warnings

import keras
import numpy as np

from .config import is_valid_image_size


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------
def validate_images(x: np.ndarray, image_shape, name: str = "images") -> np.ndarray:
    """Return float32 images in [0, 1] of shape (N, *image_shape), or raise.

    uint8 input is scaled by 1/255 (with a message). Shapes, NaN/inf and the
    value range are checked here so that a problem is named before training.
    """
    x = np.asarray(x)
    image_shape = tuple(image_shape)
    if x.ndim == 3 and image_shape[2] == 1 and x.shape[1:] == image_shape[:2]:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(
            f"{name} must have shape (N, H, W, C) = (N, {', '.join(map(str, image_shape))}), "
            f"received an array of shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    h, w, c = x.shape[1:]
    if h != w or not is_valid_image_size(h):
        raise ValueError(
            f"{name} are {h}x{w}, but the Split VAE needs square images of side "
            f"4 * 2**k (e.g. 16, 32, 64); pad or resize them (the paper pads "
            f"MNIST 28x28 to 32x32)")
    if (h, w) != image_shape[:2]:
        raise ValueError(
            f"{name} are {h}x{w} but the model expects {image_shape[0]}x{image_shape[1]}")
    if c != image_shape[2]:
        raise ValueError(
            f"{name} have {c} channel(s) but the model expects {image_shape[2]}")
    return pixel_values(x, name, announce_uint8=True)


def pixel_values(x: np.ndarray, name: str = "images", announce_uint8: bool = False) -> np.ndarray:
    """float32 pixels in [0, 1]: uint8 scaled by 1/255, others checked.

    ValueError for a non-numeric dtype, NaN/inf (naming the first index) and
    values outside [0, 1]. Shapes are the caller's business.
    """
    if x.dtype == np.uint8:
        if announce_uint8:
            print(f"[split_vae] {name}: uint8 data scaled to [0, 1] by 1/255")
        return x.astype("float32") / 255.0
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must be numeric, received dtype {x.dtype}")
    x = x.astype("float32", copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} contain {int((~finite).sum())} NaN/inf value(s); the first "
            f"at index {tuple(int(i) for i in bad)}")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must lie in [0, 1] (the decoder ends in a sigmoid), "
            f"received values in [{lo:g}, {hi:g}]; divide by 255 if they are pixels")
    return x


def check_dataset(ds, image_shape):
    """Check a tf.data.Dataset of image batches before training.

    Its element shape must be (batch, *image_shape) (or (x, ...) tuples whose
    first item is); uint8 batches are mapped to float32 / 255; the first batch
    is checked for NaN/inf and range.
    """
    import tensorflow as tf

    spec = ds.element_spec
    if isinstance(spec, (tuple, list)):
        ds = ds.map(lambda *items: items[0])
        spec = ds.element_spec
    if isinstance(spec, dict):
        raise ValueError("the dataset must yield image batches, not dicts")
    shape = tuple(spec.shape)
    if len(shape) != 4:
        raise ValueError(
            f"the dataset must yield batches of shape (batch, H, W, C); its element "
            f"shape is {shape} (call .batch(n) on it?)")
    if shape[1:] != tuple(image_shape) and None not in shape[1:]:
        raise ValueError(
            f"the dataset yields images of shape {shape[1:]}, the model expects "
            f"{tuple(image_shape)}")
    if spec.dtype == tf.uint8:
        print("[split_vae] dataset: uint8 batches scaled to [0, 1] by 1/255")
        ds = ds.map(lambda b: tf.cast(b, tf.float32) / 255.0)
    for first in ds.take(1):
        validate_images(first.numpy(), image_shape, name="the dataset's first batch")
    return ds


# ---------------------------------------------------------------------------
# The balance
# ---------------------------------------------------------------------------
class GammaBalance(keras.callbacks.Callback):
    """Update gamma after every batch: the KL balance of the paper.

    running = decay * running + (1 - decay) * batch_mse, then
    gamma = min(gamma, running). Both live in the model (`model.gamma`,
    `model.mse_running`), so they are saved and restored with it. Without this
    callback gamma stays where it is.

    Args:
        decay: float, default 0.99 (the original's).
    """

    def __init__(self, decay: float = 0.99):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), received {decay}")
        self.decay = decay

    def on_train_begin(self, logs=None):
        if getattr(self.model, "steps_per_execution", 1) not in (1, None):
            warnings.warn("GammaBalance updates gamma once per call of the train "
                          "function; with steps_per_execution > 1 it sees only "
                          "the last batch of each call")
        self._running = float(self.model.mse_running.numpy())
        self._gamma = float(self.model.gamma.numpy())

    def on_train_batch_end(self, batch, logs=None):
        if not logs or "batch_mse" not in logs:
            raise RuntimeError("GammaBalance needs the 'batch_mse' log of SplitVAE")
        mse = float(logs["batch_mse"])
        if not math.isfinite(mse):
            return  # StopOnNonFinite reports it; keep the last good gamma
        self._running = self.decay * self._running + (1.0 - self.decay) * mse
        self._gamma = min(self._gamma, self._running)
        self.model.mse_running.assign(self._running)
        self.model.gamma.assign(self._gamma)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop training at the first NaN/inf loss, saying which batch."""

    def __init__(self):
        super().__init__()
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.stopped_at = batch
            print(f"\n[split_vae] non-finite loss ({float(loss)}) at batch {batch}: "
                  "training stopped; the last checkpoint is kept as it was. "
                  "Lower the learning rate or check the data.")
            self.model.stop_training = True


# ---------------------------------------------------------------------------
# Atomic writes and checkpoints
# ---------------------------------------------------------------------------
def atomic_write(path: str, write_fn) -> None:
    """Call write_fn(tmp_path), then rename tmp_path onto path.

    The rename is atomic on POSIX: an interrupted write leaves the previous
    file intact. The temporary name ends with path's own name, so extensions
    that Keras checks (.keras, .weights.h5) are kept.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the whole model (.keras, optimizer and gamma included) each epoch.

    The file is written next to its target and renamed into place, and only
    when the epoch's loss is finite, so a crash or a NaN never replaces a good
    checkpoint. A JSON sidecar records the number of completed epochs, which
    `resume` reads.
    """

    def __init__(self, path: str, every: int = 1):
        super().__init__()
        if not str(path).endswith(".keras"):
            raise ValueError(f"checkpoint path must end in .keras, received {path}")
        self.path = os.fspath(path)
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or not math.isfinite(float(loss)):
            return
        if (epoch + 1) % self.every:
            return
        atomic_write(self.path, self.model.save)
        atomic_write_text(state_path(self.path), json.dumps(
            {"epoch": epoch + 1, "gamma": float(self.model.gamma.numpy()),
             "loss": float(loss)}, indent=2))


def state_path(checkpoint_path: str) -> str:
    return os.fspath(checkpoint_path) + ".json"


def read_checkpoint_state(checkpoint_path: str) -> dict:
    """The sidecar of an AtomicCheckpoint: {"epoch": completed epochs, ...}."""
    p = state_path(checkpoint_path)
    if not os.path.exists(p):
        return {"epoch": 0}
    with open(p) as f:
        return json.load(f)


class HistoryWriter(keras.callbacks.Callback):
    """Write the per-epoch logs to CSV and JSON after every epoch, atomically.

    Rows already in the CSV from epochs before the one training starts at are
    kept, so a resumed run continues the same file.

    Args:
        path: the CSV path; the JSON goes beside it (same name, .json).
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = os.fspath(path)
        self.json_path = os.path.splitext(self.path)[0] + ".json"
        self.rows: list[dict] | None = None

    def _read_existing(self) -> list[dict]:
        if not os.path.exists(self.json_path):
            return []
        with open(self.json_path) as f:
            return json.load(f)

    def on_epoch_begin(self, epoch, logs=None):
        if self.rows is None:
            self.rows = [r for r in self._read_existing() if r["epoch"] < epoch]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        row.update({k: float(v) for k, v in sorted((logs or {}).items())})
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        lines = [",".join(keys)]
        lines += [",".join(str(r[k]) if k == "epoch" else repr(r[k]) if k in r else ""
                           for k in keys)
                  for r in self.rows]
        atomic_write_text(self.path, "\n".join(lines) + "\n")
        atomic_write_text(self.json_path, json.dumps(self.rows, indent=1))
