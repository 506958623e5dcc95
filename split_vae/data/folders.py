"""Generic folders of images (PNG, JPEG, ...), decoded through the image cache.

Imports numpy and `cache`.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .cache import preprocess_images

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def list_images(folder):
    """Sorted names of the image files directly inside `folder`."""
    return sorted(n for n in os.listdir(folder)
                  if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith("."))


def read_image_folder_split(folder, split, image_shape=None) -> np.ndarray:
    """A generic folder of images as uint8 (N, H, W, C), through the cache.

    With `train/` and `test/` sub-folders the split picks one; otherwise the
    folder is the only split (other splits: the same images, with a
    warning). With `image_shape` every image is converted to its channels
    and, if its size differs, resized bilinearly; without it the images
    keep their size and must all share it, grayscale folders giving C = 1.
    """
    sub = os.path.join(folder, split)
    if os.path.isdir(sub) and list_images(sub):
        folder = sub
    elif split != "train":
        warnings.warn(f"{folder} has no {split}/ sub-folder: its {split} split is the "
                      "same images as train (no held-out data)")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder!r} is not a folder of images")
    names = list_images(folder)
    if not names:
        raise FileNotFoundError(
            f"no images in {folder!r} (looked for {', '.join(IMAGE_EXTENSIONS)}); put the "
            "images there, or train/ and test/ sub-folders of images")
    paths = [os.path.join(folder, n) for n in names]
    return preprocess_images(paths, image_shape=image_shape, desc=folder)
