"""split_vae: the Split Variational Autoencoder in Keras 3.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).
"""

from . import data
from .config import PRESETS, SplitVAEConfig, get_preset
from .legacy import load_legacy_h5
from .model import SplitVAE, split_output, vae_loss_terms
from .training import AtomicCheckpoint, GammaBalance, StopOnNonFinite, validate_images

__version__ = "0.1.0"

__all__ = [
    "PRESETS", "SplitVAEConfig", "get_preset", "SplitVAE", "split_output",
    "vae_loss_terms", "GammaBalance", "StopOnNonFinite", "AtomicCheckpoint",
    "validate_images", "load_legacy_h5",
]
