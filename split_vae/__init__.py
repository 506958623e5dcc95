"""split_vae: the Split Variational Autoencoder in Keras 3.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).
"""

import os as _os

from . import lazy as _lazy

# Keras reads KERAS_BACKEND when it is first imported; a wrong name there
# would fail inside Keras with a terse message, so name the choices first.
BACKENDS = ("tensorflow", "jax", "torch")
if _os.environ.get("KERAS_BACKEND", "tensorflow") not in BACKENDS:
    raise ImportError(
        f"KERAS_BACKEND={_os.environ['KERAS_BACKEND']!r} is not a backend split_vae "
        f"trains on; set it to one of {', '.join(BACKENDS)} (or unset it for tensorflow)")

from .version import __version__  # noqa: E402

# The public names, and the module each lives in. They are imported on first
# use (PEP 562): the command line must not pay for Keras and TensorFlow
# (seconds, and TensorFlow's log lines) before it has parsed its arguments.
_EXPORTS = {
    "PRESETS": "config", "SplitVAEConfig": "config", "get_preset": "config",
    "SplitVAE": "model", "split_output": "networks", "vae_loss_terms": "model",
    "GammaBalance": "training", "StopOnNonFinite": "training",
    "AtomicCheckpoint": "training", "load_legacy_h5": "model",
}
_SUBMODULES = ("blocks", "checkpoint", "checks", "cli", "config", "data", "distribute", "evaluation",
               "fileio", "inference", "legacy", "loader", "metrics", "model", "networks",
               "paths", "plotting", "precision", "presets", "sampling", "split_kind",
               "training")

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS, _SUBMODULES)

# A plain `import split_vae` loads the model, which registers SplitVAE and its
# layers with Keras, so that keras.saving.load_model reads a .keras file
# afterwards. The command line alone (`python -m split_vae`, the `split-vae`
# script; read exactly from the interpreter's command line) stays lazy: it
# parses its arguments, and --help answers, before Keras is loaded, and each
# command imports the model itself.
if not _lazy.started_as_command_line("split_vae", "split-vae"):
    from . import model as _model  # noqa: E402,F401
