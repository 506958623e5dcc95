"""scikit-learn's bundled 8x8 digits: a dataset that needs no download.

Imports numpy; scikit-learn only when the digits are read.
"""

from __future__ import annotations

import numpy as np


def load_digits_images() -> np.ndarray:
    """scikit-learn's bundled 8x8 digits, upsampled to 16x16x1 in [0, 1].

    Each pixel is repeated 2x2 (no interpolation); values 0..16 become /16.
    """
    # scikit-learn takes a second to import; only this dataset needs it.
    from sklearn.datasets import load_digits

    d = load_digits().images.astype("float32") / 16.0
    return np.kron(d, np.ones((2, 2), "float32"))[..., None]


def digits_split(split) -> np.ndarray:
    """The digits of a split: the first fifth of the 1797 images is test, the rest train."""
    if split == "validation":
        raise ValueError("'digits' has only the splits 'train' and 'test'")
    x = load_digits_images()
    n_test = len(x) // 5
    return x[n_test:] if split == "train" else x[:n_test]
