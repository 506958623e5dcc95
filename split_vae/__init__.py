"""split_vae: the Split Variational Autoencoder in Keras 3.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).
"""

import os as _os

from . import importhooks as _importhooks, lazy as _lazy

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

# `import split_vae` imports neither Keras nor TensorFlow: a notebook's first
# cell takes milliseconds and prints nothing. TensorFlow's start-up lines are
# hidden whenever it is imported later, and Keras learns our classes (so
# that keras.saving.load_model reads a .keras file) whenever Keras is, or at
# once if it already was (`importhooks`).
_importhooks.install()
