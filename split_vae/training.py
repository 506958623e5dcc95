"""Training callbacks: the KL balance ("beta decay"), the stop on a non-finite
loss, the checkpoint after each epoch and the history files.

The balance is the rule of Asperti & Trentin, "Balancing reconstruction error
and Kullback-Leibler divergence in Variational Autoencoders", IEEE Access 2020:
gamma tracks the reconstruction MSE, and since the loss is
rec/gamma + beta*KL, the effective KL weight beta*gamma shrinks as the
reconstruction improves (the paper's "beta progressively reduced").
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings

import keras

from .checkpoint import save_checkpoint
from .fileio import atomic_write_text

logger = logging.getLogger(__name__)


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
        self._write_to_model()

    def on_epoch_end(self, epoch, logs=None):
        # Under JAX, at the end of a dataset of unknown length (a filtered
        # tf.data pipeline; training on several processes), Keras's trainer
        # puts back the variables of the step before this callback's last
        # update; set them again before the checkpoint is written.
        self._write_to_model()

    def _write_to_model(self):
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
            logger.error("non-finite loss (%s) at batch %d: training stopped; the last "
                         "checkpoint is kept as it was. Lower the learning rate or check "
                         "the data.", float(loss), batch)
            self.model.stop_training = True


# ---------------------------------------------------------------------------
# Checkpoints (the file format is `checkpoint`'s) and history
# ---------------------------------------------------------------------------
class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the whole model (.keras, optimizer and gamma included) each epoch.

    The file is written next to its target and renamed into place, and only
    when the epoch's loss is finite, so a crash or a NaN never replaces a good
    checkpoint. The number of completed epochs is stored inside the file, and
    before each replacement the current file is kept as PATH.prev.keras, which
    `checkpoint.load_checkpoint` falls back to when the newest file turns out
    damaged (the format: `checkpoint.save_checkpoint`).
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
        save_checkpoint(self.model, self.path, {
            "epoch": epoch + 1, "gamma": float(self.model.gamma.numpy()),
            "loss": float(loss)})


class HistoryWriter(keras.callbacks.Callback):
    """Write the per-epoch logs to CSV and JSON after every epoch, atomically.

    Epochs are numbered as Keras prints them: the row after the first epoch
    has epoch 1. Rows already in the file from epochs before the one training
    starts at are kept, so a resumed run continues the same file (a file of
    earlier versions, numbered from 0, is renumbered).

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
            rows = json.load(f)
        if rows and rows[0]["epoch"] == 0:     # numbered from 0 before version 0.2
            rows = [dict(r, epoch=r["epoch"] + 1) for r in rows]
        return rows

    def on_epoch_begin(self, epoch, logs=None):
        # Keras's epoch index counts from 0: before it, `epoch` epochs are done.
        if self.rows is None:
            self.rows = [r for r in self._read_existing() if r["epoch"] <= epoch]

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in sorted((logs or {}).items())})
        self.rows.append(row)
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        lines = [",".join(keys)]
        lines += [",".join(str(r[k]) if k == "epoch" else repr(r[k]) if k in r else ""
                           for k in keys)
                  for r in self.rows]
        atomic_write_text(self.path, "\n".join(lines) + "\n")
        atomic_write_text(self.json_path, json.dumps(self.rows, indent=1))
