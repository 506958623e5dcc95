"""Datasets. (Placeholder: only `digits`; the full pipelines are issue #3.)"""

from __future__ import annotations

import numpy as np


def load_digits_images() -> np.ndarray:
    """scikit-learn's bundled 8x8 digits, upsampled to 16x16x1 in [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits().images.astype("float32") / 16.0
    return np.kron(d, np.ones((2, 2), "float32"))[..., None]


def load(name, split="train", *, batch_size=100, data_dir=None, as_numpy=False,
         limit=None, shuffle=None, seed=None, image_shape=None):
    if name != "digits":
        raise ValueError(f"unknown dataset {name!r}")
    x = load_digits_images()
    n_test = len(x) // 5
    x = x[n_test:] if split == "train" else x[:n_test]
    if limit is not None:
        x = x[:limit]
    if as_numpy:
        return x
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(x)
    if shuffle if shuffle is not None else split == "train":
        ds = ds.shuffle(len(x), seed=seed)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
