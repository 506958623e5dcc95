"""split_vae: the Split Variational Autoencoder in Keras 3.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).
"""

import os as _os

# Keras reads KERAS_BACKEND when it is first imported; a wrong name there
# would fail inside Keras with a terse message, so name the choices first.
BACKENDS = ("tensorflow", "jax", "torch")
if _os.environ.get("KERAS_BACKEND", "tensorflow") not in BACKENDS:
    raise ImportError(
        f"KERAS_BACKEND={_os.environ['KERAS_BACKEND']!r} is not a backend split_vae "
        f"trains on; set it to one of {', '.join(BACKENDS)} (or unset it for tensorflow)")

from . import data  # noqa: E402
from .config import PRESETS, SplitVAEConfig, get_preset  # noqa: E402
from .legacy import load_legacy_h5  # noqa: E402
from .model import SplitVAE, split_output, vae_loss_terms  # noqa: E402
from .training import (AtomicCheckpoint, GammaBalance, StopOnNonFinite,  # noqa: E402
                       validate_images)

__version__ = "0.1.0"

__all__ = [
    "PRESETS", "SplitVAEConfig", "get_preset", "SplitVAE", "split_output",
    "vae_loss_terms", "GammaBalance", "StopOnNonFinite", "AtomicCheckpoint",
    "validate_images", "load_legacy_h5",
]
