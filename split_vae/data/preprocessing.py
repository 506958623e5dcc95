"""The paper's preprocessing steps, shared by every source of the data package.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738),
Section IV names the datasets; the steps are the authors' code's, as the
table of datasets in docs/data.md lists them:

- mnist, fashion_mnist: 28x28 zero-padded by 2 on every side to 32x32x1
  (`pad_mnist`);
- celeba: the aligned 178x218 images cropped to rows 45:173 and columns
  25:153 (a 128x128 square around the face), resized bilinearly to 64x64x3
  (`celeba_crop_resize`, the one place this step is written).

Generic image folders are resized with the same bilinear resize
(`resize_uint8`). Imports numpy and tqdm; TensorFlow only inside the
functions that resize (see `bilinear_resize`).
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..checks import to_pixels, to_uint8, unit_scale

# CelebA: the aligned images are 178 wide, 218 high; the paper keeps the
# square rows 45:173, columns 25:153 (the face) and resizes it to 64x64.
CELEBA_ALIGNED_HW = (218, 178)
CELEBA_CROP = (45, 173, 25, 153)  # top, bottom, left, right
CELEBA_SHAPE = (64, 64, 3)


def pad_mnist(x) -> np.ndarray:
    """Zero-pad 28x28 images by 2 on each side to 32x32 (the paper's MNIST).

    Images that are not 28x28 are returned unchanged (e.g. already padded).
    """
    if x.shape[1:3] != (28, 28):
        return x
    return np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))


def bilinear_resize(x, hw):
    """Float images (N, H, W, C) or (H, W, C), a tensor or an array, resized
    bilinearly (no antialiasing) to `hw`; returns a float32 tensor."""
    # TensorFlow is imported here, not at the top: the data package also feeds
    # JAX and PyTorch users, and `python -m split_vae --help` must not load it.
    import tensorflow as tf

    return tf.image.resize(x, hw, method="bilinear")


def celeba_crop_resize(images):
    """The paper's CelebA step: crop [45:173, 25:153], scale to [0, 1], bilinear 64x64.

    `images` are aligned CelebA images, uint8 (218, 178, 3) or a batch
    (N, 218, 178, 3), a tensor or an array; returns float32 tensors in
    [0, 1] of shape (64, 64, 3) or (N, 64, 64, 3). The tensorflow-datasets
    stream applies it to each image, the image cache and aligned arrays to
    batches.
    """
    import tensorflow as tf  # lazily, as in bilinear_resize

    top, bottom, left, right = CELEBA_CROP
    x = unit_scale(tf.cast(images[..., top:bottom, left:right, :], tf.float32))
    return bilinear_resize(x, CELEBA_SHAPE[:2])


def celeba_crop_resize_uint8(batch) -> np.ndarray:
    """`celeba_crop_resize` of a uint8 batch, back to uint8 (N, 64, 64, 3)."""
    return to_pixels(celeba_crop_resize(batch))


def resize_uint8(batch, hw) -> np.ndarray:
    """A uint8 batch (N, H, W, C) resized bilinearly to `hw`, as uint8."""
    return to_uint8(np.asarray(bilinear_resize(np.asarray(batch, np.float32), hw)))


def celeba_crop_resize_batches(x, desc="CelebA", chunk=512) -> np.ndarray:
    """Crop and resize an array of aligned CelebA images to uint8 (N, 64, 64, 3).

    `x` is uint8, or float in [0, 1] (rounded to uint8 first); it is read
    `chunk` images at a time, so it may be a memory map larger than memory.
    """
    out = np.empty((len(x),) + CELEBA_SHAPE, np.uint8)
    for start in tqdm(range(0, len(x), chunk), desc=desc, unit="batch"):
        batch = np.asarray(x[start:start + chunk])
        if batch.dtype != np.uint8:
            batch = to_pixels(batch)
        out[start:start + len(batch)] = celeba_crop_resize_uint8(batch)
    return out
