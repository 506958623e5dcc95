"""The training checkpoint: one `.keras` file holding the model and the run's state.

`save_checkpoint` writes the whole model (optimizer, gamma and the sampling
seed state included) and {"epoch", "gamma", "loss"} into one file through one
atomic rename, after keeping the file it replaces as PATH.prev.keras;
`load_checkpoint` falls back to that previous file when the newest is
damaged; `resume_or_create` continues a run or starts one. The callback that
saves after each epoch is `training.AtomicCheckpoint`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zipfile

import keras

from .config import SplitVAEConfig
from .fileio import atomic_write
from .model import SplitVAE

logger = logging.getLogger(__name__)

# The entry of a checkpoint's zip that holds {"epoch", "gamma", "loss"}. It is
# written into the same file as the weights, before the one atomic rename, so
# the epoch count and the weights can never disagree. Keras ignores entries it
# does not know when it loads the file.
STATE_ENTRY = "split_vae_state.json"


class DamagedCheckpointError(ValueError):
    """A checkpoint file that exists but cannot be read (truncated, not a zip, ...)."""


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


def read_checkpoint_state(checkpoint_path: str) -> dict:
    """{"epoch": completed epochs, "gamma", "loss"} of an AtomicCheckpoint file.

    Read from the file itself; a `.keras` file without it (saved by
    `model.save`) gives {"epoch": 0}. A file that is not a complete zip
    raises DamagedCheckpointError naming it.
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
    return {"epoch": 0}


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
        model.config = model.config.replace(epochs=config.epochs)
        initial_epoch = int(state["epoch"])
        logger.info("resuming from %s after epoch %d (gamma=%.5g)", source, initial_epoch,
                    float(model.gamma.numpy()))
        return model, initial_epoch
    model = SplitVAE(config, seed=seed)
    model.compile()
    return model, 0
