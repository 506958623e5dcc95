"""The one cache root of split_vae, and its subfolders.

Everything split_vae caches lies under one directory: `$SPLIT_VAE_CACHE_DIR`
if set, else `~/.cache/split_vae`. Each kind of file has its subfolder:

- `images/`: image folders (CelebA's `img_align_celeba`, ...) decoded once
  into memory-mappable `.npy` arrays;
- `fid/`: the feature statistics (mu, sigma) of reference image sets;
- `weights/`: published weights downloaded by `SplitVAE.from_pretrained`.

Keras keeps its own downloads (InceptionV3's ImageNet weights) in its own
cache, `$KERAS_HOME/models` (default `~/.keras/models`).

Imports the standard library alone.
"""

from __future__ import annotations

import os

ENV_VAR = "SPLIT_VAE_CACHE_DIR"
DEFAULT_ROOT = os.path.join("~", ".cache", "split_vae")
KINDS = ("images", "fid", "weights")


def cache_root() -> str:
    """$SPLIT_VAE_CACHE_DIR, else ~/.cache/split_vae (user-expanded; not created)."""
    return os.path.expanduser(os.environ.get(ENV_VAR) or DEFAULT_ROOT)


def cache_dir(kind: str) -> str:
    """The subfolder of the cache root for one kind of file (not created)."""
    if kind not in KINDS:
        raise ValueError(f"unknown cache kind {kind!r}; kinds: {', '.join(KINDS)}")
    return os.path.join(cache_root(), kind)


def keras_models_dir() -> str:
    """Where Keras caches the weights of keras.applications ($KERAS_HOME/models)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")
