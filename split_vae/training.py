"""Training helpers: the KL balance ("beta decay"), safe checkpoints, resuming.

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
import shutil
import warnings
import zipfile

import keras

from .config import SplitVAEConfig
from .fileio import atomic_write, atomic_write_text
from .model import SplitVAE

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
# Checkpoints and history
# ---------------------------------------------------------------------------
# The entry of a checkpoint's zip that holds {"epoch", "gamma", "loss"}. It is
# written into the same file as the weights, before the one atomic rename, so
# the epoch count and the weights can never disagree. Keras ignores entries it
# does not know when it loads the file.
STATE_ENTRY = "split_vae_state.json"


class DamagedCheckpointError(ValueError):
    """A checkpoint file that exists but cannot be read (truncated, not a zip, ...)."""


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the whole model (.keras, optimizer and gamma included) each epoch.

    The file is written next to its target and renamed into place, and only
    when the epoch's loss is finite, so a crash or a NaN never replaces a good
    checkpoint. The number of completed epochs is stored inside the file
    (`read_checkpoint_state`). Before each replacement the current file is kept
    as PATH.prev.keras (`previous_path`), which `load_checkpoint` falls back to
    when the newest file turns out damaged.
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


def previous_path(checkpoint_path: str) -> str:
    """Where the checkpoint before the newest is kept: run/ck.keras -> run/ck.prev.keras."""
    return os.fspath(checkpoint_path)[:-len(".keras")] + ".prev.keras"


def save_checkpoint(model, path: str, state: dict) -> None:
    """Write model and state into one .keras file; keep the file it replaces.

    The good file already at `path` is first hard-linked (copied where links
    are not possible) to `previous_path(path)`, itself through a rename, and
    only then is the new file renamed onto `path`: at every instant at least
    one complete checkpoint exists. A damaged file at `path` is not kept.
    """
    path = os.fspath(path)
    if os.path.exists(path) and _is_complete_zip(path):
        _keep_as_previous(path)

    def write(tmp):
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as z:
            z.writestr(STATE_ENTRY, json.dumps(state))

    atomic_write(path, write)


def _is_complete_zip(path: str) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def _keep_as_previous(path: str) -> None:
    def link_or_copy(tmp):
        try:
            os.link(path, tmp)
        except OSError:     # no hard links here (some network or FAT file systems)
            shutil.copyfile(path, tmp)

    atomic_write(previous_path(path), link_or_copy)


def state_path(checkpoint_path: str) -> str:
    """The sidecar JSON of checkpoints written before the state moved into the file."""
    return os.fspath(checkpoint_path) + ".json"


def read_checkpoint_state(checkpoint_path: str) -> dict:
    """{"epoch": completed epochs, "gamma", "loss"} of an AtomicCheckpoint file.

    Read from the file itself; a checkpoint written before the state moved
    there falls back to its sidecar JSON (`state_path`), and one with neither
    gives {"epoch": 0}. A file that is not a complete zip raises
    DamagedCheckpointError naming it.
    """
    path = os.fspath(checkpoint_path)
    try:
        with zipfile.ZipFile(path) as z:
            if STATE_ENTRY in z.namelist():
                return json.loads(z.read(STATE_ENTRY))
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DamagedCheckpointError(
            f"{path} is damaged ({type(e).__name__}: {e})") from None
    sidecar = state_path(path)
    if not os.path.exists(sidecar):
        return {"epoch": 0}
    with open(sidecar) as f:
        return json.load(f)


def load_checkpoint(path: str):
    """(model, state, file read) from the checkpoint at path, or the one kept before it.

    A damaged newest file (truncated by a full disk, say) is reported and the
    previous checkpoint (`previous_path`) is loaded instead, with a warning
    naming both files and the epoch it resumes from. If neither can be read,
    DamagedCheckpointError names both; no file is deleted or changed.
    """
    path = os.fspath(path)
    prev = previous_path(path)
    problems = []
    for candidate in (path, prev):
        if not os.path.exists(candidate):
            continue
        try:
            state = read_checkpoint_state(candidate)
            model = keras.saving.load_model(candidate)
        except DamagedCheckpointError as e:
            problems.append(str(e))
            continue
        except Exception as e:  # noqa: BLE001 (Keras raises many kinds on a bad file)
            problems.append(f"{candidate} is damaged ({type(e).__name__}: {e})")
            continue
        if problems:
            logger.warning("%s; resuming from the previous checkpoint %s, after epoch %d",
                           problems[0], candidate, int(state.get("epoch", 0)))
        return model, state, candidate
    if not problems:
        raise FileNotFoundError(f"no checkpoint at {path} (nor {prev})")
    raise DamagedCheckpointError(
        "no readable checkpoint: " + "; ".join(problems) + ". Nothing was deleted: "
        "start in another output directory, or afresh without resuming.")


def config_differences(saved: SplitVAEConfig, requested: SplitVAEConfig) -> dict:
    """{field: (saved value, requested value)} for every field that differs."""
    a, b = saved.to_dict(), requested.to_dict()
    return {k: (v, b[k]) for k, v in a.items() if b[k] != v}


def check_resumable(saved: SplitVAEConfig, requested: SplitVAEConfig, path: str) -> None:
    """ValueError unless a run of `requested` may continue the checkpoint of `saved`.

    Only the number of epochs may change on resuming: every other field
    shapes the model or its training.
    """
    diff = config_differences(saved, requested)
    if set(diff) - {"epochs"}:
        raise ValueError(
            f"{path} was trained with another configuration (checkpoint vs requested: "
            f"{diff}); use another output directory or start afresh without resuming")


def resume_or_create(config: SplitVAEConfig, path: str, seed=None, resume: bool = True):
    """(model, completed epochs): the run's checkpoint at path, or a new compiled model.

    Resuming needs a checkpoint whose configuration equals `config` but for
    `epochs` (`check_resumable`); the loaded model then takes the requested
    number of epochs. A damaged checkpoint falls back as `load_checkpoint`
    says. With resume=False, or no checkpoint yet, a new SplitVAE(config,
    seed=seed) is built and compiled.
    """
    path = os.fspath(path)
    if resume and (os.path.exists(path) or os.path.exists(previous_path(path))):
        model, state, source = load_checkpoint(path)
        check_resumable(model.config, config, source)
        model.config.epochs = config.epochs
        initial_epoch = int(state["epoch"])
        logger.info("resuming from %s after epoch %d (gamma=%.5g)", source, initial_epoch,
                    float(model.gamma.numpy()))
        return model, initial_epoch
    model = SplitVAE(config, seed=seed)
    model.compile()
    return model, 0


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
