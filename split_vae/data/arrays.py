"""Images stored as numpy arrays: a .npy/.npz file, or a directory of them.

Every array goes through `checks.images` (shape, dtype, range, channels).
Imports numpy, `split_vae.checks` and `common`.
"""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib

import numpy as np

from .. import checks
from .common import require_exists

_SPLIT_KEYS = {
    "train": ("x_train", "train", "images_train", "train_images"),
    "test": ("x_test", "test", "images_test", "test_images"),
    "validation": ("x_val", "x_validation", "validation", "val"),
}


def array_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory)
                  if n.lower().endswith((".npy", ".npz")) and not n.startswith("."))


def read_array_split(path, split) -> np.ndarray:
    """The split's images from a .npy/.npz file, or a directory of them.

    A directory may hold one file per split (`train.npy`/`test.npy` or
    `x_train.npy`/`x_test.npy`) or a single .npy/.npz. In an .npz the split's
    array is `x_train`/`x_test` (Keras' mnist.npz) or `train`/`test`. A
    source holding a single array has no test split: it is returned for
    every split, with a warning. Images are (N, H, W) or (N, H, W, C),
    uint8 pixels or floats in [0, 1].
    """
    path = os.fspath(path)
    require_exists(path)
    if os.path.isdir(path):
        files = array_files(path)
        for key in _SPLIT_KEYS[split]:
            if f"{key}.npy" in files:
                return array_images(_load_npy(os.path.join(path, f"{key}.npy")),
                                    os.path.join(path, f"{key}.npy"))
        per_split = [f for f in files if f[:-4] in sum(_SPLIT_KEYS.values(), ())]
        if per_split:
            raise FileNotFoundError(
                f"{path!r} holds per-split arrays ({', '.join(per_split)}) but none for the "
                f"{split} split; add {split}.npy (or x_{split}.npy)")
        if len(files) != 1:
            raise FileNotFoundError(
                f"{path!r} holds {len(files)} .npy/.npz files ({', '.join(files[:5])}); "
                f"expected {split}.npy (or x_{split}.npy), or a single .npz/.npy")
        path = os.path.join(path, files[0])
    if path.lower().endswith(".npz"):
        arrays = _load_npz(path)
        for key in _SPLIT_KEYS[split]:
            if key in arrays:
                return array_images(arrays[key], f"{path}[{key}]")
        if len(arrays) == 1:
            (key, x), = arrays.items()
            return _single_array(array_images(x, f"{path}[{key}]"), path, split)
        raise ValueError(
            f"{path} has no array for the {split} split: its arrays are "
            f"{sorted(arrays)}; name them x_train and x_test (as Keras' mnist.npz)")
    if path.lower().endswith(".npy"):
        return _single_array(array_images(_load_npy(path), path), path, split)
    raise ValueError(f"{path} is neither a .npy nor a .npz file")


def array_images(x, where) -> np.ndarray:
    """Images read from an array file: uint8 (kept, not copied) or float32 in [0, 1].

    A 3-d array (N, H, W) is grayscale: the channel axis is added here, as
    part of reading the file format. Everything else is `checks.images`.
    """
    if x.ndim == 3:
        x = x[..., None]
    return checks.images(x, where, keep_uint8=True)


def _single_array(x, path, split):
    if split != "train":
        warnings.warn(f"{path} holds a single array: its {split} split is the same images "
                      "as train (no held-out data)")
    return x


def _load_npy(path):
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npy array ({e}); it may be truncated "
                         "or hold Python objects; write it again with np.save") from None


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path} is a corrupt or truncated .npz file ({e}); write it "
                         "again with np.savez or copy it again") from None
